"""Check a wheel's own contents against what the lock (or the build) says about it, before packing.

A wheel's filename, its ``*.dist-info/METADATA`` (Name, Version), its ``WHEEL`` file (Tag lines) and
its ``RECORD`` (every member with its hash and size) must all agree with each other and with the
pinned name and version. A wheel that passes installs as exactly the distribution the lock names;
one that does not is rejected here, at build time, instead of by the installer inside the kernel.

Tags are compared by what decides whether the binary loads: the ABI, the OS family (glibc Linux,
musl Linux, macOS, Windows, any) and the CPU architecture. Published wheels often label the rest
loosely (``py2.py3`` in the filename but ``py3`` in WHEEL; ``manylinux_2_28`` in the filename but
``linux`` in WHEEL after a repair tool renamed the file, ``any`` in WHEEL for a platform-named file),
and installers accept them. RECORD hashes are urlsafe base64 as the spec says, or hex as a few
published wheels write them.
"""

from __future__ import annotations

import base64
import csv
import email.parser
import hashlib
import io
import re
import zipfile
import zlib
from pathlib import Path

from packaging.tags import Tag, parse_tag
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from bundler.errors import VerificationError

# RECORD's own signatures carry no hash of themselves (the wheel spec).
_UNHASHED = ("RECORD", "RECORD.jws", "RECORD.p7s")
_HASHES = frozenset({"sha256", "sha384", "sha512"})  # the spec: sha256 or stronger
_FIX = (
    "this file is not a consistent wheel of the pinned distribution, so it is not packed: pin another "
    "version (then re-lock with `python -m bundler lock`), or report the broken wheel upstream"
)


def _mismatch(path: Path, field: str, expected: str, found: str) -> VerificationError:
    return VerificationError(
        f"wheel {path.name}: {field} is {found!r}, expected {expected!r}", where=str(path), fix=_FIX
    )


_PLATFORM = (
    (re.compile(r"^manylinux_\d+_\d+_(.+)$"), "linux"),
    (re.compile(r"^manylinux(?:1|2010|2014)_(.+)$"), "linux"),
    (re.compile(r"^linux_(.+)$"), "linux"),
    (re.compile(r"^musllinux_\d+_\d+_(.+)$"), "musl"),
    (re.compile(r"^macosx_\d+_\d+_(.+)$"), "macosx"),
    (re.compile(r"^win_?(.+)$"), "win"),
)


def loads_as(tag: Tag) -> tuple[str, str, str]:
    """(ABI, OS family, architecture): the part of a tag that decides whether the wheel loads."""
    for pattern, family in _PLATFORM:
        match = pattern.match(tag.platform)
        if match:
            return tag.abi, family, match.group(1)
    return tag.abi, tag.platform, ""


def _fits(declared: Tag, named: Tag) -> bool:
    """Whether a WHEEL tag agrees with a filename tag (a WHEEL that says "any" claims pure Python)."""
    abi, family, arch = loads_as(declared)
    return loads_as(named) == (abi, family, arch) or (family == "any" and abi == named.abi)


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _dist_info(path: Path, names: list[str]) -> str:
    folders = sorted({n.split("/", 1)[0] for n in names if n.count("/") == 1 and n.endswith("/METADATA")})
    folders = [f for f in folders if f.endswith(".dist-info")]
    if len(folders) != 1:
        raise VerificationError(
            f"wheel {path.name}: expected one *.dist-info/METADATA, found {len(folders)}: {folders}",
            where=str(path),
            fix=_FIX,
        )
    return folders[0]


def _record_digests(data: bytes, algorithm: str) -> tuple[str, str]:
    """The digest as RECORD should write it (urlsafe base64), and in hex (some published wheels)."""
    digest = hashlib.new(algorithm, data).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode(), digest.hex()


def _check_record(path: Path, zf: zipfile.ZipFile, dist_info: str) -> None:
    text = zf.read(f"{dist_info}/RECORD").decode("utf-8")
    rows = {row[0]: row for row in csv.reader(io.StringIO(text)) if row}
    members = [i for i in zf.infolist() if not i.is_dir()]
    unhashed = {f"{dist_info}/{u}" for u in _UNHASHED}
    for info in members:
        name = info.filename
        if name in unhashed:
            continue
        row = rows.get(name)
        if row is None or len(row) < 2 or not row[1]:
            raise _mismatch(path, f"RECORD entry of {name}", "listed with a hash", "missing")
        algorithm, _, recorded = row[1].partition("=")
        if algorithm not in _HASHES:
            raise _mismatch(path, f"RECORD hash algorithm of {name}", "sha256 or stronger", algorithm)
        data = zf.read(info)
        actual = _record_digests(data, algorithm)
        if recorded not in actual:
            raise _mismatch(path, f"{algorithm} of {name} (RECORD)", recorded, actual[0])
        if len(row) > 2 and row[2] and row[2] != str(len(data)):
            raise _mismatch(path, f"size of {name} (RECORD)", row[2], str(len(data)))
    missing = sorted(set(rows) - {i.filename for i in members})
    if missing:
        raise _mismatch(path, f"member {missing[0]} listed in RECORD", "present in the wheel", "missing")


def check_wheel(path: Path, *, name: str, version: str) -> None:
    """Raise `VerificationError` unless ``path`` is a consistent wheel of ``name`` ``version``.

    Checked: the filename's name and version; METADATA's Name and Version; WHEEL's Tag lines
    against the filename's tags (one must share its ABI, OS family and architecture); every
    member against RECORD (hash and size) and every RECORD entry present. The error names the
    wheel, the field, and both values.
    """
    try:
        file_name, file_version, _build, file_tags = parse_wheel_filename(path.name)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        raise VerificationError(f"not a valid wheel filename: {exc}", where=str(path), fix=_FIX) from exc
    if file_name != canonicalize_name(name):
        raise _mismatch(path, "the filename's name", canonicalize_name(name), file_name)
    if not _same_version(str(file_version), version):
        raise _mismatch(path, "the filename's version", version, str(file_version))
    try:
        with zipfile.ZipFile(path) as zf:
            dist_info = _dist_info(path, zf.namelist())
            meta = email.parser.BytesParser().parsebytes(zf.read(f"{dist_info}/METADATA"), headersonly=True)
            if canonicalize_name(str(meta.get("Name", ""))) != canonicalize_name(name):
                raise _mismatch(path, "METADATA Name", name, str(meta.get("Name")))
            if not _same_version(str(meta.get("Version", "")), version):
                raise _mismatch(path, "METADATA Version", version, str(meta.get("Version")))
            wheel = email.parser.BytesParser().parsebytes(zf.read(f"{dist_info}/WHEEL"), headersonly=True)
            tags = {t for line in wheel.get_all("Tag") or [] for t in parse_tag(str(line).strip())}
            if not any(_fits(t, f) for t in tags for f in file_tags):
                found = ", ".join(sorted(map(str, tags))) or "none"
                raise _mismatch(path, "WHEEL Tag", ", ".join(sorted(map(str, file_tags))), found)
            _check_record(path, zf, dist_info)
    except (zipfile.BadZipFile, zlib.error, KeyError, UnicodeDecodeError, csv.Error, OSError) as exc:
        raise VerificationError(
            f"wheel {path.name} is not a readable wheel: {exc}", where=str(path), fix=_FIX
        ) from exc
