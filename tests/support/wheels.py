"""Build tiny, valid, byte-reproducible wheels and sdists for offline tests."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

_EPOCH = (2020, 1, 1, 0, 0, 0)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    *,
    requires: list[str] | None = None,
    tag: str = "py3-none-any",
    module_code: str | None = None,
) -> Path:
    """Write ``{name}-{version}-{tag}.whl`` into ``directory`` and return its path.

    The wheel holds one module named after the package that records its own version.
    """
    norm = name.replace("-", "_").lower()
    dist_info = f"{norm}-{version}.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {req}" for req in requires or []]
    plat_tag = tag.split("-")[2]
    files: dict[str, bytes] = {
        f"{norm}/__init__.py": (module_code or f"__version__ = {version!r}\n").encode(),
        f"{dist_info}/METADATA": ("\n".join(metadata) + "\n").encode(),
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: spectramind-tests\n"
            f"Root-Is-Purelib: {'true' if plat_tag == 'any' else 'false'}\nTag: {tag}\n"
        ).encode(),
    }
    record_lines = [f"{path},{_record_hash(data)},{len(data)}" for path, data in files.items()]
    record_lines.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record_lines) + "\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{norm}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for file_path, data in files.items():
            info = zipfile.ZipInfo(file_path, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return path


def rewrite_wheel(path: Path, edit: Callable[[dict[str, bytes]], None], *, record: bool = False) -> Path:
    """Rewrite the wheel at ``path`` in place after ``edit`` changed its members (name -> bytes).

    RECORD is recomputed only with ``record``: without, tests make wheels whose contents disagree
    with it.
    """
    with zipfile.ZipFile(path) as zf:
        files = {info.filename: zf.read(info) for info in zf.infolist()}
    edit(files)
    if record:
        [name] = [n for n in files if n.endswith(".dist-info/RECORD")]
        lines = [f"{p},{_record_hash(d)},{len(d)}" for p, d in files.items() if p != name]
        files[name] = ("\n".join([*lines, f"{name},,"]) + "\n").encode()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for file_path, data in files.items():
            info = zipfile.ZipInfo(file_path, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return path


def make_sdist(
    directory: Path,
    name: str,
    version: str,
    *,
    requires: list[str] | None = None,
    needs_compiler: bool = False,
) -> Path:
    """Write a setuptools sdist ``{name}-{version}.tar.gz``; ``needs_compiler`` adds a C extension."""
    norm = name.replace("-", "_").lower()
    root = f"{norm}-{version}"
    deps = ", ".join(repr(r) for r in requires or [])
    ext = f"ext_modules=[Extension('{norm}._speed', ['{norm}/_speed.c'])]," if needs_compiler else ""
    files = {
        f"{root}/setup.py": (
            "from setuptools import setup, Extension\n"
            f"setup(name={name!r}, version={version!r}, packages=[{norm!r}], "
            f"install_requires=[{deps}], {ext})\n"
        ).encode(),
        f"{root}/{norm}/__init__.py": f"__version__ = {version!r}\n".encode(),
        f"{root}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
    }
    if needs_compiler:
        files[f"{root}/{norm}/_speed.c"] = b"#include <Python.h>\n"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{root}.tar.gz"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tf:
        for file_path, data in sorted(files.items()):
            info = tarfile.TarInfo(file_path)
            info.size = len(data)
            info.mtime = 1577836800
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return path


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
