"""The symbolic extra's z3 check of a predicted spectrum's physical bounds, and predict's hook.

z3 and sympy are in the dev install (pip install -e '.[dev,symbolic]'); the run without the extra
is reproduced by blocking the import (``sys.modules["z3"] = None``, Python's own way to say "absent").
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from bundler.extras import known
from spectramind import predict, symbolic
from spectramind.dataio import N_WL, sigma_columns, wl_columns
from spectramind.submission import header
from spectramind.synth import make_dataset, wavelengths

REPO = Path(__file__).resolve().parent.parent
COLUMNS = [*wl_columns(), *sigma_columns()]


def write_submission(path: Path, rows: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    # repr() keeps every float exact, so the edge cases below reach the solver unrounded
    lines = [header()] + [
        ",".join([pid, *map(repr, [*mu.tolist(), *s.tolist()])]) for pid, (mu, s) in rows.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_grid(path: Path, grid: np.ndarray) -> Path:
    path.write_text(",".join(wl_columns()) + "\n" + ",".join(map(repr, grid.tolist())) + "\n")
    return path


def good() -> tuple[np.ndarray, np.ndarray]:
    return np.full(N_WL, 0.01), np.full(N_WL, 0.001)


def test_a_physical_spectrum_passes(tmp_path: Path) -> None:
    sub = write_submission(tmp_path / "submission.csv", {"1": good(), "2": good()})
    report = symbolic.check_files(sub, write_grid(tmp_path / "wavelengths.csv", wavelengths()))
    assert report == {"checked": True, "rows": 2, "ok": True, "violations": []}


def test_each_broken_bound_is_named_with_its_column_and_exact_edges_count(tmp_path: Path) -> None:
    mu, sigma = good()
    mu[4], mu[6] = -1e-12, 1.0  # below 0, and exactly 1 (depth < 1 is strict)
    sigma[2] = float("nan")
    edge_mu, edge_sigma = good()
    edge_mu[0], edge_mu[1], edge_sigma[0] = 0.0, np.nextafter(1.0, 0.0), 5e-324  # all inside the bounds
    tiny_sigma = good()[0], np.full(N_WL, 0.001)
    tiny_sigma[1][9] = -0.0  # -0.0 is not > 0
    sub = write_submission(
        tmp_path / "submission.csv", {"10": (mu, sigma), "11": (edge_mu, edge_sigma), "12": tiny_sigma}
    )
    grid = wavelengths()
    grid[5] = grid[4]  # a repeated wavelength: not strictly increasing
    report = symbolic.check_files(sub, write_grid(tmp_path / "wavelengths.csv", grid))
    found = {(v["row"], v["bound"], v["column"], v["value"]) for v in report["violations"]}
    assert report["ok"] is False and report["rows"] == 3
    assert found == {
        ("10", "finite", "sigma_3", "nan"),
        ("10", "depth >= 0", "wl_5", -1e-12),
        ("10", "depth < 1", "wl_7", 1.0),
        ("12", "sigma > 0", "sigma_10", -0.0),
        ("wavelengths.csv", "wavelengths increasing", "wl_6", 0.0),
    }
    assert len(report["violations"]) == 5
    json.dumps(report, allow_nan=False)  # predict_summary.json stays strict JSON


def test_the_solver_names_every_broken_bound_not_just_one_core() -> None:
    assert symbolic.broken({"min depth": -0.5, "max depth": 2.0, "min sigma": 0.0}) == [
        "depth < 1",
        "depth >= 0",
        "sigma > 0",
    ]
    assert symbolic.broken({"min depth": 0.0, "max depth": 0.5, "min sigma": 1e-300}) == []


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("symbolic") / "data"
    make_dataset(root, n_train=2, n_test=2, airs_steps=375, fgs_steps=4500, seed=5, multi_visit_every=9)
    return root


def run_predict(data: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("SPECTRAMIND_CONFIG_DIR", str(REPO / "configs"))
    for var in ("SPECTRAMIND_DATA", "SPECTRAMIND_OUTPUT", "SPECTRAMIND_BUDGET_S", "SPECTRAMIND_DEADLINE"):
        monkeypatch.delenv(var, raising=False)
    argv = [
        f"data.root={data}",
        f"env.output_dir={out}",
        "predict.mode=calibration",
        "predict.check_bounds=true",
    ]
    assert predict.main(argv) == 0
    summary: dict[str, object] = json.loads((out / "predict_summary.json").read_text())
    return summary


def test_predict_checks_its_submission_when_asked(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = run_predict(data, tmp_path / "out", monkeypatch)
    expected = symbolic.check_files(tmp_path / "out" / "submission.csv", data / "wavelengths.csv")
    assert summary["bounds"] == expected and expected["rows"] == 2
    assert "predict: bounds check of 2 row(s)" in capsys.readouterr().err


def test_predict_without_the_extra_says_so_once_and_goes_on(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "z3", None)
    summary = run_predict(data, tmp_path / "out", monkeypatch)
    assert summary["bounds"] == {"checked": False, "reason": symbolic.MISSING}
    assert capsys.readouterr().err.count("'symbolic' extra (z3-solver) is not installed") == 1
    assert (tmp_path / "out" / "submission.csv").is_file()


def test_every_extra_is_a_dev_install_extra_with_the_same_requirements() -> None:
    """pyproject's optional dependencies repeat each requirements-NAME.in (setuptools cannot read
    file-based optional dependencies beside the static `dev` list): they must not drift apart."""
    optional = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = known(REPO / "requirements.in")
    assert "symbolic" in names
    for name in names:
        lines = (REPO / f"requirements-{name}.in").read_text().splitlines()
        assert optional.get(name) == [line for line in lines if line and not line.startswith("#")], name


def test_the_log_lists_five_violations_and_counts_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = {str(i): (np.full(N_WL, -0.5), np.full(N_WL, 0.001)) for i in range(7)}
    rows["3"][1][0] = float("inf")
    report = symbolic.check_output(write_submission(tmp_path / "s.csv", rows), tmp_path / "absent.csv")
    assert report["rows"] == 7 and len(report["violations"]) == 8
    err = capsys.readouterr().err
    assert "8 violation(s): 0 depth >= 0 (wl_1=-0.5); 1 depth >= 0 (wl_1=-0.5);" in err
    assert "3 finite (sigma_1=inf)" in err and "and 3 more" in err
