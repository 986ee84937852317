"""What every part of the boot shim shares: names, exit codes, the error, the log, atomic writes.

The shim runs inside the Kaggle kernel before the bundle's packages are active, so this package
imports nothing outside the standard library (a test checks it).
"""

from __future__ import annotations

import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path

EXIT_OK, EXIT_ERROR, EXIT_VERIFY, EXIT_BUDGET = 0, 1, 3, 124
DEFAULT_INPUT = "/kaggle/input"
DEFAULT_OUTPUT = "/kaggle/working"
DEFAULT_COMMAND = ("spectramind", "predict", "env=kaggle")
COMPETITION = "ariel-data-challenge-2025"
SUMMARY_NAME = "run_hash_summary_v50.json"
DEBUG_LOG_NAME = "v50_debug_log.md"
SUBMISSION_NAME = "submission.csv"
DEGRADED_NAME = "DEGRADED"  # the payload writes it when it completed without what it needed (weights)
# The kernel the build generates names the bundle it was built with; boot refuses any other.
EXPECT_ENV = "SPECTRAMIND_BUNDLE_SHA256"


class BootError(Exception):
    """A boot failure: what failed, where, how to fix it, and the exit code (0/1/2/3/124)."""

    def __init__(self, what: str, *, where: str = "", fix: str = "", code: int = EXIT_ERROR) -> None:
        self.what, self.where, self.fix, self.code = what, where, fix, code
        super().__init__(what)

    def render(self) -> str:
        lines = [f"ERROR {self.what}"]
        lines += [f"  where: {self.where}"] * bool(self.where) + [f"  fix:   {self.fix}"] * bool(self.fix)
        return "\n".join(lines)


def log(message: str) -> None:
    print(f"[boot {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to a temp file beside ``path``, then rename it over ``path``.

    The one atomic writer of the project (the build side imports it too): readers see the old file
    or the new one, never half of either.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).chmod(mode)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def canonical(name: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def env_float(
    name: str, default: float, *, minimum: float = 0.0, raw: str | None = None, where: str = "environment"
) -> float:
    """A finite number of seconds ``>= minimum`` from the environment, or ``raw`` from ``where``.

    ``default`` when unset or empty; ``nan``, ``inf``, words and values below ``minimum`` are errors.
    """
    text = (os.environ.get(name, "") if raw is None else raw).strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < minimum:
        raise BootError(
            f"{name}={text!r} is not a finite number of seconds >= {minimum:g}",
            where=where,
            fix=f"set {name} to seconds, e.g. 3600" + (", or unset it" if where == "environment" else ""),
        )
    return value


def version_satisfies(installed: str, pinned: str) -> bool:
    """PEP 440 ``==`` for the cases that matter: an installed 2.13.0+cpu satisfies a pin 2.13.0."""
    a, b = installed.strip().lower().lstrip("v"), pinned.strip().lower().lstrip("v")
    if a == b or ("+" not in b and a.split("+", 1)[0] == b):
        return True
    return "+" not in b and bool(_trim(a)) and _trim(a) == _trim(b)


def _trim(version: str) -> str:
    """2.0 == 2.0.0: trailing zero components do not count."""
    return re.sub(r"(\.0)+$", "", version.split("+", 1)[0])
