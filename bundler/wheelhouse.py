"""The target-platform wheelhouse of ``python -m bundler build``: the delta the image lacks.

Steps: read the lock (fresh against requirements.in and the image manifest), and the lock of each
extra in ``bundle.extras`` (fresh against its requirements file and the base lock) → keep the pins whose
markers hold on the target and that the image lacks at that version → for each, pick the target's
best wheel whose sha256 the lock allows (or the sdist, built when pure Python) → fetch through the
content-addressed cache → clobber check of image + delta → copy into ``dest``.

Nothing is written into ``dest`` until every file is fetched, verified and checked.
``network_requests`` counts the index client's requests; an sdist whose build backend is not
installed here is built in an isolated environment that pip fills from the same index (cold builds
only: the built wheel is cached and remembered with the pin's choice).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TransferSpeedColumn,
)

from bundler import extras, tempdirs
from bundler.clobber import Installed, check_clobber, wheel_requires
from bundler.config import Settings
from bundler.errors import BundlerError, VerificationError
from bundler.fetch import (
    HASH_EDITED_FIX,
    Cache,
    IndexClient,
    IndexFile,
    cached_mismatch,
    choice_key,
    hash_file,
    safe_url,
    verify_download,
)
from bundler.image import ImageManifest, is_cuda_library, load_image
from bundler.lockfile import LockedPin, check_fresh, check_target, parse_lock
from bundler.output import progress_display
from bundler.sdist import build_pure_wheel
from bundler.tags import TargetTags, marker_applies, marker_environment, parse_filename, target_tags
from bundler.wheelcheck import check_wheel


@dataclass(frozen=True)
class WheelRecord:
    name: str
    version: str
    filename: str
    sha256: str
    size: int
    origin: str  # "downloaded" | "cache" | "built"  (built = from a pure-Python sdist)


@dataclass
class WheelhouseResult:
    wheels: list[WheelRecord]  # everything written into dest
    skipped: list[dict[str, str]]  # [{"name", "version"}] locked pins the image already has
    built: list[WheelRecord]  # subset built from sdist (their sha256 is recorded by the bundle)
    bytes_total: int
    warnings: list[str]
    network_requests: int  # HTTP requests made (0 on a warm rebuild)
    # one per extra in bundle.extras: name, lock (file name), lock_sha256, packages [{name, version}]
    extras: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "wheels": [asdict(w) for w in self.wheels],
            "skipped": self.skipped,
            "built": [asdict(w) for w in self.built],
            "bytes_total": self.bytes_total,
            "warnings": self.warnings,
            "network_requests": self.network_requests,
            "extras": self.extras,
        }


@dataclass
class _Job:
    """Everything the build needs to know about one pin."""

    pin: LockedPin
    key: str
    where: str
    choice: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # the wheel in the cache
    origin: str = "cache"


def pick_file(pin: LockedPin, files: list[IndexFile], tags: TargetTags, where: str) -> IndexFile:
    """The target's best wheel of ``pin`` allowed by the lock's hashes; else its sdist; else an error."""
    wheels: list[tuple[int, str, IndexFile]] = []
    sdists: list[IndexFile] = []
    others: list[str] = []
    for f in files:
        parsed = parse_filename(f.filename)
        if parsed is None or parsed.name != pin.name or str(parsed.version) != pin_version(pin):
            continue
        if parsed.kind == "sdist":
            if f.sha256 is None or f.sha256 in pin.hashes:
                sdists.append(f)
            continue
        rank = tags.best_rank(parsed.tags)
        if rank is None:
            others.append(f.filename)
        else:
            wheels.append((rank, f.filename, f))
    allowed = [w for w in wheels if w[2].sha256 is None or w[2].sha256 in pin.hashes]
    if allowed:
        return min(allowed, key=lambda w: (w[0], w[1]))[2]
    if wheels:
        names = ", ".join(
            f"{w[1]} (sha256 {w[2].sha256})" for w in sorted(wheels, key=lambda w: (w[0], w[1]))[:3]
        )
        raise VerificationError(
            f"hash mismatch: the index's wheels of {pin.key} for the target are not among the "
            f"lock's hashes: {names}",
            where=where,
            fix="if the index's files are trusted, re-lock with `python -m bundler lock`; "
            "otherwise check bundle.index_url",
        )
    if sdists:
        return sorted(sdists, key=lambda f: (not f.filename.endswith(".tar.gz"), f.filename))[0]
    seen = ", ".join(sorted(others)[:6]) + (" …" if len(others) > 6 else "") if others else "none"
    raise BundlerError(
        f"no wheel of {pin.key} for the target {tags.target} ({tags.tags[0]} … {tags.tags[-1]}); "
        f"the index has: {seen}",
        where=where,
        fix=f"pin a version of {pin.name} that ships a wheel for the target (then re-lock), add the "
        "missing manylinux tags to the target profile if the image accepts them, or drop the package",
    )


def pin_version(pin: LockedPin) -> str:
    try:
        return str(Version(pin.version))
    except InvalidVersion:
        return pin.version


class _Fetcher:
    """Fetches into the cache with one progress display; counts requests."""

    def __init__(self, settings: Settings, offline: bool, progress: Progress) -> None:
        self.cache = Cache(settings.path(settings.bundle.cache_dir))
        self.client = IndexClient(settings.bundle.index_url, offline=offline)
        self.index_url = settings.bundle.index_url
        self.offline = offline
        self.progress = progress

    def download(self, job: _Job, f: IndexFile) -> Path:
        task = self.progress.add_task(f"download {f.filename}", total=f.size)

        def advance(n: int, total: int | None) -> None:
            self.progress.update(task, advance=n, total=total)

        tmp, digest, _size = self.client.download(f.url, self.cache.incoming(), advance)
        try:
            verify_download(f.filename, digest, job.pin.hashes, f.url, job.where)
            if f.sha256 is not None and digest != f.sha256:
                verify_download(f.filename, digest, (f.sha256,), f.url, job.where)
        except BundlerError:
            tmp.unlink(missing_ok=True)
            raise
        return self.cache.put(tmp, digest, f.filename)

    def source(self, job: _Job, tags: TargetTags) -> Path:
        """The verified file of the job's choice (wheel or sdist) in the cache, fetched if needed."""
        if job.choice:
            cached = self.cache.get(job.choice["sha256"], job.choice["filename"])
            if cached is not None:
                return cached
            c = job.choice
            try:  # the remembered file: no index page needed
                path = self.download(job, IndexFile(c["filename"], c["url"], c["sha256"], c.get("size")))
            except VerificationError:
                raise
            except BundlerError:
                job.choice = {}  # the remembered URL is gone: ask the index again
                return self.source(job, tags)
            job.origin = "downloaded"
            return path
        f = pick_file(job.pin, self.client.project_files(job.pin.name), tags, job.where)
        job.choice = {
            "name": job.pin.name,
            "version": job.pin.version,
            "kind": "wheel" if f.filename.endswith(".whl") else "sdist",
            "filename": f.filename,
            "url": safe_url(f.url),
            "sha256": f.sha256,
            "size": f.size,
        }
        path = self.download(job, f)
        job.choice["sha256"] = path.parent.name
        job.origin = "downloaded"
        return path

    def built_wheel(self, job: _Job, tags: TargetTags) -> Path:
        """For an sdist choice: the cached built wheel, or build it (verified sdist first)."""
        built = job.choice.get("built")
        if built:
            cached = self.cache.get(built["sha256"], built["filename"])
            if cached is not None:
                return cached
        sdist = self.source(job, tags)
        task = self.progress.add_task(f"build {job.pin.key} from sdist", total=None)
        with tempdirs.temporary(tempdirs.WHEELHOUSE_BUILD) as tmp:
            wheel = build_pure_wheel(
                sdist,
                tmp,
                name=job.pin.name,
                version=job.pin.version,
                index_url=self.index_url,
                offline=self.offline,
            )
            digest = hash_file(wheel)
            stored = self.cache.put_file(wheel, digest)
        self.progress.update(task, total=1, completed=1)
        job.choice["built"] = {"filename": stored.name, "sha256": digest}
        return stored


@dataclass
class _Plan:
    jobs: list[_Job]
    skipped: list[dict[str, str]]
    image: ImageManifest
    marker_env: dict[str, str]
    tags: TargetTags
    warnings: list[str]
    extras: list[dict[str, Any]]


def _plan(settings: Settings, lock: Path) -> _Plan:
    image = load_image(settings.config_dir, settings.target.image)
    parsed = parse_lock(lock)
    check_fresh(parsed, settings.path(settings.bundle.requirements_in))
    check_target(parsed, settings.target.name, settings.target.image, image.sha256)
    asked = extras.resolve(list(settings.bundle.extras), settings.path(settings.bundle.requirements_in), lock)
    locks = [("", parsed)]
    locks += [
        (e.name, extras.load(e, parsed, settings.target.name, settings.target.image, image.sha256))
        for e in asked
    ]
    tags = target_tags(settings.target)
    env = marker_environment(settings.target, image.python)
    jobs: list[_Job] = []
    skipped: list[dict[str, str]] = []
    seen: dict[str, tuple[str, str, LockedPin]] = {}
    shipped: dict[str, list[dict[str, str]]] = {name: [] for name, _ in locks[1:]}
    pins = [(extra, lockf.path, pin) for extra, lockf in locks for pin in lockf.pins]
    for extra, path, pin in pins:
        if not marker_applies(pin.markers, env):
            continue
        where = f"{path}:{pin.line}"
        if extra:
            shipped[extra].append({"name": pin.name, "version": pin.version})
        if pin.name in seen:
            first, first_where, earlier = seen[pin.name]
            if first != extra and earlier.version == pin.version:
                continue  # two extras add the same package at the same version: once is enough
            raise BundlerError(
                f"{pin.name} is pinned twice for the target ({earlier.version} at {first_where} and "
                f"{pin.version})",
                where=where,
                fix="pin one version of it in the requirements files, then re-lock with "
                f"`{extras.lock_command([e.name for e in asked]) if asked else 'python -m bundler lock'}`",
            )
        seen[pin.name] = (extra, where, pin)
        if image.has(pin.name, pin.version) and (
            not settings.bundle.self_contained or image.built_for_image(pin.name)
        ):
            skipped.append({"name": pin.name, "version": pin.version})
            continue
        jobs.append(_Job(pin, choice_key(pin.name, pin.version, pin.hashes, tags.key()), where))
    check_gpu_stack(image, [job.pin for job in jobs], str(lock))
    warnings: list[str] = []
    if image.abi and image.abi != settings.target.abi:
        warnings.append(
            f"target {settings.target.name} is {settings.target.abi} but image manifest "
            f"{settings.target.image} was captured on {image.abi}: check target.image"
        )
    described = [extras.record(name, lockf, shipped[name]) for name, lockf in locks[1:]]
    return _Plan(jobs, sorted(skipped, key=lambda s: s["name"]), image, env, tags, warnings, described)


def check_gpu_stack(image: ImageManifest, pins: list[LockedPin], where: str) -> None:
    """A GPU image's torch build and CUDA libraries come from the image, never from the bundle:
    the index's torch is another build (CPU, or CUDA for another driver) and its nvidia-* wheels
    weigh gigabytes."""
    cuda = image.torch_cuda
    if cuda is None:
        return
    torch = image.get("torch")
    found = [
        f"torch {pin.version} (the image's is the CUDA {cuda} build {torch.version if torch else '?'})"
        for pin in pins
        if pin.name == "torch"
    ]
    found += [f"{pin.name} {pin.version} (a CUDA library)" for pin in pins if is_cuda_library(pin.name)]
    if found:
        raise BundlerError(
            f"the bundle would ship part of the GPU image's CUDA stack: {', '.join(found)}",
            where=where,
            fix="relax requirements.in so the lock keeps the image's torch (and re-lock), or lock "
            "against a manifest of the image you mean to run on",
        )


def _check_offline(jobs: list[_Job], cache: Cache) -> None:
    """With --offline every file must be in the cache: name what is missing, and why."""
    missing: list[str] = []
    mismatched: list[str] = []
    for job in jobs:
        choice = job.choice
        if not choice:
            _checked, mismatch = cached_mismatch(
                cache, job.pin.key, job.pin.name, job.pin.version, job.pin.hashes
            )
            if mismatch:
                mismatched.append(f"{mismatch} (pin at {job.where})")
            else:
                missing.append(f"{job.pin.key} (never fetched for this target)")
            continue
        built = choice.get("built")
        if built and cache.get(built["sha256"], built["filename"]) is not None:
            continue
        if cache.get(choice["sha256"], choice["filename"]) is None:
            missing.append(f"{job.pin.key} ({choice['filename']})")
    if mismatched:
        raise VerificationError(
            "hash mismatch: " + "; ".join(mismatched), where=str(cache.root), fix=HASH_EDITED_FIX
        )
    if missing:
        raise BundlerError(
            f"--offline: {len(missing)} file(s) missing from the cache: " + "; ".join(missing),
            where=str(cache.root),
            fix="run the build once without --offline to fill the cache (same lock and target)",
        )


def _copy_into(source: Path, dest: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        Path(tmp).chmod(0o644)
        Path(tmp).replace(dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_wheelhouse(
    settings: Settings, *, lock: Path, dest: Path, offline: bool = False, allow_clobber: bool = False
) -> WheelhouseResult:
    """Fill ``dest`` with the target wheels of every locked pin the image lacks (see module doc)."""
    plan = _plan(settings, lock)
    jobs, tags = plan.jobs, plan.tags
    progress = progress_display(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with progress:
        fetcher = _Fetcher(settings, offline, progress)
        for job in jobs:
            choice = fetcher.cache.load_choice(job.key) or {}
            # A remembered choice is used only for a file the lock allows (a damaged one is ignored).
            job.choice = choice if choice.get("sha256") in job.pin.hashes else {}
        if offline:
            _check_offline(jobs, fetcher.cache)
        for job in jobs:
            if job.choice.get("kind") != "sdist":
                job.path = fetcher.source(job, tags)
            if job.choice.get("kind") == "sdist":
                job.path, job.origin = fetcher.built_wheel(job, tags), "built"
            # Checked once per file: the cache path is its sha256, re-hashed on every use.
            if job.path is not None and job.choice.get("checked") != job.path.parent.name:
                check_wheel(job.path, name=job.pin.name, version=job.pin.version)
                job.choice["checked"] = job.path.parent.name
            fetcher.cache.save_choice(job.key, job.choice)
    delta = {
        job.pin.name: Installed(job.pin.name, job.pin.version, wheel_requires(job.path), "bundle")
        for job in jobs
        if job.path is not None
    }
    warnings = check_clobber(
        plan.image,
        delta,
        plan.marker_env,
        allow=allow_clobber or settings.bundle.allow_clobber,
        where=str(lock),
    )
    dest.mkdir(parents=True, exist_ok=True)
    records: list[WheelRecord] = []
    for job in jobs:
        if job.path is None:  # every job was fetched or built above
            raise BundlerError(f"internal: {job.pin.key} was not fetched", where=job.where)
        _copy_into(job.path, dest / job.path.name)
        records.append(
            WheelRecord(
                name=job.pin.name,
                version=job.pin.version,
                filename=job.path.name,
                sha256=job.path.parent.name,
                size=job.path.stat().st_size,
                origin=job.origin,
            )
        )
    records.sort(key=lambda r: r.filename)
    return WheelhouseResult(
        wheels=records,
        skipped=plan.skipped,
        built=[r for r in records if r.origin == "built"],
        bytes_total=sum(r.size for r in records),
        warnings=plan.warnings + warnings,
        network_requests=fetcher.client.requests,
        extras=plan.extras,
    )


__all__ = ["WheelRecord", "WheelhouseResult", "build_wheelhouse", "pick_file"]
