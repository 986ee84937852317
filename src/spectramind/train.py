"""``spectramind train``: calibrate the train planets, fit the refiner, write ``model.weights``."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from omegaconf import DictConfig

from spectramind import tracking
from spectramind.dataio import list_planets, read_adc, read_table
from spectramind.errors import BudgetExhausted, DataError
from spectramind.features import PlanetFeatures, planet_features
from spectramind.runtime import ENV_BUNDLE, RunPaths, log
from spectramind.shim import atomic_write, read_manifest
from spectramind.shim.manifest import file_sha256
from spectramind.shim.records import determinism_env, write_records

if TYPE_CHECKING:
    from spectramind.config import EnvProfile
    from spectramind.model import SpectrumRefiner

FGS_WEIGHT = 57.846
# Set by SIGINT/SIGTERM (the budget's signals, or Ctrl-C): training stops after the current epoch.
_STOP = threading.Event()


def _stopping(stop_at: float) -> bool:
    return _STOP.is_set() or time.time() >= stop_at


def extract(root: Path, split: str, planet_ids: list[str], data_cfg: DictConfig) -> list[PlanetFeatures]:
    adc = read_adc(root)
    out = []
    for planet_id in planet_ids:
        out.append(
            planet_features(
                root,
                split,
                planet_id,
                chunk_steps=int(data_cfg.get("chunk_steps", 375)),
                bin_steps=int(data_cfg.get("bin_steps", 5)),
                adc=adc,
            )
        )
    return out


def calibrate_planets(root: Path, ids: list[str], data_cfg: DictConfig) -> list[PlanetFeatures]:
    """The train planets' features; under torchrun each rank calibrates its share and every rank gets
    all of them, in the planets' order (so the weights match a single-process run byte for byte)."""
    from spectramind import distributed

    ctx = distributed.init(enabled=False)
    mine = distributed.shard(ids, ctx)
    log(f"train: calibrating {len(mine)} of {len(ids)} planets from {root} (rank {ctx.rank}/{ctx.world})")
    parts = distributed.all_gather(ctx, extract(root, "train", mine, data_cfg))
    distributed.shutdown(ctx)
    return distributed.unshard(parts)


def fit(
    features: list[PlanetFeatures],
    targets: np.ndarray,
    *,
    hidden: int,
    kernel: int,
    epochs: int,
    lr: float,
    seed: int,
    weight_decay: float = 1e-4,
    stop_at: float = math.inf,
) -> tuple[SpectrumRefiner, list[float]]:
    """Full-batch Adam on the weighted Gaussian NLL; returns the model and the loss history.

    Stops early, after the epoch under way, at ``stop_at`` (unix time) or on SIGINT/SIGTERM.
    """
    import torch

    from spectramind.model import SpectrumRefiner, gaussian_nll

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # a tiny model: one thread is fastest on a busy CPU and layout-independent
    model = SpectrumRefiner(hidden, kernel)
    depth = torch.tensor(np.stack([f.depth for f in features]), dtype=torch.float32)
    sigma = torch.tensor(np.stack([f.sigma for f in features]), dtype=torch.float32)
    target = torch.tensor(targets, dtype=torch.float32)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = []
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        if _stopping(stop_at):
            break
        optimiser.zero_grad()
        # Fresh noise at the measured sigma each epoch: the model sees many noisy realisations of
        # each planet, so it learns to denoise instead of memorising one realisation (8-20 planets).
        strength = torch.rand(depth.shape[0], 1, generator=generator)
        noisy = depth + strength * sigma * torch.randn(depth.shape, generator=generator)
        mu, sig = model(noisy, sigma * torch.sqrt(1.0 + strength**2))
        loss = gaussian_nll(mu, sig, target, FGS_WEIGHT)
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
        history.append(float(loss.detach()))
    model.eval()
    return model, history


def calibrate_sigma(
    model: SpectrumRefiner,
    features: list[PlanetFeatures],
    targets: np.ndarray,
    *,
    folds: int = 2,
    **kwargs: Any,
) -> tuple[float, float]:
    """Set the model's sigma multipliers to the held-out RMS z-score (FGS1, AIRS), by k-fold refits."""
    import torch

    if len(features) < 2 * folds:
        return 1.0, 1.0
    z_fgs, z_airs = [], []
    for k in range(folds):
        held = list(range(k, len(features), folds))
        kept = [i for i in range(len(features)) if i % folds != k]
        sub_model, _ = fit([features[i] for i in kept], targets[kept], **kwargs)
        with torch.no_grad():
            depth = torch.tensor(np.stack([features[i].depth for i in held]), dtype=torch.float32)
            sigma = torch.tensor(np.stack([features[i].sigma for i in held]), dtype=torch.float32)
            mu, sig = sub_model(depth, sigma)
        z = (torch.tensor(targets[held], dtype=torch.float32) - mu) / sig
        z_fgs.append(z[:, 0])
        z_airs.append(z[:, 1:].reshape(-1))
    scales = [float(torch.cat(part).pow(2).mean().sqrt().clamp(0.5, 20.0)) for part in (z_fgs, z_airs)]
    model.set_sigma_calibration(scales[0], scales[1])
    return scales[0], scales[1]


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGINT/SIGTERM stop training after the current epoch (with the weights reached saved) while
    this lasts; the previous handlers come back afterwards."""
    _STOP.clear()
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = [signal.signal(sig, lambda *_: _STOP.set()) for sig in signals]
    try:
        yield
    finally:
        for sig, handler in zip(signals, previous, strict=True):
            signal.signal(sig, handler)


def main(argv: list[str]) -> int:
    from spectramind.cli import command_parser
    from spectramind.config import compose, env_profile, find_config_dir, save_snapshot
    from spectramind.runtime import print_json, run_paths

    args = command_parser("train").parse_intermixed_args(argv)
    as_json, argv = bool(args.json), list(args.overrides)
    started = time.time()
    config_dir = find_config_dir()
    cfg = compose(argv, config_dir)
    paths = run_paths(cfg, config_dir)
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: the other ranks only calibrate their share
        calibrate_planets(paths.data, read_table(paths.data / "train.csv", width=283)[0], cfg.data)
        return 0
    env = env_profile(cfg)
    # From a bundle (read-only) training writes its weights under the output dir (/kaggle/working).
    weights = paths.output / str(cfg.model.weights) if os.environ.get(ENV_BUNDLE) else paths.weights
    track = tracking.settings(cfg)
    save_snapshot(cfg, argv, paths.output)
    # The tracker starts (and imports mlflow) before the seeds are set: it cannot move the weights.
    with tracking.start(track, paths.output) as tracker, _stop_on_signals():
        summary = _train(cfg, paths, env, weights=weights, started=started, tracker=tracker)
    code = BudgetExhausted.exit_code if summary["stopped_early"] else 0
    atomic_write(paths.output / "train_summary.json", json.dumps(summary, indent=2, sort_keys=True).encode())
    record = _run_record(
        argv, env, paths=paths, summary=summary, started=started, code=code, store=tracker.store
    )
    write_records(paths.output, record)
    log(f"train: loss {summary['loss_first']:.4f} -> {summary['loss_last']:.4f}; weights {weights}")
    if summary["stopped_early"]:
        log(f"train: stopped at the time budget after {summary['epochs_run']} of {cfg.model.epochs} epochs")
    if as_json:
        print_json(summary)
    return code


def _train(
    cfg: DictConfig,
    paths: RunPaths,
    env: EnvProfile,
    *,
    weights: Path,
    started: float,
    tracker: tracking.NullTracker,
) -> dict[str, Any]:
    """Calibrate the train planets, fit (up to the deadline), measure the held-out sigmas, save the
    weights, log the run to the tracker; returns the summary."""
    from spectramind.config import config_hash
    from spectramind.model import save
    from spectramind.runtime import apply_determinism, deadline

    determinism = apply_determinism(env.seed, env.deterministic, env.threads)
    ids, targets = read_table(paths.data / "train.csv", width=283)
    planets = list_planets(paths.data, "train")
    if planets != ids:
        raise DataError(
            "train.csv and the train/ folders disagree",
            where=str(paths.data / "train.csv"),
            fix="every train.csv row needs a train/<planet_id>/ folder",
        )
    features = calibrate_planets(paths.data, ids, cfg.data)
    m = cfg.model
    params: dict[str, Any] = {
        "hidden": int(m.hidden),
        "kernel": int(m.get("kernel", 9)),
        "epochs": int(m.epochs),
        "lr": float(m.lr),
        "seed": env.seed,
        "weight_decay": float(m.get("weight_decay", 1e-4)),
        "stop_at": deadline(env.budget_s - env.safety_margin_s, now=started),
    }
    log(f"train: fitting {params['epochs']} epochs (stops early, weights saved, at the deadline or a signal)")
    model, history = fit(features, targets, **params)
    if not history:
        raise BudgetExhausted(
            "the time budget ran out before the first training epoch; no weights were written",
            where=f"{len(ids)} planets from {paths.data}",
            fix="raise the budget (SPECTRAMIND_BUDGET_S or env.budget_s) or train on fewer planets",
        )
    meta = {"seed": env.seed, "n_train": len(ids), "epochs": len(history)}
    save(model, weights, meta)  # valid weights from here on, whatever stops the run next
    sigma_scale = (1.0, 1.0)
    stopped = len(history) < params["epochs"]
    if not stopped:
        calibrated = calibrate_sigma(model, features, targets, folds=int(m.get("sigma_folds", 2)), **params)
        stopped = _stopping(params["stop_at"])  # refits cut short calibrate nothing: keep the saved ones
        if not stopped:
            sigma_scale = calibrated
            save(model, weights, meta)
    log(f"train: held-out sigma multipliers FGS1 {sigma_scale[0]:.3f}, AIRS {sigma_scale[1]:.3f}")
    summary = {
        "weights": str(weights),
        "weights_sha256": file_sha256(weights),
        "epochs_run": len(history),
        "stopped_early": stopped,
        "n_train": len(ids),
        "loss_first": history[0] if history else None,
        "loss_last": history[-1] if history else None,
        "sigma_calibration": list(sigma_scale),
        "seconds": round(time.time() - started, 3),
        "config_sha256": config_hash(cfg),
        "data_sha256": file_sha256(paths.data / "train.csv"),
        "determinism": determinism,
        "mlflow_run_id": tracker.run_id,
    }
    tracker.log_training(
        params={k: v for k, v in params.items() if k != "stop_at"}
        | {"n_train": len(ids), "data_sha256": summary["data_sha256"]},
        history=history,
        metrics={"sigma_calibration_fgs1": sigma_scale[0], "sigma_calibration_airs": sigma_scale[1]},
        tags={
            k: str(summary[k]) for k in ("weights_sha256", "config_sha256", "data_sha256", "stopped_early")
        },
        config=paths.output / ".hydra" / "config.yaml",
        weights=weights,
    )
    return summary


def _git_commit(project: Path) -> str | None:
    """The bundle's commit (MANIFEST.json) in a kernel, else the checkout's HEAD (+dirty), else None."""
    bundle = os.environ.get(ENV_BUNDLE)
    if bundle:
        try:
            return read_manifest(Path(bundle)).get("git_commit")
        except (OSError, ValueError):
            return None
    git = ["git", "-C", str(project)]
    try:
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _run_record(
    argv: list[str],
    env: EnvProfile,
    *,
    paths: RunPaths,
    summary: dict[str, Any],
    started: float,
    code: int,
    store: Path | None,
) -> dict[str, Any]:
    """``run_hash_summary_v50.json`` of a train run: the boot shim's field names, plus the training's."""
    import torch

    return {
        "schema": 2,
        "command": ["spectramind", "train", *argv],
        "profile": env.name,
        "profile_settings": {
            "name": env.name,
            "seed": env.seed,
            "deterministic": env.deterministic,
            "threads": env.threads,
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "bundle": os.environ.get(ENV_BUNDLE),
        "git_commit": _git_commit(paths.project),
        "config_sha256": summary["config_sha256"],
        "data": str(paths.data),
        "data_sha256": summary["data_sha256"],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "seeds": {"PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED"), "seed": env.seed},
        "determinism": summary["determinism"],
        "determinism_env": determinism_env(),
        "timings_s": {"total": round(time.time() - started, 4)},
        "exit": {"code": code, "reason": "budget" if code else "completed"},
        "weights": summary["weights"],
        "weights_sha256": summary["weights_sha256"],
        "mlflow_run_id": summary["mlflow_run_id"],
        "tracking_store": str(store) if store else None,
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
