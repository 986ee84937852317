"""``python -m bundler lock``: requirements.in -> requirements.lock for the target, image-aware.

Steps: settings -> image manifest -> validate requirements.in -> resolve (uv, for the target's
Python and platform, with hashes) -> compare with the image -> write atomically.

Image awareness, in two passes:

1. every package the image has is *constrained* to the image's version (``name==version``); when
   that resolves, the lock keeps the image's versions wherever the requirements allow, and the
   wheelhouse skips them;
2. if a requirement forces another version, the constraints make the resolution impossible, so
   uv runs again with the image's versions as *preferences* only (chosen first whenever
   compatible); the report names each package that changed, what asked for it, and every image
   package whose Requires-Dist the new version breaks.

Image metadata is authoritative for the image's own versions (``[[dependency-metadata]]`` in
the generated uv config): PyPI's linux ``torch`` wheels declare ``nvidia-*`` CUDA packages (GBs),
but the image's torch (``2.13.0+cpu``) does not need them, and the image's torch is what the
kernel runs. Taking the Requires-Dist the probe recorded inside the image keeps the lock to what
the image really needs. A package locked at a version the image does not have gets its real
metadata from the index, so nothing is hidden where the bundle installs something new.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bundler import config, lockfile, lockreport, resolver, tags
from bundler.errors import BundlerError, UsageError, VerificationError
from bundler.fetch import HASH_EDITED_FIX, Cache, cached_mismatch
from bundler.image import ImageManifest, load_image
from bundler.output import Result, console
from spectramind.config import TargetProfile
from spectramind.shim import atomic_write

HEADER = "# spectramind-lock: requirements-in-sha256={req} target={target} image={image} image-sha256={sha}"


def header_line(requirements_sha256: str, target: TargetProfile, image: ImageManifest) -> str:
    """The first line of every lock (contract shared with the wheelhouse: COMMON.md).

    ``image=`` is the manifest's file name as the target names it (``target.image``), which is what
    the build compares; the ``name`` inside a renamed capture may differ.
    """
    return HEADER.format(req=requirements_sha256, target=target.name, image=target.image, sha=image.sha256)


def validate_requirements(path: Path) -> list[str]:
    """Parse requirements.in up front so a bad line is reported as ``file:line``, not by uv."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise UsageError(
            "requirements.in not found",
            where=str(path),
            fix="create it, or point at it with --in PATH (or bundle.requirements_in=PATH)",
        ) from exc
    except UnicodeDecodeError as exc:
        raise BundlerError(
            "requirements.in is not UTF-8 text", where=str(path), fix="re-save it as UTF-8"
        ) from exc
    names: list[str] = []
    pending = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = (pending + " " + raw.split(" #", 1)[0]).strip() if pending else raw.split(" #", 1)[0].strip()
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        pending = ""
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            flag = line.replace("=", " ").split()[0]
            if flag not in lockfile.INCLUDE_OPTIONS:  # index options belong in bundle.index_url
                raise BundlerError(
                    f"malformed requirements.in: option {flag!r} is not supported here",
                    where=f"{path}:{number}",
                    fix="keep only requirements (and -r/-c includes); set the index with bundle.index_url",
                )
            continue
        try:
            names.append(str(canonicalize_name(Requirement(line).name)))
        except InvalidRequirement as exc:
            raise BundlerError(
                f"malformed requirements.in: {line!r} is not a PEP 508 requirement ({exc})",
                where=f"{path}:{number}",
                fix="write one requirement per line, e.g. numpy>=1.26 or hydra-core>=1.3,<2",
            ) from exc
    return names


def _public(version: str) -> str | None:
    try:
        return Version(version).public  # the image's 2.13.0+cpu is published as 2.13.0
    except InvalidVersion:
        return None


def _valid(requires: tuple[str, ...]) -> list[str]:
    """Requires-Dist lines uv can parse (a captured image may hold a legacy, unparsable one)."""
    out = []
    for line in requires:
        try:
            Requirement(line)
        except InvalidRequirement:
            continue
        out.append(line)
    return out


def _image_inputs(image: ImageManifest) -> tuple[tuple[str, ...], tuple[resolver.StaticMetadata, ...]]:
    pins: list[str] = []
    metadata: list[resolver.StaticMetadata] = []
    for dist in image.distributions.values():
        public = _public(dist.version)
        if public is None:
            continue
        pins.append(f"{dist.name}=={public}")
        metadata.append(resolver.StaticMetadata(dist.name, public, tuple(_valid(dist.requires))))
    return tuple(sorted(pins)), tuple(sorted(metadata, key=lambda m: m.name.lower()))


def _python_version(settings: config.Settings, image: ImageManifest) -> str:
    major, minor = tags.python_version(settings.target)
    if not image.python.startswith(f"{major}.{minor}"):
        raise UsageError(
            f"target '{settings.target.name}' is Python {major}.{minor} but image manifest "
            f"'{image.name}' was captured on Python {image.python}",
            where=f"configs/target/{settings.target.name}.yaml (image: {image.name})",
            fix="point the target at a manifest captured in that image, or fix target.python",
        )
    return image.python


def _safe_url(url: str) -> str:
    """The index URL without user:password (a private index may carry a token)."""
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path}" if sep else url


def _check(out: Path, req_in: Path, settings: config.Settings, image: ImageManifest) -> Result:
    """Fresh against requirements.in, target and image; hashes against the files the cache holds.

    Offline, a pin's hashes can be checked only against a file fetched for it before; pins never
    fetched on this machine are reported as unchecked (the build checks every download).
    """
    lock = lockfile.parse_lock(out)
    lockfile.check_fresh(lock, req_in)
    lockfile.check_target(lock, settings.target.name, settings.target.image, image.sha256)
    cache = Cache(settings.path(settings.bundle.cache_dir))
    checked: list[str] = []
    unchecked: list[str] = []
    mismatched: list[str] = []
    for pin in lock.pins:
        seen, mismatch = cached_mismatch(cache, pin.key, pin.name, pin.version, pin.hashes)
        (checked if seen else unchecked).append(pin.key)
        if mismatch:
            mismatched.append(f"{mismatch} (line {pin.line})")
    if mismatched:
        raise VerificationError(
            f"hash mismatch in the lock: {'; '.join(mismatched)}", where=str(out), fix=HASH_EDITED_FIX
        )
    return Result(
        command="lock",
        data={
            "lock": str(out),
            "up_to_date": True,
            "written": False,
            "pins": len(lock.pins),
            "hashes_checked": checked,
            "hashes_unchecked": unchecked,
        },
        title="lock is up to date",
        rows=[
            ("lock", str(out)),
            ("target", settings.target.name),
            ("image", image.name),
            ("hashes", f"{len(checked)} match cached files, {len(unchecked)} unchecked (never fetched here)"),
        ],
    )


def run(args: argparse.Namespace) -> Result:
    started = time.monotonic()
    settings = config.load(list(args.overrides or []), args.config_dir)
    req_in = Path(args.req_in).resolve() if args.req_in else settings.path(settings.bundle.requirements_in)
    out = Path(args.out).resolve() if args.out else settings.path(settings.bundle.lock)
    image = load_image(settings.config_dir, settings.target.image)
    if args.check:
        return _check(out, req_in, settings, image)

    validate_requirements(req_in)
    python = _python_version(settings, image)
    platform = resolver.uv_platform(settings.target)
    pins, metadata = _image_inputs(image)
    request = resolver.ResolveRequest(
        requirements=req_in,
        python_version=python,
        python_platform=platform,
        index_url=settings.bundle.index_url,
        cache_dir=settings.path(settings.bundle.cache_dir) / "uv",
        constraints=pins,
        preferences=pins,
        metadata=metadata,
        constraint_label=f"image {image.name}",
        compile_command=f"python -m bundler lock target={settings.target.name}",
    )
    console.print(f"lock: resolving {req_in.name} for python {python} on {platform} (image {image.name})")
    strategy = "image-constrained"
    try:
        resolution = resolver.resolve(request)
    except resolver.ResolutionError as error:
        if error.kind != "conflict":
            raise
        # A requirement needs another version than the image has: resolve with preferences only.
        console.print("lock: the image's versions cannot all be kept; resolving with them as preferences")
        strategy = "image-preferred"
        resolution = resolver.resolve(dataclasses.replace(request, constraints=()))

    env = tags.marker_environment(settings.target, python)
    report = lockreport.analyse(image, resolution.pins, resolution.via, env)
    req_sha = lockfile.requirements_sha256(req_in)
    uv_version = resolver.uv_version()
    text = (
        header_line(req_sha, settings.target, image)
        + f"\n# resolved by uv {uv_version} for python {python} on {platform}; "
        + f"image packages kept: {len(report.kept)}, changed: {len(report.deviations)}\n"
        + resolution.text
    )
    atomic_write(out, text.encode())

    pins_json = [{"name": n, "version": v} for n, v in sorted(resolution.pins.items())]
    return Result(
        command="lock",
        data={
            "lock": str(out),
            "written": True,
            "requirements_in": str(req_in),
            "requirements_in_sha256": req_sha,
            "target": settings.target.name,
            "python": python,
            "platform": platform,
            "image": image.name,
            "image_sha256": image.sha256,
            "index_url": _safe_url(settings.bundle.index_url),
            "strategy": strategy,
            "uv": uv_version,
            "pins": pins_json,
            "count": len(pins_json),
            "report": report.to_json(),
            "elapsed_s": round(time.monotonic() - started, 3),
        },
        title="requirements.lock written",
        rows=[
            ("lock", str(out)),
            ("target", f"{settings.target.name} (python {python}, {platform})"),
            ("image", image.name),
            ("pins", str(len(pins_json))),
            ("kept at image version", str(len(report.kept))),
            ("added (not in image)", str(len(report.added))),
            ("changed from image", ", ".join(d.name for d in report.deviations) or "none"),
            ("image packages broken", ", ".join(sorted({c.package for c in report.casualties})) or "none"),
        ],
        messages=report.messages(),
    )
