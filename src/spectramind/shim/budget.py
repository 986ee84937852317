"""The time plan and the budgeted run: SIGINT at the soft deadline, then SIGTERM, then SIGKILL."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .base import EXIT_BUDGET, BootError, env_float

DEFAULT_BUDGET_S, DEFAULT_MARGIN_S = 32400.0, 900.0


def read_flat_yaml(path: Path) -> dict[str, str]:
    """Top-level ``key: scalar`` pairs of a simple YAML file (comments stripped); {} if absent."""
    out: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return out
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z_][\w-]*):\s*(.*?)\s*(?:#.*)?$", line)
        if m and m.group(2):
            out[m.group(1)] = m.group(2).strip("'\"")
    return out


def profile_name(command: list[str]) -> str:
    for arg in command:
        m = re.match(r"^\+{0,2}env=(\S+)$", arg)
        if m:
            return m.group(1)
    return os.environ.get("SPECTRAMIND_PROFILE", "kaggle")


class Budget:
    """The time plan: everything in unix seconds, counted from kernel start (``start``).

    (Plain classes in the shim, not dataclasses: importing dataclasses costs boot ~12 ms.)
    """

    def __init__(
        self, start: float, budget_s: float, margin_s: float, grace_int_s: float, grace_term_s: float
    ):
        self.start, self.budget_s, self.margin_s = start, budget_s, margin_s
        self.grace_int_s, self.grace_term_s = grace_int_s, grace_term_s

    @property
    def soft(self) -> float:  # SIGINT: the command should have flushed its submission by now
        return self.start + self.budget_s - self.margin_s

    @property
    def hard(self) -> float:  # SIGKILL: nothing of the command survives past this
        return self.soft + self.grace_int_s + self.grace_term_s

    def left(self) -> float:
        return self.soft - time.time()

    def record(self, ended: float) -> dict[str, float]:
        return {
            "budget_s": self.budget_s,
            "safety_margin_s": self.margin_s,
            "grace_int_s": self.grace_int_s,
            "grace_term_s": self.grace_term_s,
            "start": self.start,
            "soft_deadline": self.soft,
            "hard_deadline": self.hard,
            "used_s": round(ended - self.start, 3),
            "left_s": round(self.start + self.budget_s - ended, 3),
        }


def load_budget(profile: dict[str, str], started: float, where: str = "the env profile") -> Budget:
    """The budget of ``profile`` under the environment's knobs (a bad value is a `BootError`).

    ``started``: when boot began (kaggle-boot.sh sets SPECTRAMIND_BOOT_START at kernel start).
    """
    budget = env_float("budget_s", DEFAULT_BUDGET_S, raw=profile.get("budget_s"), where=where, minimum=1)
    margin = env_float("safety_margin_s", DEFAULT_MARGIN_S, raw=profile.get("safety_margin_s"), where=where)
    budget = env_float("SPECTRAMIND_BUDGET_S", budget, minimum=1)
    margin = env_float("SPECTRAMIND_SAFETY_MARGIN_S", margin)
    margin = min(margin, budget / 2)  # a budget of seconds keeps half of it for the command
    grace_int = env_float("SPECTRAMIND_GRACE_INT_S", min(60.0, margin / 3))
    grace_term = env_float("SPECTRAMIND_GRACE_TERM_S", min(30.0, margin / 6))
    return Budget(started, budget, margin, grace_int, grace_term)


def boot_start(now: float) -> tuple[float, str | None]:
    """SPECTRAMIND_BOOT_START, else ``now``; a bad value falls back to ``now`` and says why."""
    try:
        return env_float("SPECTRAMIND_BOOT_START", now, minimum=1.0), None
    except BootError as exc:
        return now, exc.what


class RunOutcome:
    def __init__(self, code: int, reason: str, hard_deadline: float = 0.0) -> None:
        self.code = code
        self.reason = reason  # completed | degraded | failed | budget | not-started
        self.seconds = 0.0
        self.signals: list[dict[str, Any]] = []
        self.ended = 0.0
        self.hard_deadline = hard_deadline

    @property
    def overshoot_s(self) -> float | None:
        """How far past the hard deadline (the SIGKILL time) the process group lived; None if not killed."""
        return round(self.ended - self.hard_deadline, 4) if self.signals else None

    def record(self, error: str | None) -> dict[str, Any]:
        return {
            "code": self.code,
            "reason": self.reason,
            "signals": self.signals,
            "overshoot_s": self.overshoot_s,
            "error": error,
        }


def run_budgeted(
    cmd: list[str],
    env: dict[str, str],
    soft: float,
    grace_int: float,
    grace_term: float,
    *,
    on_start: Callable[[int], None] | None = None,
) -> RunOutcome:
    """Run ``cmd`` in its own process group; SIGINT at ``soft``, then SIGTERM, then SIGKILL.

    ``on_start(pgid)`` is called once the group exists (boot's verifier may kill it from elsewhere).
    """
    started = time.time()
    try:
        proc = subprocess.Popen(cmd, env=env, start_new_session=True)
        if on_start is not None:
            on_start(proc.pid)
    except OSError as exc:
        raise BootError(
            f"cannot start {cmd[0]!r}: {exc}",
            where=" ".join(cmd),
            fix="check the command; console scripts live in the environment's bin/",
        ) from exc
    schedule = [
        (soft, signal.SIGINT),
        (soft + grace_int, signal.SIGTERM),
        (soft + grace_int + grace_term, signal.SIGKILL),
    ]
    outcome = RunOutcome(code=0, reason="completed", hard_deadline=schedule[-1][0])
    forward = _forward_signals(proc.pid)
    try:
        for when, sig in schedule:
            try:
                outcome.code = proc.wait(timeout=max(0.0, when - time.time()))
                break
            except subprocess.TimeoutExpired:
                killpg(proc.pid, sig)
                outcome.signals.append({"signal": sig.name, "at": round(time.time() - started, 3)})
        else:
            outcome.code = proc.wait()
    finally:
        killpg(proc.pid, signal.SIGKILL)  # stragglers of the group (workers, children) go too
        for sig, previous in forward.items():
            signal.signal(sig, previous)
    outcome.ended = time.time()
    outcome.seconds = round(outcome.ended - started, 3)
    if outcome.signals:
        outcome.reason, outcome.code = "budget", EXIT_BUDGET
    elif outcome.code == EXIT_BUDGET:  # the payload stopped itself at its deadline (DESIGN §4)
        outcome.reason = "budget"
    elif outcome.code != 0:
        outcome.reason = "failed"
        if outcome.code < 0:  # killed by a signal from elsewhere: the shell's 128+N convention
            outcome.code = 128 - outcome.code
    return outcome


def killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _forward_signals(pgid: int) -> dict[signal.Signals, Any]:
    """While the command runs, a SIGINT/SIGTERM sent to boot goes to the command's group too."""
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda s, _f: killpg(pgid, signal.Signals(s)))
    return previous
