"""One way to run the project's own CLI as steps of a bigger job (``demo``, ``parity``).

Each step runs ``python -m ARGV`` as a subprocess, exactly as a user would type it, with the job's
overrides appended; its progress goes to stderr and, with ``want_json``, its ``--json`` result is
returned. A failing step is a `BundlerError` naming the command to rerun alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from bundler.config import Settings
from bundler.errors import BundlerError
from bundler.output import console


@dataclass
class Steps:
    settings: Settings
    overrides: list[str]
    job: str = "demo"
    timings: dict[str, float] = field(default_factory=dict)

    def step(
        self,
        name: str,
        argv: list[str],
        *,
        want_json: bool = False,
        ok: tuple[int, ...] = (0,),
        env: Mapping[str, str] | None = None,
    ) -> Any:
        """Run one CLI step with the job's overrides (every step gets them, so none can miss them)."""
        argv = [*argv, *self.overrides]
        console.print(Text.assemble(("▶ ", "bold cyan"), (name, "bold"), f"  $ {' '.join(argv)}"))
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", *argv],
            cwd=self.settings.root,
            stdout=subprocess.PIPE if want_json else sys.stderr,
            text=True,
            env={**os.environ, **env} if env else None,
            check=False,
        )
        elapsed = round(time.monotonic() - started, 2)
        self.timings[name] = round(self.timings.get(name, 0.0) + elapsed, 2)
        shown = " ".join([*(f"{k}={v}" for k, v in (env or {}).items()), "python -m", *argv])
        if proc.returncode not in ok:
            raise BundlerError(
                f"{self.job} step '{name}' failed with exit {proc.returncode}",
                where=f"{shown} (in {self.settings.root})",
                fix="read the step's error above; run that command alone to reproduce it",
            )
        console.print(Text.assemble(("✓ ", "bold green"), f"{name} ({elapsed} s)"))
        if not want_json:
            return proc.returncode
        try:
            return json.loads(proc.stdout)
        except json.JSONDecodeError as exc:
            raise BundlerError(
                f"{self.job} step '{name}' did not print one JSON object",
                where=shown,
                fix="a --json command must keep stdout to one JSON object; report this as a bug",
            ) from exc


def ensure_weights(run: Steps) -> str:
    """Weights from the workspace or DVC; train when neither has them."""
    from bundler import dvc

    try:
        states = dvc.ensure_weights(run.settings.root, list(run.settings.bundle.weights))
    except BundlerError as error:
        console.print(Text(f"weights not available through DVC ({error.what}); training them instead"))
        run.step("train", ["spectramind.cli", "train"])
        return "trained"
    return ", ".join(sorted({s.state for s in states})) or "none"
