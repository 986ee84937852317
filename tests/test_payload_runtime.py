"""Runtime contract: determinism switches, path precedence, deadline, import hygiene, weight bytes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spectramind.config import compose
from spectramind.features import PlanetFeatures
from spectramind.predict import CALIBRATION, FULL, PRIOR, CostModel
from spectramind.runtime import apply_determinism, deadline, run_paths


def test_apply_determinism_reports_what_it_set() -> None:
    import torch

    record = apply_determinism(123, deterministic=True, threads=1)
    assert record["seed"] == 123
    assert record["torch_deterministic"] is True and torch.are_deterministic_algorithms_enabled()
    assert record["cudnn_benchmark"] is False and record["cudnn_deterministic"] is True
    assert record["torch_threads"] == 1
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == record["cublas_workspace_config"]
    first = torch.rand(3)
    apply_determinism(123, deterministic=True, threads=1)
    assert torch.equal(first, torch.rand(3))


def test_paths_follow_the_precedence(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SPECTRAMIND_DATA", "SPECTRAMIND_OUTPUT", "SPECTRAMIND_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    configs = repo / "configs"
    cfg = compose([], configs)
    paths = run_paths(cfg, configs)
    assert paths.data == repo / "data/demo" and paths.output == repo / "outputs"
    assert paths.weights == repo / "weights/v50.pt"
    kaggle = run_paths(compose(["+env=kaggle", "+data=nominal", "+model=v50"], configs), configs)
    assert kaggle.data == Path("/kaggle/input/ariel-data-challenge-2025")  # env.data_dir beats data.root
    assert kaggle.output == Path("/kaggle/working")
    monkeypatch.setenv("SPECTRAMIND_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("SPECTRAMIND_OUTPUT", str(tmp_path / "o"))
    monkeypatch.setenv("SPECTRAMIND_BUNDLE", str(tmp_path / "b"))
    env_paths = run_paths(compose(["env=kaggle"], configs), configs)
    assert (env_paths.data, env_paths.output) == (tmp_path / "d", tmp_path / "o")
    assert env_paths.weights == tmp_path / "b" / "weights/v50.pt"


def test_deadline_prefers_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPECTRAMIND_DEADLINE", raising=False)
    monkeypatch.delenv("SPECTRAMIND_BUDGET_S", raising=False)
    assert deadline(100.0, now=1000.0) == 1100.0
    monkeypatch.setenv("SPECTRAMIND_BUDGET_S", "30")
    assert deadline(100.0, now=1000.0) == 1030.0
    monkeypatch.setenv("SPECTRAMIND_DEADLINE", "1005.5")
    assert deadline(100.0, now=1000.0) == 1005.5


def test_cost_model_degrades_before_overrunning() -> None:
    costs = CostModel()
    assert costs.choose(100.0, 1, 10, 10, reserve=5.0) == FULL  # nothing measured yet
    assert costs.choose(4.0, 1, 10, 10, reserve=5.0) == PRIOR  # only the reserve is left
    costs.calib_s += [2.0, 2.0]
    costs.refine_s += [1.0]
    assert costs.choose(100.0, 1, 10, 10, reserve=5.0) == FULL  # 10*2 + 10*1 fits
    assert costs.choose(25.0, 1, 10, 10, reserve=5.0) == CALIBRATION  # skip refinement
    assert costs.choose(6.0, 1, 10, 10, reserve=5.0) == PRIOR  # not even one calibration fits
    assert costs.choose(8.0, 2, 10, 10, reserve=5.0) == PRIOR  # a two-visit planet costs twice
    guessed = CostModel(guess_calib_s=20.0)  # before any measurement: the size-based guess
    assert guessed.choose(15.0, 1, 1, 1, reserve=5.0) == PRIOR
    assert guessed.choose(40.0, 1, 1, 1, reserve=5.0) == FULL


def test_package_import_is_light() -> None:
    # the boot shim imports spectramind.runtime before anything heavy may be installed
    code = (
        "import sys, spectramind, spectramind.cli, spectramind.runtime\n"
        "print(sorted(m for m in ('torch', 'numpy', 'omegaconf', 'hydra', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _features(n: int, seed: int) -> tuple[list[PlanetFeatures], np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = 0.01 + 0.003 * rng.random((n, 1)) + 1e-4 * rng.standard_normal((n, 283))
    sigma = np.full((n, 283), 3e-4)
    depth = truth * 0.95 + sigma * rng.standard_normal((n, 283))
    return [PlanetFeatures(str(i), depth[i], sigma[i], 1) for i in range(n)], truth


def test_training_is_bitwise_reproducible(tmp_path: Path) -> None:
    from spectramind.model import load, refine, save
    from spectramind.train import fit

    feats, truth = _features(6, 0)
    blobs = []
    for name in ("a.pt", "b.pt"):
        model, history = fit(feats, truth, hidden=8, kernel=5, epochs=30, lr=3e-3, seed=5)
        assert history[-1] < history[0]
        save(model, tmp_path / name, {"seed": 5})
        blobs.append((tmp_path / name).read_bytes())
    assert blobs[0] == blobs[1]
    mu, sigma = refine(load(tmp_path / "a.pt"), feats[0].depth, feats[0].sigma)
    assert mu.shape == sigma.shape == (283,) and (sigma > 0).all()
