"""``python -m bundler demo``: the main job on the embedded demo, end to end.

make data -> weights (DVC, else train) -> lock (re-lock only when out of date) -> build ->
simulate (offline sandbox, budget) -> score. Each step runs the project's own CLI as a subprocess,
exactly as a user would type it, and the summary collects their ``--json`` results.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.text import Text

from bundler.config import Settings, load
from bundler.output import Result, console
from bundler.steps import Steps, ensure_weights

_DATA_MARKER = "sample_submission.csv"


def _data_root(settings: Settings) -> Path:
    return settings.path(str(settings.cfg.data.root))


def run(args: argparse.Namespace) -> Result:
    overrides = list(args.overrides)
    settings = load(overrides, args.config_dir)
    demo = Steps(settings, overrides)
    started = time.monotonic()

    data = _data_root(settings)
    if (data / _DATA_MARKER).is_file():
        console.print(Text(f"demo data present in {data} (delete it to regenerate)"))
    else:
        demo.step("make-data", ["spectramind.cli", "make-data"])
    weights = ensure_weights(demo)

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
