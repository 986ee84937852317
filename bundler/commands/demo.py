"""``python -m bundler demo``: the main job on the embedded demo, end to end.

make data -> weights (DVC, else train) -> lock (re-lock only when out of date) -> build ->
simulate (offline sandbox, budget) -> score. Each step runs the project's own CLI as a subprocess,
exactly as a user would type it, and the summary collects their ``--json`` results.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text

from bundler.config import Settings, load
from bundler.errors import BundlerError
from bundler.output import Result, console

_DATA_MARKER = "sample_submission.csv"


@dataclass
class _Run:
    settings: Settings
    overrides: list[str]
    timings: dict[str, float] = field(default_factory=dict)

    def step(self, name: str, argv: list[str], *, want_json: bool = False, ok: tuple[int, ...] = (0,)) -> Any:
        """Run one CLI step with the demo's overrides; its progress goes to stderr, its --json result
        is returned. Every step gets the overrides here, so no step can miss them."""
        argv = [*argv, *self.overrides]
        console.print(Text.assemble(("▶ ", "bold cyan"), (name, "bold"), f"  $ {' '.join(argv)}"))
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", *argv],
            cwd=self.settings.root,
            stdout=subprocess.PIPE if want_json else sys.stderr,
            text=True,
            check=False,
        )
        elapsed = round(time.monotonic() - started, 2)
        self.timings[name] = round(self.timings.get(name, 0.0) + elapsed, 2)
        if proc.returncode not in ok:
            raise BundlerError(
                f"demo step '{name}' failed with exit {proc.returncode}",
                where=f"python -m {' '.join(argv)} (in {self.settings.root})",
                fix="read the step's error above; run that command alone to reproduce it",
            )
        console.print(Text.assemble(("✓ ", "bold green"), f"{name} ({elapsed} s)"))
        if not want_json:
            return proc.returncode
        try:
            return json.loads(proc.stdout)
        except json.JSONDecodeError as exc:
            raise BundlerError(
                f"demo step '{name}' did not print one JSON object",
                where=f"python -m {' '.join(argv)}",
                fix="a --json command must keep stdout to one JSON object; report this as a bug",
            ) from exc


def _data_root(settings: Settings) -> Path:
    return settings.path(str(settings.cfg.data.root))


def _ensure_weights(run: _Run) -> str:
    """Weights from the workspace or DVC; train when neither has them."""
    from bundler import dvc

    try:
        states = dvc.ensure_weights(run.settings.root, list(run.settings.bundle.weights))
    except BundlerError as error:
        console.print(Text(f"weights not available through DVC ({error.what}); training them instead"))
        run.step("train", ["spectramind.cli", "train"])
        return "trained"
    return ", ".join(sorted({s.state for s in states})) or "none"


def run(args: argparse.Namespace) -> Result:
    overrides = list(args.overrides)
    settings = load(overrides, args.config_dir)
    demo = _Run(settings, overrides)
    started = time.monotonic()

    data = _data_root(settings)
    if (data / _DATA_MARKER).is_file():
        console.print(Text(f"demo data present in {data} (delete it to regenerate)"))
    else:
        demo.step("make-data", ["spectramind.cli", "make-data"])
    weights = _ensure_weights(demo)

    lock_state = "up to date"
    if demo.step("lock-check", ["bundler", "lock", "--check"], ok=(0, 1)) != 0:
        demo.step("lock", ["bundler", "lock"])
        lock_state = "re-locked"

    build = demo.step("build", ["bundler", "build", "--json"], want_json=True)
    bundle = Path(build["bundle"])
    out = settings.root / "outputs" / "demo"
    sim = demo.step(
        "simulate",
        [
            "bundler", "simulate", str(bundle), "--json", "--data", str(data),
            "--budget", f"{args.budget:g}", "--out", str(out),
        ],
        want_json=True,
        ok=(0, 124),
    )  # fmt: skip
    submission = Path(sim["submission"]["path"])
    score = demo.step(
        "score",
        ["spectramind.cli", "score", "--json", "--submission", str(submission)],
        want_json=True,
    )
    total = round(time.monotonic() - started, 2)

    timings = sim.get("timings_s") or {}
    shipped = [w["filename"] for w in build.get("wheels", [])]
    data_out = {
        "bundle": {
            "path": str(bundle),
            "bundle_sha256": build.get("bundle_sha256"),
            "bytes": build.get("bytes"),
            "wheels_shipped": len(shipped),
            "skipped_in_image": len(build.get("skipped", [])),
        },
        "weights": weights,
        "lock": lock_state,
        "sandbox": {
            "exit_code": sim.get("exit_code"),
            "reason": sim.get("reason"),
            "activate_s": timings.get("activate"),  # bundle.install=site: nothing is installed at boot
            "install_s": timings.get("install"),  # bundle.install=wheels
            "run_s": timings.get("run"),
            "seconds": sim.get("seconds"),
        },
        "score": score.get("score"),
        "outputs": {"dir": sim.get("out"), "submission": str(submission), "summary": sim.get("summary")},
        "timings_s": {**demo.timings, "total": total},
    }
    size_mb = (build.get("bytes") or 0) / 1e6
    rows = [
        ("bundle", f"{bundle}  sha256 {str(build.get('bundle_sha256'))[:16]}…  {size_mb:.1f} MB"),
        ("delta", f"{len(shipped)} packages, {len(build.get('skipped', []))} skipped (already in the image)"),
        ("weights", weights),
        ("lock", lock_state),
        ("sandbox", f"exit {sim.get('exit_code')} ({sim.get('reason')}), offline, budget {args.budget:g} s"),
        (
            "boot",
            f"activate {timings['activate']} s (nothing installed)"
            if "activate" in timings
            else f"install {timings.get('install', '?')} s",
        ),
        ("run", f"{timings.get('run', '?')} s"),
        ("score", f"{score.get('score', float('nan')):.4f} (0 = reference, 1 = ideal)"),
        ("outputs", f"{sim.get('out')} (submission.csv, run_hash_summary_v50.json, v50_debug_log.md)"),
        ("total", f"{total} s"),
    ]
    return Result("demo", data=data_out, title="SpectraMind V50 demo", rows=rows)
