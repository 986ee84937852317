"""Parity across profiles: the payload's submissions compared byte for byte, and where they differ."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bundler.parity import first_difference

REPO = Path(__file__).resolve().parent.parent
HEADER = "planet_id,wl_1,wl_2,sigma_1,sigma_2\r\n"
ROWS = ["11,0.010,0.020,0.001,0.002\r\n", "22,0.030,0.040,0.003,0.004\r\n"]


def _sub(*rows: str, header: str = HEADER) -> bytes:
    return (header + "".join(rows)).encode()


def parity(*argv: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAMIND_")}
    proc = subprocess.run(
        [sys.executable, "-m", "bundler", "parity", "--json", *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    return proc, json.loads(proc.stdout)


def test_identical_submissions_have_no_difference() -> None:
    assert first_difference(_sub(*ROWS), _sub(*ROWS)) is None


def test_first_differing_cell_is_named_by_row_planet_and_column() -> None:
    changed = ROWS[1].replace("0.040", "0.041")
    diff = first_difference(_sub(*ROWS), _sub(ROWS[0], changed))
    assert diff is not None
    assert (diff.kind, diff.row, diff.planet_id, diff.column) == ("cell", 2, "22", "wl_2")
    assert (diff.reference, diff.value) == ("0.040", "0.041")
    assert diff.describe() == "row 2 (planet 22), column wl_2: 0.040 != 0.041"


def test_a_missing_row_and_a_reordered_column_are_named() -> None:
    missing = first_difference(_sub(*ROWS), _sub(ROWS[0]))
    assert missing is not None and (missing.kind, missing.row, missing.value) == ("rows", 2, "<missing>")
    swapped = first_difference(_sub(*ROWS), _sub(*ROWS, header=HEADER.replace("wl_1,wl_2", "wl_2,wl_1")))
    assert swapped is not None and (swapped.kind, swapped.column) == ("header", "#2")
    reordered = first_difference(_sub(*ROWS), _sub(ROWS[1], ROWS[0]))
    assert reordered is not None and (reordered.kind, reordered.reference, reordered.value) == (
        "rows",
        "11",
        "22",
    )


def test_a_difference_below_the_csv_level_is_the_first_byte() -> None:
    lf = _sub(*ROWS).replace(b"\r\n", b"\n")
    diff = first_difference(_sub(*ROWS), lf)
    assert diff is not None and diff.kind == "bytes"
    assert diff.row == HEADER.index("\r")


def test_compare_only_mismatch_exits_1_and_names_the_cell(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(_sub(*ROWS))
    (tmp_path / "b.csv").write_bytes(_sub(*ROWS))
    (tmp_path / "c.csv").write_bytes(_sub(ROWS[0], ROWS[1].replace("0.003", "0.0031")))
    proc, result = parity(
        "--profiles", "none",
        "--submission", f"a={tmp_path / 'a.csv'}",
        "--submission", f"b={tmp_path / 'b.csv'}",
        "--submission", f"c={tmp_path / 'c.csv'}",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert result["ok"] is False and result["error"] == "ParityMismatch"
    assert result["submissions"]["b"]["matches"] is True
    assert result["submissions"]["c"]["first_difference"]["column"] == "sigma_1"
    assert "c differs from a at row 2 (planet 22), column sigma_1: 0.003 != 0.0031" in proc.stderr


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    proc, result = parity("--profiles", "default,gpu")
    assert proc.returncode == 2 and "unknown profile(s) gpu" in result["what"]
    proc, result = parity("--profiles", "none", "--submission", f"a={tmp_path / 'a.csv'}")
    assert proc.returncode == 2 and "at least two submissions" in result["what"]
    proc, result = parity("--profiles", "none", "--submission", "a", "--submission", "b=x")
    assert proc.returncode == 2 and "is not NAME=PATH" in result["what"]
    proc, result = parity("--profiles", "none", "--submission", "a=/nonexistent/a.csv", "--submission", "b=x")
    assert proc.returncode == 2 and "the a submission cannot be read" in result["what"]


@pytest.mark.slow
def test_default_and_docker_profiles_give_byte_identical_submissions(tmp_path: Path) -> None:
    """The local command runs each profile's self-test and the payload on the same small data."""
    out = tmp_path / "parity"
    proc, result = parity("--profiles", "default,docker", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    subs = result["submissions"]
    assert subs["default"]["sha256"] == subs["docker"]["sha256"]
    assert (out / "docker" / "submission.csv").read_bytes() == (
        out / "default" / "submission.csv"
    ).read_bytes()
    assert len((out / "default" / "submission.csv").read_text().splitlines()) == 1 + 3  # the small dataset
    # a second run empties its own folder, but never a folder it did not make
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("x")
    proc, result = parity("--profiles", "default,ci", "--out", str(tmp_path / "mine"))
    assert proc.returncode == 2 and "was not made by parity" in result["what"]
    assert (tmp_path / "mine" / "keep.txt").is_file()
