"""Activate the installed delta in place: the read-only ``site/`` of the bundle, no copy, no installer.

The command's Python (and every Python it starts: torchrun workers, subprocesses) sees ``site/lib``
ahead of the image's packages through ``PYTHONPATH``. A generated ``sitecustomize`` in the boot's
temp dir, first on that path, then runs the ``.pth`` files of ``site/lib`` (``site.addsitedir``),
puts the paths they add right after ``site/lib``, and hands over to the image's own
``sitecustomize`` (which still runs, under its own name). Console scripts of ``site/bin`` get a copy
in the temp dir with this interpreter in their shebang, first on ``PATH``. Nothing is written
outside the temp dir; without compiled bytecode in the bundle, ``PYTHONPYCACHEPREFIX`` points at a
writable cache so each module compiles once per kernel.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

# installer writes this placeholder shebang at build time; boot puts the kernel's interpreter there.
PLACEHOLDER = b"#!python"

_HOOK = '''\
"""Written by the SpectraMind boot shim (activate.py): the bundle's delta first, then the image's own
sitecustomize, which still runs as `sitecustomize`."""
import os
import site
import sys

_HOOK_DIR = {hook!r}
_LIB = {lib!r}


def _activate():
    before = list(sys.path)
    site.addsitedir(_LIB)  # the delta's .pth files run here; the paths they add go to the end
    added = [p for p in sys.path if p not in before]
    rest = [p for p in before if p not in (_LIB, _HOOK_DIR)]
    sys.path[:] = [_LIB, *added, *rest]


def _chain():
    import importlib.machinery
    import importlib.util

    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", sys.path)
    if spec is None or spec.loader is None or spec.origin == __file__:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_activate()
_chain()
'''


def _shebang(python: str) -> bytes:
    if len(python) < 120 and " " not in python:
        return f"#!{python}".encode()
    # too long or with spaces for a kernel shebang: let sh start it (pip's launcher trick)
    return f"#!/bin/sh\n'''exec' '{python}' \"$0\" \"$@\"\n' '''".encode()


def link_scripts(bin_dir: Path, dest: Path, python: str) -> list[str]:
    """Make every script of the bundle's ``site/bin`` callable from ``dest`` (first on PATH)."""
    names: list[str] = []
    if not bin_dir.is_dir():
        return names
    dest.mkdir(parents=True, exist_ok=True)
    for src in sorted(bin_dir.iterdir()):
        target = dest / src.name
        with src.open("rb") as fh:
            head = fh.read(len(PLACEHOLDER) + 1)
        if head.startswith(PLACEHOLDER) and head[len(PLACEHOLDER) :] in {b"\n", b"\r", b" "}:
            body = src.read_bytes().split(b"\n", 1)
            target.write_bytes(_shebang(python) + b"\n" + (body[1] if len(body) > 1 else b""))
        elif os.access(src, os.X_OK):
            target.symlink_to(src)  # a binary, already executable on the mount: no copy
        else:
            shutil.copyfile(src, target)  # the dataset lost the exec bit: a copy gets it back
        if not target.is_symlink():
            target.chmod(0o755)
        names.append(src.name)
    return names


def activate(bundle: Path, manifest: dict[str, Any], workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    """Point ``env`` (the command's environment) at the bundle's ``site/``; returns what was done."""
    lib = bundle / "site" / "lib"
    hook = workdir / "activate"
    hook.mkdir(parents=True, exist_ok=True)
    (hook / "sitecustomize.py").write_text(_HOOK.format(hook=str(hook), lib=str(lib)), encoding="utf-8")
    scripts = link_scripts(bundle / "site" / "bin", workdir / "bin", sys.executable)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(hook), str(lib), env.get("PYTHONPATH", "")) if p)
    env["PATH"] = os.pathsep.join([str(workdir / "bin"), env.get("PATH", "")])
    env["SPECTRAMIND_SITE"] = str(lib)
    pyc = dict(manifest.get("pyc") or {})
    if pyc.get("mode") in (None, "none"):
        cache = Path(tempfile.gettempdir()) / f"spectramind-pycache-{str(manifest.get('bundle_sha256'))[:16]}"
        env["PYTHONPYCACHEPREFIX"] = str(cache)
    return {
        "site": str(lib),
        "distributions": len(manifest.get("site") or []),
        "scripts": scripts,
        "pth": sorted(p.name for p in lib.glob("*.pth")),
        "pyc": pyc.get("mode", "none"),
        "pycache_prefix": env.get("PYTHONPYCACHEPREFIX"),
    }
