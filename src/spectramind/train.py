"""``spectramind train``: calibrate the train planets, fit the refiner, write ``model.weights``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from omegaconf import DictConfig

from spectramind.dataio import list_planets, read_adc, read_table
from spectramind.errors import DataError
from spectramind.features import PlanetFeatures, planet_features
from spectramind.runtime import log, write_atomic

if TYPE_CHECKING:
    from spectramind.model import SpectrumRefiner

FGS_WEIGHT = 57.846


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
) -> tuple[SpectrumRefiner, list[float]]:
    """Full-batch Adam on the weighted Gaussian NLL; returns the model and the loss history."""
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
    model.train()
    for _ in range(epochs):
        optimiser.zero_grad()
        mu, sig = model(depth, sigma)
        loss = gaussian_nll(mu, sig, target, FGS_WEIGHT)
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
        history.append(float(loss.detach()))
    model.eval()
    return model, history


def main(argv: list[str]) -> int:
    from spectramind.config import compose, config_hash, env_profile, find_config_dir, save_snapshot
    from spectramind.model import save
    from spectramind.runtime import apply_determinism, run_paths

    started = time.time()
    config_dir = find_config_dir()
    cfg = compose(argv, config_dir)
    paths = run_paths(cfg, config_dir)
    env = env_profile(cfg)
    determinism = apply_determinism(env.seed, env.deterministic, env.threads)
    save_snapshot(cfg, argv, paths.output)
    ids, targets = read_table(paths.data / "train.csv", width=283)
    planets = list_planets(paths.data, "train")
    if planets != ids:
        raise DataError(
            "train.csv and the train/ folders disagree",
            where=str(paths.data / "train.csv"),
            fix="every train.csv row needs a train/<planet_id>/ folder",
        )
    log(f"train: calibrating {len(ids)} planets from {paths.data}")
    features = extract(paths.data, "train", ids, cfg.data)
    m = cfg.model
    model, history = fit(
        features,
        targets,
        hidden=int(m.hidden),
        kernel=int(m.get("kernel", 9)),
        epochs=int(m.epochs),
        lr=float(m.lr),
        seed=env.seed,
        weight_decay=float(m.get("weight_decay", 1e-4)),
    )
    save(model, paths.weights, {"seed": env.seed, "n_train": len(ids), "epochs": int(m.epochs)})
    summary = {
        "weights": str(paths.weights),
        "n_train": len(ids),
        "loss_first": history[0] if history else None,
        "loss_last": history[-1] if history else None,
        "seconds": round(time.time() - started, 3),
        "config_sha256": config_hash(cfg),
        "determinism": determinism,
    }
    write_atomic(paths.output / "train_summary.json", json.dumps(summary, indent=2, sort_keys=True).encode())
    log(f"train: loss {summary['loss_first']:.4f} -> {summary['loss_last']:.4f}; weights {paths.weights}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
