"""The one adapter over the official Kaggle client (``kaggle`` package, kagglesdk underneath).

No hand-written HTTP to Kaggle: every call goes through ``KaggleApi`` or the kagglesdk client it
builds. ``kaggle`` authenticates on import, so it is imported lazily here and nowhere else (and never
on the run side). The client prints to stdout; everything it prints is sent to stderr with
credentials redacted, so ``--json`` output stays one clean object.

Tests route the real client to a loopback server with ``KAGGLE_API_ENVIRONMENT=LOCALHOST`` plus
``HTTP_PROXY`` on 127.0.0.1 (``tests/kaggle_server.py``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bundler.errors import BundlerError, redact

T = TypeVar("T")

CREDENTIAL_WAYS = (
    "set KAGGLE_API_TOKEN (a token from kaggle.com/settings, API section), or KAGGLE_USERNAME and "
    'KAGGLE_KEY, or put kaggle.json ({"username": ..., "key": ...}) in ~/.kaggle/ or '
    "$KAGGLE_CONFIG_DIR with chmod 600"
)
HASH_NOTE = re.compile(r"bundle_sha256=([0-9a-f]{64})")
RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_RETRIES = 5
MAX_MANIFEST_BYTES = 64 * 1024 * 1024  # a MANIFEST.json lists files; it is never this big


def _kaggle_json_paths(env: Mapping[str, str]) -> list[Path]:
    home = Path(env.get("HOME") or Path.home())
    paths = []
    if env.get("KAGGLE_CONFIG_DIR"):
        paths.append(Path(env["KAGGLE_CONFIG_DIR"]) / "kaggle.json")
    paths.append(home / ".kaggle" / "kaggle.json")
    paths.append(Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle" / "kaggle.json")
    return paths


def credential_source(env: Mapping[str, str] | None = None) -> str | None:
    """Which of the supported ways provides Kaggle credentials (never the secret itself)."""
    env = os.environ if env is None else env
    if env.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN"
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME/KAGGLE_KEY"
    for path in _kaggle_json_paths(env):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("username") and data.get("key"):
            return f"kaggle.json ({path})"
    return None


def require_credentials(env: Mapping[str, str] | None = None) -> str:
    """The credential source, or a clear error naming every supported way."""
    source = credential_source(env)
    if source is None:
        raise BundlerError(
            "no Kaggle credentials found",
            where="KAGGLE_API_TOKEN, KAGGLE_USERNAME/KAGGLE_KEY, kaggle.json",
            fix=CREDENTIAL_WAYS,
        )
    return source


class NotFound(BundlerError):
    """The service answered 404 for what was asked."""


class _RedactingStream(io.TextIOBase):
    """Where the client's prints go: stderr, credentials masked."""

    def write(self, text: str) -> int:
        sys.stderr.write(redact(text))
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    with contextlib.redirect_stdout(_RedactingStream()):
        yield


@dataclass(frozen=True)
class RemoteDataset:
    """The latest version of a dataset as the service reports it."""

    ref: str
    version: int
    notes: str
    url: str

    @property
    def bundle_sha256(self) -> str | None:
        found = HASH_NOTE.search(self.notes)
        return found.group(1) if found else None


@dataclass(frozen=True)
class PushedKernel:
    ref: str  # owner/slug
    url: str
    version: int | None


@dataclass(frozen=True)
class KernelRun:
    ref: str
    status: str  # COMPLETE, ERROR, CANCEL_ACKNOWLEDGED, ...
    failure: str | None


def _status_of(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    code = getattr(response, "status_code", None)
    return int(code) if isinstance(code, int) else None


def _retry_after(error: BaseException) -> float | None:
    response = getattr(error, "response", None)
    value = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class Backoff:
    """Polling intervals growing from ``start`` by ``factor`` up to ``cap``, within a deadline."""

    def __init__(self, start: float, *, factor: float = 1.6, cap: float = 60.0) -> None:
        self.next = start
        self.factor = factor
        self.cap = cap

    def step(self) -> float:
        delay = self.next
        self.next = min(self.cap, self.next * self.factor)
        return delay


class KaggleAdapter:
    """Datasets, kernels and submissions through the official client, with retries and deadlines."""

    def __init__(
        self,
        *,
        timeout_s: float,
        poll_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        timeout_option: str = "push --timeout",
    ) -> None:
        self.poll_s = poll_s
        self.timeout_option = timeout_option  # named in a timeout error: the option that raises it
        self._sleep = sleep
        self._clock = clock
        self.deadline = clock() + timeout_s
        self._client: Any = None

    # -- plumbing --------------------------------------------------------------------------------

    @property
    def api(self) -> Any:
        """The authenticated ``KaggleApi`` (imported on first use: it authenticates on import)."""
        if self._client is None:
            require_credentials()
            try:
                with _quiet_stdout():
                    from kaggle.api.kaggle_api_extended import KaggleApi

                    api = KaggleApi()
                    api.authenticate()
            except SystemExit as exc:  # the client exits when no credentials work
                raise BundlerError(
                    "the Kaggle client could not authenticate with the credentials found",
                    where="kaggle authenticate",
                    fix="check the token or key is current; " + CREDENTIAL_WAYS,
                ) from exc
            self._client = api
        return self._client

    def left(self) -> float:
        return self.deadline - self._clock()

    def _wait(self, delay: float, what: str) -> None:
        if delay >= self.left():
            raise BundlerError(
                f"timed out waiting for {what}",
                where=self.timeout_option,
                fix="raise --timeout, or check the service status and run it again (it is idempotent)",
            )
        self._sleep(delay)

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one client call: retry 429/5xx (honouring Retry-After), map failures to errors."""
        backoff = Backoff(max(self.poll_s, 0.5) / 2, cap=30.0)
        for attempt in range(1, MAX_RETRIES + 1):
            try:
                with _quiet_stdout():
                    return fn()
            except BundlerError:
                raise
            except Exception as exc:  # the client raises anything; it is translated once, here
                status = _status_of(exc)
                transient = status in RETRY_STATUSES or type(exc).__name__ in ("ConnectionError", "Timeout")
                if transient and attempt < MAX_RETRIES:
                    delay = _retry_after(exc)
                    cause = f"HTTP {status}" if status else type(exc).__name__
                    self._wait(backoff.step() if delay is None else delay, f"{what} ({cause})")
                    continue
                raise _translate(what, exc, status) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _client_call(self, fn: Callable[[Any], T]) -> T:
        with self.api.build_kaggle_client() as client:
            return fn(client)

    # -- datasets --------------------------------------------------------------------------------

    def remote_dataset(self, ref: str) -> RemoteDataset | None:
        """The latest version of ``ref``, or None when the dataset does not exist yet."""
        from kagglesdk.datasets.types.dataset_api_service import ApiGetDatasetRequest

        owner, slug = ref.split("/", 1)
        request = ApiGetDatasetRequest()
        request.owner_slug, request.dataset_slug = owner, slug
        try:
            found = self.call(
                f"look up dataset {ref}",
                lambda: self._client_call(lambda c: c.datasets.dataset_api_client.get_dataset(request)),
            )
        except NotFound:
            return None
        versions = sorted(found.versions or [], key=lambda v: v.version_number or 0)
        latest = versions[-1] if versions else None
        return RemoteDataset(
            ref=ref,
            version=int(found.current_version_number or (latest.version_number if latest else 0) or 0),
            notes=str(latest.version_notes or "") if latest else "",
            url=str(found.url or ""),
        )

    def remote_manifest_sha256(self, ref: str) -> str | None:
        """``bundle_sha256`` of the MANIFEST.json in the latest remote version (None if unknown).

        Used when the version notes carry no hash (a dataset's first version has no notes).
        """
        from kagglesdk.datasets.types.dataset_api_service import ApiDownloadDatasetRequest

        owner, slug = ref.split("/", 1)
        request = ApiDownloadDatasetRequest()
        request.owner_slug, request.dataset_slug, request.file_name = owner, slug, "MANIFEST.json"

        def fetch(client: Any) -> bytes:
            response = client.datasets.dataset_api_client.download_dataset(request)
            return bytes(response.raw.read(MAX_MANIFEST_BYTES + 1, decode_content=True))

        try:
            body = self.call(f"read MANIFEST.json of {ref}", lambda: self._client_call(fetch))
        except BundlerError:  # unknown is fine: the bundle is uploaded again
            return None
        return _manifest_hash(body)

    def create_dataset(self, folder: Path) -> str:
        """Create the dataset from ``folder`` (subfolders zipped); returns its URL."""
        result = self.call(
            "create dataset",
            lambda: self.api.dataset_create_new(str(folder), public=False, quiet=True, dir_mode="zip"),
        )
        return _dataset_result("create dataset", result)

    def version_dataset(self, folder: Path, notes: str) -> str:
        """Upload ``folder`` as a new version with ``notes``; returns the dataset URL."""
        result = self.call(
            "create dataset version",
            lambda: self.api.dataset_create_version(str(folder), notes, quiet=True, dir_mode="zip"),
        )
        return _dataset_result("create dataset version", result)

    def wait_dataset_ready(self, ref: str, on_poll: Callable[[str], None] | None = None) -> str:
        """Poll the dataset status until READY; FAILED or the deadline is an error."""
        backoff = Backoff(self.poll_s)
        while True:
            status = str(self.call(f"dataset status of {ref}", lambda: self.api.dataset_status(ref))).lower()
            if on_poll:
                on_poll(status)
            if status == "ready":
                return status
            if status in ("failed", "deleted"):
                raise BundlerError(
                    f"dataset {ref} ended {status.upper()} after the upload",
                    where=f"Kaggle dataset {ref}",
                    fix="open the dataset page for the processing error, fix the bundle and push again",
                )
            self._wait(backoff.step(), f"dataset {ref} to become READY (last status {status})")

    # -- kernels ---------------------------------------------------------------------------------

    def push_kernel(self, folder: Path) -> PushedKernel:
        meta = json.loads((folder / "kernel-metadata.json").read_text(encoding="utf-8"))
        ref = str(meta.get("id", ""))
        result = self.call(f"push kernel {ref}", lambda: self.api.kernels_push(str(folder)))
        if result.error:
            raise BundlerError(
                f"Kaggle refused kernel {ref}: {result.error}",
                where=str(folder / "kernel-metadata.json"),
                fix="fix the kernel metadata (id, title, code_file, sources) and push again",
            )
        bad = list(result.invalid_dataset_sources or [])
        if bad:
            raise BundlerError(
                f"kernel {ref} could not attach dataset(s) {', '.join(bad)}",
                where=str(folder / "kernel-metadata.json"),
                fix="check the bundle dataset exists and is READY, and that dataset_sources names it",
            )
        return PushedKernel(ref=ref, url=str(result.url or ""), version=result.version_number)

    def wait_kernel(self, ref: str, on_poll: Callable[[str], None] | None = None) -> KernelRun:
        """Poll a kernel run until it is COMPLETE, ERROR or cancelled."""
        backoff = Backoff(self.poll_s)
        while True:
            response = self.call(f"kernel status of {ref}", lambda: self.api.kernels_status(ref))
            status = getattr(response.status, "name", str(response.status))
            if on_poll:
                on_poll(status)
            if status in ("COMPLETE", "ERROR", "CANCEL_ACKNOWLEDGED"):
                return KernelRun(ref=ref, status=status, failure=response.failure_message or None)
            self._wait(backoff.step(), f"kernel {ref} to finish (last status {status})")

    def kernel_output(self, ref: str, dest: Path) -> list[Path]:
        """Download the run's output files and its log into ``dest``."""
        dest.mkdir(parents=True, exist_ok=True)
        files, _ = self.call(
            f"download output of {ref}",
            lambda: self.api.kernels_output(ref, str(dest), force=True, quiet=True),
        )
        return [Path(f) for f in files]

    def submit(self, *, competition: str, kernel: PushedKernel, file_name: str, message: str) -> str:
        """Submit a finished kernel version to a code competition; returns the submission ref."""
        result = self.call(
            f"submit {kernel.ref} to {competition}",
            lambda: self.api.competition_submit_code(
                file_name, message, competition, kernel=kernel.ref, kernel_version=kernel.version, quiet=True
            ),
        )
        return f"{result.ref} ({result.message})"


def _manifest_hash(body: bytes) -> str | None:
    """The bundle hash from a downloaded MANIFEST.json (the service may wrap files in a zip)."""
    if len(body) > MAX_MANIFEST_BYTES:
        return None
    if body.startswith(b"PK"):
        try:
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                body = archive.read("MANIFEST.json")
        except (zipfile.BadZipFile, KeyError):
            return None
    try:
        value = json.loads(body).get("bundle_sha256")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value) else None


def _dataset_result(what: str, result: Any) -> str:
    if result is None or str(getattr(result, "status", "") or "").lower() != "ok":
        error = getattr(result, "error", None) or "no reason given"
        raise BundlerError(
            f"{what} failed: {error}",
            where="dataset-metadata.json",
            fix="check the dataset id (owner/slug), title (6-50 chars) and license, then push again",
        )
    return str(result.url or "")


def _translate(what: str, exc: BaseException, status: int | None) -> BundlerError:
    detail = redact(str(exc)) or type(exc).__name__
    if status in (401, 403):
        fix = "the credentials were refused or lack access: " + CREDENTIAL_WAYS
    elif status == 404:
        fix = "check the owner/slug ids in dataset-metadata.json and kernel-metadata.json"
    elif status is None:
        fix = "check the network and the Kaggle service status, then push again (it is idempotent)"
    else:
        fix = "the service kept failing; wait and push again (it is idempotent)"
    suffix = f" (HTTP {status})" if status else ""
    if status == 404:
        return NotFound(f"{what} failed{suffix}: {detail}", where="Kaggle API", fix=fix)
    return BundlerError(f"{what} failed{suffix}: {detail}", where="Kaggle API", fix=fix)
