"""Offline experiment tracking for ``spectramind train``: a local MLflow store, or nothing.

``tracking=none`` (the default) gives `NullTracker`, which records nothing. ``+tracking=mlflow`` logs
the run to an MLflow file store under the output directory (``<output>/mlruns``) through
``MlflowClient``: no server, no network (telemetry is switched off before mlflow is imported). When
mlflow is not installed the run says so once and goes on untracked.

Tracking never touches the model: `start` runs before the seeds are set and everything else is
logged after the weights are written, so the same seed gives the same weights with tracking on or off.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from omegaconf import DictConfig

from spectramind.errors import ConfigError
from spectramind.runtime import log

BACKENDS = ("none", "mlflow")
INSTALL_HINT = "pip install .[tracking]"
# Set before mlflow is imported: no usage telemetry (it resolves a host at import otherwise), no
# hint printed for coding agents, and the file store (the only backend mlflow-skinny runs without a
# server or SQLAlchemy) opted in, as mlflow 3.13 and later require.
MLFLOW_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_AGENT_HINT": "1",
    "MLFLOW_ALLOW_FILE_STORE": "true",
}


@dataclass(frozen=True)
class TrackingSettings:
    """The ``tracking`` config group (``configs/tracking/*.yaml``)."""

    backend: str = "none"
    store: str = "mlruns"  # the MLflow file store, relative to the run's output directory
    experiment: str = "spectramind-v50"
    run_name: str = "train"
    log_config: bool = True  # the merged config (.hydra/config.yaml) as an artifact
    log_weights: bool = False  # a copy of the weights file as an artifact


def settings(cfg: DictConfig) -> TrackingSettings:
    """The checked ``tracking`` group (``none`` when a config directory has no such group)."""
    from spectramind.config import typed

    node = cfg.get("tracking")
    found = typed(TrackingSettings, node if node is not None else {}, "tracking")
    if found.backend not in BACKENDS:
        raise ConfigError(
            f"unknown tracking.backend '{found.backend}'",
            where="configs/tracking/",
            fix=f"use one of {', '.join(BACKENDS)} (e.g. +tracking=mlflow)",
        )
    return found


class NullTracker:
    """Tracking off: nothing is recorded and the run id is None."""

    run_id: str | None = None
    store: Path | None = None

    def log_training(
        self,
        *,
        params: dict[str, Any],
        history: list[float],
        metrics: dict[str, float],
        tags: dict[str, str],
        config: Path,
        weights: Path,
    ) -> None:
        """Record nothing."""

    def finish(self, ok: bool) -> None:
        """Record nothing."""

    def __enter__(self) -> NullTracker:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish(ok=kind is None)


class MlflowTracker(NullTracker):
    """One MLflow run in a local file store, written through ``MlflowClient`` (no global state)."""

    def __init__(self, store: Path, found: TrackingSettings) -> None:
        from mlflow.tracking import MlflowClient

        self.store, self.settings, self.finished = store, found, False
        self.client = MlflowClient(tracking_uri=store.as_uri())
        experiment = self.client.get_experiment_by_name(found.experiment)
        experiment_id = (
            experiment.experiment_id if experiment else self.client.create_experiment(found.experiment)
        )
        self.run_id = self.client.create_run(experiment_id, run_name=found.run_name).info.run_id

    def log_training(
        self,
        *,
        params: dict[str, Any],
        history: list[float],
        metrics: dict[str, float],
        tags: dict[str, str],
        config: Path,
        weights: Path,
    ) -> None:
        """Params and tags; ``history`` as one metric per epoch (step = epoch); the chosen artifacts."""
        from mlflow.entities import Metric, Param, RunTag

        run_id, stamp = str(self.run_id), int(time.time() * 1000)
        points = [Metric("loss", float(v), stamp, epoch) for epoch, v in enumerate(history)]
        points += [Metric(key, float(v), stamp, 0) for key, v in sorted(metrics.items())]
        self.client.log_batch(  # the file store takes any number in one batch (a server: 1000)
            run_id,
            metrics=points,
            params=[Param(key, str(value)) for key, value in sorted(params.items())],
            tags=[RunTag(key, value) for key, value in sorted(tags.items())],
        )
        for wanted, path in ((self.settings.log_config, config), (self.settings.log_weights, weights)):
            if wanted:
                self.client.log_artifact(run_id, str(path))

    def finish(self, ok: bool) -> None:
        if not self.finished:
            self.finished = True
            self.client.set_terminated(str(self.run_id), "FINISHED" if ok else "FAILED")


def start(found: TrackingSettings, output: Path) -> NullTracker:
    """The run's tracker: MLflow when asked for and installed, else one that records nothing."""
    if found.backend == "none":
        return NullTracker()
    os.environ.update(MLFLOW_ENV)
    try:
        import mlflow  # noqa: F401 -- only to learn whether it is installed
    except ImportError:
        log(f"mlflow is not installed: tracking off ({INSTALL_HINT})")
        return NullTracker()
    store = Path(found.store).expanduser()
    store = (store if store.is_absolute() else output / store).resolve()
    tracker = MlflowTracker(store, found)
    log(f"tracking: MLflow run {tracker.run_id} in {store}")
    return tracker
