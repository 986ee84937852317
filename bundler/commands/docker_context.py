"""``python -m bundler docker-context``: what the Dockerfile installs, prepared so it installs offline.

Writes ``--out`` (default ``dist/docker``), which the Dockerfile bind-mounts while it installs:

- ``wheels/``: the project wheel and, for the docker profile's target (CPython 3.12, manylinux
  x86_64), a wheel of every locked pin, fetched by pip with the lock's hashes checked; a pin the
  lock has only as an sdist (antlr4-python3-runtime) is built here into a pure wheel, as the
  bundle build does, so the image builds nothing;
- ``requirements.txt``: those pins with the lock's hashes (a wheel built here: its own sha256), and
  the project wheel pinned by its sha256, so ``pip install --no-index --require-hashes`` checks
  every file it installs.

The lock's pins are used as they are (its hashes cover every file of each pinned version), except
``torch``: the lock keeps the Kaggle image's torch, whose index wheels are CUDA builds that need
``nvidia-*`` packages the lock deliberately leaves out. By default the image runs without torch (the
payload's ``predict.mode=fallback``; ``spectramind test`` reports torch as not installed).

With ``--torch-index URL`` (the CPU index, https://download.pytorch.org/whl/cpu) the context also
holds ``torch==<the lock's version>+cpu`` for the target, fetched by pip from that index alone,
which checks the file against the sha256 the index publishes. The lock cannot vouch for that file,
so requirements.txt pins it by the sha256 taken at context time (trust on first use of the index)
and says so; its ``Requires-Dist`` for the target must all be pins of the lock, at versions they
accept, so the image still installs nothing the lock does not pin.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from bundler.clobber import wheel_requires
from bundler.commands.build import git_info, lock_path, source_date_epoch
from bundler.config import Settings, load
from bundler.errors import BundlerError, UsageError, VerificationError
from bundler.fetch import hash_file, safe_url
from bundler.image import load_image
from bundler.lockfile import LockedPin, check_fresh, parse_lock
from bundler.output import Result, console
from bundler.pipenv import pip_env
from bundler.projectwheel import ProjectWheel, build_project_wheel
from bundler.sdist import build_pure_wheel
from bundler.tags import marker_applies, marker_environment, parse_filename, python_version

# The docker profile on the image's interpreter: the Dockerfile's CMD passes the same (a test checks).
PROFILE = ("env=docker", "target=kaggle-cp312")
REQUIREMENTS = "requirements.txt"
WHEELS = "wheels"
# Locked pins the image does not install, and why (see the module doc).
LEFT_OUT = {"torch": "the lock's torch wheels are CUDA builds whose nvidia-* dependencies it does not pin"}
TORCH = "torch"
CPU_BUILD = "cpu"  # the local version label of the CPU index's builds: torch==2.13.0+cpu
# pip's words for a file that does not match the hash it was checked against.
_HASH_MISMATCH = "DO NOT MATCH THE HASHES"


def image_pins(pins: list[LockedPin], environment: dict[str, str]) -> tuple[list[LockedPin], list[str]]:
    """The pins the image installs (markers hold, not left out), and the names left out."""
    kept = [p for p in pins if marker_applies(p.markers, environment) and p.name not in LEFT_OUT]
    left = sorted(p.name for p in pins if p.name in LEFT_OUT)
    return kept, left


def requirements_text(
    pins: list[LockedPin],
    project: ProjectWheel | None,
    lock_name: str,
    notes: Mapping[str, str] | None = None,
) -> str:
    """A hash-pinned requirements file: every pin with all its hashes, then the project wheel.

    ``notes`` puts a comment line above a pin (by name): where a pin not taken from the lock came from.
    """
    lines = [f"# {' '.join(PROFILE)}: `python -m bundler docker-context` wrote this from {lock_name}"]
    entries = [(p.name, p.key, p.hashes) for p in sorted(pins, key=lambda p: p.name)]
    if project is not None:
        entries.append((project.name, f"{project.name}=={project.version}", (project.sha256,)))
    for name, key, hashes in entries:
        if notes and name in notes:
            lines.append(f"# {notes[name]}")
        lines.append(" \\\n".join([key, *(f"    --hash=sha256:{h}" for h in sorted(hashes))]))
    return "\n".join(lines) + "\n"


@dataclasses.dataclass(frozen=True)
class IndexWheel:
    """A wheel pinned by the sha256 its index published at context time, not by the lock."""

    pin: LockedPin  # the index's version (``2.13.0+cpu``) and the one sha256 of the fetched file
    filename: str
    index: str  # the index URL, credentials removed

    def note(self) -> str:
        """The requirements.txt comment above the pin."""
        return (
            f"{self.pin.key}: from {self.index}, pinned by the sha256 that index published when this "
            "context was made (trust on first use of the index, not the lock)"
        )

    def record(self) -> dict[str, str]:
        """The result's account of it."""
        return {
            "version": self.pin.version,
            "wheel": self.filename,
            "sha256": self.pin.hashes[0],
            "index": self.index,
            "hash_source": "the index at context time (trust on first use of the index), not the lock",
        }


def cpu_version(locked: str) -> str:
    """The CPU index's version of a locked torch version: ``2.13.0`` -> ``2.13.0+cpu``."""
    return f"{Version(locked).public}+{CPU_BUILD}"


def uncovered(requires: tuple[str, ...], pins: list[LockedPin], environment: dict[str, str]) -> list[str]:
    """The ``Requires-Dist`` (those whose markers hold on the target) that ``pins`` do not satisfy."""
    locked = {canonicalize_name(p.name): p.version for p in pins}
    problems: list[str] = []
    for text in requires:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            problems.append(f"{text!r} (not a valid requirement)")
            continue
        if not marker_applies(req.marker, environment):
            continue
        version = locked.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{req.name} (the lock does not pin it)")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}{req.specifier} (the lock pins {version})")
    return problems


def _download(
    settings: Settings, dest: Path, *, index_url: str, args: list[str], what: str, where: str
) -> None:
    """pip fetches ``args`` (a hash-pinned requirements file, or one requirement) from ``index_url``
    alone, one file each, for the target's tags, checking each file's hash.

    ``--no-deps`` lets pip take a pin's sdist when the lock allows no wheel (with a target other than
    this interpreter, pip otherwise insists on wheels only); the lock is complete, so none is missed.
    """
    major, minor = python_version(settings.target)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--progress-bar=off",
        f"--index-url={index_url}",
        f"--python-version={major}.{minor}",
        f"--implementation={settings.target.implementation}",
        f"--abi={settings.target.abi}",
        *(f"--platform={p}" for p in settings.target.platforms),
        f"--dest={dest}",
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=pip_env(), check=False)
    if proc.returncode == 0:
        return
    tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
    if _HASH_MISMATCH in proc.stderr + proc.stdout:
        raise VerificationError(
            f"a file pip fetched for {what} does not match its expected sha256: {tail}",
            where=where,
            fix="do not use that file: the index serves one that differs from the sha256 it was checked "
            "against (the lock's; for torch, the one its index publishes); if the index is trusted "
            "and the lock is outdated, re-lock with `python -m bundler lock`",
        )
    raise BundlerError(
        f"pip could not fetch {what} for target {settings.target.name}: {tail}",
        where=where,
        fix="check the network and the index: bundle.index_url for the lock's pins, "
        "--torch-index (https://download.pytorch.org/whl/cpu) for torch",
    )


def fetch_torch(
    settings: Settings,
    index_url: str,
    *,
    locked: LockedPin,
    pins: list[LockedPin],
    environment: dict[str, str],
    wheels: Path,
) -> IndexWheel:
    """The CPU build of the lock's torch version from ``index_url`` (its published sha256 checked by
    pip), into ``wheels``; its Requires-Dist for the target must be covered by ``pins``."""
    index = safe_url(index_url)
    pin = dataclasses.replace(locked, version=cpu_version(locked.version))
    _download(
        settings,
        wheels,
        index_url=index_url,
        args=["--only-binary=:all:", pin.key],
        what=f"{pin.key} from {index}",
        where=index,
    )
    [wheel] = [f for f in wheels.iterdir() if f.name.endswith(".whl") and _names(f, locked)]
    problems = uncovered(wheel_requires(wheel), pins, environment)
    if problems:
        raise BundlerError(
            f"{pin.key} from {index} requires what the lock does not provide for the image: "
            + ", ".join(problems),
            where=wheel.name,
            fix="add these requirements to requirements.in and re-lock with `python -m bundler lock`",
        )
    return IndexWheel(dataclasses.replace(pin, hashes=(hash_file(wheel),)), wheel.name, index)


def _build_sdists(settings: Settings, pins: list[LockedPin], wheels: Path) -> list[LockedPin]:
    """Replace each fetched (hash-checked) sdist by the pure wheel built from it; pin that wheel."""
    out: list[LockedPin] = []
    for pin in pins:
        sdists = [f for f in wheels.iterdir() if not f.name.endswith(".whl") and _names(f, pin)]
        if not sdists:
            out.append(pin)
            continue
        wheel = build_pure_wheel(
            sdists[0],
            wheels,
            name=pin.name,
            version=pin.version,
            index_url=settings.bundle.index_url,
            offline=False,
        )
        sdists[0].unlink()
        out.append(dataclasses.replace(pin, hashes=(hash_file(wheel),)))
    return out


def _names(path: Path, pin: LockedPin) -> bool:
    parsed = parse_filename(path.name)
    return parsed is not None and parsed.name == pin.name


def _check_out(out: Path, root: Path) -> None:
    """``out`` is replaced whole: refuse anything but a previous context (or nothing, or an empty folder)."""
    if not out.exists() and not out.is_symlink():
        return
    marker = out / REQUIREMENTS
    ours = marker.is_file() and "python -m bundler docker-context" in marker.read_text().partition("\n")[0]
    if root.is_relative_to(out) or not out.is_dir() or not (ours or not any(out.iterdir())):
        raise UsageError(
            "--out is not a docker context this command wrote, and it would be replaced",
            where=str(out),
            fix="pass a new or empty folder, or a previous context (default dist/docker)",
        )


def _torch_pin(pins: list[LockedPin], environment: dict[str, str], lock_path: Path) -> LockedPin:
    found = [p for p in pins if p.name == TORCH and marker_applies(p.markers, environment)]
    if not found:
        raise UsageError(
            "--torch-index was given, but the lock pins no torch for the image",
            where=str(lock_path),
            fix="leave out --torch-index, or add torch to requirements.in and re-lock",
        )
    return found[0]


def prepare(settings: Settings, lock_path: Path, out: Path, torch_index: str | None = None) -> dict[str, Any]:
    """Write the context into a stage beside ``out``, then put it in place (nothing half-written)."""
    lock = parse_lock(lock_path)
    check_fresh(lock, settings.path(settings.bundle.requirements_in))
    image = load_image(settings.config_dir, settings.target.image)
    environment = marker_environment(settings.target, image.python)
    pins, left_out = image_pins(list(lock.pins), environment)
    torch_pin = _torch_pin(list(lock.pins), environment, lock_path) if torch_index else None
    _check_out(out, settings.root)
    _commit, commit_time = git_info(settings.root, [settings.bundle.project_dir])
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-stage-"))
    try:
        (stage / WHEELS).mkdir()
        torch: IndexWheel | None = None
        if torch_index and torch_pin:
            with console.status(f"fetching torch's CPU build from {safe_url(torch_index)} ..."):
                torch = fetch_torch(
                    settings,
                    torch_index,
                    locked=torch_pin,
                    pins=pins,
                    environment=environment,
                    wheels=stage / WHEELS,
                )
            left_out.remove(TORCH)
        deps = stage / REQUIREMENTS
        deps.write_text(requirements_text(pins, None, lock_path.name))
        with console.status(f"fetching {len(pins)} locked wheels for {settings.target.name} ..."):
            _download(
                settings,
                stage / WHEELS,
                index_url=settings.bundle.index_url,
                args=["--require-hashes", f"--requirement={deps}"],
                what="the locked wheels",
                where=str(deps),
            )
        pins = _build_sdists(settings, pins, stage / WHEELS)
        s = settings
        project = build_project_wheel(
            s.path(s.bundle.project_dir),
            stage / WHEELS,
            cache_dir=s.path(s.bundle.cache_dir),
            index_url=s.bundle.index_url,
            epoch=source_date_epoch(commit_time),
        )
        notes = {TORCH: torch.note()} if torch else None
        deps.write_text(
            requirements_text([*pins, *([torch.pin] if torch else [])], project, lock_path.name, notes)
        )
        old = out.with_name(f".{out.name}-old")
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            out.replace(old)
        stage.replace(out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    data: dict[str, Any] = {
        "context": str(out),
        "target": settings.target.name,
        "requirements": str(out / REQUIREMENTS),
        "wheels": sorted(p.name for p in (out / WHEELS).glob("*.whl")),
        "project_wheel": project.filename,
        "left_out": {name: LEFT_OUT[name] for name in left_out},
    }
    if torch:
        data["torch"] = torch.record()
    return data


def run(args: argparse.Namespace) -> Result:
    settings = load([*PROFILE, *(args.overrides or [])], args.config_dir)
    lock = lock_path(args, settings)
    out = Path(args.out).resolve() if args.out else settings.root / "dist" / "docker"
    data = prepare(settings, lock, out, args.torch_index)
    torch = data.get("torch")
    return Result(
        command="docker-context",
        data=data,
        title="docker build context ready",
        rows=[
            ("context", str(out)),
            ("target", settings.target.name),
            ("wheels", f"{len(data['wheels'])} (incl. {data['project_wheel']})"),
            ("left out", ", ".join(data["left_out"]) or "(none)"),
            *(
                [("torch", f"{torch['version']} from {torch['index']} (sha256 from that index)")]
                if torch
                else []
            ),
            ("next", "docker build -t spectramind-v50 ."),
        ],
    )
