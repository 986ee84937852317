"""Lock against the real Kaggle image: ``requirements.in`` for ``target=kaggle-cp312``, whose manifest
(``configs/images/kaggle-cpu-2026-06.json``) lists 873 distributions. Goal: warm lock <= 10 s.

One cold run fills uv's cache (PyPI), then ``--runs`` warm runs of the real CLI
(``python -m bundler lock --json``, process start included) are timed; the lock is written to a
temp file, the checkout's ``requirements.lock`` is left alone.

    python bench/bench_lock_image.py [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TARGET = "kaggle-cp312"
GOAL_S = 10.0


def _lock(out: Path) -> tuple[float, dict[str, Any]]:
    cmd = [sys.executable, "-m", "bundler", "lock", "--out", str(out), "--json", f"target={TARGET}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"lock failed (exit {proc.returncode}):\n{proc.stderr}")
    data: dict[str, Any] = json.loads(proc.stdout)
    return seconds, data


def bench_lock_image(runs: int = 3) -> dict[str, Any]:
    """Cold once, then ``runs`` warm locks; the median warm wall time against the goal."""
    with tempfile.TemporaryDirectory(prefix="bench-lock-image-") as tmp:
        out = Path(tmp) / "requirements.lock"
        cold_s, _ = _lock(out)
        warm = [_lock(out) for _ in range(runs)]
    median = statistics.median(s for s, _ in warm)
    last = warm[-1][1]
    report = last["report"]
    return {
        "target": TARGET,
        "image": last["image"],
        "image_distributions": len(
            json.loads((REPO / "configs/images" / f"{last['image']}.json").read_text())["distributions"]
        ),
        "pins": last["count"],
        "kept_at_image_version": len(report["kept"]),
        "cold_s": round(cold_s, 2),
        "warm_s": [round(s, 2) for s, _ in warm],
        "warm_median_s": round(median, 2),
        "goal_s": GOAL_S,
        "meets_goal": median <= GOAL_S,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args()
    result = bench_lock_image(args.runs)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(
            f"lock target={TARGET} against {result['image']} ({result['image_distributions']} distributions): "
            f"warm median {result['warm_median_s']} s (goal <= {GOAL_S:g} s), cold {result['cold_s']} s",
            file=sys.stderr,
        )
    return 0 if result["meets_goal"] else 1


if __name__ == "__main__":
    sys.exit(main())
