"""Boot around a training run (what the training kernel starts): no submission, weights and records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spectramind.shim.submit import NO_SUBMISSION
from tests.support.bundles import make_bundle
from tests.test_boot import Kit, boot


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    return Kit(tmp_path_factory.mktemp("kit"))


def test_training_boot_writes_no_submission_not_even_the_sample(kit: Kit, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "input" / "spectramind-test-bundle", kit.spec())
    proc, out = boot(kit, tmp_path, bundle, "spectramind", "train", "env=kaggle")
    assert proc.returncode == 0, proc.stderr
    assert "fake cli: ['train', 'env=kaggle']" in proc.stdout  # the command ran, through the shim
    assert not (out / "submission.csv").exists()  # a training kernel must not pass for a submission
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert summary["exit"]["reason"] == "completed"
    assert summary["submission"]["source"] == "none" and summary["submission"]["problem"] == NO_SUBMISSION
    assert "fallback" not in summary["timings_s"]  # no fallback prediction either
    assert summary["command_record"] == {"mlflow_run_id": "fake-run"}  # train's own record is kept


def test_a_previous_runs_record_is_not_taken_for_this_commands(kit: Kit, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "input" / "b", kit.spec())
    (tmp_path / "working").mkdir()
    (tmp_path / "working" / "run_hash_summary_v50.json").write_text('{"mlflow_run_id": "stale"}')
    proc, out = boot(kit, tmp_path, bundle, "spectramind", "predict", "env=kaggle")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert "command_record" not in summary and summary["exit"]["reason"] == "completed"


def test_training_boot_removes_a_submission_the_command_left(kit: Kit, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "input" / "b", kit.spec())
    (tmp_path / "working").mkdir()
    (tmp_path / "working" / "submission.csv").write_text("planet_id,wl_1\n1,0.5\n")
    proc, out = boot(kit, tmp_path, bundle, "spectramind", "train", "env=kaggle")
    assert proc.returncode == 0, proc.stderr
    assert not (out / "submission.csv").exists()
