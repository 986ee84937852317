"""The training kernel's run inside the offline Kaggle sandbox, with the real payload.

``python -m bundler build`` → ``simulate --command`` with the command the built training kernel boots:
training reads the mounted competition data and leaves its weights in /kaggle/working. Like
test_simulate_real, the image is recreated on first use (PyPI), so this is marked ``network``/``slow``.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bundler import sandbox
from spectramind.shim.manifest import file_sha256

pytestmark = [pytest.mark.network, pytest.mark.slow]


def run(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAMIND_")}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, *args], cwd=repo, env=full, capture_output=True, text=True, timeout=900, check=False
    )


def kernel_command(kernels: Path) -> list[str]:
    """COMMAND of the built training kernel's script: what it hands to kaggle-boot.sh."""
    tree = ast.parse((kernels / "spectramind-v50-train" / "train.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "COMMAND":
            return [str(x) for x in ast.literal_eval(node.value)]
    raise AssertionError("the training kernel has no COMMAND")


def test_training_kernel_command_trains_offline_and_leaves_weights_in_working(
    repo: Path, tmp_path: Path
) -> None:
    if sandbox.unavailable():
        pytest.skip(str(sandbox.unavailable()))
    bundle, data, out = tmp_path / "dist" / "bundle", tmp_path / "data", tmp_path / "working"
    built = run(repo, "-m", "bundler", "build", "--out", str(bundle), "--json", "bundle.weights=[]")
    assert built.returncode == 0, built.stderr[-3000:]
    made = run(repo, "-m", "spectramind.cli", "make-data", f"data.root={data}", "data.n_train=4")
    assert made.returncode == 0, made.stderr[-3000:]
    command = kernel_command(tmp_path / "dist" / "kernels")
    assert command == ["spectramind", "train", "env=kaggle"]
    sim_args = ["-m", "bundler", "simulate", str(bundle), "--data", str(data), "--json"]
    sim = run(repo, *sim_args, "--out", str(out), "--budget", "600", "--command", " ".join(command))
    assert sim.returncode == 0, sim.stderr[-3000:]
    result = json.loads(sim.stdout)
    weights = out / "weights" / "v50.pt"
    assert result["reason"] == "completed" and result["submission"] is None
    assert result["weights"] == {
        "path": str(weights),
        "sha256": file_sha256(weights),
        "size": weights.stat().st_size,
    }
    assert not (out / "submission.csv").exists()
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["weights"] == "/kaggle/working/weights/v50.pt"  # as the kernel saw it
    assert summary["weights_sha256"] == file_sha256(weights) and summary["stopped_early"] is False
    # Same seed, same bytes: the sandbox's weights are the ones this machine trains from the same data.
    local = tmp_path / "local"
    here = run(
        repo,
        "-m",
        "spectramind.cli",
        *command[1:],
        env={
            "SPECTRAMIND_DATA": str(data),
            "SPECTRAMIND_OUTPUT": str(local),
            "SPECTRAMIND_BUNDLE": str(bundle),
        },
    )
    assert here.returncode == 0, here.stderr[-3000:]
    assert file_sha256(local / "weights" / "v50.pt") == file_sha256(weights)

    # Cut by the budget: the shim's soft deadline stops training; its weights are still saved and valid.
    cut = tmp_path / "working-cut"
    sim = run(
        repo,
        *sim_args,
        "--out",
        str(cut),
        "--budget",
        "120",
        "--command",
        " ".join([*command, "model.epochs=1000000000"]),
    )
    assert sim.returncode == 124, sim.stderr[-3000:]
    result = json.loads(sim.stdout)
    assert result["reason"] == "budget" and result["weights"]["sha256"] == file_sha256(
        cut / "weights" / "v50.pt"
    )
    summary = json.loads((cut / "train_summary.json").read_text())
    assert summary["stopped_early"] is True and 0 < summary["epochs_run"] < 1000000000
