"""Transit detection and per-wavelength transit depth with an uncertainty, per planet.

For each visit: find ingress and egress on the white light curve (steepest fall and rise of the
smoothed curve), fit a linear baseline per wavelength to the out-of-transit bins, and measure the
depth as one minus the mean in-transit flux relative to that baseline. Visits are combined by
inverse-variance weighting. These depths are the "calibration-only" prediction the model refines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spectramind.calibration import VisitSeries, visit_series
from spectramind.dataio import FGS, N_WL, planet_dir, read_adc, visits
from spectramind.errors import DataError
from spectramind.runtime import log


@dataclass(frozen=True)
class Window:
    """Bin indices: in-transit bins are [start, stop); out-of-transit are < before and >= after."""

    before: int
    start: int
    stop: int
    after: int


@dataclass(frozen=True)
class PlanetFeatures:
    planet_id: str
    depth: np.ndarray  # (283,) FGS1 first
    sigma: np.ndarray  # (283,)
    n_visits: int


def _smooth(curve: np.ndarray, width: int) -> np.ndarray:
    kernel = np.ones(width) / width
    padded = np.pad(curve, (width // 2, width - 1 - width // 2), mode="edge")
    return np.convolve(padded, kernel, mode="valid")


def detect_transit(white: np.ndarray) -> Window | None:
    """Ingress/egress from the white light curve; None when no transit-like dip is found."""
    n = white.shape[0]
    curve = white / np.median(white)
    width = max(3, n // 25)
    grad = np.gradient(_smooth(curve, width))
    ingress = int(np.argmin(grad[: n - 2]))
    egress = ingress + 1 + int(np.argmax(grad[ingress + 1 :]))
    duration = egress - ingress
    if duration < 4 or grad[ingress] >= 0 or grad[egress] <= 0:
        return None
    margin = max(width, round(0.2 * duration))  # past the whole ingress, even a slow one
    window = Window(ingress - margin, ingress + margin, egress - margin, egress + margin + 1)
    if window.stop - window.start < 2 or window.before < 3 or n - window.after < 3:
        return None
    return window


def default_window(n: int) -> Window:
    """Used when detection fails: a central transit over the middle third."""
    return Window(n // 4, n * 3 // 8, n * 5 // 8, n * 3 // 4)


def transit_depth(series: np.ndarray, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """Depth and its 1-sigma uncertainty for each column of ``series`` (bins x wavelengths)."""
    curves = series if series.ndim == 2 else series[:, None]
    n = curves.shape[0]
    t = np.linspace(0.0, 1.0, n)
    oot = np.zeros(n, dtype=bool)
    oot[: window.before] = True
    oot[window.after :] = True
    t_o, y_o = t[oot], curves[oot]
    tc = t_o - t_o.mean()
    slope = (tc[:, None] * (y_o - y_o.mean(axis=0))).sum(axis=0) / (tc**2).sum()
    level = y_o.mean(axis=0)

    def baseline(times: np.ndarray) -> np.ndarray:
        return np.asarray(level[None, :] + slope[None, :] * (times[:, None] - t_o.mean()))

    in_t = t[window.start : window.stop]
    ratio_in = curves[window.start : window.stop] / baseline(in_t)
    residual = y_o / baseline(t_o) - 1.0
    scatter = residual.std(axis=0, ddof=2)
    depth = 1.0 - ratio_in.mean(axis=0)
    sigma = scatter * np.sqrt(1.0 / ratio_in.shape[0] + 1.0 / t_o.shape[0])
    return np.asarray(depth), np.asarray(sigma)


def visit_depths(series: VisitSeries, planet_id: str, visit: int) -> tuple[np.ndarray, np.ndarray]:
    white = series.airs.sum(axis=1)
    window = detect_transit(white)
    if window is None:
        log(f"planet {planet_id} visit {visit}: no transit detected, using the default window")
        window = default_window(white.shape[0])
    airs_d, airs_s = transit_depth(series.airs, window)
    fgs_d, fgs_s = transit_depth(series.fgs, window)
    return np.concatenate([fgs_d, airs_d]), np.concatenate([fgs_s, airs_s])


def planet_features(
    root: Path,
    split: str,
    planet_id: str,
    *,
    chunk_steps: int,
    bin_steps: int,
    adc: dict[str, tuple[float, float]] | None = None,
) -> PlanetFeatures:
    """Calibrate every visit of a planet (streamed) and combine their depths."""
    directory = planet_dir(root, split, planet_id)
    adc = adc or read_adc(root)
    depths, weights = [], []
    numbers = visits(directory, planet_id)
    for visit in numbers:
        series = visit_series(directory, planet_id, visit, adc, chunk_steps=chunk_steps, bin_steps=bin_steps)
        for instrument, count in series.nan_pixels.items():
            if count:
                log(f"planet {planet_id} visit {visit}: {count} NaN {instrument} pixel values filled")
        depth, sigma = visit_depths(series, planet_id, visit)
        if not (np.isfinite(depth).all() and np.isfinite(sigma).all()):
            raise DataError(
                f"planet {planet_id}: visit {visit} gave non-finite depths",
                where=str(directory),
                fix=f"inspect the {FGS} and AIRS-CH0 signal files of this visit",
            )
        depths.append(depth)
        weights.append(1.0 / np.maximum(sigma, 1e-7) ** 2)
    w = np.asarray(weights)
    depth = (np.asarray(depths) * w).sum(axis=0) / w.sum(axis=0)
    sigma = 1.0 / np.sqrt(w.sum(axis=0))
    if depth.shape != (N_WL,):
        raise DataError(
            f"planet {planet_id}: expected {N_WL} depths, got {depth.shape}", where=str(directory)
        )
    return PlanetFeatures(planet_id, depth, sigma, len(numbers))
