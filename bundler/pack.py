"""Staging, safety checks, MANIFEST.json and the atomic publish of a bundle directory.

A build writes everything into a hidden staging directory beside ``--out`` (same filesystem), checks
it (symlinks, absolute build paths, Kaggle limits), writes MANIFEST.json last, and only then swaps
it onto ``--out`` with one atomic ``renameat2(RENAME_EXCHANGE)``. A build killed at any moment leaves
the previous bundle whole; its leftover staging directory is removed by the next build.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bundler.errors import UsageError, VerificationError
from bundler.tempdirs import alive
from spectramind.shim.base import atomic_write
from spectramind.shim.manifest import MANIFEST_NAME, MANIFEST_SCHEMA, file_entries, seal

if TYPE_CHECKING:
    from bundler.config import Limits

_STAGING = ".staging-"
_RETIRED = ".retired-"
# Directory entries that never belong in a bundle, wherever they appear.
JUNK = frozenset(
    {"__pycache__", ".DS_Store", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".ipynb_checkpoints"}
)


@dataclass(frozen=True)
class Usage:
    """What a staged bundle holds, for the limits check and the summary."""

    top_level: tuple[str, ...]
    files: int
    bytes: int


def new_stage(out: Path, kind: str = "") -> Path:
    """A fresh staging directory beside ``out`` (same filesystem, so the final rename is atomic).

    ``kind`` names a helper directory of the same build (removed like a stage if the build dies).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out)
    prefix = f".{out.name}{_STAGING}{os.getpid()}-" + (f"{kind}-" if kind else "")
    return Path(tempfile.mkdtemp(prefix=prefix, dir=out.parent))


def remove_stale(out: Path) -> list[Path]:
    """Delete staging/retired directories left by builds whose process is gone (killed midway)."""
    removed: list[Path] = []
    if not out.parent.is_dir():
        return removed
    for candidate in sorted(out.parent.glob(f".{out.name}.*-*")):
        tail = candidate.name[len(out.name) + 1 :]
        for marker in (_STAGING, _RETIRED):
            if tail.startswith(marker):
                pid_text = tail[len(marker) :].split("-", 1)[0]
                if not pid_text.isdigit() or alive(int(pid_text)):
                    continue
                if marker == _RETIRED and not out.exists():
                    candidate.rename(out)  # killed between the two renames: restore the old bundle
                    continue
                shutil.rmtree(candidate, ignore_errors=True)
                removed.append(candidate)
    return removed


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def safe_source(path: Path, project_root: Path) -> Path:
    """The real file behind ``path``; a symlink that leaves the project is refused (exit 3)."""
    real = path.resolve()
    if path.is_symlink() and not _inside(real, project_root.resolve()):
        raise VerificationError(
            "a symlink points outside the project; its target would be packed into the bundle",
            where=f"{path} -> {path.readlink()}",
            fix="replace the link with the file itself, or move its target inside the project",
        )
    return real


def copy_file(src: Path, dest: Path, *, project_root: Path, executable: bool = False) -> int:
    """Copy one file into the stage with normalised permissions; returns its size."""
    real = safe_source(src, project_root)
    if not real.is_file():
        raise UsageError(f"not a regular file: {src}", where=str(src), fix="pack files and directories only")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(real, dest)
    dest.chmod(0o755 if executable else 0o644)
    return dest.stat().st_size


def copy_tree(
    src: Path,
    dest: Path,
    *,
    project_root: Path,
    exclude: Callable[[str], bool] = lambda _name: False,
    _parents: frozenset[Path] = frozenset(),
) -> list[str]:
    """Copy a directory tree into the stage (sorted, junk and ``exclude``d names left out).

    Symlinks are followed when they stay inside the project and refused when they leave it; a
    link back to a directory being copied (a loop) is refused too. Returns the copied paths
    relative to ``dest``.
    """
    copied: list[str] = []
    real_root = safe_source(src, project_root)
    if real_root in _parents:
        raise VerificationError(
            "a symlink loops back to a directory that contains it",
            where=str(src),
            fix="remove the link; the bundle cannot hold an infinite tree",
        )
    parents = _parents | {real_root}
    for entry in sorted(real_root.iterdir(), key=lambda p: p.name):
        if entry.name in JUNK or entry.name.endswith((".pyc", ".pyo")) or exclude(entry.name):
            continue
        target = dest / entry.name
        real = safe_source(entry, project_root)
        if real.is_dir():
            inner = copy_tree(entry, target, project_root=project_root, exclude=exclude, _parents=parents)
            copied += [f"{entry.name}/{rel}" for rel in inner]
        elif real.is_file():
            executable = bool(real.stat().st_mode & stat.S_IXUSR)
            copy_file(entry, target, project_root=project_root, executable=executable)
            copied.append(entry.name)
    return copied


def usage(stage: Path) -> Usage:
    files = [p for p in stage.rglob("*") if p.is_file()]
    return Usage(
        top_level=tuple(sorted(p.name for p in stage.iterdir())),
        files=len(files),
        bytes=sum(p.stat().st_size for p in files),
    )


def check_limits(stage: Path, limits: Limits) -> Usage:
    """Kaggle's dataset limits, checked on the stage before anything reaches ``--out`` (exit 3)."""
    used = usage(stage)
    # MANIFEST.json is written after this check and counts against every limit.
    manifest = Usage(used.top_level, used.files, used.bytes + 64 * 1024 + 200 * used.files)
    check_totals(manifest, limits, where=f"{used.files} files staged")
    return used


def check_totals(used: Usage, limits: Limits, *, where: str) -> None:
    """Refuse (exit 3) what would break a limit: top-level entries, files (nested included), bytes."""
    entries = len(used.top_level) + 1  # MANIFEST.json
    if entries > limits.max_top_level_entries:
        raise VerificationError(
            f"the bundle would have {entries} top-level entries; the limit is {limits.max_top_level_entries}",
            where=", ".join(used.top_level),
            fix="group files into directories, or raise bundle.limits.max_top_level_entries",
        )
    if used.files + 1 > limits.max_files:
        raise VerificationError(
            f"the bundle would hold {used.files + 1:,} files (nested included); "
            f"the limit is {limits.max_files:,}",
            where=where,
            fix="pack fewer files (configs/ and weights/ are packed whole), or raise bundle.limits.max_files",
        )
    if used.bytes > limits.max_total_bytes:
        raise VerificationError(
            f"the bundle would be about {used.bytes:,} bytes; the limit is {limits.max_total_bytes:,}",
            where=where,
            fix="drop large weights or wheels (the image may already have them), or raise "
            "bundle.limits.max_total_bytes",
        )


def measure(sources: Iterable[Path], *, project_root: Path, exclude: Callable[[str], bool]) -> Usage:
    """What copying ``sources`` would add, counted before anything is written: files and apparent bytes
    (a sparse file counts at its full size, as the copy would write it), with `copy_tree`'s rules."""
    files = size = 0
    stack = [(src, frozenset[Path]()) for src in sources]
    while stack:
        path, parents = stack.pop()
        real = safe_source(path, project_root)
        if real.is_dir():
            if real in parents:
                continue  # copy_tree refuses the loop with its own message
            for entry in real.iterdir():
                if entry.name in JUNK or entry.name.endswith((".pyc", ".pyo")) or exclude(entry.name):
                    continue
                stack.append((entry, parents | {real}))
        elif real.is_file():
            files += 1
            size += real.stat().st_size
    return Usage((), files, size)


def check_no_build_paths(
    stage: Path,
    needles: Iterable[str],
    *,
    max_bytes: int = 4 * 1024**2,
    skip: Callable[[str], bool] = lambda _rel: False,
) -> None:
    """Refuse text files that mention an absolute path of the build machine (exit 3).

    Binary files (wheels, weights, bytecode) and ``skip``ped paths are left out: the project wheel's
    members are checked separately.
    """
    needles = sorted({n.rstrip("/") for n in needles if len(n.rstrip("/")) > 1}, key=len, reverse=True)
    binary = {".whl", ".pt", ".pth", ".bin", ".npy", ".zip", ".pyc", ".so"}
    for path in sorted(p for p in stage.rglob("*") if p.is_file()):
        if skip(path.relative_to(stage).as_posix()):
            continue
        if path.stat().st_size > max_bytes or path.suffix in binary:
            continue
        raw = path.read_bytes()
        if b"\0" in raw[:8192]:
            continue
        check_text_for_paths(
            raw.decode("utf-8", "replace"), needles, where=path.relative_to(stage).as_posix()
        )


def check_text_for_paths(text: str, needles: Iterable[str], *, where: str) -> None:
    # A whole path component must match: root /app flags "/app/x" but not "/application".
    patterns = [(n, re.compile(re.escape(n) + r"(?![\w.-])")) for n in needles]
    for number, line in enumerate(text.splitlines(), start=1):
        for needle, pattern in patterns:
            if needle in line and pattern.search(line):
                raise VerificationError(
                    "an absolute path of the build machine would be packed into the bundle",
                    where=f"{where}:{number} (mentions {needle})",
                    fix="use paths relative to the project or bundle root (SPECTRAMIND_BUNDLE at run time)",
                )


def check_wheel_for_paths(wheel: Path, needles: Iterable[str], *, where: str) -> None:
    """The same check over the text members of a wheel we built (the project's)."""
    needles = sorted({n.rstrip("/") for n in needles if len(n.rstrip("/")) > 1}, key=len, reverse=True)
    with zipfile.ZipFile(wheel) as zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            raw = zf.read(info)
            if b"\0" not in raw[:8192]:
                check_text_for_paths(
                    raw.decode("utf-8", "replace"), needles, where=f"{where}!{info.filename}"
                )


def set_times(stage: Path, epoch: int) -> None:
    """Give every staged file and directory the same mtime, so archives of the bundle match too."""
    for path in [*stage.rglob("*"), stage]:
        os.utime(path, (epoch, epoch), follow_symlinks=False)


def write_json(path: Path, data: Any) -> None:
    """Write JSON with sorted keys and fixed formatting, atomically."""
    atomic_write(path, (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode())


def write_manifest(stage: Path, fields: dict[str, Any]) -> dict[str, Any]:
    """Hash every staged file and write MANIFEST.json (DESIGN §5); returns the manifest."""
    manifest = seal({**fields, "schema": MANIFEST_SCHEMA, "files": file_entries(stage)})
    write_json(stage / MANIFEST_NAME, manifest)
    return manifest


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def created_iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _looks_like_bundle(path: Path) -> bool:
    return (path / MANIFEST_NAME).is_file() or not any(path.iterdir())


def publish(stage: Path, out: Path) -> None:
    """Put the finished stage at ``out`` atomically; the previous bundle is removed afterwards."""
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink() or not _looks_like_bundle(out):
            raise UsageError(
                "refusing to replace a directory that is not a bundle",
                where=str(out),
                fix="choose an empty or new --out directory (a bundle holds MANIFEST.json)",
            )
        if _exchange(stage, out):
            shutil.rmtree(stage, ignore_errors=True)  # the stage path now holds the old bundle
            return
        # No RENAME_EXCHANGE on this filesystem: two renames; a crash between them leaves the old
        # bundle under the retired name, which is still whole.
        retired = out.parent / f".{out.name}{_RETIRED}{os.getpid()}-{time.time_ns()}"
        out.rename(retired)
        stage.rename(out)
        shutil.rmtree(retired, ignore_errors=True)
        return
    stage.rename(out)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux ``renameat2(RENAME_EXCHANGE)``; False if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))
