"""``submission.csv``: fixed float formatting, the prior, and an atomic incremental writer.

The writer always holds one row per planet: the prior until a planet's prediction arrives. Every
flush rewrites the whole file through a temp file and ``os.replace``, so whatever interrupts the
run, ``submission.csv`` is complete and valid.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spectramind.dataio import N_WL, read_table, sigma_columns, wl_columns
from spectramind.shim import atomic_write

CONSTANT_MEAN = 0.01  # used when train.csv is absent
CONSTANT_SIGMA = 0.01
SIGMA_FLOOR = 1e-7


def header() -> str:
    return ",".join(["planet_id", *wl_columns(), *sigma_columns()])


def format_row(planet_id: str, mu: np.ndarray, sigma: np.ndarray) -> str:
    """One CSV line; ``%.9e`` keeps every value's bytes fixed for a given float64."""
    if mu.shape != (N_WL,) or sigma.shape != (N_WL,):
        raise ValueError(f"planet {planet_id}: expected {N_WL} means and sigmas")
    values = np.concatenate([mu, np.maximum(sigma, SIGMA_FLOOR)])
    return planet_id + "," + ",".join(f"{v:.9e}" for v in values.tolist())


@dataclass(frozen=True)
class Prior:
    mean: np.ndarray
    sigma: np.ndarray
    source: str


def prior(train_csv: Path) -> Prior:
    """The train mean spectrum and per-wavelength std, or a constant prior without train.csv."""
    if train_csv.is_file():
        _, targets = read_table(train_csv, width=N_WL)
        if targets.shape[0] >= 2:
            return Prior(targets.mean(axis=0), targets.std(axis=0), str(train_csv))
    return Prior(np.full(N_WL, CONSTANT_MEAN), np.full(N_WL, CONSTANT_SIGMA), "constant")


class SubmissionWriter:
    """Rows for every planet (prior first), updated per planet and flushed atomically."""

    def __init__(
        self, path: Path, planet_ids: list[str], fallback: Prior, flush_every_s: float = 5.0
    ) -> None:
        self.path = path
        self.order = list(planet_ids)
        prior_tail = format_row("", fallback.mean, fallback.sigma)
        self.rows = {pid: pid + prior_tail for pid in self.order}
        self.done: set[str] = set()
        self.flush_every_s = flush_every_s
        self._last_flush = 0.0

    def update(self, planet_id: str, mu: np.ndarray, sigma: np.ndarray) -> None:
        self.set_row(planet_id, format_row(planet_id, mu, sigma))

    def set_row(self, planet_id: str, row: str) -> None:
        if planet_id not in self.rows:
            raise KeyError(planet_id)
        self.rows[planet_id] = row
        self.done.add(planet_id)
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            self.flush()

    def text(self) -> str:
        return "\n".join([header(), *(self.rows[pid] for pid in self.order)]) + "\n"

    def flush(self) -> None:
        atomic_write(self.path, self.text().encode())
        self._last_flush = time.monotonic()
