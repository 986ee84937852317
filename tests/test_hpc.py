"""The hpc profile without a cluster: the top-level seed, the job's command line, torchrun, usage errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from spectramind.config import compose, env_profile
from spectramind.hpc import _torchrun_processes, first_run, job_command

REPO = Path(__file__).resolve().parent.parent


def test_hpc_profile_takes_the_run_seed_at_the_top_level(repo: Path) -> None:
    cfg = compose(["env=hpc", "seed=7"], repo / "configs")
    env = env_profile(cfg)
    assert (env.name, env.seed, env.deterministic) == ("hpc", 7, True)
    assert env_profile(compose(["env=hpc"], repo / "configs")).seed == 1337


def test_train_job_writes_its_weights_into_its_own_folder(tmp_path: Path) -> None:
    argv = job_command("train", ["env=hpc", "seed=2"], tmp_path / "3", "v50.pt", None)
    assert argv[:4] == [sys.executable, "-m", "spectramind.cli", "train"]
    assert argv[4:] == [
        "env=hpc",
        "seed=2",
        f"env.output_dir={tmp_path / '3'}",
        f"model.weights={tmp_path}/3/v50.pt",
    ]
    predict = job_command("predict", ["env=hpc"], tmp_path / "0", "v50.pt", None)
    assert not any(item.startswith("model.weights=") for item in predict)  # predict reads the given weights


def test_torchrun_job_starts_one_process_per_gpu(tmp_path: Path) -> None:
    on = OmegaConf.create({"hpc": {"torchrun": True, "nproc_per_node": None}})
    assert _torchrun_processes(on, 4) == 4
    assert _torchrun_processes(on, None) == 1
    assert _torchrun_processes(OmegaConf.create({"hpc": {"torchrun": True, "nproc_per_node": 2}}), 8) == 2
    assert _torchrun_processes(OmegaConf.create({"hpc": {"torchrun": False}}), 4) is None
    argv = job_command("train", ["env=hpc"], tmp_path, "v50.pt", 4)
    assert Path(argv[0]).name == "torchrun" and Path(argv[0]).is_file()  # the venv's own torchrun
    assert argv[1:6] == ["--standalone", "--nproc-per-node=4", "-m", "spectramind.cli", "train"]


def _spectramind(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAMIND_")}
    env["SPECTRAMIND_CONFIG_DIR"] = str(REPO / "configs")
    return subprocess.run(
        [sys.executable, "-m", "spectramind.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_multirun_without_the_slurm_launcher_is_a_usage_error(tmp_path: Path) -> None:
    proc = _spectramind("train", "--multirun", "env.seed=1,2", "--json", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    error = json.loads(proc.stdout)
    assert error["error"] == "ConfigError" and "env=hpc" in error["fix"]
    assert not list(tmp_path.iterdir())  # nothing was submitted or written


@pytest.mark.parametrize("override", ["seed=1,2", "nosuchgroup=x"])
def test_multirun_with_a_bad_override_names_it(tmp_path: Path, override: str) -> None:
    proc = _spectramind("train", "env=default", "-m", override, cwd=tmp_path)
    assert proc.returncode == 2
    assert "bad configuration override" in proc.stderr and override.split("=", maxsplit=1)[0] in proc.stderr


def test_first_run_of_a_sweep_keeps_every_key_with_its_first_value() -> None:
    overrides = ["env=hpc", "seed=1,2,3", "+extra=a,b", "model.lr=range(1,3)", "data.bins=[1,2]", "~predict"]
    expected = ["env=hpc", "seed=1", "+extra=a", "model.lr=1", "data.bins=[1,2]", "~predict"]
    assert first_run(overrides) == expected
    assert first_run(["data=glob(*)"]) is None  # a glob sweep needs the config to list its options


def test_torchrun_jobs_span_one_node(tmp_path: Path) -> None:
    proc = _spectramind("train", "env=hpc", "-m", "hpc.torchrun=true", "hydra.launcher.nodes=2", cwd=tmp_path)
    assert proc.returncode == 2
    assert "one node" in proc.stderr


def test_slurm_up_is_shellcheck_clean(repo: Path) -> None:
    proc = subprocess.run(
        ["shellcheck", str(repo / "bin" / "slurm-up.sh")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout
