"""``spectramind train`` under torchrun (the hpc profile's ``hpc.torchrun=true``): each rank calibrates
its share of the planets, rank 0 fits and writes; the weights match a single-process run byte for byte.
Real torchrun, two CPU processes (gloo)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_train_budget import _env, _train


@pytest.mark.slow
def test_torchrun_training_gives_the_single_process_weights_and_one_record(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = tmp_path_factory.mktemp("dist-data") / "data"
    made = subprocess.run(
        [sys.executable, "-m", "spectramind.cli", "make-data", f"data.root={data}", "data.n_train=5"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun is not None
    runs = {
        "single": _train(data, "model.epochs=15"),
        "torchrun": [
            torchrun, "--standalone", "--nproc-per-node", "2", "-m", "spectramind.cli",
            *_train(data, "model.epochs=15")[3:],
        ],
    }  # fmt: skip
    outs = {}
    for name, argv in runs.items():
        (tmp_path / name).mkdir()
        env = _env(tmp_path / name, OMP_NUM_THREADS="1")
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outs[name] = (tmp_path / name / "working", proc.stderr)
    (single, _), (dist, log) = outs["single"], outs["torchrun"]
    assert "calibrating 3 of 5 planets" in log and "calibrating 2 of 5 planets" in log  # both ranks worked
    weights = Path("weights") / "v50.pt"
    assert (dist / weights).read_bytes() == (single / weights).read_bytes()
    record = json.loads((dist / "run_hash_summary_v50.json").read_text())
    single_summary = json.loads((single / "train_summary.json").read_text())
    assert record["weights_sha256"] == single_summary["weights_sha256"]
    assert sorted(p.name for p in dist.iterdir()) == sorted(p.name for p in single.iterdir())  # one set
