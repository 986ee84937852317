"""The delta, installed at build time (``site/``): every delta wheel installed once, on this machine.

Each wheel (already hash-checked against the lock) is installed with PyPA's ``installer`` into its
own tree, with ``.pyc`` compiled for the *target* Python (``--invalidation-mode unchecked-hash``:
deterministic, no mtimes) by an interpreter of the target's minor version found here. The tree is
cached content-addressed by (wheel sha256, compiling interpreter, layout) and verified against its
own file list on every use. `merge_trees` then copies the trees into ``site/`` of the stage:

    site/lib/      purelib and platlib: the one import directory boot puts on sys.path
    site/bin/      scripts, shebang ``#!python`` (boot writes the kernel's interpreter there)
    site/data/     the wheels' data files
    site/include/  headers, one folder per distribution

RECORD and INSTALLER are kept, so ``importlib.metadata`` and ``pip list`` see every distribution.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bundler import tempdirs
from bundler.errors import BundlerError, VerificationError
from bundler.fetch import warn_damaged
from spectramind.shim.manifest import file_entries, file_sha256
from spectramind.shim.verify import scan

LAYOUT = 1  # bump when the tree layout or the compile options change: old cache entries then miss
INSTALLER_NAME = b"spectramind-bundler\n"
_FILES = "files.json"


@dataclass(frozen=True)
class Pyc:
    """How bytecode is compiled: by ``python`` (full version ``version``), or not at all (None)."""

    python: Path | None
    version: str | None
    reason: str = ""

    @property
    def key(self) -> str:
        return f"cpython-{self.version}" if self.version else "nopyc"

    def manifest(self) -> dict[str, str | None]:
        if self.python is None:
            return {"mode": "none", "python": None, "reason": self.reason}
        return {"mode": "unchecked-hash", "python": self.version, "reason": None}


@dataclass(frozen=True)
class Installed:
    name: str
    version: str
    sha256: str  # the wheel's
    files: int
    bytes: int
    cached: bool
    tree: Path


def install_wheel(wheel: Path, dest: Path, *, name: str) -> None:
    """Install ``wheel`` into the ``site/`` layout under ``dest`` (nothing compiled here)."""
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.exceptions import InstallerError
    from installer.sources import WheelFile

    scheme = {
        "purelib": dest / "lib",
        "platlib": dest / "lib",
        "scripts": dest / "bin",
        "data": dest / "data",
        "headers": dest / "include" / name,
    }
    destination = SchemeDictionaryDestination(
        {k: str(v) for k, v in scheme.items()}, interpreter="python", script_kind="posix"
    )
    try:
        with WheelFile.open(wheel) as source:
            install(source, destination, additional_metadata={"INSTALLER": INSTALLER_NAME})
    except (InstallerError, ValueError, OSError, KeyError) as exc:
        raise VerificationError(
            f"{wheel.name} cannot be installed: {exc}",
            where=str(wheel),
            fix="the wheel is broken or does not match its RECORD: delete it from the build cache "
            "and build again (it is downloaded anew)",
        ) from exc


def compile_tree(lib: Path, pyc: Pyc, shown_as: str = "site/lib") -> None:
    """Byte-compile every module under ``lib`` for the target (deterministic: fixed hash seed).

    ``shown_as``: the path recorded in the bytecode instead of this machine's (the bundle has no
    absolute build paths; Python puts the real path of the source in tracebacks anyway).
    """
    if pyc.python is None or not lib.is_dir():
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONHASHSEED"] = "0"  # set and frozenset constants come out in one order
    subprocess.run(
        [
            str(pyc.python),
            "-m",
            "compileall",
            "-qq",  # files that are not Python 3 (templates, vendored tests) stay source-only
            "-f",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(lib),
            "-p",
            shown_as,
            str(lib),
        ],
        env=env,
        capture_output=True,
        timeout=3600,
        check=False,
    )


def cached_tree(wheel: Path, sha256: str, *, name: str, version: str, pyc: Pyc, cache_dir: Path) -> Installed:
    """The installed, compiled tree of ``wheel`` from the cache, made (and cached) when missing or bad."""
    key = hashlib.sha256(f"{sha256}|{pyc.key}|{LAYOUT}".encode()).hexdigest()[:32]
    entry = cache_dir / "site-trees" / key
    listed = _load_listing(entry)
    if listed is not None:
        problem = _check(entry / "tree", listed)
        if problem is None:
            size = sum(int(str(e["size"])) for e in listed)
            return Installed(name, version, sha256, len(listed), size, True, entry / "tree")
        warn_damaged(entry, problem, f"reinstalling {wheel.name}")
        shutil.rmtree(entry, ignore_errors=True)
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempdirs.make(tempdirs.PARTIAL, entry.parent)  # a killed build's partial tree goes next time
    try:
        install_wheel(wheel, tmp / "tree", name=name)
        compile_tree(tmp / "tree" / "lib", pyc)
        entries = file_entries(tmp / "tree")
        (tmp / _FILES).write_text(json.dumps(entries, sort_keys=True) + "\n", encoding="utf-8")
        shutil.rmtree(entry, ignore_errors=True)
        tmp.replace(entry)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Installed(
        name, version, sha256, len(entries), sum(e["size"] for e in entries), False, entry / "tree"
    )


def _load_listing(entry: Path) -> list[dict[str, object]] | None:
    try:
        data = json.loads((entry / _FILES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, list) else None


def _check(tree: Path, listed: list[dict[str, object]]) -> str | None:
    """None when ``tree`` holds exactly the listed files with their hashes; else the first problem."""
    present = scan(tree)  # the boot shim's listing: names and sizes, one stat per file
    names = {str(e["path"]) for e in listed}
    if present.keys() != names:
        odd = sorted(present.keys() ^ names)
        return f"{len(odd)} file(s) added or missing, e.g. {odd[0]}"
    for e in listed:
        rel = str(e["path"])
        if present[rel] != e["size"] or file_sha256(tree / rel) != e["sha256"]:
            return f"{rel} changed"
    return None


def merge_trees(trees: list[Installed], site: Path) -> list[str]:
    """Copy every tree into ``site`` (sorted by name); returns warnings for files two dists both ship."""
    owner: dict[str, tuple[str, Path]] = {}
    warnings: list[str] = []
    for inst in sorted(trees, key=lambda i: i.name):
        for path in sorted(p for p in inst.tree.rglob("*") if p.is_file()):
            rel = path.relative_to(inst.tree).as_posix()
            if rel in owner:
                if filecmp.cmp(owner[rel][1], path, shallow=False):
                    continue
                warnings.append(f"site/{rel}: {inst.name} overwrites the copy of {owner[rel][0]}")
            target = site / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            target.chmod(0o755 if os.access(path, os.X_OK) or rel.startswith("bin/") else 0o644)
            owner[rel] = (inst.name, path)
    return warnings


def find_pyc(python_minor: str) -> Pyc:
    """The interpreter that compiles for the target, or why there is none."""
    from bundler.interpreters import find_python, full_version

    python = find_python(python_minor)
    if python is None:
        return Pyc(
            None,
            None,
            f"no Python {python_minor} on the build machine: modules compile once per kernel at run time",
        )
    version = full_version(python)
    if version is None:
        raise BundlerError(
            f"cannot run the target interpreter {python}",
            where=str(python),
            fix=f"repair or remove it; any Python {python_minor} on PATH or in pyenv is used",
        )
    return Pyc(python, version)
