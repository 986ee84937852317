"""Find the bundle under Kaggle's input layouts, and make sure it is the one the kernel expects."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .base import EXIT_VERIFY, EXPECT_ENV, BootError, log
from .manifest import MANIFEST_NAME

# Kaggle has mounted datasets at /kaggle/input/<slug>, one folder deeper, and under datasets/<owner>/.
PATTERNS = ("*/boot/kaggle-boot.sh", "*/*/boot/kaggle-boot.sh", "datasets/*/*/boot/kaggle-boot.sh")


def find_bundles(input_dir: Path) -> list[Path]:
    """Every bundle root under ``input_dir`` (never a recursive walk: inputs can be huge)."""
    found = [p for pattern in PATTERNS for p in sorted(input_dir.glob(pattern))]
    roots: list[Path] = []
    for script in found:
        root = script.parent.parent
        if (root / MANIFEST_NAME).is_file() and root.resolve() not in {r.resolve() for r in roots}:
            roots.append(root)
    return roots


def locate_bundle(input_dir: Path, here: Path | None = None) -> Path:
    """The bundle root: ``here`` when given (the one boot was started from), else the only one found.

    Several bundles attached is an error (exit 3): a kernel that could run either version of the
    code must not pick one silently.
    """
    roots = find_bundles(input_dir) if input_dir.is_dir() else []
    if here is not None and (here / MANIFEST_NAME).is_file():
        others = [r for r in roots if r.resolve() != here.resolve()]
        if others:
            raise _several([here, *others])
        return here
    if not roots:
        raise BootError(
            "no SpectraMind bundle found",
            where=f"{input_dir}/" + f", {input_dir}/".join(PATTERNS),
            fix="attach the bundle dataset to the kernel, or set SPECTRAMIND_INPUT to where it is mounted",
        )
    if len(roots) > 1:
        raise _several(roots)
    return roots[0]


def _several(roots: list[Path]) -> BootError:
    return BootError(
        f"{len(roots)} SpectraMind bundles are attached; boot cannot tell which one to run",
        where=", ".join(map(str, roots)),
        fix="detach all but one bundle dataset from the kernel (the build's kernel names the one it expects)",
        code=EXIT_VERIFY,
    )


def check_expected(manifest: dict[str, Any], bundle: Path) -> str | None:
    """Refuse a bundle other than the one the kernel was generated for (SPECTRAMIND_BUNDLE_SHA256)."""
    expected = os.environ.get(EXPECT_ENV, "").strip().lower()
    if not expected:
        return None
    got = str(manifest.get("bundle_sha256", ""))
    if got != expected:
        raise BootError(
            f"the attached bundle is not the one this kernel expects (bundle_sha256 {got[:16]}…, "
            f"expected {expected[:16]}…)",
            where=f"{bundle}/{MANIFEST_NAME}",
            fix="attach the bundle version the kernel was built with, or rebuild and push both "
            "(python -m bundler build && python -m bundler push)",
            code=EXIT_VERIFY,
        )
    log(f"bundle is the one the kernel expects ({got[:16]}…)")
    return got
