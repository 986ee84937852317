"""Does this interpreter and system fit the bundle's target (MANIFEST ``target``)? And a wheel's tags?"""

from __future__ import annotations

import os
import platform
import re
import sys
from typing import Any

from .base import BootError
from .manifest import MANIFEST_NAME

_MANYLINUX_ALIASES = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def glibc_version() -> tuple[int, int] | None:
    try:
        raw = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        return None
    m = re.match(r"glibc (\d+)\.(\d+)", raw)
    return (int(m.group(1)), int(m.group(2))) if m else None


def running_abi() -> str:
    impl = {"cpython": "cp", "pypy": "pp"}.get(sys.implementation.name, sys.implementation.name)
    return f"{impl}{sys.version_info.major}{sys.version_info.minor}{getattr(sys, 'abiflags', '')}"


def platform_ok(tag: str, machine: str, glibc: tuple[int, int] | None) -> bool:
    """True when this system can load wheels tagged with platform ``tag``."""
    if tag == "any":
        return True
    m = re.match(r"^(manylinux_(\d+)_(\d+)|manylinux1|manylinux2010|manylinux2014|linux)_(.+)$", tag)
    if not m or m.group(4) != machine:
        return False
    if m.group(1) == "linux":
        return True
    need = (int(m.group(2)), int(m.group(3))) if m.group(2) else _MANYLINUX_ALIASES[m.group(1)]
    return glibc is not None and need <= glibc


def _py_tag_ok(tag: str, abis: set[str]) -> bool:
    m = re.fullmatch(r"(py|cp)(\d)(\d*)", tag)
    major, minor = sys.version_info.major, sys.version_info.minor
    if not m or int(m.group(2)) != major or (m.group(1) == "cp" and sys.implementation.name != "cpython"):
        return False
    if not m.group(3):
        return True
    wanted = int(m.group(3))
    return wanted == minor or (wanted < minor and (m.group(1) == "py" or bool(abis & {"abi3", "none"})))


def wheel_ok(filename: str, abi: str, machine: str, glibc: tuple[int, int] | None) -> bool:
    """True when a wheel's tags (``name-ver[-build]-py-abi-plat.whl``) fit the running interpreter."""
    parts = filename.removesuffix(".whl").split("-")
    if len(parts) < 5:
        return False
    pys, abis, plats = (set(p.split(".")) for p in parts[-3:])
    return (
        any(_py_tag_ok(p, abis) for p in pys)
        and bool(abis & {abi, "none", "abi3"})
        and any(platform_ok(p, machine, glibc) for p in plats)
    )


def check_target(manifest: dict[str, Any]) -> dict[str, Any]:
    """Compare the running Python/ABI/platform with MANIFEST ``target``; raise on a mismatch."""
    target = manifest.get("target") or {}
    python, machine = platform.python_version(), platform.machine()
    running: dict[str, Any] = {
        "python": python,
        "abi": running_abi(),
        "machine": machine,
        "glibc": ".".join(map(str, glibc_version() or ())) or None,
    }
    want_py, want_abi = str(target.get("python", "")), str(target.get("abi", ""))
    fix = "attach the bundle built for this image (python -m bundler build target=...) or pin the image"
    if want_py and python.split(".")[:2] != want_py.split(".")[:2]:
        raise BootError(
            f"bundle targets Python {want_py}, this kernel runs Python {running['python']}",
            where=MANIFEST_NAME + " target.python",
            fix=fix,
        )
    if want_abi and want_abi != running["abi"]:
        raise BootError(
            f"bundle targets ABI {want_abi}, this interpreter is {running['abi']}",
            where=MANIFEST_NAME + " target.abi",
            fix=fix,
        )
    plats = [str(p) for p in target.get("platforms") or []]
    if plats and not any(platform_ok(p, machine, glibc_version()) for p in plats):
        raise BootError(
            f"none of the bundle's platforms ({plats[0]}, ...) fits this system "
            f"({running['machine']}, glibc {running['glibc']})",
            where=MANIFEST_NAME + " target.platforms",
            fix=fix,
        )
    return running
