"""Find a Python interpreter of a given minor version on the build machine (the target's, for .pyc).

Looked for, in order: the running interpreter, ``pythonX.Y`` on PATH, pyenv's versions, and
``uv python find X.Y`` (never downloading). Each candidate is run once to check its version, so a
pyenv shim that is not selected, or a broken link, is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

from bundler.pipenv import pip_env


@cache
def find_python(minor: str) -> Path | None:
    """An interpreter whose ``X.Y`` is ``minor`` (e.g. "3.11"), or None."""
    for candidate in _candidates(minor):
        if _version_of(candidate) == minor:
            return candidate
    return None


def _candidates(minor: str) -> list[Path]:
    found = [Path(sys.executable)]
    on_path = shutil.which(f"python{minor}")
    if on_path:
        found.append(Path(on_path))
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found += sorted(root.glob(f"versions/{minor}.*/bin/python{minor}"), reverse=True)
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    try:
        proc = subprocess.run(
            [uv, "python", "find", "--no-python-downloads", minor],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=pip_env(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return found
    if proc.returncode == 0 and proc.stdout.strip():
        found.append(Path(proc.stdout.strip()))
    return found


@cache
def _version_of(python: Path) -> str | None:
    full = full_version(python)
    return ".".join(full.split(".")[:2]) if full else None


@cache
def full_version(python: Path) -> str | None:
    """``X.Y.Z`` of ``python`` (its .pyc may differ between patch releases: the cache keys on it), or
    None when it does not run."""
    try:
        proc = subprocess.run(
            [str(python), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None
