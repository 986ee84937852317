"""MANIFEST.json: the file list, the bundle hash, and how both are computed (build and boot share it).

``bundle_sha256`` covers the sorted file list (one ``path<TAB>sha256<TAB>size`` line each) *and* every
other field of the manifest (target, image, lock hash, ``site``, ...), so editing any of them is
caught by verification; only ``bundle_sha256`` itself is left out.
"""

from __future__ import annotations

import hashlib
import json
import os
from operator import itemgetter
from pathlib import Path
from typing import Any

MANIFEST_NAME = "MANIFEST.json"
MANIFEST_SCHEMA = 2
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
        rel_dir = os.path.relpath(dirpath, root)
        for name in filenames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
            if rel != MANIFEST_NAME:
                out.append(rel)
    return sorted(out)


def file_entries(root: Path) -> list[dict[str, Any]]:
    """``[{path, sha256, size}]`` for every file of the bundle but MANIFEST.json, sorted by path."""
    return [
        {"path": rel, "sha256": file_sha256(root / rel), "size": (root / rel).stat().st_size}
        for rel in list_files(root)
    ]


def metadata(manifest: dict[str, Any]) -> dict[str, Any]:
    """Every field the bundle hash covers besides the file list."""
    return {k: v for k, v in manifest.items() if k not in {"files", "bundle_sha256"}}


def bundle_sha256(entries: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> str:
    """sha256 over the sorted file lines, then the canonical JSON of ``meta`` (when given)."""
    lines = "".join(
        f"{e['path']}\t{e['sha256']}\t{e['size']}\n" for e in sorted(entries, key=itemgetter("path"))
    )
    if meta is not None:
        lines += json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n"
    return hashlib.sha256(lines.encode()).hexdigest()


def seal(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` with its ``bundle_sha256`` set from its files and metadata (schema included)."""
    sealed = {**manifest, "schema": manifest.get("schema", MANIFEST_SCHEMA)}
    sealed["bundle_sha256"] = bundle_sha256(sealed.get("files") or [], metadata(sealed))
    return sealed


def read_manifest(root: Path) -> dict[str, Any]:
    data = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("MANIFEST.json is not a JSON object")
    return data
