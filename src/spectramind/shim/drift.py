"""Image drift: the packages the bundle left out because the image had them, checked in the live image.

Kaggle updates its image often, and a bundle skips what the image it was locked against had (MANIFEST
``skipped``). Before the payload runs, boot looks each one up in the running interpreter's own
environment (not the delta) and names every package that is gone or at another version.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from .install import version_satisfies


def find_drift(manifest: dict[str, Any]) -> list[dict[str, str | None]]:
    """``[{name, locked, found}]`` for each skipped package the image no longer has at its version."""
    drifted: list[dict[str, str | None]] = []
    for entry in manifest.get("skipped") or []:
        name, locked = str(entry.get("name", "")), str(entry.get("version", ""))
        try:
            found: str | None = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found = None
        if found is None or not version_satisfies(found, locked):
            drifted.append({"name": name, "locked": locked, "found": found})
    return drifted


def describe(drifted: list[dict[str, str | None]]) -> str:
    return "; ".join(
        f"{d['name']}: locked {d['locked']} (skipped: the image had it), found {d['found'] or 'nothing'}"
        for d in drifted
    )
