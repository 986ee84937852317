"""Budget overshoot: the shim's interrupt -> terminate -> kill vs a naive ``subprocess.run(timeout=)``.

A stubborn command ignores SIGINT and SIGTERM and starts a grandchild that sleeps. Both ways get the
same hard deadline; we measure how long after it *any* process of the command is still alive:

- shim:  ``spectramind.shim.run_budgeted`` (own process group; SIGINT at the soft deadline, SIGTERM,
         then SIGKILL of the whole group);
- naive: ``subprocess.run(cmd, timeout=hard)``, which kills only the direct child; the grandchild
         lives on (capped here at ``--cap`` seconds of waiting).

    python bench/bench_budget.py [--soft 2] [--grace 1] [--cap 8] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spectramind.shim.budget import run_budgeted

STUBBORN = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open(sys.argv[1], "w").write(str(child.pid))
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _wait_gone(pid: int, cap: float) -> float:
    """Seconds until ``pid`` is gone (``cap`` when it outlives the wait)."""
    started = time.time()
    while _alive(pid) and time.time() - started < cap:
        time.sleep(0.005)
    return time.time()


def shim_way(soft: float, grace: float, cap: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        pidfile = Path(tmp) / "pid"
        start = time.time()
        cmd = [sys.executable, "-c", STUBBORN, str(pidfile)]
        outcome = run_budgeted(cmd, dict(os.environ), start + soft, grace, grace)
        gone = _wait_gone(int(pidfile.read_text()), cap)
        return {"hard_deadline_s": soft + 2 * grace, "overshoot_s": round(gone - outcome.hard_deadline, 4)}


def naive_way(soft: float, grace: float, cap: float) -> dict[str, float]:
    hard = soft + 2 * grace
    with tempfile.TemporaryDirectory() as tmp:
        pidfile = Path(tmp) / "pid"
        start = time.time()
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run([sys.executable, "-c", STUBBORN, str(pidfile)], timeout=hard, check=False)
        pid = int(pidfile.read_text())
        gone = _wait_gone(pid, cap)
        if _alive(pid):
            os.kill(pid, 9)
        return {"hard_deadline_s": hard, "overshoot_s": round(gone - (start + hard), 4), "capped": cap}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soft", type=float, default=2.0)
    parser.add_argument("--grace", type=float, default=1.0)
    parser.add_argument("--cap", type=float, default=8.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    shim = shim_way(args.soft, args.grace, args.cap)
    naive = naive_way(args.soft, args.grace, args.cap)
    ratio = naive["overshoot_s"] / max(shim["overshoot_s"], 1e-4)
    report = {"shim": shim, "naive": naive, "naive_over_shim": round(ratio, 1)}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"overshoot past the hard deadline: shim {shim['overshoot_s'] * 1000:.1f} ms, "
            f"naive subprocess timeout {naive['overshoot_s']:.2f} s (capped at {args.cap:g} s): "
            f"{ratio:.0f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
