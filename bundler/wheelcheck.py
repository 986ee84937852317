"""Check a wheel's own contents against what the lock (or the build) says about it, before packing.

A wheel's filename, its ``*.dist-info/METADATA`` (Name, Version), its ``WHEEL`` file (Tag lines) and
its ``RECORD`` (every member with its hash and size) must all agree with each other and with the
pinned name and version. A wheel that passes installs as exactly the distribution the lock names;
one that does not is rejected here, at build time, instead of by the installer inside the kernel.
"""

from __future__ import annotations

import base64
import csv
import email.parser
import hashlib
import io
import zipfile
import zlib
from pathlib import Path

from packaging.tags import parse_tag
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


def _record_digest(data: bytes, algorithm: str) -> str:
    digest = hashlib.new(algorithm, data).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


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
        actual = _record_digest(data, algorithm)
        if actual != recorded:
            raise _mismatch(path, f"{algorithm} of {name} (RECORD)", recorded, actual)
        if len(row) > 2 and row[2] and row[2] != str(len(data)):
            raise _mismatch(path, f"size of {name} (RECORD)", row[2], str(len(data)))
    missing = sorted(set(rows) - {i.filename for i in members})
    if missing:
        raise _mismatch(path, f"member {missing[0]} listed in RECORD", "present in the wheel", "missing")


def check_wheel(path: Path, *, name: str, version: str) -> None:
    """Raise `VerificationError` unless ``path`` is a consistent wheel of ``name`` ``version``.

    Checked: the filename's name and version; METADATA's Name and Version; WHEEL's Tag lines
    against the filename's tags; every member against RECORD (hash and size) and every RECORD
    entry present. The error names the wheel, the field, and both values.
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
            if tags != set(file_tags):
                found = ", ".join(sorted(map(str, tags))) or "none"
                raise _mismatch(path, "WHEEL Tag", ", ".join(sorted(map(str, file_tags))), found)
            _check_record(path, zf, dist_info)
    except (zipfile.BadZipFile, zlib.error, KeyError, UnicodeDecodeError, csv.Error, OSError) as exc:
        raise VerificationError(
            f"wheel {path.name} is not a readable wheel: {exc}", where=str(path), fix=_FIX
        ) from exc
