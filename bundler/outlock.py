"""One build at a time per output: an exclusive lock on a file beside ``--out``.

The lock file is ``<out>.lock`` (``dist/bundle.lock`` for ``dist/bundle``): beside ``--out``, never
inside the bundle, so it is neither packed nor uploaded. It holds the pid of the build that took it
last. The lock is the kernel's (``flock``): it is released when the build ends in any way, SIGKILL
included, so a stale file never blocks the next build.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from bundler.errors import BundlerError


def lock_path(out: Path) -> Path:
    return out.parent / f"{out.name}.lock"


@contextlib.contextmanager
def exclusive(out: Path) -> Iterator[Path]:
    """Hold the lock of ``out`` for the block; refuse at once if another build holds it."""
    path = lock_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise BundlerError(
                f"another build is writing this bundle right now (pid {holder})",
                where=f"{out} (lock {path})",
                fix="wait for that build to finish (or stop it), or build into another --out",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock
