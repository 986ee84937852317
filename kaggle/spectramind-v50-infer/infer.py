"""SpectraMind V50 inference kernel (Kaggle script, internet off).

Finds the offline bundle attached as a dataset and hands over to its boot script, which verifies
the bundle, activates its installed packages in place and runs ``spectramind predict env=kaggle``
under the time budget. Template: ``python -m bundler build`` copies it to ``dist/kernels/<name>/``
and fills in EXPECTED_BUNDLE_SHA256, so boot refuses any other bundle (exit 3).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

EXPECTED_BUNDLE_SHA256 = ""

# The 9-hour budget counts from kernel start, not from when the boot script starts.
os.environ.setdefault("SPECTRAMIND_BOOT_START", str(time.time()))
if EXPECTED_BUNDLE_SHA256:
    os.environ.setdefault("SPECTRAMIND_BUNDLE_SHA256", EXPECTED_BUNDLE_SHA256)

INPUT = Path(os.environ.get("SPECTRAMIND_INPUT", "/kaggle/input"))
# Kaggle has mounted datasets at several depths over the years; look at each, never recursively
# (the competition data under /kaggle/input is large).
PATTERNS = (
    "*/boot/kaggle-boot.sh",
    "*/*/boot/kaggle-boot.sh",
    "datasets/*/*/boot/kaggle-boot.sh",
)


def find_boot() -> Path:
    for pattern in PATTERNS:
        for path in sorted(INPUT.glob(pattern)):
            if (path.parent.parent / "MANIFEST.json").is_file():
                return path
    sys.exit(f"no SpectraMind bundle (boot/kaggle-boot.sh + MANIFEST.json) under {INPUT}: attach it")


if __name__ == "__main__":
    boot = find_boot()
    print(f"booting {boot}", flush=True)
    sys.exit(subprocess.call(["bash", str(boot), *sys.argv[1:]]))
