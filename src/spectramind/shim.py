"""The boot shim: stdlib-only, one file, shipped verbatim as ``<bundle>/boot/shim.py``.

It runs inside the Kaggle kernel before anything is installed, so it imports nothing outside the
standard library. The build side imports the same file (``spectramind.shim``) for the MANIFEST.json
format, so the bundle is written and checked by one piece of code.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_NAME = "MANIFEST.json"
MANIFEST_SCHEMA = 1
_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def list_files(root: Path) -> list[str]:
    """Every regular file under ``root`` as a sorted POSIX relative path, MANIFEST.json excluded."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if rel != MANIFEST_NAME:
                out.append(rel)
    return sorted(out)


def file_entries(root: Path) -> list[dict[str, Any]]:
    """``[{path, sha256, size}]`` for every file of the bundle but MANIFEST.json, sorted by path."""
    return [
        {"path": rel, "sha256": file_sha256(root / rel), "size": (root / rel).stat().st_size}
        for rel in list_files(root)
    ]


def bundle_sha256(entries: list[dict[str, Any]]) -> str:
    """The bundle hash: sha256 over the sorted file list, one ``path<TAB>sha256<TAB>size`` line each."""
    lines = "".join(
        f"{e['path']}\t{e['sha256']}\t{e['size']}\n" for e in sorted(entries, key=lambda e: e["path"])
    )
    return hashlib.sha256(lines.encode()).hexdigest()


@dataclass
class VerifyReport:
    """What differs between a bundle directory and its MANIFEST.json."""

    bundle_sha256: str = ""
    files: int = 0
    bytes: int = 0
    modified: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.modified or self.missing or self.extra or self.errors)


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST_NAME
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def verify_bundle(root: Path) -> VerifyReport:
    """Recompute every hash of ``root`` against its MANIFEST.json."""
    report = VerifyReport()
    try:
        manifest = read_manifest(root)
        listed = {e["path"]: e for e in manifest["files"]}
    except FileNotFoundError:
        report.errors.append(f"{MANIFEST_NAME} is missing")
        return report
    except (ValueError, KeyError, TypeError) as exc:
        report.errors.append(f"{MANIFEST_NAME} is unreadable: {exc}")
        return report
    report.bundle_sha256 = str(manifest.get("bundle_sha256", ""))
    present = set(list_files(root))
    report.missing = sorted(set(listed) - present)
    report.extra = sorted(present - set(listed))
    for rel in sorted(set(listed) & present):
        entry, path = listed[rel], root / rel
        size = path.stat().st_size
        report.files += 1
        report.bytes += size
        if size != entry["size"] or file_sha256(path) != entry["sha256"]:
            report.modified.append(rel)
    if bundle_sha256(list(listed.values())) != report.bundle_sha256:
        report.errors.append("bundle_sha256 does not match the file list in MANIFEST.json")
    return report
