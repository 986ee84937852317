"""Image manifests (the schema of bundler/image.py) for tests that need a tiny Kaggle image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def image_manifest(
    name: str,
    distributions: Sequence[dict[str, Any]] = (),
    *,
    python: str = "3.11.7",
    glibc: str | None = "2.36",
    platforms: Sequence[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """A schema-1 image manifest holding ``distributions`` ({name, version, requires_dist})."""
    major_minor = "".join(python.split(".")[:2])
    return {
        "schema": 1,
        "name": name,
        **extra,
        "python": {"version": python, "implementation": "cpython", "abi": f"cp{major_minor}"},
        "platform": {"system": "Linux", "machine": "x86_64", "glibc": glibc, "platforms": list(platforms)},
        "cuda": {"driver": None, "runtime": None},
        "distributions": list(distributions),
    }
