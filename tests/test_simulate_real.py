"""End to end on the real thing: ``python -m bundler build`` → ``simulate`` with the real payload.

The sandbox recreates the kaggle-sim-cp311 image (torch 2.13.0+cpu from /opt/wheels, the rest from
PyPI on first use, cached after), so this test is marked ``network`` and ``slow``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bundler import sandbox

pytestmark = [pytest.mark.network, pytest.mark.slow]


def run(repo: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAMIND_")}
    return subprocess.run(
        [sys.executable, *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_built_bundle_boots_offline_with_the_real_payload(repo: Path, tmp_path: Path) -> None:
    if sandbox.unavailable():
        pytest.skip(str(sandbox.unavailable()))
    bundle, data, out = tmp_path / "bundle", tmp_path / "data", tmp_path / "working"
    built = run(repo, "-m", "bundler", "build", "--out", str(bundle), "--json", "bundle.weights=[]")
    assert built.returncode == 0, built.stderr[-3000:]
    made = run(
        repo, "-m", "spectramind.cli", "make-data", f"data.root={data}", "data.n_train=4", "data.n_test=2"
    )
    assert made.returncode == 0, made.stderr[-3000:]
    sim = run(
        repo,
        "-m",
        "bundler",
        "simulate",
        str(bundle),
        "--data",
        str(data),
        "--out",
        str(out),
        "--budget",
        "600",
        "--json",
    )
    assert sim.returncode == 0, sim.stderr[-3000:]
    result = json.loads(sim.stdout)
    # bundle.weights=[]: the payload predicts without model weights and says so (DEGRADED)
    assert result["reason"] == "degraded" and result["submission"]["valid"] is True
    with (out / "submission.csv").open() as fh, (data / "sample_submission.csv").open() as sh:
        rows, sample = list(csv.reader(fh)), list(csv.reader(sh))
    assert rows[0] == sample[0] and [r[0] for r in rows] == [r[0] for r in sample]
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert "install" not in summary and summary["activate"]["pyc"] == "unchecked-hash"
    assert summary["torch"].startswith("2.13.0")  # from the image: torch is never in the delta
    assert "spectramind" in summary["activate"]["scripts"]
    assert summary["determinism"]["torch_deterministic"] is True  # spectramind.runtime, applied
    assert summary["bundle_sha256"] == json.loads((bundle / "MANIFEST.json").read_text())["bundle_sha256"]
    assert summary["verification"]["ok"] is True
    assert "weights" in summary["degraded"]
    # torchrun with 2 processes: its workers see the same activated delta; same bytes as one process
    out2 = tmp_path / "working-torchrun"
    torchrun = "python -m torch.distributed.run --standalone --nproc_per_node 2 -m spectramind.cli predict"
    torchrun += " env=kaggle"
    sim2 = run(
        repo,
        *("-m", "bundler", "simulate", str(bundle), "--data", str(data), "--out", str(out2)),
        *("--budget", "600", "--json", "--command", torchrun),
    )
    assert sim2.returncode == 0, sim2.stderr[-3000:]
    assert "distributed: rank 1/2" in sim2.stderr  # the second worker ran the payload from site/
    assert (out2 / "submission.csv").read_bytes() == (out / "submission.csv").read_bytes()
