"""make-data layout (the Ariel 2025 format), determinism by seed, and bad inputs -> DataError."""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spectramind.dataio import AIRS, FGS, read_calibration
from spectramind.errors import DataError
from spectramind.features import planet_features
from spectramind.synth import make_dataset

SMALL = {
    "n_train": 2,
    "n_test": 1,
    "airs_steps": 120,
    "fgs_steps": 1440,
    "multi_visit_every": 2,
    "chunk_steps": 60,
}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("small")
    make_dataset(root, seed=11, **SMALL)
    return root


def _header(path: Path) -> list[str]:
    with path.open(newline="") as fh:
        return next(csv.reader(fh))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_layout_matches_the_competition(small: Path) -> None:
    top = {p.name for p in small.iterdir()}
    assert {
        "adc_info.csv",
        "axis_info.parquet",
        "wavelengths.csv",
        "train.csv",
        "train_star_info.csv",
        "test_star_info.csv",
        "sample_submission.csv",
        "train",
        "test",
    } <= top
    assert _header(small / "adc_info.csv") == [
        "FGS1_adc_offset",
        "FGS1_adc_gain",
        "AIRS-CH0_adc_offset",
        "AIRS-CH0_adc_gain",
    ]
    assert len(_header(small / "wavelengths.csv")) == 283
    assert (
        _header(small / "train.csv")[:2] == ["planet_id", "wl_1"] and len(_header(small / "train.csv")) == 284
    )
    sample = _header(small / "sample_submission.csv")
    assert len(sample) == 567 and sample[283] == "wl_283" and sample[284] == "sigma_1"
    assert _header(small / "train_star_info.csv") == [
        "planet_id",
        "Rs",
        "Ms",
        "Ts",
        "Mp",
        "e",
        "P",
        "sma",
        "i",
    ]
    assert set(pq.read_schema(small / "axis_info.parquet").names) == {
        "AIRS-CH0-axis0-h",
        "AIRS-CH0-axis2-um",
        "AIRS-CH0-integration_time",
        "FGS1-axis0-h",
    }
    planets = sorted((small / "train").iterdir())
    two_visits = [p for p in planets if (p / "AIRS-CH0_signal_1.parquet").is_file()]
    assert len(two_visits) == 1 and (two_visits[0] / "FGS1_calibration_1" / "dead.parquet").is_file()
    planet = planets[0]
    airs = pq.ParquetFile(planet / "AIRS-CH0_signal_0.parquet")
    fgs = pq.ParquetFile(planet / "FGS1_signal_0.parquet")
    assert (airs.metadata.num_rows, airs.metadata.num_columns) == (120, 32 * 356)
    assert (fgs.metadata.num_rows, fgs.metadata.num_columns) == (1440, 32 * 32)
    assert airs.schema_arrow.field(0).type == pa.uint16()
    cal = read_calibration(planet, planet.name, AIRS, 0)
    assert cal.linear_corr.shape == (6, 32, 356) and cal.dead.dtype == bool and cal.dark.shape == (32, 356)
    assert read_calibration(planet, planet.name, FGS, 0).flat.shape == (32, 32)


def test_same_seed_same_bytes(small: Path, tmp_path: Path) -> None:
    make_dataset(tmp_path, seed=11, **SMALL)
    planet = next(p.name for p in (small / "test").iterdir())
    for rel in (
        "train.csv",
        "test_labels.csv",
        f"test/{planet}/AIRS-CH0_signal_0.parquet",
        f"test/{planet}/FGS1_calibration_0/linear_corr.parquet",
    ):
        assert _sha(small / rel) == _sha(tmp_path / rel), rel


def _copy(small: Path, tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "data"
    shutil.copytree(small, root)
    return root, next(p.name for p in (root / "test").iterdir())


def _features(root: Path, pid: str) -> None:
    planet_features(root, "test", pid, chunk_steps=60, bin_steps=5)


def test_missing_planet_folder(small: Path, tmp_path: Path) -> None:
    root, pid = _copy(small, tmp_path)
    shutil.rmtree(root / "test" / pid)
    with pytest.raises(DataError, match=f"planet {pid}: folder is missing") as info:
        _features(root, pid)
    assert str(root / "test" / pid) in info.value.render()


def test_truncated_parquet(small: Path, tmp_path: Path) -> None:
    root, pid = _copy(small, tmp_path)
    path = root / "test" / pid / "AIRS-CH0_signal_0.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=f"planet {pid}: unreadable parquet") as info:
        _features(root, pid)
    assert "AIRS-CH0_signal_0.parquet" in info.value.render() and "truncated" in info.value.render()


def test_wrong_column_count(small: Path, tmp_path: Path) -> None:
    root, pid = _copy(small, tmp_path)
    path = root / "test" / pid / "FGS1_signal_0.parquet"
    pq.write_table(pa.table({str(j): np.zeros(1440, dtype=np.uint16) for j in range(100)}), path)
    with pytest.raises(DataError, match=f"planet {pid}: FGS1 signal has 100 columns, expected 1024") as info:
        _features(root, pid)
    assert "FGS1_signal_0.parquet" in info.value.render()


def test_nans_are_filled_and_logged(small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, pid = _copy(small, tmp_path)
    clean = planet_features(root, "test", pid, chunk_steps=60, bin_steps=5)
    path = root / "test" / pid / "AIRS-CH0_signal_0.parquet"
    table = pq.read_table(path)
    columns = []
    for j, column in enumerate(table.columns):
        values = column.to_numpy().astype(np.float64)
        if j % 97 == 0:
            values[::7] = np.nan  # nulls in the parquet, scattered over time and pixels
        columns.append(pa.array(values, mask=np.isnan(values)).cast(pa.uint16()))
    pq.write_table(pa.table(columns, names=table.column_names), path)
    capsys.readouterr()
    dirty = planet_features(root, "test", pid, chunk_steps=60, bin_steps=5)
    assert np.isfinite(dirty.depth).all() and np.isfinite(dirty.sigma).all()
    assert np.abs(dirty.depth - clean.depth).max() < 5 * clean.sigma.max()
    err = capsys.readouterr().err
    assert f"planet {pid} visit 0:" in err and "NaN AIRS-CH0 pixel values filled" in err


def test_make_data_command_honours_the_env_paths(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spectramind.cli import main

    monkeypatch.setenv("SPECTRAMIND_CONFIG_DIR", str(repo / "configs"))
    monkeypatch.setenv("SPECTRAMIND_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SPECTRAMIND_OUTPUT", str(tmp_path / "out"))
    overrides = [
        "+data=default",
        "data.n_train=1",
        "data.n_test=1",
        "data.airs_steps=60",
        "data.fgs_steps=720",
    ]
    assert main(["make-data", *overrides]) == 0
    assert len(list((tmp_path / "data" / "train").iterdir())) == 1
    assert (tmp_path / "data" / "sample_submission.csv").is_file()
    assert "n_train=1" in (tmp_path / "out" / ".hydra" / "overrides.yaml").read_text()
    assert main(["make-data", "data=nope"]) == 2  # a bad override is a usage error (exit 2), not a traceback
