"""Describe the running Python image as an image manifest (``configs/images/<name>.json``).

Stdlib only: it runs inside a Kaggle kernel before anything is installed. Three ways to run it::

    python -m bundler probe --out configs/images/my-image.json      # from a checkout
    python bundler/probe.py --name my-image --out my-image.json      # the file alone
    # or paste this file into a Kaggle notebook cell and run it: it writes
    # /kaggle/working/<name>.json (download it from the kernel's output)

Without a kernel, ``python -m bundler probe --from-freeze FILE`` derives a manifest from a
``pip freeze`` list instead (``bundler/freeze.py``; not stdlib-only, never imported here).

The JSON shape is the schema documented in ``bundler/image.py`` (schema 1): python, platform
(glibc, accepted platform tags, full interpreter tags), cuda (with torch's CUDA build and the
``nvidia-*`` packages), tools on PATH (uv, nvidia-smi), and every installed distribution with its
version and Requires-Dist. The tag logic mirrors ``packaging.tags.sys_tags`` (which cannot be
imported here); ``tests/test_probe.py`` checks the two agree on the machine running the tests.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as _dt
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

SCHEMA = 1
# pip's legacy aliases for manylinux_2_5 / 2_12 / 2_17 (PEP 600).
_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


def glibc_version() -> tuple[int, int] | None:
    """(major, minor) of the C library the interpreter runs on; None where it is not glibc."""
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""  # e.g. "glibc 2.36"
    except (AttributeError, OSError, ValueError):
        text = ""
    match = re.search(r"(\d+)\.(\d+)", text)
    if not match:
        lib, version = platform.libc_ver()
        match = re.search(r"(\d+)\.(\d+)", version) if lib == "glibc" else None
    return (int(match.group(1)), int(match.group(2))) if match else None


def _arch() -> str:
    plat = re.sub(r"[^A-Za-z0-9]+", "_", sysconfig.get_platform()).lower()  # "linux_x86_64"
    arch = plat.split("_", 1)[1] if plat.startswith("linux_") else plat
    if sys.maxsize <= 2**32:  # a 32-bit interpreter on a 64-bit kernel
        arch = {"x86_64": "i686", "aarch64": "armv8l"}.get(arch, arch)
    return arch


def platform_tags(glibc: tuple[int, int] | None = None, arch: str | None = None) -> list[str]:
    """Platform tags accepted, best first (manylinux down to 2_5, then linux_<arch>).

    Without arguments: this interpreter's. With ``glibc`` and ``arch``: a Linux image's (what
    ``probe --from-freeze`` assumes from ``--glibc``).
    """
    if arch is None:
        if platform.system() != "Linux":
            return [re.sub(r"[^A-Za-z0-9]+", "_", sysconfig.get_platform()).lower()]
        arch = _arch()
        glibc = glibc_version()
    archs = ["armv8l", "armv7l"] if arch == "armv8l" else [arch]
    tags: list[str] = []
    if glibc is not None and glibc[0] == 2:
        # manylinux_2_5 is the floor on x86; every other arch starts at 2_17 (as packaging does).
        floor = 5 if {"x86_64", "i686"} & set(archs) else 17
        for a in archs:
            for minor in range(glibc[1], floor - 1, -1):
                tags.append(f"manylinux_2_{minor}_{a}")
                legacy = _LEGACY_MANYLINUX.get((2, minor))
                if legacy:
                    tags.append(f"{legacy}_{a}")
    # musl images (glibc is None) get only linux_<arch>: Kaggle images are glibc-based.
    tags.extend(f"linux_{a}" for a in archs)
    return tags


def _nodot(major: int, minor: int) -> str:
    return f"{major}{minor}"


def abi_tag() -> str:
    """The interpreter's own ABI tag: cp311, cp313t, cp311d, or pp/graalpy's from SOABI."""
    major, minor = sys.version_info[:2]
    if sys.implementation.name != "cpython":
        soabi = str(sysconfig.get_config_var("SOABI") or "")
        parts = soabi.split("-")
        return "_".join(parts[:2]) if len(parts) >= 2 else "none"
    debug = "d" if sysconfig.get_config_var("Py_DEBUG") else ""
    threaded = "t" if (major, minor) >= (3, 13) and sysconfig.get_config_var("Py_GIL_DISABLED") else ""
    return f"cp{_nodot(major, minor)}{threaded}{debug}"


def interpreter_tags(platforms: list[str]) -> list[str]:
    """Every tag this interpreter accepts, best first, in ``packaging.tags.sys_tags`` order."""
    major, minor = sys.version_info[:2]
    tags: list[str] = []
    if sys.implementation.name == "cpython":
        interp = f"cp{_nodot(major, minor)}"
        abi = abi_tag()
        abis = [abi] + ([abi.removesuffix("d")] if abi.endswith("d") else [])
        threaded = "t" in abi.removeprefix(interp)
        tags += [f"{interp}-{a}-{p}" for a in abis for p in platforms]
        stable = "abi3t" if threaded else "abi3"
        tags += [f"{interp}-{stable}-{p}" for p in platforms]
        tags += [f"{interp}-none-{p}" for p in platforms]
        tags += [f"cp{_nodot(major, m)}-{stable}-{p}" for m in range(minor - 1, 1, -1) for p in platforms]
    else:
        interp = f"{sys.implementation.name[:2]}{_nodot(major, minor)}"
        abi = abi_tag()
        tags += [f"{interp}-{abi}-{p}" for p in platforms] + [f"{interp}-none-{p}" for p in platforms]
    pys = [f"py{_nodot(major, minor)}", f"py{major}"] + [
        f"py{_nodot(major, m)}" for m in range(minor - 1, -1, -1)
    ]
    tags += [f"{py}-none-{p}" for py in pys for p in platforms]
    tags.append(f"{interp}-none-any")
    tags += [f"{py}-none-any" for py in pys]
    return tags


def _cuda_call(libnames: list[str], symbol: str) -> str | None:
    """Call ``symbol(int*)`` (cuDriverGetVersion / cudaRuntimeGetVersion) from the first loadable lib."""
    for libname in libnames:
        try:
            lib = ctypes.CDLL(libname)
            value = ctypes.c_int(0)
            if getattr(lib, symbol)(ctypes.byref(value)) == 0 and value.value > 0:
                return f"{value.value // 1000}.{(value.value % 1000) // 10}"
        except (OSError, AttributeError):
            continue
    return None


def _pip_cudart() -> list[str]:
    """libcudart shipped by the pip wheel nvidia-cuda-runtime-cu* (how torch gets its runtime)."""
    found: list[str] = []
    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        return found
    for root in (spec.submodule_search_locations or []) if spec else []:
        found += sorted(str(p) for p in Path(root).glob("cuda_runtime/lib/libcudart.so*"))
    return found


def torch_cuda_from_version(version: str) -> str | None:
    """The CUDA build named by a torch version's local label: ``2.6.0+cu124`` -> ``12.4``; else None."""
    match = re.search(r"\+cu(\d+)(\d)$", version)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def _torch_cuda() -> str | None:
    """``torch.version.cuda``, read from torch/version.py without importing torch (slow, may fail);
    where that file is missing, the CUDA build named by torch's local version label."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    for root in (spec.submodule_search_locations or []) if spec else []:
        version_py = Path(root) / "version.py"
        if version_py.is_file():
            match = re.search(r"^cuda\b[^=]*=\s*['\"]([^'\"]+)['\"]", version_py.read_text(), re.MULTILINE)
            return match.group(1) if match else None
    try:
        return torch_cuda_from_version(importlib.metadata.version("torch"))
    except importlib.metadata.PackageNotFoundError:
        return None


def cuda_packages(dists: list[dict[str, Any]]) -> list[str]:
    """``name==version`` of the image's ``nvidia-*`` distributions (CUDA libraries torch loads)."""
    return [f"{d['name']}=={d['version']}" for d in dists if _canonical(d["name"]).startswith("nvidia-")]


def _command_output(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def tools(driver_version: str | None) -> dict[str, Any]:
    """Programs on PATH that boot relies on beyond pip: uv (its version) and nvidia-smi (the
    driver version it reported to `cuda_info`)."""
    found: dict[str, Any] = {"uv": None, "nvidia-smi": None}
    uv = shutil.which("uv")
    if uv:
        parts = _command_output([uv, "--version"]).split()  # "uv 0.9.5 (...)"
        found["uv"] = {"path": uv, "version": parts[1] if len(parts) > 1 else None}
    smi = shutil.which("nvidia-smi")
    if smi:
        found["nvidia-smi"] = {"path": smi, "driver_version": driver_version}
    return found


def cuda_info() -> dict[str, Any]:
    """CUDA driver and runtime versions, GPUs from nvidia-smi; all None/empty on a CPU image."""
    info: dict[str, Any] = {
        "driver": _cuda_call(["libcuda.so.1", "libcuda.so"], "cuDriverGetVersion"),
        "runtime": _cuda_call(
            ["libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0", *_pip_cudart()],
            "cudaRuntimeGetVersion",
        ),
        "torch_cuda": _torch_cuda(),
        "driver_version": None,
        "gpus": [],
    }
    smi = shutil.which("nvidia-smi")
    if smi:
        out = _command_output([smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
        for line in out.strip().splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) >= 3:
                info["gpus"].append({"name": parts[0], "memory": parts[2]})
                info["driver_version"] = parts[1]
    return info


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distributions() -> list[dict[str, Any]]:
    """Installed distributions, one per canonical name (the first on sys.path wins, as imports do)."""
    seen: dict[str, dict[str, Any]] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if not name or _canonical(name) in seen:
            continue
        seen[_canonical(name)] = {
            "name": name,
            "version": dist.version,
            "requires_dist": list(dist.requires or []),
        }
    return [seen[key] for key in sorted(seen)]


def _created() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = _dt.datetime.fromtimestamp(int(epoch), _dt.UTC) if epoch else _dt.datetime.now(_dt.UTC)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def capture(name: str, note: str | None = None, docker_image: str | None = None) -> dict[str, Any]:
    """The image manifest of the running interpreter."""
    glibc = glibc_version()
    platforms = platform_tags()
    dists = distributions()
    cuda = cuda_info()
    cuda["packages"] = cuda_packages(dists)
    manifest: dict[str, Any] = {
        "schema": SCHEMA,
        "name": name,
        "note": note or f"captured with `python -m bundler probe` on {platform.node() or 'unknown host'}",
        "created": _created(),
        "python": {
            "version": platform.python_version(),
            "implementation": sys.implementation.name,
            "abi": abi_tag(),
        },
        "platform": {
            "system": platform.system(),
            "machine": platform.machine(),
            "glibc": f"{glibc[0]}.{glibc[1]}" if glibc else None,
            "platforms": platforms,
            "tags": interpreter_tags(platforms),
        },
        "cuda": cuda,
        "tools": tools(cuda["driver_version"]),
        "distributions": dists,
    }
    if docker_image:
        manifest["kaggle"] = {"docker_image": docker_image}
    return manifest


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(args: argparse.Namespace) -> int:
    """Entry point of ``python -m bundler probe``: ``args.out`` (file or None = stdout), ``args.name``."""
    out = Path(args.out) if getattr(args, "out", None) else None
    name = getattr(args, "name", None) or (out.stem if out else "captured-image")
    manifest = capture(name, getattr(args, "note", None), getattr(args, "docker_image", None))
    text = json.dumps(manifest, indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
        return 0
    try:
        _write_atomic(out, text)
    except OSError as exc:
        sys.stderr.write(f"ERROR could not write the image manifest: {exc}\n  where: {out}\n")
        sys.stderr.write("  fix:   choose a writable --out path (on Kaggle: /kaggle/working/NAME.json)\n")
        return 1
    sys.stderr.write(f"wrote image manifest '{name}' ({len(text)} bytes) to {out}\n")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of probe, for this file run alone and for ``python -m bundler probe``."""
    parser.add_argument("--out", default=None, help="write the manifest here instead of stdout")
    parser.add_argument("--name", default=None, help="image name recorded in the manifest")
    parser.add_argument("--note", default=None, help="how the image was captured / can be recreated")
    parser.add_argument("--docker-image", default=None, help="the image's Docker reference (kernels pin it)")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="probe.py", description="describe this Python image as JSON")
    add_arguments(parser)
    # parse_known_args: a notebook kernel passes its own arguments (-f kernel.json).
    return parser.parse_known_args(argv)[0]


if __name__ == "__main__":
    _args = _parse(sys.argv[1:])
    if "ipykernel" in sys.modules:  # pasted into a notebook cell: write next to the kernel output
        _args.name = _args.name or "kaggle-image"
        if _args.out is None and Path("/kaggle/working").is_dir():
            _args.out = f"/kaggle/working/{_args.name}.json"
        main(_args)  # no sys.exit: it would show as an exception in the notebook
    else:
        sys.exit(main(_args))
