"""Reading the Ariel Data Challenge 2025 layout, one visit at a time, streamed from parquet.

Layout under the data root::

    adc_info.csv  axis_info.parquet  wavelengths.csv  train.csv  sample_submission.csv
    train_star_info.csv  test_star_info.csv
    <split>/<planet_id>/AIRS-CH0_signal_<visit>.parquet     time steps x 32*356 (uint16)
    <split>/<planet_id>/FGS1_signal_<visit>.parquet         time steps x 32*32  (uint16)
    <split>/<planet_id>/<instrument>_calibration_<visit>/{dark,dead,flat,linear_corr,read}.parquet

Every failure is a `DataError` naming the planet and the file.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spectramind.errors import DataError

AIRS = "AIRS-CH0"
FGS = "FGS1"
SHAPES = {AIRS: (32, 356), FGS: (32, 32)}
AIRS_CUT = (39, 321)  # AIRS columns that carry the 282 science wavelengths
N_WL = 283  # 1 FGS1 + 282 AIRS
CALIBRATION_FILES = ("dark", "dead", "flat", "linear_corr", "read")
POLY_ORDER = 6  # linear_corr holds 6 coefficients per pixel, constant term first
DEFAULT_ADC = {AIRS: (0.4369, -1000.0), FGS: (0.4369, -1000.0)}


def wl_columns() -> list[str]:
    return [f"wl_{i}" for i in range(1, N_WL + 1)]


def sigma_columns() -> list[str]:
    return [f"sigma_{i}" for i in range(1, N_WL + 1)]


def signal_name(instrument: str, visit: int) -> str:
    return f"{instrument}_signal_{visit}.parquet"


def calibration_name(instrument: str, visit: int) -> str:
    return f"{instrument}_calibration_{visit}"


@dataclass(frozen=True)
class Calibration:
    """Per-pixel calibration frames of one instrument and visit, each shaped like the detector."""

    dark: np.ndarray
    dead: np.ndarray  # bool
    flat: np.ndarray
    linear_corr: np.ndarray  # (6, rows, cols), constant term first
    read: np.ndarray


def planet_dir(root: Path, split: str, planet_id: str) -> Path:
    path = root / split / planet_id
    if not path.is_dir():
        raise DataError(
            f"planet {planet_id}: folder is missing",
            where=str(path),
            fix=f"check the data root and that planet {planet_id} exists under {split}/",
        )
    return path


def visits(directory: Path, planet_id: str) -> list[int]:
    """Visit numbers present for a planet (``_0``, ``_1``, ...), from its AIRS signal files."""
    found = []
    for path in directory.glob(f"{AIRS}_signal_*.parquet"):
        suffix = path.stem.rsplit("_", 1)[-1]
        if suffix.isdigit():
            found.append(int(suffix))
    if not found:
        raise DataError(
            f"planet {planet_id}: no {AIRS} signal file",
            where=str(directory / signal_name(AIRS, 0)),
            fix="each planet folder needs AIRS-CH0_signal_0.parquet and FGS1_signal_0.parquet",
        )
    return sorted(found)


def _open(path: Path, planet_id: str) -> pq.ParquetFile:
    if not path.is_file():
        raise DataError(
            f"planet {planet_id}: file is missing", where=str(path), fix="re-copy the planet folder"
        )
    try:
        return pq.ParquetFile(path, memory_map=False)  # mapped pages would count as resident memory
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(planet_id, path, exc) from exc


def _unreadable(planet_id: str, path: Path, exc: Exception) -> DataError:
    return DataError(
        f"planet {planet_id}: unreadable parquet ({exc})",
        where=str(path),
        fix="the file is truncated or corrupt: re-download or regenerate it",
    )


def _table_to_array(table: pa.Table | pa.RecordBatch, dtype: type[np.floating]) -> np.ndarray:
    out = np.empty((table.num_rows, table.num_columns), dtype=dtype)
    for j, column in enumerate(table.columns):
        out[:, j] = column.to_numpy(zero_copy_only=False)  # nulls become NaN
    return out


def read_frame(path: Path, planet_id: str, shape: tuple[int, int], rows_factor: int = 1) -> np.ndarray:
    """A small 2-D calibration parquet as float64 with the expected shape (rows x cols)."""
    handle = _open(path, planet_id)
    rows, cols = shape[0] * rows_factor, shape[1]
    if handle.metadata.num_columns != cols or handle.metadata.num_rows != rows:
        raise DataError(
            f"planet {planet_id}: expected {rows}x{cols} values, found "
            f"{handle.metadata.num_rows}x{handle.metadata.num_columns}",
            where=str(path),
            fix="calibration frames are detector-shaped (rows x columns)",
        )
    try:
        return _table_to_array(handle.read(use_threads=False), np.float64)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"planet {planet_id}: unreadable parquet ({exc})", where=str(path)) from exc


def read_calibration(directory: Path, planet_id: str, instrument: str, visit: int) -> Calibration:
    base = directory / calibration_name(instrument, visit)
    shape = SHAPES[instrument]
    frames = {name: base / f"{name}.parquet" for name in CALIBRATION_FILES}
    linear = read_frame(frames["linear_corr"], planet_id, shape, rows_factor=POLY_ORDER)
    return Calibration(
        dark=read_frame(frames["dark"], planet_id, shape),
        dead=read_frame(frames["dead"], planet_id, shape) != 0,
        flat=read_frame(frames["flat"], planet_id, shape),
        linear_corr=linear.reshape(POLY_ORDER, *shape),
        read=read_frame(frames["read"], planet_id, shape),
    )


def iter_signal(path: Path, planet_id: str, instrument: str, max_rows: int) -> Iterator[np.ndarray]:
    """Stream a signal parquet as float32 chunks of at most ``max_rows`` time steps (NaN where null)."""
    handle = _open(path, planet_id)
    pixels = SHAPES[instrument][0] * SHAPES[instrument][1]
    if handle.metadata.num_columns != pixels:
        raise DataError(
            f"planet {planet_id}: {instrument} signal has {handle.metadata.num_columns} columns, "
            f"expected {pixels}",
            where=str(path),
            fix=f"{instrument} frames are flattened {SHAPES[instrument][0]}x{SHAPES[instrument][1]} images",
        )
    try:
        for group in range(handle.num_row_groups):
            if handle.metadata.row_group(group).num_rows <= max_rows:
                yield _table_to_array(handle.read_row_group(group, use_threads=False), np.float32)
                continue
            for batch in handle.iter_batches(batch_size=max_rows, row_groups=[group], use_threads=False):
                yield _table_to_array(batch, np.float32)
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(planet_id, path, exc) from exc


def read_adc(root: Path) -> dict[str, tuple[float, float]]:
    """Gain and offset per instrument from adc_info.csv (signal = raw / gain + offset)."""
    path = root / "adc_info.csv"
    if not path.is_file():
        return dict(DEFAULT_ADC)
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    try:
        row = rows[0]
        return {inst: (float(row[f"{inst}_adc_gain"]), float(row[f"{inst}_adc_offset"])) for inst in SHAPES}
    except (IndexError, KeyError, ValueError) as exc:
        raise DataError(
            f"adc_info.csv is malformed ({exc!r})",
            where=str(path),
            fix="expected one row: FGS1_adc_gain, FGS1_adc_offset, AIRS-CH0_adc_gain, AIRS-CH0_adc_offset",
        ) from exc


def read_table(path: Path, width: int | None = None) -> tuple[list[str], np.ndarray]:
    """A planet_id-keyed numeric CSV (train.csv, a submission): ids and a float64 matrix."""
    if not path.is_file():
        raise DataError(f"{path.name} is missing", where=str(path), fix="check the data root")
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header or header[0] != "planet_id":
            raise DataError(f"{path.name}: first column must be planet_id", where=str(path))
        ids, values = [], []
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header) or (width is not None and len(row) != width + 1):
                raise DataError(
                    f"{path.name}: row {line} has {len(row)} fields, expected {len(header)}",
                    where=f"{path}:{line}",
                    fix="every row holds planet_id and one value per column of the header",
                )
            try:
                values.append([float(v) for v in row[1:]])
            except ValueError as exc:
                raise DataError(f"{path.name}: row {line}: {exc}", where=f"{path}:{line}") from exc
            ids.append(row[0])
    return ids, np.asarray(values, dtype=np.float64).reshape(len(ids), len(header) - 1)


def list_planets(root: Path, split: str) -> list[str]:
    """Planet ids of a split: sample_submission.csv (test) or train.csv (train) order, else sorted dirs."""
    listing = root / ("sample_submission.csv" if split == "test" else "train.csv")
    if listing.is_file():
        with listing.open(newline="") as fh:
            reader = csv.reader(fh)
            next(reader, None)
            ids = [row[0] for row in reader if row]
        if ids:
            return ids
    folder = root / split
    if not folder.is_dir():
        raise DataError(
            f"no planets found for split '{split}'",
            where=str(folder),
            fix="point SPECTRAMIND_DATA (or env.data_dir / data.root) at the competition data",
        )
    names = [p.name for p in folder.iterdir() if p.is_dir()]
    return sorted(names, key=lambda n: (len(n), n))
