"""``spectramind train +tracking=mlflow``: a real MLflow file store, offline, and weights that do not move.

Each train runs as its own process on one tiny synthetic set (4 planets, 3 epochs), as a user runs it:
tracked inside a new network namespace (``unshare -n``), tracked again, untracked (the default) and
with mlflow made unimportable: the four weights files must be byte-identical. A failed run and one the
budget stopped close their MLflow runs as what they were.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from spectramind.synth import make_dataset
from spectramind.tracking import INSTALL_HINT

pytestmark = pytest.mark.slow  # seven trains, each its own process (~20 s each on the 2-core machine)

# Runs the CLI with an audit hook that reports every attempt to resolve or reach a host.
AUDITED_CLI = """
import sys
NET = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto", "socket.sendmsg"}
def hook(event, args):
    if event in NET:
        sys.stderr.write(f"NETWORK-ATTEMPT {event} {args!r}\\n")
sys.addaudithook(hook)
from spectramind.cli import main
sys.exit(main(sys.argv[1:]))
"""
# Runs the CLI where ``import mlflow`` fails, as it does when mlflow is not installed.
NO_MLFLOW_CLI = """
import sys
sys.modules["mlflow"] = None
from spectramind.cli import main
sys.exit(main(sys.argv[1:]))
"""
# Variables under which mlflow disables its telemetry by itself: unset, so the run must do it.
CI_VARIABLES = ("PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS")


def _unshare() -> list[str] | None:
    if shutil.which("unshare") is None:
        return None
    prefix = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--map-root-user", "--net"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, check=False)
    return prefix if probe.returncode == 0 else None


@dataclass(frozen=True)
class Train:
    proc: subprocess.CompletedProcess[str]
    out: Path
    weights: Path

    @property
    def record(self) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.out / "run_hash_summary_v50.json").read_text())
        return data


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train-runs") / "data"
    make_dataset(root, n_train=4, n_test=1, airs_steps=75, fgs_steps=900, seed=3, multi_visit_every=0)
    return root


def _train(
    data: Path,
    name: str,
    *extra: str,
    script: str | None = None,
    prefix: list[str] | None = None,
    code: int = 0,
    epochs: int = 3,
    budget_s: str | None = None,
) -> Train:
    out = data.parent / name
    weights = out / "v50.pt"
    args = [
        f"data.root={data}",
        "data.chunk_steps=75",
        f"env.output_dir={out}",
        f"model.weights={weights}",
        f"model.epochs={epochs}",
        "model.hidden=8",
        *extra,
    ]
    python = [sys.executable, "-c", script] if script else [sys.executable, "-m", "spectramind.cli"]
    env = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES and not k.startswith("SPECTRAMIND_")}
    if budget_s is not None:
        env["SPECTRAMIND_BUDGET_S"] = budget_s
    proc = subprocess.run(
        [*(prefix or []), *python, "train", "--json", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=300,
    )
    assert proc.returncode == code, proc.stderr
    return Train(proc, out, weights)


@pytest.fixture(scope="module")
def offline(data: Path) -> Train:
    """Tracked, with no network at all (a new network namespace), every network call audited."""
    prefix = _unshare()
    if prefix is None:
        pytest.skip("cannot create a network namespace here (unshare needs root or user namespaces)")
    return _train(data, "offline", "+tracking=mlflow", script=AUDITED_CLI, prefix=prefix)


def test_tracked_run_is_in_the_local_store_and_in_the_run_record(
    offline: Train, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    record, summary = offline.record, json.loads(offline.proc.stdout)
    run_id = record["mlflow_run_id"]
    assert isinstance(run_id, str) and summary["mlflow_run_id"] == run_id
    store = offline.out / "mlruns"
    assert record["tracking_store"] == str(store)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow >= 3.13 refuses file stores without it
    client = MlflowClient(tracking_uri=store.as_uri())
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "spectramind-v50"
    params = run.data.params
    assert "stop_at" not in params  # the deadline is no hyperparameter (it differs every run)
    assert (params["seed"], params["epochs"], params["hidden"], params["n_train"]) == ("1337", "3", "8", "4")
    assert params["data_sha256"] == record["data_sha256"]
    weights_sha256 = record["weights_sha256"]
    assert run.data.tags["weights_sha256"] == weights_sha256 == summary["weights_sha256"]
    assert run.data.tags["config_sha256"] == record["config_sha256"]
    assert weights_sha256 == hashlib.sha256(offline.weights.read_bytes()).hexdigest()
    history = client.get_metric_history(run_id, "loss")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == [0, 1, 2]
    assert {m.value for m in history if m.step == 0} == {summary["loss_first"]}
    assert {m.value for m in history if m.step == 2} == {summary["loss_last"]}
    assert [a.path for a in client.list_artifacts(run_id)] == ["config.yaml"]
    logged = Path(client.download_artifacts(run_id, "config.yaml", str(offline.out / "dl")))
    assert logged.read_bytes() == (offline.out / ".hydra" / "config.yaml").read_bytes()
    assert "backend: mlflow" in logged.read_text()


def test_tracking_touches_no_network(offline: Train) -> None:
    """mlflow's usage telemetry resolves its host at import unless the run switches it off."""
    assert "NETWORK-ATTEMPT" not in offline.proc.stderr
    assert offline.record["exit"] == {"code": 0, "reason": "completed"}


def test_tracking_is_off_by_default(data: Path, offline: Train) -> None:
    plain = _train(data, "plain")
    assert not (plain.out / "mlruns").exists()
    assert plain.record["mlflow_run_id"] is None and plain.record["tracking_store"] is None
    assert json.loads(plain.proc.stdout)["mlflow_run_id"] is None
    assert "tracking:" not in plain.proc.stderr and "mlflow" not in plain.proc.stderr
    # Tracking on and off: the same seed gives the same weights.
    assert plain.weights.read_bytes() == offline.weights.read_bytes()
    assert plain.record["weights_sha256"] == offline.record["weights_sha256"]


def test_same_seed_gives_byte_identical_weights_with_tracking_on(data: Path, offline: Train) -> None:
    again = _train(
        data, "again", "+tracking=mlflow", "tracking.log_config=false", "tracking.log_weights=true"
    )
    assert again.record["mlflow_run_id"] != offline.record["mlflow_run_id"]
    assert again.weights.read_bytes() == offline.weights.read_bytes()
    # What to log follows the config: the weights file instead of the merged config.
    [logged] = (again.out / "mlruns").glob(f"*/{again.record['mlflow_run_id']}/artifacts/*")
    assert logged.name == "v50.pt" and logged.read_bytes() == again.weights.read_bytes()


def test_missing_mlflow_says_so_once_and_trains(data: Path, offline: Train) -> None:
    bare = _train(data, "bare", "+tracking=mlflow", script=NO_MLFLOW_CLI)
    message = f"mlflow is not installed: tracking off ({INSTALL_HINT})"
    assert bare.proc.stderr.count(message) == 1
    assert bare.proc.stderr.count("mlflow") == 1  # the message is the only mention
    assert bare.record["mlflow_run_id"] is None and not (bare.out / "mlruns").exists()
    assert bare.weights.read_bytes() == offline.weights.read_bytes()


def test_unknown_tracking_backend_is_a_usage_error(data: Path) -> None:
    out = data.parent / "bad"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "spectramind.cli",
            "train",
            f"data.root={data}",
            f"env.output_dir={out}",
            "+tracking=mlflow",
            "tracking.backend=wandb",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "unknown tracking.backend 'wandb'" in proc.stderr and "+tracking=mlflow" in proc.stderr
    assert not out.exists()  # refused before anything is written


def test_failed_training_marks_the_mlflow_run_failed(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that stops half-way is closed as FAILED in the store, not left RUNNING."""
    from mlflow.tracking import MlflowClient

    missing = data.parent / "no-data"
    failed = _train(missing, "failed", "+tracking=mlflow", code=1)
    assert "train.csv" in failed.proc.stderr
    assert not (failed.out / "run_hash_summary_v50.json").exists() and not failed.weights.exists()
    store = failed.out / "mlruns"
    [meta] = store.glob("*/*/meta.yaml")
    run_id = meta.parent.name
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    assert MlflowClient(tracking_uri=store.as_uri()).get_run(run_id).info.status == "FAILED"


def test_run_side_wheel_names_the_tracking_extra_as_requirements_tracking_in(repo: Path) -> None:
    """`pip install spectramind[tracking]` (the shipped wheel) asks for what the bundle's extra locks."""
    import tomllib

    lines = (repo / "requirements-tracking.in").read_text().splitlines()
    wanted = [line for line in lines if line and not line.startswith("#")]
    run_side = tomllib.loads((repo / "src" / "pyproject.toml").read_text())["project"]
    assert run_side["optional-dependencies"]["tracking"] == wanted == ["mlflow-skinny>=3.2"]


def test_history_past_a_thousand_epochs_is_logged_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tracking server takes 1000 metrics per batch; the file store takes a long run in one."""
    from mlflow.tracking import MlflowClient

    from spectramind.tracking import MLFLOW_ENV, TrackingSettings, start

    for key, value in MLFLOW_ENV.items():  # start() sets them; monkeypatch restores them after
        monkeypatch.setenv(key, value)
    config = tmp_path / "config.yaml"
    config.write_text("seed: 1\n")
    with start(TrackingSettings(backend="mlflow", store="store"), tmp_path) as tracker:
        tracker.log_training(
            params={"seed": 1},
            history=[1.0 / (1 + i) for i in range(1500)],
            metrics={"sigma_calibration_airs": 1.5},
            tags={"weights_sha256": "0" * 64},
            config=config,
            weights=tmp_path / "not-logged.pt",
        )
    assert tracker.store == tmp_path / "store"
    client = MlflowClient(tracking_uri=(tmp_path / "store").as_uri())
    history = sorted(client.get_metric_history(str(tracker.run_id), "loss"), key=lambda m: m.step)
    assert [m.step for m in history] == list(range(1500)) and history[-1].value == 1.0 / 1500
    assert client.get_run(str(tracker.run_id)).data.metrics["sigma_calibration_airs"] == 1.5


def test_run_stopped_by_the_budget_keeps_its_epochs_and_says_so(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget ends training early: exit 124, valid weights, every epoch run is in the store."""
    from mlflow.tracking import MlflowClient

    cut = _train(data, "budget", "+tracking=mlflow", code=124, epochs=1_000_000_000, budget_s="45")
    summary, record = json.loads(cut.proc.stdout), cut.record
    assert summary["stopped_early"] is True and record["exit"] == {"code": 124, "reason": "budget"}
    assert record["weights_sha256"] == hashlib.sha256(cut.weights.read_bytes()).hexdigest()
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=(cut.out / "mlruns").as_uri())
    run = client.get_run(str(record["mlflow_run_id"]))
    assert run.info.status == "FINISHED" and run.data.tags["stopped_early"] == "True"
    assert len(client.get_metric_history(run.info.run_id, "loss")) == summary["epochs_run"] > 0
