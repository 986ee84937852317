"""``spectramind make-data``: a synthetic dataset in the Ariel 2025 layout, deterministic by seed.

Physics, kept simple but genuine: each planet has a transmission spectrum (a base depth plus H2O,
CH4 and CO bands and a haze slope); each visit observes a trapezoid transit with a linear stellar
drift. The detector adds a flat field, dark current, a quadratic non-linearity (inverted by the
``linear_corr`` polynomial), shot and read noise, dead pixels and the ADC (``raw = (e - offset) *
gain``). An optical ghost (a fixed fraction of the star light that never transits, not described by
any calibration file) biases measured depths low: the model has to learn it from ``train.csv``.
Signals are generated and written in chunks of time steps, so memory stays bounded at full size.
A visit with fewer time steps than the competition's (11,250 AIRS / 135,000 FGS1) stands for
co-added reads: its noise shrinks by sqrt(competition steps / steps), so every size keeps the
competition's signal-to-noise per visit and the small demo set is as learnable as the real one.
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spectramind.dataio import (
    AIRS,
    AIRS_CUT,
    DEFAULT_ADC,
    FGS,
    N_WL,
    SHAPES,
    calibration_name,
    sigma_columns,
    signal_name,
    wl_columns,
)
from spectramind.runtime import log
from spectramind.shim import atomic_write

HOURS = 3.75  # observation length of one visit
FGS_WL = 0.7  # micron
STAR_COLUMNS = ["planet_id", "Rs", "Ms", "Ts", "Mp", "e", "P", "sma", "i"]
NOMINAL_STEPS = {AIRS: 11250, FGS: 135000}
_WRITE = {"compression": "lz4", "use_dictionary": False, "write_statistics": False}


def airs_axis() -> np.ndarray:
    """Wavelength (micron) of each of the 356 AIRS columns; columns 39..320 span 1.95-3.90."""
    lo, hi = AIRS_CUT
    step = (3.90 - 1.95) / (hi - lo - 1)
    return 1.95 + (np.arange(SHAPES[AIRS][1]) - lo) * step


def wavelengths() -> np.ndarray:
    return np.concatenate([[FGS_WL], airs_axis()[AIRS_CUT[0] : AIRS_CUT[1]]])


def ghost(wl: np.ndarray) -> np.ndarray:
    """Fraction of stray star light added by the instrument (never in calibration files)."""
    x = (wl - 1.95) / 1.95
    return np.where(wl < 1.0, 0.02, 0.03 + 0.04 * x + 0.015 * np.sin(3.0 * x))


def _gauss(x: np.ndarray, mu: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mu) / width) ** 2)


def _spectrum(rng: np.random.Generator, wl: np.ndarray) -> np.ndarray:
    base = rng.uniform(0.004, 0.02)
    scale = base * rng.uniform(0.02, 0.08)
    bands = (
        rng.uniform(0, 1) * _gauss(wl, 2.7, 0.25)
        + rng.uniform(0, 1) * _gauss(wl, 3.3, 0.12)
        + rng.uniform(0, 0.6) * _gauss(wl, 2.35, 0.06)
        + rng.uniform(0, 0.8) * (FGS_WL / wl) ** 2
    )
    return np.asarray(base + scale * bands, dtype=np.float64)


def _planck(wl_um: np.ndarray, temp: float) -> np.ndarray:
    x = 14387.77 / (wl_um * temp)  # hc/(lambda k T) with lambda in micron
    return np.asarray(1.0 / (wl_um**5 * np.expm1(x)), dtype=np.float64)


@dataclass(frozen=True)
class Planet:
    planet_id: str
    index: int
    split: str
    n_visits: int
    star: dict[str, float]
    spectrum: np.ndarray  # (283,) true transit depth


def _planet(seed: int, index: int, planet_id: str, split: str, n_visits: int) -> Planet:
    rng = np.random.default_rng([seed, index, 1])
    ms = rng.uniform(0.5, 1.3)
    period = rng.uniform(1.0, 10.0)
    star = {
        "Rs": rng.uniform(0.5, 1.5),
        "Ms": ms,
        "Ts": rng.uniform(3500.0, 6500.0),
        "Mp": rng.uniform(0.05, 2.0),
        "e": 0.0,
        "P": period,
        "sma": 215.0 * (ms * (period / 365.25) ** 2) ** (1 / 3) / rng.uniform(0.5, 1.5),
        "i": rng.uniform(85.0, 90.0),
    }
    return Planet(planet_id, index, split, n_visits, star, _spectrum(rng, wavelengths()))


def _detector(rng: np.random.Generator, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    k = rng.uniform(1e-7, 3e-7, size=shape)
    coeffs = [
        np.zeros(shape),
        np.ones(shape),
        k,
        2 * k**2,
        5 * k**3,
        14 * k**4,
    ]  # series inverse of e - k e^2
    return {
        "dark": rng.uniform(5.0, 30.0, size=shape),
        "dead": rng.random(shape) < 0.003,
        "flat": rng.normal(1.0, 0.02, size=shape),
        "linear_corr": np.concatenate(coeffs, axis=0),
        "read": rng.uniform(8.0, 15.0, size=shape),
        "k": k,
    }


def _frame_table(values: np.ndarray) -> pa.Table:
    return pa.table({str(j): values[:, j] for j in range(values.shape[1])})


def _write_parquet(path: Path, table: pa.Table) -> None:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **_WRITE)
    atomic_write(path, buffer.getvalue())


def _light(
    planet: Planet, instrument: str, visit: int, brightness: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Star image (rows x cols, electrons/step), per-column depth, ghost image."""
    rng = np.random.default_rng([seed, planet.index, visit, 2])
    rows, cols = SHAPES[instrument]
    centre, width = 15.5 + rng.uniform(-1, 1), rng.uniform(2.0, 3.0)
    profile = _gauss(np.arange(rows, dtype=np.float64), centre, width)
    profile /= profile.sum()
    if instrument == FGS:
        spot = np.outer(profile, _gauss(np.arange(cols, dtype=np.float64), 15.5, width))
        image = 2.0e6 * brightness * spot / spot.sum()
        return image, np.full(cols, planet.spectrum[0]), ghost(np.array([FGS_WL]))[0] * image
    wl = airs_axis()
    lo, hi = AIRS_CUT
    sed = _planck(np.clip(wl, 1.95, 3.9), planet.star["Ts"])
    flux = 1.5e5 * brightness * sed / sed[lo:hi].max()
    flux[:lo] *= 0.03
    flux[hi:] *= 0.03
    depth = np.empty(cols)
    depth[lo:hi] = planet.spectrum[1:]
    depth[:lo], depth[hi:] = planet.spectrum[1], planet.spectrum[-1]
    image = np.outer(profile, flux)
    return image, depth, ghost(wl)[None, :] * image


def _write_signal(
    directory: Path, planet: Planet, instrument: str, *, visit: int, steps: int, chunk: int, seed: int
) -> None:
    code = 0 if instrument == AIRS else 1
    rng = np.random.default_rng([seed, planet.index, visit, code, 3])
    det = _detector(rng, SHAPES[instrument])
    cal_dir = directory / calibration_name(instrument, visit)
    for name in ("dark", "dead", "flat", "linear_corr", "read"):
        _write_parquet(cal_dir / f"{name}.parquet", _frame_table(det[name]))
    visit_rng = np.random.default_rng([seed, planet.index, visit, 4])
    tc, dur = visit_rng.uniform(0.42, 0.58), visit_rng.uniform(0.28, 0.40)
    tau, beta = dur * visit_rng.uniform(0.08, 0.15), visit_rng.uniform(-3e-3, 3e-3)
    brightness = np.random.default_rng([seed, planet.index, 5]).uniform(0.5, 1.0)
    image, depth, ghost_image = _light(planet, instrument, visit, brightness, seed)
    gain, offset = DEFAULT_ADC[instrument]
    f32 = np.float32
    coadd = f32(1.0 / np.sqrt(max(1.0, NOMINAL_STEPS[instrument] / max(steps, 1))))
    flat, dark, k = det["flat"].astype(f32), det["dark"].astype(f32), det["k"].astype(f32)
    read2, dead = (det["read"] ** 2).astype(f32), det["dead"].reshape(-1)
    image, ghost_image = image.astype(f32), ghost_image.astype(f32)
    names = [str(j) for j in range(image.size)]
    schema = pa.schema([(n, pa.uint16()) for n in names])
    path = directory / signal_name(instrument, visit)
    tmp = path.with_name(f".{path.name}.tmp")
    with pq.ParquetWriter(tmp, schema, **_WRITE) as writer:
        for start in range(0, steps, chunk):
            t = (start + np.arange(min(chunk, steps - start))) / max(steps - 1, 1)
            shape = np.clip((dur / 2 - np.abs(t - tc)) / tau, 0.0, 1.0)
            drift = 1.0 + beta * (t - 0.5)
            trans = (drift[:, None] * (1.0 - depth[None, :] * shape[:, None])).astype(f32)  # (n, cols)
            electrons = (image[None] * trans[:, None, :] + ghost_image[None]) * flat + dark
            noise = (
                rng.standard_normal(electrons.shape, dtype=np.float32) * np.sqrt(electrons + read2) * coadd
            )
            measured = electrons - k * electrons**2 + noise
            adu = np.rint((measured - f32(offset)) * f32(gain))
            raw = np.asfortranarray(np.clip(adu, 0, 65535).astype(np.uint16).reshape(len(t), -1))
            raw[:, dead] = 0
            writer.write_table(pa.table(dict(zip(names, raw.T, strict=True)), schema=schema))
    tmp.replace(path)


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write(path, text.getvalue().encode())


def _fmt(values: np.ndarray) -> list[str]:
    return [f"{v:.10g}" for v in values]


def make_dataset(
    root: Path,
    *,
    n_train: int,
    n_test: int,
    airs_steps: int,
    fgs_steps: int,
    seed: int,
    multi_visit_every: int = 0,
    chunk_steps: int = 375,
) -> list[Planet]:
    """Write the dataset under ``root``; returns the planets with their true spectra."""
    rng = np.random.default_rng([seed, 0])
    ids: list[str] = []
    while len(ids) < n_train + n_test:
        candidate = str(int(rng.integers(10**8, 2 * 10**9)))
        if candidate not in ids:
            ids.append(candidate)
    planets = []
    fgs_chunk = max(1, chunk_steps * max(fgs_steps // max(airs_steps, 1), 1))
    for index, planet_id in enumerate(ids):
        split = "train" if index < n_train else "test"
        n_visits = 2 if multi_visit_every > 0 and index % multi_visit_every == multi_visit_every - 1 else 1
        planet = _planet(seed, index, planet_id, split, n_visits)
        directory = root / split / planet_id
        for visit in range(n_visits):
            _write_signal(
                directory, planet, AIRS, visit=visit, steps=airs_steps, chunk=chunk_steps, seed=seed
            )
            _write_signal(directory, planet, FGS, visit=visit, steps=fgs_steps, chunk=fgs_chunk, seed=seed)
        planets.append(planet)
        log(f"make-data: {split}/{planet_id} ({n_visits} visit(s))")
    _write_tables(root, planets, airs_steps, fgs_steps)
    return planets


def _write_tables(root: Path, planets: list[Planet], airs_steps: int, fgs_steps: int) -> None:
    gain, offset = DEFAULT_ADC[AIRS]
    fgs_gain, fgs_offset = DEFAULT_ADC[FGS]
    _csv(
        root / "adc_info.csv",
        ["FGS1_adc_offset", "FGS1_adc_gain", "AIRS-CH0_adc_offset", "AIRS-CH0_adc_gain"],
        [[str(fgs_offset), str(fgs_gain), str(offset), str(gain)]],
    )
    _csv(root / "wavelengths.csv", wl_columns(), [_fmt(wavelengths())])
    for split, name in (("train", "train_star_info.csv"), ("test", "test_star_info.csv")):
        rows = [
            [p.planet_id, *_fmt(np.array([p.star[c] for c in STAR_COLUMNS[1:]]))]
            for p in planets
            if p.split == split
        ]
        _csv(root / name, STAR_COLUMNS, rows)
    truth = {
        split: [[p.planet_id, *_fmt(p.spectrum)] for p in planets if p.split == split]
        for split in ("train", "test")
    }
    _csv(root / "train.csv", ["planet_id", *wl_columns()], truth["train"])
    _csv(root / "test_labels.csv", ["planet_id", *wl_columns()], truth["test"])  # synthetic ground truth
    sample = [[p.planet_id, *["0.01"] * N_WL, *["0.001"] * N_WL] for p in planets if p.split == "test"]
    _csv(root / "sample_submission.csv", ["planet_id", *wl_columns(), *sigma_columns()], sample)
    length = max(airs_steps, fgs_steps, SHAPES[AIRS][1])

    def padded(values: np.ndarray) -> np.ndarray:
        return np.concatenate([values, np.full(length - len(values), np.nan)])

    axis = pa.table(
        {
            f"{AIRS}-axis0-h": padded(np.linspace(0.0, HOURS, airs_steps)),
            f"{AIRS}-axis2-um": padded(airs_axis()),
            f"{AIRS}-integration_time": padded(np.full(airs_steps, HOURS * 3600 / max(airs_steps, 1))),
            f"{FGS}-axis0-h": padded(np.linspace(0.0, HOURS, fgs_steps)),
        }
    )
    _write_parquet(root / "axis_info.parquet", axis)


def main(argv: list[str]) -> int:
    from spectramind.cli import command_parser
    from spectramind.config import compose, find_config_dir, save_snapshot
    from spectramind.runtime import print_json, run_paths

    args = command_parser("make-data").parse_intermixed_args(argv)
    as_json, argv = bool(args.json), list(args.overrides)
    config_dir = find_config_dir()
    cfg = compose(argv, config_dir)
    paths = run_paths(cfg, config_dir)
    data = cfg.data
    make_dataset(
        paths.data,
        n_train=int(data.n_train),
        n_test=int(data.n_test),
        airs_steps=int(data.airs_steps),
        fgs_steps=int(data.fgs_steps),
        seed=int(data.seed),
        multi_visit_every=int(data.get("multi_visit_every", 0)),
        chunk_steps=int(data.get("chunk_steps", 375)),
    )
    save_snapshot(cfg, argv, paths.output)
    log(f"make-data: wrote {int(data.n_train)} train + {int(data.n_test)} test planets to {paths.data}")
    if as_json:
        print_json({"data": str(paths.data), "n_train": int(data.n_train), "n_test": int(data.n_test)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
