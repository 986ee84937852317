"""Detector calibration, streamed chunk by chunk: ADC, linearity, dark, flat, dead pixels, NaNs.

Each chunk of raw frames is calibrated and immediately reduced to a light curve per spectral
column (AIRS) or one photometric point (FGS1), so memory is bounded by the chunk size whatever the
visit length. The reduced series is then binned in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spectramind.dataio import (
    AIRS,
    AIRS_CUT,
    FGS,
    SHAPES,
    Calibration,
    iter_signal,
    read_calibration,
    signal_name,
)
from spectramind.errors import DataError


@dataclass(frozen=True)
class VisitSeries:
    """Binned light curves of one visit: AIRS (bins x 282 wavelengths) and FGS1 (bins), with NaN counts."""

    airs: np.ndarray
    fgs: np.ndarray
    nan_pixels: dict[str, int]


def calibrate_chunk(raw: np.ndarray, cal: Calibration, gain: float, offset: float) -> tuple[np.ndarray, int]:
    """Electrons per good pixel for a chunk of frames (n x pixels, float32); dead pixels are zeroed.

    NaN pixels (nulls in the parquet) are replaced by that pixel's mean over the chunk, or masked as
    dead when the pixel has no valid value in the chunk. Returns the frames and the NaN count.
    """
    n = raw.shape[0]
    frames = raw.reshape(n, -1)
    nan_count = 0
    dead_extra = None
    bad = np.isnan(frames)
    if bad.any():
        nan_count = int(bad.sum())
        good = (~bad).sum(axis=0)
        fill = np.where(bad, np.float32(0), frames).sum(axis=0) / np.maximum(good, 1)
        frames = np.where(bad, fill[None, :], frames).astype(np.float32)
        dead_extra = good == 0  # no valid value in the chunk: treat like a dead pixel
    signal = frames / np.float32(gain) + np.float32(offset)  # ADC: back to electrons
    coeffs = cal.linear_corr.reshape(cal.linear_corr.shape[0], -1).astype(np.float32)
    corrected = np.broadcast_to(coeffs[-1], signal.shape).copy()
    for c in coeffs[-2::-1]:  # Horner: constant term first in linear_corr
        corrected *= signal
        corrected += c
    corrected -= cal.dark.reshape(-1).astype(np.float32)
    corrected /= cal.flat.reshape(-1).astype(np.float32)
    dead = cal.dead.reshape(-1)
    if dead_extra is not None:
        dead = dead | dead_extra
    corrected[:, dead] = 0.0
    return corrected, nan_count


def reduce_airs(frames: np.ndarray) -> np.ndarray:
    """Sum the 32 spatial rows of each science column: (n, 282) float64."""
    rows, cols = SHAPES[AIRS]
    lo, hi = AIRS_CUT
    cube = frames.reshape(frames.shape[0], rows, cols)[:, :, lo:hi]
    return np.asarray(cube.sum(axis=1, dtype=np.float64))


def reduce_fgs(frames: np.ndarray) -> np.ndarray:
    """Aperture photometry over the whole 32x32 frame: (n,) float64."""
    return np.asarray(frames.sum(axis=1, dtype=np.float64))


def bin_series(series: np.ndarray, n_bins: int) -> np.ndarray:
    """Mean over ``n_bins`` equal time bins (a trailing remainder is dropped)."""
    size = series.shape[0] // n_bins
    if size < 1:
        raise ValueError(f"cannot bin {series.shape[0]} steps into {n_bins} bins")
    trimmed = series[: size * n_bins]
    return np.asarray(trimmed.reshape(n_bins, size, *series.shape[1:]).mean(axis=1))


def _instrument_series(
    directory: Path, planet_id: str, instrument: str, *, visit: int, adc: tuple[float, float], chunk: int
) -> tuple[np.ndarray, int]:
    cal = read_calibration(directory, planet_id, instrument, visit)
    gain, offset = adc
    reduce = reduce_airs if instrument == AIRS else reduce_fgs
    parts, nans = [], 0
    for raw in iter_signal(directory / signal_name(instrument, visit), planet_id, instrument, chunk):
        frames, count = calibrate_chunk(raw, cal, gain, offset)
        parts.append(reduce(frames))
        nans += count
    if not parts:
        return np.empty((0, AIRS_CUT[1] - AIRS_CUT[0]) if instrument == AIRS else 0), nans
    return np.concatenate(parts, axis=0), nans


def visit_series(
    directory: Path,
    planet_id: str,
    visit: int,
    adc: dict[str, tuple[float, float]],
    *,
    chunk_steps: int,
    bin_steps: int,
) -> VisitSeries:
    """Calibrate and bin one visit; FGS1 is binned onto the same number of time bins as AIRS."""
    airs, airs_nan = _instrument_series(
        directory, planet_id, AIRS, visit=visit, adc=adc[AIRS], chunk=chunk_steps
    )
    fgs_chunk = chunk_steps * 12
    fgs, fgs_nan = _instrument_series(directory, planet_id, FGS, visit=visit, adc=adc[FGS], chunk=fgs_chunk)
    n_bins = airs.shape[0] // max(bin_steps, 1)
    if n_bins < 12 or fgs.shape[0] < n_bins:
        raise DataError(
            f"planet {planet_id}: visit {visit} is too short to bin "
            f"({airs.shape[0]} AIRS, {fgs.shape[0]} FGS1 steps)",
            where=str(directory / signal_name(AIRS, visit)),
            fix="lower data.bin_steps or check that the signal files are complete",
        )
    return VisitSeries(bin_series(airs, n_bins), bin_series(fgs, n_bins), {AIRS: airs_nan, FGS: fgs_nan})
