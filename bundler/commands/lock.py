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

Extras (``bundle.extras=[NAME]``, see `bundler.extras`): each ``requirements-NAME.in`` is resolved
with every pin of the base lock as a hard constraint (the image's other versions as above), and
``requirements-NAME.lock`` keeps only the pins it adds. An up-to-date base lock is kept as it is.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bundler import config, extras, lockfile, lockreport, resolver, tags
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


def _check(
    out: Path, req_in: Path, settings: config.Settings, image: ImageManifest, asked: tuple[extras.Extra, ...]
) -> Result:
    """Fresh against requirements.in, target and image; hashes against the files the cache holds.

    Offline, a pin's hashes can be checked only against a file fetched for it before; pins never
    fetched on this machine are reported as unchecked (the build checks every download).
    """
    lock = _fresh_base(out, req_in, settings, image)
    extra_locks = [
        extras.load(e, lock, settings.target.name, settings.target.image, image.sha256) for e in asked
    ]
    cache = Cache(settings.path(settings.bundle.cache_dir))
    checked: list[str] = []
    unchecked: list[str] = []
    mismatched: list[str] = []
    for parsed in (lock, *extra_locks):
        for pin in parsed.pins:
            seen, mismatch = cached_mismatch(cache, pin.key, pin.name, pin.version, pin.hashes)
            (checked if seen else unchecked).append(pin.key)
            if mismatch:
                mismatched.append(f"{mismatch} ({parsed.path.name} line {pin.line})")
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
            "extras": [
                {"name": e.name, "lock": str(e.lock), "pins": len(x.pins)}
                for e, x in zip(asked, extra_locks, strict=True)
            ],
            "hashes_checked": checked,
            "hashes_unchecked": unchecked,
        },
        title="lock is up to date",
        rows=[
            ("lock", str(out)),
            ("target", settings.target.name),
            ("image", image.name),
            ("extras", ", ".join(e.name for e in asked) or "none"),
            ("hashes", f"{len(checked)} match cached files, {len(unchecked)} unchecked (never fetched here)"),
        ],
    )


def _fresh_base(out: Path, req_in: Path, settings: config.Settings, image: ImageManifest) -> lockfile.Lock:
    lock = lockfile.parse_lock(out)
    lockfile.check_fresh(lock, req_in)
    lockfile.check_target(lock, settings.target.name, settings.target.image, image.sha256)
    return lock


def _resolve(request: resolver.ResolveRequest, preferred: tuple[str, ...]) -> tuple[resolver.Resolution, str]:
    """Resolve with the image's versions as constraints; if that conflicts, as preferences only.

    ``preferred``: the constraints dropped in the second pass (the image's pins); the others stay hard.
    """
    try:
        return resolver.resolve(request), "image-constrained"
    except resolver.ResolutionError as error:
        if error.kind != "conflict" or not preferred:
            raise
    # A requirement needs another version than the image has: resolve with preferences only.
    console.print("lock: the image's versions cannot all be kept; resolving with them as preferences")
    hard = tuple(c for c in request.constraints if c not in preferred)
    return resolver.resolve(dataclasses.replace(request, constraints=hard)), "image-preferred"


def run(args: argparse.Namespace) -> Result:
    started = time.monotonic()
    settings = config.load(list(args.overrides or []), args.config_dir)
    req_in = Path(args.req_in).resolve() if args.req_in else settings.path(settings.bundle.requirements_in)
    out = Path(args.out).resolve() if args.out else settings.path(settings.bundle.lock)
    image = load_image(settings.config_dir, settings.target.image)
    asked = extras.resolve(list(settings.bundle.extras), req_in, out)
    if args.check:
        return _check(out, req_in, settings, image, asked)
    if asked and _is_fresh(out, req_in, settings, image):
        # extras extend the base lock: kept when it is up to date, so that locking an extra never moves it
        return _lock_extras(
            settings, image, lockfile.parse_lock(out), asked, started=started, base_result=None
        )
    result = _lock_base(settings, image, req_in, out, started)
    if not asked:
        return result
    return _lock_extras(settings, image, lockfile.parse_lock(out), asked, started=started, base_result=result)


def _is_fresh(out: Path, req_in: Path, settings: config.Settings, image: ImageManifest) -> bool:
    try:
        _fresh_base(out, req_in, settings, image)
    except BundlerError:
        return False
    return True


def _lock_base(
    settings: config.Settings, image: ImageManifest, req_in: Path, out: Path, started: float
) -> Result:
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
    resolution, strategy = _resolve(request, pins)

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


def _lock_extras(
    settings: config.Settings,
    image: ImageManifest,
    base: lockfile.Lock,
    asked: tuple[extras.Extra, ...],
    *,
    started: float,
    base_result: Result | None,
) -> Result:
    """Lock each extra against ``base``; ``base_result`` is the base's when it was just (re-)locked."""
    locked = [_lock_extra(settings, image, base, extra) for extra in asked]
    data: dict[str, Any] = (
        dict(base_result.data) if base_result else {"lock": str(base.path), "written": False}
    )
    data["extras"] = [item for item, _ in locked]
    data["elapsed_s"] = round(time.monotonic() - started, 3)
    rows = list(base_result.rows) if base_result else [("lock", f"{base.path} (up to date, kept)")]
    rows += [
        (
            f"extra {item['name']}",
            f"{item['lock']}: adds {', '.join(p['name'] for p in item['pins']) or 'nothing'}",
        )
        for item, _ in locked
    ]
    messages = list(base_result.messages) if base_result else []
    return Result(
        command="lock",
        data=data,
        title=f"{'requirements.lock and ' if base_result else ''}extra locks written",
        rows=rows,
        messages=messages + [m for _, report in locked for m in report],
    )


def _lock_extra(
    settings: config.Settings, image: ImageManifest, base: lockfile.Lock, extra: extras.Extra
) -> tuple[dict[str, Any], list[str]]:
    """Resolve one extra with every base pin as a hard constraint; write the pins it adds."""
    validate_requirements(extra.requirements_in)
    python = _python_version(settings, image)
    platform = resolver.uv_platform(settings.target)
    image_pins, metadata = _image_inputs(image)
    base_pins = {pin.name: pin.version for pin in base.pins}
    own = tuple(sorted(f"{name}=={version}" for name, version in base_pins.items()))
    others = tuple(p for p in image_pins if str(canonicalize_name(p.split("==")[0])) not in base_pins)
    request = resolver.ResolveRequest(
        requirements=extra.requirements_in,
        python_version=python,
        python_platform=platform,
        index_url=settings.bundle.index_url,
        cache_dir=settings.path(settings.bundle.cache_dir) / "uv",
        constraints=own + others,
        preferences=others,
        metadata=metadata,
        constraint_label=f"{base.path.name} and image {image.name}",
        compile_command=f"python -m bundler lock target={settings.target.name} bundle.extras=[{extra.name}]",
    )
    console.print(
        f"lock: resolving extra '{extra.name}' ({extra.requirements_in.name}) against {base.path.name}"
    )
    resolution, strategy = _resolve(request, others)
    added = {name: version for name, version in resolution.pins.items() if name not in base_pins}
    report = lockreport.analyse(
        image, added, resolution.via, tags.marker_environment(settings.target, python)
    )
    text = (
        header_line(lockfile.requirements_sha256(extra.requirements_in), settings.target, image)
        + f" extra={extra.name} base-lock-sha256={base.sha256}"
        + f"\n# resolved by uv {resolver.uv_version()} for python {python} on {platform} against "
        + f"{base.path.name}; the packages extra '{extra.name}' adds to it\n"
        + lockfile.drop_pins(resolution.text, set(base_pins))
    )
    atomic_write(extra.lock, text.encode())
    item = {
        "name": extra.name,
        "lock": str(extra.lock),
        "strategy": strategy,
        "pins": [{"name": n, "version": v} for n, v in sorted(added.items())],
        "report": report.to_json(),
    }
    return item, report.messages()
