"""Temporary directories of the build, named for the process that made them, and their cleanup.

Every temporary directory a build makes is named ``<prefix><pid>-<random>``. A build killed midway
(SIGKILL, power loss) cannot remove its own; the next one removes those whose pid is no longer
running. A directory of a live process (another build running now) is never touched, nor is any
directory whose name carries no pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

# The prefixes used in the system temp directory (swept at the start of every build).
PROJECT_WHEEL = "spectramind-projectwheel-"
WHEELHOUSE_BUILD = "wheelhouse-build-"
SDIST_BUILD = "sdist-build-"
SYSTEM_PREFIXES = (PROJECT_WHEEL, WHEELHOUSE_BUILD, SDIST_BUILD)
# The ones made inside the bundler cache, renamed into place when complete: (folder, prefix).
FILL, STORE, PARTIAL = ".fill-", ".store-", ".partial-"
CACHE_PREFIXES = (("build-deps", FILL), ("project-wheels", STORE), ("site-trees", PARTIAL))


def alive(pid: int) -> bool:
    """Whether a process ``pid`` runs (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(parent: Path | None = None, prefixes: tuple[str, ...] = SYSTEM_PREFIXES) -> list[Path]:
    """Remove ``<prefix><pid>-*`` directories in ``parent`` (default: the system temp dir) of dead pids."""
    folder = Path(parent or tempfile.gettempdir())
    removed: list[Path] = []
    with contextlib.suppress(OSError):
        for entry in sorted(folder.iterdir()):
            pids = [entry.name[len(p) :].split("-", 1)[0] for p in prefixes if entry.name.startswith(p)]
            if not any(pid.isdigit() and not alive(int(pid)) for pid in pids):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


def clean_build_leftovers(cache_dir: Path) -> list[Path]:
    """At the start of a build: remove what builds killed midway left in the temp dir and the cache."""
    removed = clean_stale()
    for folder, prefix in CACHE_PREFIXES:
        removed += clean_stale(cache_dir / folder, (prefix,))
    return removed


def make(prefix: str, parent: Path | None = None) -> Path:
    """A new directory ``<prefix><pid>-<random>`` in ``parent``, after removing dead builds' ones there."""
    clean_stale(parent, (prefix,))
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))


@contextlib.contextmanager
def temporary(prefix: str, parent: Path | None = None) -> Iterator[Path]:
    """`make`, removed again when the block ends."""
    path = make(prefix, parent)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def fresh_out(out: Path, command: str, marker: str) -> None:
    """Make ``--out`` an empty folder for ``command``; a non-empty one is emptied only when it holds
    ``marker`` (the command made it), never a folder of the user's."""
    if out.exists() and any(out.iterdir()):
        if not (out / marker).is_file():
            from bundler.errors import UsageError

            raise UsageError(
                f"--out is not empty and was not made by {command}",
                where=str(out),
                fix="pass an empty or new folder as --out",
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / marker).write_text(f"made by python -m bundler {command}; emptied before each run\n")
