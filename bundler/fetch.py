"""A small client for a package index's simple API, and the content-addressed wheel cache.

- Index pages: PEP 691 JSON when the index offers it, PEP 503 HTML otherwise (stdlib urllib, so
  HTTP(S)_PROXY / NO_PROXY from the environment apply). Every request is counted.
- Cache layout: ``<cache>/sha256/<hex[:2]>/<hex>/<filename>``. A file's path is its hash, so it is
  re-hashed on every use; a corrupted file is deleted and fetched again.
- Choices: ``<cache>/choices/<key>.json`` remembers which file was picked for a pin, keyed by the
  pin's name, version, hashes and the target's tags, so a warm rebuild needs no index page.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from rich.text import Text

from bundler.errors import BundlerError, VerificationError
from bundler.output import console
from spectramind.shim import atomic_write

_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
_CHUNK = 1 << 16
TIMEOUT_S = 60.0
RETRIES = 2  # transient failures (5xx, 429, timeouts, resets) are retried with backoff
BACKOFF_S = 1.0
_TRANSIENT_HTTP = frozenset({429, 500, 502, 503, 504})


def safe_url(url: str) -> str:
    """``url`` without user:password (for messages and records)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        parts = parts._replace(netloc=netloc)
    return urllib.parse.urlunsplit(parts._replace(fragment=""))


@dataclass(frozen=True)
class IndexFile:
    """One file offered by the index for a project."""

    filename: str
    url: str
    sha256: str | None
    size: int | None = None
    yanked: bool = False
    has_metadata: bool = False  # the index serves the wheel's METADATA at ``url + ".metadata"`` (PEP 658)
    metadata_sha256: str | None = None


def _core_metadata(value: object) -> tuple[bool, str | None]:
    """PEP 658/714 ``core-metadata`` (JSON: bool or hashes; HTML: "true" or "sha256=...")."""
    if isinstance(value, dict):
        digest = value.get("sha256")
        return True, str(digest).lower() if digest else None
    if isinstance(value, str):
        digest = value.removeprefix("sha256=").lower() if value.startswith("sha256=") else None
        return value != "false", digest
    return bool(value), None


class IndexHTTPError(BundlerError):
    """The index answered with an HTTP error status (``code``) that retries did not cure."""

    def __init__(self, what: str, *, code: int, where: str, fix: str) -> None:
        super().__init__(what, where=where, fix=fix)
        self.code = code


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, dict[str, str | None]]] = []
        self.base: str | None = None
        self._open = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base":
            self.base = dict(attrs).get("href") or self.base
        if tag == "a":
            self.links.append(("", dict(attrs)))
            self._open = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._open = False

    def handle_data(self, data: str) -> None:
        if self._open and self.links:
            text, attrs = self.links[-1]
            self.links[-1] = (text + data, attrs)


def parse_html(body: str, page_url: str) -> list[IndexFile]:
    """Files of a PEP 503 project page."""
    parser = _LinkParser()
    parser.feed(body)
    base = urllib.parse.urljoin(page_url, parser.base) if parser.base else page_url
    files: list[IndexFile] = []
    for text, attrs in parser.links:
        href = attrs.get("href")
        if not href:
            continue
        url = urllib.parse.urljoin(base, href)
        path, _, fragment = url.partition("#")
        filename = urllib.parse.unquote(path.rsplit("/", 1)[-1]) or text.strip()
        digest = None
        if fragment.startswith("sha256="):
            digest = fragment.removeprefix("sha256=").lower()
        meta = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        has_meta, meta_sha = _core_metadata(meta) if meta is not None else (False, None)
        files.append(IndexFile(filename, path, digest, None, "data-yanked" in attrs, has_meta, meta_sha))
    return files


def parse_json(data: dict[str, Any], page_url: str) -> list[IndexFile]:
    """Files of a PEP 691 project page."""
    files: list[IndexFile] = []
    for item in data.get("files", []):
        url = urllib.parse.urljoin(page_url, item["url"]).partition("#")[0]
        digest = (item.get("hashes") or {}).get("sha256")
        size = item.get("size")
        has_meta, meta_sha = _core_metadata(item.get("core-metadata", item.get("data-dist-info-metadata")))
        files.append(
            IndexFile(
                filename=item["filename"],
                url=url,
                sha256=digest.lower() if digest else None,
                size=int(size) if isinstance(size, int) else None,
                yanked=bool(item.get("yanked")),
                has_metadata=has_meta,
                metadata_sha256=meta_sha,
            )
        )
    return files


class IndexClient:
    """Fetches project pages and files; ``requests`` counts every HTTP request made."""

    def __init__(self, index_url: str, *, offline: bool = False) -> None:
        self.index_url = index_url.rstrip("/") + "/"
        self.offline = offline
        self.requests = 0
        self._count = threading.Lock()  # callers may fetch from several threads
        # Our own opener: proxies are read from the environment now (urlopen's global opener
        # freezes them at its first use in the process).
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler())

    def _open(self, url: str, accept: str | None = None) -> Any:
        if self.offline:  # a programming error: offline callers must check the cache first
            raise BundlerError("network access attempted in --offline mode", where=safe_url(url))
        request = urllib.request.Request(url, headers={"Accept": accept or "*/*"})  # noqa: S310
        for attempt in range(RETRIES + 1):
            with self._count:
                self.requests += 1
            try:
                return self._opener.open(request, timeout=TIMEOUT_S)
            except urllib.error.HTTPError as exc:
                if exc.code in _TRANSIENT_HTTP and attempt < RETRIES:
                    time.sleep(BACKOFF_S * 2**attempt)
                    continue
                raise IndexHTTPError(
                    f"the index answered HTTP {exc.code} for {safe_url(url)}",
                    code=exc.code,
                    where=safe_url(self.index_url),
                    fix="check bundle.index_url and that the package exists there",
                ) from exc
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, TimeoutError | ConnectionResetError) and attempt < RETRIES:
                    time.sleep(BACKOFF_S * 2**attempt)
                    continue
                raise BundlerError(
                    f"cannot reach the package index: {reason}",
                    where=safe_url(url),
                    fix="check the network / HTTPS_PROXY, or build with --offline from a warm cache",
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def project_files(self, project: str) -> list[IndexFile]:
        """The files the index offers for ``project`` (canonical name)."""
        page = urllib.parse.urljoin(self.index_url, f"{project}/")
        with self._open(page, _ACCEPT) as response:
            ctype = response.headers.get("Content-Type", "")
            final = response.geturl() or page
            body = response.read()
        if "json" in ctype:
            return parse_json(json.loads(body), final)
        return parse_html(body.decode("utf-8", "replace"), final)

    def download(
        self, url: str, dest_dir: Path, progress: Callable[[int, int | None], None] | None = None
    ) -> tuple[Path, str, int]:
        """Stream ``url`` into a temp file in ``dest_dir``; returns (temp path, sha256, size)."""
        dest_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out, self._open(url) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if progress:
                        progress(len(chunk), total)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Path(tmp), digest.hexdigest(), size


def warn_damaged(entry: Path, problem: str, action: str) -> None:
    """The one warning for a build-cache entry that fails its recorded hash (one line, never wrapped)."""
    console.print(Text(f"warning: cache entry {entry} is damaged ({problem}): {action}"), soft_wrap=True)


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class Cache:
    """The content-addressed store of wheels, sdists and built wheels, plus the pin->file choices."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._fetched: dict[tuple[str, str], set[tuple[str, str]]] | None = None

    def blob_path(self, sha256: str, filename: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256 / filename

    def get(self, sha256: str, filename: str) -> Path | None:
        """The cached file if present and intact; a corrupted one is named, removed (returns None)."""
        path = self.blob_path(sha256, filename)
        if not path.is_file():
            return None
        found = hash_file(path)
        if found != sha256:
            warn_damaged(path, f"sha256 {found}, recorded {sha256}", "removed")
            path.unlink(missing_ok=True)
            return None
        return path

    def put(self, tmp: Path, sha256: str, filename: str) -> Path:
        """Move a verified temp file into the store."""
        path = self.blob_path(sha256, filename)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.replace(path)
        return path

    def put_file(self, source: Path, sha256: str) -> Path:
        """Copy a file (e.g. a freshly built wheel) into the store."""
        path = self.blob_path(sha256, source.name)
        if not path.is_file():
            atomic_write(path, source.read_bytes())
        return path

    def incoming(self) -> Path:
        """Where downloads stream to; parts left by a killed build over an hour ago are removed."""
        folder = self.root / "incoming"
        if folder.is_dir():
            stale = time.time() - 3600
            for part in folder.glob(".part-*"):
                with contextlib.suppress(OSError):
                    if part.stat().st_mtime < stale:
                        part.unlink()
        return folder

    def _choice_path(self, key: str) -> Path:
        return self.root / "choices" / f"{key}.json"

    def load_choice(self, key: str) -> dict[str, Any] | None:
        path = self._choice_path(key)
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def save_choice(self, key: str, choice: dict[str, Any]) -> None:
        atomic_write(self._choice_path(key), json.dumps(choice, indent=1, sort_keys=True).encode())

    def fetched(self, name: str, version: str) -> list[tuple[str, str]]:
        """(filename, sha256) of the cached files once fetched as the locked file of ``name==version``.

        Found through the remembered choices of any lock and target (read once per `Cache`), so a
        lock whose hashes were edited since can still be compared with what was really fetched.
        The sha256 is the one the download was verified with; the file must still be here.
        """
        if self._fetched is None:
            self._fetched = {}
            for path in sorted((self.root / "choices").glob("*.json")):
                choice = self.load_choice(path.stem) or {}
                filename, sha256 = str(choice.get("filename", "")), str(choice.get("sha256", ""))
                if "/" in filename or not self.blob_path(sha256, filename).is_file():
                    continue
                pin = (str(choice.get("name")), str(choice.get("version")))
                self._fetched.setdefault(pin, set()).add((filename, sha256))
        return sorted(self._fetched.get((name, version), set()))


def choice_key(name: str, version: str, hashes: tuple[str, ...], tags_key: str) -> str:
    blob = json.dumps(
        {"v": 1, "name": name, "version": version, "hashes": sorted(hashes), "tags": tags_key},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def cached_mismatch(
    cache: Cache, key: str, name: str, version: str, hashes: tuple[str, ...]
) -> tuple[bool, str | None]:
    """Compare a pin's hashes with the files fetched for it before: (checked, mismatch message).

    ``checked`` is False when the cache holds no file of the pin (nothing to compare offline).
    """
    files = cache.fetched(name, version)
    if not files:
        return False, None
    if any(sha256 in hashes for _, sha256 in files):
        return True, None
    cached = "; ".join(f"{cache.blob_path(sha, fn)} has sha256 {sha}" for fn, sha in files)
    return True, f"{key}: the lock's sha256 {', '.join(hashes)} does not match the cached file ({cached})"


HASH_EDITED_FIX = (
    "if the lock was edited by hand, restore it (`git checkout -- requirements.lock`) or re-lock with "
    "`python -m bundler lock`; if the index really serves a new file, build once without --offline "
    "(the download is checked against the lock)"
)


def verify_download(filename: str, sha256: str, allowed: tuple[str, ...], url: str, lock_where: str) -> None:
    """A downloaded file must hash to one of the lock's hashes."""
    if sha256 not in allowed:
        raise VerificationError(
            f"hash mismatch: {filename} has sha256 {sha256}, the lock allows {', '.join(allowed)}",
            where=f"{safe_url(url)} (pin at {lock_where})",
            fix="the file changed on the index or in transit; if the new file is trusted, re-lock with "
            "`python -m bundler lock`, otherwise check the index / proxy",
        )
