"""The project's own wheel (``spectramind-*.whl``), built with PyPA ``build``: sdist, then wheel from it.

The build is isolated (a fresh build environment, as ``python -m build`` does by default) and does not
depend on this machine's pip configuration: the build requirements (``[build-system] requires``)
come from a local directory under the bundler cache, filled once from ``bundle.index_url``.
It is reproducible: a clean copy of the project is built with ``SOURCE_DATE_EPOCH``, so the same
sources give the same wheel bytes in any checkout. Wheels are cached by a key over the sources,
the build requirements and the epoch, so an unchanged project is not rebuilt; each cache entry
records the wheel's sha256 and is checked against it on every use (a damaged entry is rebuilt).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from bundler import tempdirs
from bundler.errors import BundlerError, UsageError, VerificationError
from bundler.fetch import hash_file, warn_damaged
from bundler.output import console
from bundler.pipenv import pip_env
from bundler.wheelcheck import check_wheel
from spectramind.shim import atomic_write

_SKIP_DIRS = frozenset(
    {"build", "dist", ".eggs", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
)
_TIMEOUT_S = 900.0
_ENTRY = "entry.json"  # a project-wheel cache entry's record: {filename, sha256}
_SUMS = "sha256sums.json"  # the build-requirements folder's record: {filename: sha256}


@dataclass(frozen=True)
class ProjectWheel:
    """The built project wheel as it was put into the wheelhouse."""

    name: str
    version: str
    filename: str
    sha256: str
    size: int
    cached: bool


def build_requires(project_dir: Path) -> list[str]:
    """``[build-system] requires`` of the project (PEP 518 default when absent)."""
    pyproject = project_dir / "pyproject.toml"
    if not pyproject.is_file():
        raise UsageError(
            "the project to bundle has no pyproject.toml",
            where=str(pyproject),
            fix="point bundle.project_dir at the run-side project (src/ in this repo)",
        )
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"pyproject.toml is not valid TOML: {exc}", where=str(pyproject)) from exc
    requires = data.get("build-system", {}).get("requires", ["setuptools>=40.8.0"])
    return sorted(str(r) for r in requires)


def copy_sources(project_dir: Path, dest: Path) -> str:
    """Copy the project (no build outputs or caches) with normalised modes; return a key over it."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(project_dir):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            src = Path(dirpath) / name
            if name.endswith((".pyc", ".pyo")) or not src.is_file():
                continue
            rel = src.relative_to(project_dir).as_posix()
            data = src.read_bytes()
            executable = bool(src.stat().st_mode & 0o100)
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(0o755 if executable else 0o644)
            digest.update(f"{rel}\0{int(executable)}\0{len(data)}\0".encode())
            digest.update(data)
    return digest.hexdigest()


def build_deps_dir(cache_dir: Path, requires: list[str], *, index_url: str, offline: bool) -> Path:
    """A folder of wheels satisfying ``requires`` (filled from ``index_url`` on first use).

    The folder's wheels are checked on every use against the hashes recorded when it was filled
    (wheels put there by hand are recorded on their first use). A mismatch refills it, or is an
    error with ``--offline``.
    """
    key = hashlib.sha256("\n".join(requires).encode()).hexdigest()[:16]
    folder = cache_dir / "build-deps" / key
    if folder.is_dir() and any(folder.glob("*.whl")):
        problem = _check_sums(folder)
        if problem is None:
            return folder
        if offline:
            raise VerificationError(
                f"the cached build requirements of the project do not match the hashes recorded "
                f"when they were stored: {problem}",
                where=str(folder),
                fix="delete that folder and build once without --offline (it is downloaded again)",
            )
        warn_damaged(folder, problem, "downloading again")
    elif offline:
        raise BundlerError(
            f"the build requirements of the project ({', '.join(requires)}) are not in the cache",
            where=str(folder),
            fix="run the build once without --offline, or put their wheels into that folder",
        )
    tmp = tempdirs.make(tempdirs.FILL, _mkdir(folder.parent))
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary", ":all:", "--dest", str(tmp)]
    proc = subprocess.run(
        [*cmd, "--index-url", index_url, *requires],
        env=pip_env(PYTHONHASHSEED="0"),
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BundlerError(
            f"could not download the project's build requirements {requires}: {_tail(proc)}",
            where=index_url,
            fix="check bundle.index_url is reachable, or put the wheels into " + str(folder),
        )
    _write_sums(tmp)
    if folder.exists():
        shutil.rmtree(folder)
    tmp.replace(folder)
    return folder


def _sums(folder: Path) -> dict[str, str]:
    return {p.name: hash_file(p) for p in sorted(folder.glob("*.whl"))}


def _write_sums(folder: Path) -> None:
    atomic_write(folder / _SUMS, json.dumps(_sums(folder), indent=1, sort_keys=True).encode())


def _check_sums(folder: Path) -> str | None:
    """What differs from the recorded hashes (None: all match; no record yet: record them now)."""
    try:
        recorded = json.loads((folder / _SUMS).read_text())
    except FileNotFoundError:
        _write_sums(folder)  # filled by hand: trusted on first use, checked from now on
        return None
    except (ValueError, UnicodeDecodeError):
        return f"its record {_SUMS} is unreadable"
    found = _sums(folder)
    for name in sorted(set(recorded) | set(found)):
        if recorded.get(name) != found.get(name):
            return f"{name}: recorded sha256 {recorded.get(name)}, found {found.get(name)}"
    return None


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _tail(proc: subprocess.CompletedProcess[str], lines: int = 6) -> str:
    text = [ln for ln in (proc.stderr + "\n" + proc.stdout).splitlines() if ln.strip()]
    return " | ".join(text[-lines:]) or f"exit status {proc.returncode}"


def build_project_wheel(
    project_dir: Path,
    dest: Path,
    *,
    cache_dir: Path,
    index_url: str,
    epoch: int,
    offline: bool = False,
    use_cache: bool = True,
) -> ProjectWheel:
    """Build (or reuse) the project wheel, check it, and copy it into ``dest``.

    A cache entry is used only when its wheel still has the sha256 recorded when it was stored;
    otherwise it is rebuilt (which needs no network, so also with ``--offline``).
    """
    requires = build_requires(project_dir)
    deps = build_deps_dir(cache_dir, requires, index_url=index_url, offline=offline)
    with tempdirs.temporary(tempdirs.PROJECT_WHEEL) as tmp:
        source_key = copy_sources(project_dir, tmp / "project")
        deps_key = "".join(sorted(p.name for p in deps.glob("*.whl")))
        key = hashlib.sha256(
            f"{source_key}\n{deps_key}\n{epoch}\n{sys.version_info[:2]}".encode()
        ).hexdigest()[:24]
        cached_dir = cache_dir / "project-wheels" / key
        wheel = _cached(cached_dir) if use_cache else None
        cached = wheel is not None
        if wheel is None:
            console.print(f"building the project wheel from {project_dir.name}/ (sdist -> wheel, isolated)")
            wheel = _run_build(tmp / "project", tmp / "dist", deps, epoch)
            if use_cache:
                _store(wheel, cached_dir)
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(wheel, dest / wheel.name)
        (dest / wheel.name).chmod(0o644)
    data = (dest / wheel.name).read_bytes()
    name, version = wheel.name.split("-")[:2]
    check_wheel(dest / wheel.name, name=name, version=version)
    return ProjectWheel(
        name=name,
        version=version,
        filename=wheel.name,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        cached=cached,
    )


def _cached(folder: Path) -> Path | None:
    """The entry's wheel if it matches the hash recorded when it was stored; a bad entry is removed."""
    if not folder.is_dir():
        return None
    try:
        entry = json.loads((folder / _ENTRY).read_text())
        wheel = folder / Path(str(entry["filename"])).name
        recorded = str(entry["sha256"])
        found = hash_file(wheel) if wheel.is_file() else "no file"
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        problem = f"its record {_ENTRY} is missing or unreadable ({type(exc).__name__})"
    else:
        if found == recorded:
            return wheel
        problem = f"{wheel.name} has sha256 {found}, recorded {recorded}"
    warn_damaged(folder, problem, "rebuilding the project wheel")
    shutil.rmtree(folder, ignore_errors=True)
    return None


def _run_build(source: Path, outdir: Path, deps: Path, epoch: int) -> Path:
    env = pip_env(
        PYTHONHASHSEED="0", SOURCE_DATE_EPOCH=str(epoch), PIP_NO_INDEX="1", PIP_FIND_LINKS=str(deps)
    )
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(outdir), str(source)],
        env=env,
        cwd=source,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        check=False,
    )
    wheels = sorted(outdir.glob("*.whl"))
    if proc.returncode != 0 or len(wheels) != 1:
        raise BundlerError(
            f"building the project wheel failed: {_tail(proc)}",
            where=str(source),
            fix="run `python -m build` in the project directory to see the full output",
        )
    return wheels[0]


def _store(wheel: Path, folder: Path) -> None:
    """Store ``wheel`` as a cache entry with the sha256 it is checked against on every use."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempdirs.make(tempdirs.STORE, folder.parent)
    shutil.copyfile(wheel, tmp / wheel.name)
    record = {"filename": wheel.name, "sha256": hash_file(tmp / wheel.name)}
    atomic_write(tmp / _ENTRY, json.dumps(record, indent=1, sort_keys=True).encode())
    try:
        tmp.replace(folder)
    except OSError:  # another build stored it first
        shutil.rmtree(tmp, ignore_errors=True)
