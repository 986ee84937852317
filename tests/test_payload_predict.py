"""End to end on a tiny synthetic set: train, predict (full / calibration / fallback), score.

Covers the quality bar (model > calibration baseline > reference), byte-identical reruns, the
budget, SIGTERM, bad planets, and torch.distributed with 2 CPU processes (marked slow).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from spectramind import predict, train
from spectramind.errors import DataError
from spectramind.score import read_submission, score_files
from spectramind.submission import prior
from spectramind.synth import make_dataset

REPO = Path(__file__).resolve().parent.parent
N_TEST = 3


@dataclass(frozen=True)
class Run:
    root: Path
    weights: Path
    tmp: Path

    def overrides(self, out: Path, *extra: str) -> list[str]:
        return [
            f"data.root={self.root}",
            f"env.output_dir={out}",
            f"model.weights={self.weights}",
            "predict.flush_every_s=0",
            *extra,
        ]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAMIND_")}
        return {**env, "SPECTRAMIND_CONFIG_DIR": str(REPO / "configs")}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "SPECTRAMIND_DATA",
        "SPECTRAMIND_OUTPUT",
        "SPECTRAMIND_BUNDLE",
        "SPECTRAMIND_BUDGET_S",
        "SPECTRAMIND_DEADLINE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SPECTRAMIND_CONFIG_DIR", str(REPO / "configs"))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("e2e")
    root = tmp / "data"
    make_dataset(root, n_train=8, n_test=N_TEST, airs_steps=375, fgs_steps=4500, seed=3, multi_visit_every=9)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPECTRAMIND_CONFIG_DIR", str(REPO / "configs"))
        for var in ("SPECTRAMIND_DATA", "SPECTRAMIND_OUTPUT", "SPECTRAMIND_BUNDLE"):
            mp.delenv(var, raising=False)
        weights = tmp / "weights" / "v50.pt"
        assert (
            train.main([f"data.root={root}", f"env.output_dir={tmp / 'train'}", f"model.weights={weights}"])
            == 0
        )
    yield Run(root, weights, tmp)


@pytest.fixture(scope="module")
def full(run: Run) -> Path:
    """One full-mode prediction, shared by the tests that compare against it."""
    out = run.tmp / "out-full"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPECTRAMIND_CONFIG_DIR", str(REPO / "configs"))
        assert predict.main(run.overrides(out)) == 0
    return out


def _score(run: Run, out: Path) -> float:
    return score_files(out / "submission.csv", run.root / "test_labels.csv", run.root / "train.csv").score


def test_model_beats_calibration_and_reference(run: Run, full: Path) -> None:
    scores = {"full": _score(run, full)}
    for mode in ("calibration", "fallback"):
        out = run.tmp / f"out-{mode}"
        assert predict.main(run.overrides(out, f"predict.mode={mode}")) == 0
        scores[mode] = _score(run, out)
    print(f"scores: {scores}")
    assert scores["fallback"] < 0.05  # the train prior is (about) the metric's reference level
    assert scores["full"] > 0.25, scores  # fails if the model falls back to the reference level
    assert scores["full"] > scores["calibration"] + 0.15, scores
    summary = json.loads((run.tmp / "out-full" / "predict_summary.json").read_text())
    assert summary["levels"] == {"full": N_TEST, "calibration": 0, "prior": 0}
    assert (run.tmp / "out-full" / ".hydra" / "config.yaml").is_file()


def test_predict_twice_is_byte_identical(run: Run, full: Path) -> None:
    out = run.tmp / "twice"
    assert predict.main(run.overrides(out)) == 0
    assert (out / "submission.csv").read_bytes() == (full / "submission.csv").read_bytes()


def test_fallback_needs_no_torch_and_uses_the_train_prior(run: Run) -> None:
    out = run.tmp / "fallback"
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any torch import now fails
        "from spectramind.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code, "predict", *run.overrides(out, "predict.mode=fallback")],
        env=run.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 30
    ids, mu, sigma = read_submission(out / "submission.csv")
    expected = prior(run.root / "train.csv")
    assert len(ids) == N_TEST
    assert abs(mu[0] - expected.mean).max() < 1e-9 and abs(sigma[-1] - expected.sigma).max() < 1e-9


def test_no_budget_left_writes_the_prior_and_exits_124(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPECTRAMIND_BUDGET_S", "1000")
    monkeypatch.setenv("SPECTRAMIND_DEADLINE", str(time.time() + 2))  # the deadline wins over the budget
    out = run.tmp / "budget"
    assert predict.main(run.overrides(out)) == 124
    summary = json.loads((out / "predict_summary.json").read_text())
    assert summary["levels"]["prior"] == N_TEST and summary["exit_code"] == 124
    _, mu, _ = read_submission(out / "submission.csv")
    assert abs(mu - prior(run.root / "train.csv").mean).max() < 1e-9


def test_sigterm_flushes_a_valid_submission(run: Run) -> None:
    out = run.tmp / "sigterm"
    with subprocess.Popen(
        [sys.executable, "-m", "spectramind.cli", "predict", *run.overrides(out)],
        env=run.env(),
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "planets, mode full" in line:  # handlers are installed, the planet loop starts
                break
        proc.send_signal(signal.SIGSTOP)
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGCONT)
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == 124, rest
    ids, _, sigma = read_submission(out / "submission.csv")
    assert len(ids) == N_TEST and (sigma > 0).all()
    assert json.loads((out / "predict_summary.json").read_text())["interrupted"] == "SIGTERM"


def test_a_missing_planet_keeps_the_prior_or_raises(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    root = run.tmp / "with-missing"
    (root / "test").mkdir(parents=True)
    for item in run.root.iterdir():
        if item.is_file():
            shutil.copy(item, root / item.name)
    first = sorted((run.root / "test").iterdir())[0]
    (root / "test" / first.name).symlink_to(first)
    with (root / "sample_submission.csv").open("a") as fh:
        fh.write("999," + ",".join(["0.01"] * 283 + ["0.001"] * 283) + "\n")
    lines = (root / "sample_submission.csv").read_text().splitlines()
    (root / "sample_submission.csv").write_text("\n".join([lines[0], lines[1], lines[-1]]) + "\n")
    out = run.tmp / "missing"
    args = [f"data.root={root}", f"env.output_dir={out}", f"model.weights={run.weights}"]
    assert predict.main(args) == 0
    assert "planet 999 keeps the prior: planet 999: folder is missing" in capsys.readouterr().err
    ids, _, _ = read_submission(out / "submission.csv")
    assert ids == [first.name, "999"]
    with pytest.raises(DataError, match="planet 999: folder is missing"):
        predict.main([*args, "predict.on_error=raise"])


@pytest.mark.slow
def test_torchrun_two_processes_match_single_process(run: Run, full: Path) -> None:
    out = run.tmp / "torchrun"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "spectramind.cli",
        "predict",
        *run.overrides(out),
    ]
    env = {**run.env(), "OMP_NUM_THREADS": "1"}
    with subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as proc:
        try:
            _, stderr = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # torchrun's workers too
            raise
    assert proc.returncode == 0, stderr[-3000:]
    assert "rank 1/2 (gloo)" in stderr
    assert (out / "submission.csv").read_bytes() == (full / "submission.csv").read_bytes()
    summary = json.loads((out / "predict_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["levels"]["full"] == N_TEST


def test_every_payload_command_can_emit_json(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    """--json: one JSON object on stdout (human progress stays on stderr)."""
    from spectramind.cli import main

    out = run.tmp / "json"
    assert main(["predict", "--json", *run.overrides(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["levels"]["full"] == N_TEST
    assert result["submission"] == str(out / "submission.csv")

    assert main(["predict", *run.overrides(out / "fb", "predict.mode=fallback"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["planets"] == N_TEST

    data = run.tmp / "json-data"
    assert main(["make-data", "--json", f"data.root={data}", "data.n_train=2", "data.n_test=1"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert (made["n_train"], made["n_test"], made["data"]) == (2, 1, str(data))

    weights = run.tmp / "json-weights.pt"
    args = [
        f"data.root={data}",
        f"env.output_dir={out / 'train'}",
        f"model.weights={weights}",
        "model.epochs=2",
    ]
    assert main(["train", "--json", *args]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["weights"] == str(weights)
    assert weights.is_file()


def test_prediction_without_model_weights_is_marked_degraded(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once a run without weights ran calibration-only and was recorded as plainly "completed"."""
    out = run.tmp / "no-weights"
    missing = run.tmp / "nowhere" / "v50.pt"
    assert predict.main([*run.overrides(out), f"model.weights={missing}"]) == 0  # the submission is used
    assert "WARNING degraded run" in capsys.readouterr().err
    [line] = (out / predict.DEGRADED_NAME).read_text().splitlines()
    mark = json.loads(line)
    assert mark["command"] == "predict" and "model weights are missing" in mark["reason"]
    assert str(missing) in mark["reason"]
    summary = json.loads((out / "predict_summary.json").read_text())
    assert summary["degraded"] == mark["reason"] and summary["exit_code"] == 0
    assert summary["levels"] == {"full": 0, "calibration": N_TEST, "prior": 0}
    # The next run with weights (or a mode that asks for less) clears the mark.
    assert predict.main(run.overrides(out)) == 0
    assert not (out / predict.DEGRADED_NAME).exists()
    assert json.loads((out / "predict_summary.json").read_text())["degraded"] is None
    assert predict.main([*run.overrides(out, "predict.mode=calibration"), f"model.weights={missing}"]) == 0
    assert not (out / predict.DEGRADED_NAME).exists()
