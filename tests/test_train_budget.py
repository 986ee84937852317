"""``spectramind train`` as the training kernel runs it: weights in the output dir, valid whenever it ends.

Real training on a tiny synthetic dataset, in subprocesses; the budget's signals are real signals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spectramind.shim.manifest import file_sha256


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train-data") / "data"
    proc = subprocess.run(
        [sys.executable, "-m", "spectramind.cli", "make-data", f"data.root={root}", "data.n_train=4"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return root


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAMIND_")}
    bundle = tmp_path / "bundle"  # as boot sets it: the bundle is read-only, training must not write there
    bundle.mkdir(exist_ok=True)
    bundle.chmod(0o555)
    env.update(SPECTRAMIND_BUNDLE=str(bundle), SPECTRAMIND_OUTPUT=str(tmp_path / "working"), **extra)
    return env


def _train(data: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "spectramind.cli", "train", f"data.root={data}", *overrides]


def _check_weights(out: Path) -> dict[str, object]:
    from spectramind.model import load

    summary = json.loads((out / "train_summary.json").read_text())
    weights = out / "weights" / "v50.pt"
    assert summary["weights"] == str(weights)
    assert summary["weights_sha256"] == file_sha256(weights)
    load(weights)  # a real, loadable model
    return dict(summary)


def test_training_from_a_bundle_writes_weights_to_the_output_dir(data: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        _train(data, "model.epochs=20"), env=_env(tmp_path), capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    summary = _check_weights(tmp_path / "working")
    assert summary["epochs_run"] == 20 and summary["stopped_early"] is False
    assert list((tmp_path / "bundle").iterdir()) == []


def test_training_stops_at_the_deadline_with_valid_weights(data: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, SPECTRAMIND_BUDGET_S="20")
    proc = subprocess.run(
        _train(data, "model.epochs=1000000000"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 124, proc.stderr
    summary = _check_weights(tmp_path / "working")
    assert 0 < int(str(summary["epochs_run"])) < 1000000000 and summary["stopped_early"] is True
    assert "stopped at the time budget after" in proc.stderr


def test_sigterm_during_training_saves_the_weights_reached(data: Path, tmp_path: Path) -> None:
    with subprocess.Popen(
        _train(data, "model.epochs=1000000000"),
        env=_env(tmp_path),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "train: fitting" in line:
                break
        time.sleep(3)  # epochs of the tiny model take milliseconds: some have run by now
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        assert proc.wait(timeout=120) == 124, rest
    summary = _check_weights(tmp_path / "working")
    assert summary["stopped_early"] is True and int(str(summary["epochs_run"])) > 0


def test_no_epoch_before_the_deadline_writes_no_weights(data: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, SPECTRAMIND_DEADLINE="1.0")  # long past
    proc = subprocess.run(_train(data), env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 124
    assert "before the first training epoch" in proc.stderr
    assert not (tmp_path / "working" / "weights").exists()


def test_training_gives_back_the_signal_handlers_it_borrowed() -> None:
    """In-process train (tests, notebooks) must leave Ctrl-C as it found it, and a new run unstopped."""
    from spectramind import train

    before = signal.getsignal(signal.SIGINT)
    with train._stop_on_signals():
        assert signal.getsignal(signal.SIGINT) is not before
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert train._STOP.is_set()  # the signal stops training instead of raising
    assert signal.getsignal(signal.SIGINT) is before
    with train._stop_on_signals():
        assert not train._STOP.is_set()
