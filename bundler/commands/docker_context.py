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
``nvidia-*`` packages the lock deliberately leaves out. The image runs without torch (the payload's
``predict.mode=fallback``; ``spectramind test`` reports torch as not installed).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bundler.commands.build import git_info, source_date_epoch
from bundler.config import Settings, load
from bundler.errors import BundlerError, UsageError
from bundler.fetch import hash_file
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


def image_pins(pins: list[LockedPin], environment: dict[str, str]) -> tuple[list[LockedPin], list[str]]:
    """The pins the image installs (markers hold, not left out), and the names left out."""
    kept = [p for p in pins if marker_applies(p.markers, environment) and p.name not in LEFT_OUT]
    left = sorted(p.name for p in pins if p.name in LEFT_OUT)
    return kept, left


def requirements_text(pins: list[LockedPin], project: ProjectWheel | None, lock_name: str) -> str:
    """A hash-pinned requirements file: every pin with all its locked hashes, then the project wheel."""
    lines = [f"# {' '.join(PROFILE)}: `python -m bundler docker-context` wrote this from {lock_name}"]
    entries = [(p.key, p.hashes) for p in sorted(pins, key=lambda p: p.name)]
    if project is not None:
        entries.append((f"{project.name}=={project.version}", (project.sha256,)))
    for key, hashes in entries:
        lines.append(" \\\n".join([key, *(f"    --hash=sha256:{h}" for h in sorted(hashes))]))
    return "\n".join(lines) + "\n"


def _download(settings: Settings, requirements: Path, dest: Path) -> None:
    """pip fetches one file per pin for the target's tags and checks each against the lock's hashes.

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
        "--require-hashes",
        "--progress-bar=off",
        f"--index-url={settings.bundle.index_url}",
        f"--python-version={major}.{minor}",
        f"--implementation={settings.target.implementation}",
        f"--abi={settings.target.abi}",
        *(f"--platform={p}" for p in settings.target.platforms),
        f"--dest={dest}",
        f"--requirement={requirements}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=pip_env(), check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise BundlerError(
            f"pip could not fetch the locked wheels for target {settings.target.name}: {tail}",
            where=str(requirements),
            fix="check bundle.index_url and the network; a hash mismatch means the index's file "
            "differs from the lock's (re-lock with `python -m bundler lock` if the index is trusted)",
        )


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


def prepare(settings: Settings, lock_path: Path, out: Path) -> dict[str, Any]:
    """Write the context into a stage beside ``out``, then put it in place (nothing half-written)."""
    lock = parse_lock(lock_path)
    check_fresh(lock, settings.path(settings.bundle.requirements_in))
    image = load_image(settings.config_dir, settings.target.image)
    pins, left_out = image_pins(list(lock.pins), marker_environment(settings.target, image.python))
    _check_out(out, settings.root)
    _commit, commit_time = git_info(settings.root, [settings.bundle.project_dir])
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-stage-"))
    try:
        (stage / WHEELS).mkdir()
        deps = stage / REQUIREMENTS
        deps.write_text(requirements_text(pins, None, lock_path.name))
        with console.status(f"fetching {len(pins)} locked wheels for {settings.target.name} ..."):
            _download(settings, deps, stage / WHEELS)
        pins = _build_sdists(settings, pins, stage / WHEELS)
        s = settings
        project = build_project_wheel(
            s.path(s.bundle.project_dir),
            stage / WHEELS,
            cache_dir=s.path(s.bundle.cache_dir),
            index_url=s.bundle.index_url,
            epoch=source_date_epoch(commit_time),
        )
        deps.write_text(requirements_text(pins, project, lock_path.name))
        old = out.with_name(f".{out.name}-old")
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            out.replace(old)
        stage.replace(out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return {
        "context": str(out),
        "target": settings.target.name,
        "requirements": str(out / REQUIREMENTS),
        "wheels": sorted(p.name for p in (out / WHEELS).glob("*.whl")),
        "project_wheel": project.filename,
        "left_out": {name: LEFT_OUT[name] for name in left_out},
    }


def run(args: argparse.Namespace) -> Result:
    settings = load([*PROFILE, *(args.overrides or [])], args.config_dir)
    lock = Path(args.lock).resolve() if args.lock else settings.path(settings.bundle.lock)
    if not lock.is_file():
        raise UsageError(
            "the lock file does not exist",
            where=str(lock),
            fix="create it with `python -m bundler lock` (or pass --lock PATH)",
        )
    out = Path(args.out).resolve() if args.out else settings.root / "dist" / "docker"
    data = prepare(settings, lock, out)
    return Result(
        command="docker-context",
        data=data,
        title="docker build context ready",
        rows=[
            ("context", str(out)),
            ("target", settings.target.name),
            ("wheels", f"{len(data['wheels'])} (incl. {data['project_wheel']})"),
            ("left out", ", ".join(data["left_out"]) or "(none)"),
            ("next", "docker build -t spectramind-v50 ."),
        ],
    )
