"""Image drift: the packages the bundle left out because the image had them, checked in the live image.

Kaggle updates its image often, and a bundle skips what the image it was locked against had (MANIFEST
``skipped``). Before the payload runs, boot looks each one up in the running interpreter's own
environment (not the delta) and names every package that is gone or at another version.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from .base import canonical, version_satisfies


def installed() -> dict[str, str]:
    """Canonical name -> version of every distribution on ``sys.path`` (first wins, as imports do).

    Read from the ``.dist-info`` / ``.egg-info`` folder names (``name-version.dist-info``), and from
    the metadata file of a folder whose name has no version (a legacy ``setup.py develop``): a
    directory listing per path entry, without importlib.metadata's 30 ms of imports.
    """
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")  # noqa: PTH208 -- plain names, no Path per entry: boot's hot path
        except OSError:
            continue
        for name in names:
            stem, dot, kind = name.rpartition(".")
            if not dot or kind not in {"dist-info", "egg-info"}:
                continue
            dist, _, version = stem.partition("-")
            version = version.split("-")[0] or _metadata_version(Path(entry or ".") / name)
            if version:
                found.setdefault(canonical(dist), version)
    return found


def _metadata_version(folder: Path) -> str:
    for meta in ("METADATA", "PKG-INFO"):
        try:
            with (folder / meta).open(encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if line.startswith("Version:"):
                        return line.split(":", 1)[1].strip()
                    if not line.strip():
                        break
        except OSError:
            continue
    return ""


def find_drift(manifest: dict[str, Any]) -> list[dict[str, str | None]]:
    """``[{name, locked, found}]`` for each skipped package the image no longer has at its version."""
    drifted: list[dict[str, str | None]] = []
    have = installed() if manifest.get("skipped") else {}
    for entry in manifest.get("skipped") or []:
        name, locked = str(entry.get("name", "")), str(entry.get("version", ""))
        found = have.get(canonical(name))
        if found is None or not version_satisfies(found, locked):
            drifted.append({"name": name, "locked": locked, "found": found})
    return drifted


def describe(drifted: list[dict[str, str | None]]) -> str:
    return "; ".join(
        f"{d['name']}: locked {d['locked']} (skipped: the image had it), found {d['found'] or 'nothing'}"
        for d in drifted
    )
