"""The V50 spectrum refiner: a small 1-D convolutional network over the AIRS wavelength axis.

Inputs per planet are the calibration-only depths and their uncertainties. The network predicts
each AIRS depth as ``scale(wl) * (white + 1e-4 * conv(...))``: ``white`` is the planet's
inverse-variance mean AIRS depth, ``scale`` a low-order polynomial in wavelength learned across
planets (it absorbs instrument systematics such as stray light), and the convolution denoises the
spectral shape. FGS1 gets its own learned scale. Sigmas come from a second output channel,
multiplied by factors measured on held-out planets (a model is always over-confident on the
planets it was trained on).
Weights are saved as a key-sorted state dict, so the same seed and data give the same bytes.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spectramind.errors import SpectraMindError
from spectramind.shim import atomic_write

SCALE = 1e-4  # network units: 100 ppm
FORMAT = "spectramind-v50"
N_AIRS = 282
POLY = 5


class SpectrumRefiner(nn.Module):
    def __init__(self, hidden: int = 32, kernel: int = 9) -> None:
        super().__init__()
        self.hidden, self.kernel = hidden, kernel
        pad = kernel // 2
        self.net = nn.Sequential(
            nn.Conv1d(5, hidden, kernel, padding=pad),
            nn.GELU(),
            nn.Conv1d(hidden, hidden, kernel, padding=2 * pad, dilation=2),
            nn.GELU(),
            nn.Conv1d(hidden, 2, 1),
        )
        self.poly = nn.Parameter(torch.zeros(POLY))
        self.fgs = nn.Parameter(torch.zeros(2))  # FGS1: log-scale of the depth, log-scale of sigma
        self.sigma_bias = nn.Parameter(torch.tensor(-0.5))
        # Held-out sigma multipliers (FGS1, AIRS) set by `spectramind.train.calibrate_sigma`.
        self.register_buffer("sigma_calibration", torch.ones(2))
        x = torch.linspace(-1.0, 1.0, N_AIRS)
        self.register_buffer("basis", torch.stack([x**k for k in range(POLY)]), persistent=False)

    def set_sigma_calibration(self, fgs: float, airs: float) -> None:
        self.sigma_calibration = torch.tensor([fgs, airs])

    def forward(self, depth: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``depth``/``sigma``: (batch, 283) in absolute units; returns mean and sigma, same shape."""
        airs_d, airs_s = depth[:, 1:], sigma[:, 1:]
        weight = 1.0 / airs_s.clamp_min(1e-7) ** 2
        white = (airs_d * weight).sum(dim=1, keepdim=True) / weight.sum(dim=1, keepdim=True)
        basis = torch.as_tensor(self.basis).to(depth.dtype)
        x = basis[1].expand_as(airs_d)
        fgs_gap = ((depth[:, :1] - white) / SCALE).expand_as(airs_d)
        channels = torch.stack(
            [(airs_d - white) / SCALE, airs_s / SCALE, torch.log(airs_s / SCALE), x, fgs_gap], dim=1
        )
        out = self.net(channels)
        scale = 1.0 + self.poly @ basis
        airs_mu = scale * (white + SCALE * out[:, 0])
        airs_sigma = SCALE * (nn.functional.softplus(out[:, 1] + self.sigma_bias) + 0.05)
        fgs_mu = depth[:, :1] * torch.exp(self.fgs[0])
        fgs_sigma = sigma[:, :1] * torch.exp(self.fgs[1]) + 1e-6
        calibration = torch.as_tensor(self.sigma_calibration).to(depth.dtype)
        sigmas = torch.cat([fgs_sigma * calibration[0], airs_sigma * calibration[1]], dim=1)
        return torch.cat([fgs_mu, airs_mu], dim=1), sigmas


def gaussian_nll(
    mu: torch.Tensor, sigma: torch.Tensor, target: torch.Tensor, fgs_weight: float
) -> torch.Tensor:
    """Weighted Gaussian negative log-likelihood in network units (what the metric rewards)."""
    s = sigma / SCALE
    z = (target - mu) / sigma
    per = torch.log(s) + 0.5 * z**2
    weights = torch.ones(per.shape[1], dtype=per.dtype)
    weights[0] = fgs_weight
    return (per * weights).sum(dim=1).mean() / weights.sum()


def save(model: SpectrumRefiner, path: Path, meta: dict[str, Any]) -> None:
    """Key-sorted state dict plus architecture, written atomically (deterministic bytes)."""
    state = {k: v.detach().clone().contiguous() for k, v in sorted(model.state_dict().items())}
    blob = {
        "format": FORMAT,
        "hidden": model.hidden,
        "kernel": model.kernel,
        "meta": meta,
        "state_dict": state,
    }
    buffer = io.BytesIO()
    torch.save(blob, buffer)
    atomic_write(path, buffer.getvalue())


def load(path: Path) -> SpectrumRefiner:
    if not path.is_file():
        raise SpectraMindError(
            "model weights are missing",
            where=str(path),
            fix="run `spectramind train` (or `dvc pull`), or predict with predict.mode=calibration",
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("format") != FORMAT:
            raise ValueError(f"format {blob.get('format')!r}")
        model = SpectrumRefiner(int(blob["hidden"]), int(blob["kernel"]))
        state = dict(blob["state_dict"])
        state.setdefault("sigma_calibration", torch.ones(2))  # weights saved before held-out calibration
        model.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, AttributeError, OSError, pickle.UnpicklingError) as exc:
        raise SpectraMindError(
            f"model weights are unreadable: {exc}",
            where=str(path),
            fix="re-run `spectramind train` or restore the weights with `dvc pull`",
        ) from exc
    model.eval()
    return model


def refine(model: SpectrumRefiner, depth: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One planet through the model in float64 (same bytes whatever the batch or process layout)."""
    double = model.double()
    with torch.no_grad():
        mu, sig = double(
            torch.from_numpy(depth[None, :].astype(np.float64)),
            torch.from_numpy(sigma[None, :].astype(np.float64)),
        )
    return mu[0].numpy().copy(), sig[0].numpy().copy()
