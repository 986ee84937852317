"""A bundle built with ``bundle.extras=[tracking]`` tracks a train run inside the offline Kaggle sandbox.

The build fetches the extra's wheels from PyPI and the sandbox recreates the simulated image on first
use, so this test is marked ``network`` and ``slow``; the run itself has no network at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bundler import sandbox
from spectramind.synth import make_dataset

pytestmark = [pytest.mark.network, pytest.mark.slow]


def run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAMIND_")}
    return subprocess.run(
        [sys.executable, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=1200, check=False
    )


def test_bundle_with_the_tracking_extra_tracks_training_in_the_sandbox(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if sandbox.unavailable():
        pytest.skip(str(sandbox.unavailable()))
    bundle, data, out = tmp_path / "bundle", tmp_path / "data", tmp_path / "working"
    built = run(
        repo,
        "-m",
        "bundler",
        "build",
        "--out",
        str(bundle),
        "--json",
        "bundle.weights=[]",
        "bundle.extras=[tracking]",
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert [e["name"] for e in json.loads(built.stdout)["extras"]] == ["tracking"]
    make_dataset(data, n_train=4, n_test=1, airs_steps=75, fgs_steps=900, seed=3, multi_visit_every=0)
    command = (
        "spectramind train env=kaggle +tracking=mlflow model.weights=/kaggle/working/v50.pt "
        "model.epochs=3 model.hidden=8 data.chunk_steps=75"
    )
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
        "900",
        "--json",
        "--command",
        command,
    )
    assert sim.returncode == 0, sim.stderr[-3000:]
    assert json.loads(sim.stdout)["reason"] == "completed"
    assert "mlflow is not installed" not in sim.stderr
    trained = json.loads((out / "train_summary.json").read_text())
    run_id = trained["mlflow_run_id"]
    assert isinstance(run_id, str)
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=(out / "mlruns").as_uri())
    found = client.get_run(run_id)
    assert found.info.status == "FINISHED"
    assert found.data.tags["weights_sha256"] == trained["weights_sha256"]
    assert sorted(m.step for m in client.get_metric_history(run_id, "loss")) == [0, 1, 2]
