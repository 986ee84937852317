"""``spectramind train env=hpc --multirun`` on a real single-node Slurm cluster (bin/slurm-up.sh).

Each test submits real jobs through Hydra's submitit launcher and reads their fate back from Slurm
(sacct) and from the job folders; the jobs train on a tiny synthetic set for a few epochs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spectramind.synth import make_dataset
from tests.slurm_support import require_slurm, sacct_states

pytestmark = [pytest.mark.slurm]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    require_slurm()
    root = tmp_path_factory.mktemp("slurm-data") / "data"
    make_dataset(root, n_train=4, n_test=1, airs_steps=75, fgs_steps=900, seed=5, chunk_steps=75)
    yield root


def _args(data: Path, sweep: Path, *extra: str) -> list[str]:
    return [
        "train",
        "env=hpc",
        "--multirun",
        f"data.root={data}",
        "data.chunk_steps=75",
        "model.epochs=5",
        "model.hidden=8",
        f"hydra.sweep.dir={sweep}",
        "hydra.launcher.timeout_min=10",
        "--json",
        *extra,
    ]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAMIND_")}
    return {**env, "SPECTRAMIND_CONFIG_DIR": str(REPO / "configs")}


def _spectramind(args: list[str], cwd: Path) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "spectramind.cli", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def _controller_boot_time() -> str:
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=True).stdout
    return next(line for line in config.splitlines() if line.startswith("BOOT_TIME"))


def test_slurm_up_is_a_no_op_when_the_cluster_is_up() -> None:
    require_slurm()
    before = _controller_boot_time()
    proc = subprocess.run(
        ["bash", str(REPO / "bin" / "slurm-up.sh")], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "is up (node" in proc.stderr and "starting" not in proc.stderr
    assert _controller_boot_time() == before  # slurmctld was not restarted


@pytest.fixture(scope="module")
def seeds(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real multirun of three jobs, seeds 1, 2 and 1 again."""
    tmp = tmp_path_factory.mktemp("seeds")
    code, result, stderr = _spectramind(_args(data, tmp / "sweep", "seed=1,2,1"), tmp)
    assert code == 0, stderr
    return {**result, "sweep": tmp / "sweep"}


@pytest.mark.slow
def test_multirun_submits_one_slurm_job_per_seed(seeds: dict[str, Any]) -> None:
    sweep, jobs = seeds["sweep"], seeds["jobs"]
    assert [job["num"] for job in jobs] == [0, 1, 2]
    assert [job["state"] for job in jobs] == ["COMPLETED"] * 3
    ids = [job["slurm_job_id"] for job in jobs]
    assert len(set(ids)) == 3
    assert {k: v for k, v in sacct_states(ids[0]).items() if k in ids} == dict.fromkeys(ids, "COMPLETED")
    weights = []
    for job, seed in zip(jobs, (1, 2, 1), strict=True):
        out = Path(job["output_dir"])
        assert out == sweep / str(job["num"])
        summary = json.loads((out / "train_summary.json").read_text())
        assert summary["determinism"]["seed"] == seed
        record = json.loads((out / "run_hash_summary_v50.json").read_text())  # each job's own run record
        assert record["weights_sha256"] == summary["weights_sha256"] and record["seeds"]["seed"] == seed
        assert f"seed={seed}" in (out / ".hydra" / "overrides.yaml").read_text()
        assert "Job completed successfully" in Path(job["log"]).with_suffix(".out").read_text()
        weights.append((out / "v50.pt").read_bytes())
    assert weights[0] == weights[2]  # the same seed reproduces the weights byte for byte
    assert weights[0] != weights[1]  # another seed trains another model


@pytest.mark.slow
def test_torchrun_job_shards_predict_over_two_processes(
    data: Path, seeds: dict[str, Any], tmp_path: Path
) -> None:
    weights = Path(seeds["jobs"][0]["output_dir"]) / "v50.pt"
    args = _args(data, tmp_path / "sweep", "hpc.torchrun=true,false", "hpc.nproc_per_node=2")
    args[0] = "predict"
    args += ["hydra.launcher.cpus_per_task=2", f"model.weights={weights}", "predict.flush_every_s=0"]
    code, result, stderr = _spectramind(args, tmp_path)
    assert code == 0, stderr
    sharded, single = (Path(job["output_dir"]) for job in result["jobs"])
    log = Path(result["jobs"][0]["log"]).read_text()
    assert "torchrun --standalone --nproc-per-node=2" in log
    assert "distributed: rank 1/2 (gloo)" in log
    assert (sharded / "submission.csv").read_bytes() == (single / "submission.csv").read_bytes()


@pytest.mark.usefixtures("data")
def test_failed_job_is_reported_with_its_slurm_state_and_log(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-data"
    code, error, stderr = _spectramind(_args(missing, tmp_path / "sweep"), tmp_path)
    assert code == 1
    assert error["error"] == "JobsFailed"
    [job] = error["jobs"]
    assert job["state"] == "FAILED"
    assert sacct_states(job["slurm_job_id"])[job["slurm_job_id"]] == "FAILED"
    assert f"FAILED, log {job['log']}" in error["what"] and job["log"] in stderr
    log = Path(job["log"]).read_text()
    assert str(missing) in log and "job 0: spectramind train exited with 1" in log


def test_cancelled_job_is_reported_cancelled_with_its_log(data: Path, tmp_path: Path) -> None:
    name = f"spectramind-cancel-{uuid.uuid4().hex[:8]}"
    args = _args(data, tmp_path / "sweep", "model.epochs=100000000", f"hydra.launcher.name={name}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "spectramind.cli", *args],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sweep = tmp_path / "sweep"
    try:
        deadline = time.monotonic() + 300
        while not any("job 0: " in p.read_text() for p in sweep.glob(".submitit/*/*_log.err")):
            assert time.monotonic() < deadline and proc.poll() is None, "the job never started training"
            time.sleep(1)
        subprocess.run(["scancel", "-n", name], check=True)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            subprocess.run(["scancel", "-n", name], check=False)
    assert proc.returncode == 1, stderr
    error = json.loads(stdout)
    [job] = error["jobs"]
    assert job["state"] == "CANCELLED"
    assert sacct_states(job["slurm_job_id"])[job["slurm_job_id"]] == "CANCELLED"
    assert f"CANCELLED, log {job['log']}" in error["what"]
    assert "CANCELLED" in Path(job["log"]).read_text()  # slurmstepd's note that the job was cancelled
    survivors = subprocess.run(["pgrep", "-f", str(sweep)], capture_output=True, text=True, check=False)
    assert survivors.stdout == ""  # Slurm ended the training process with its job
