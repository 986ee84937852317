"""The Gaussian log-likelihood metric and submission parsing (spectramind.score)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spectramind.dataio import N_WL, wl_columns
from spectramind.errors import DataError
from spectramind.score import gll_score, main, read_submission, score_files
from spectramind.submission import SubmissionWriter, header, prior


def _truth(n: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 0.01 + 0.002 * rng.standard_normal((n, 1)) + 1e-4 * rng.standard_normal((n, N_WL))


def test_ideal_and_reference_bound_the_score() -> None:
    truth = _truth()
    mean, std = float(truth.mean()), float(truth.std())
    ideal_sigma = np.full_like(truth, 10e-6)
    ideal_sigma[:, 0] = 1e-6
    assert gll_score(truth, truth, ideal_sigma, mean, std).score == pytest.approx(1.0)
    assert gll_score(truth, np.full_like(truth, mean), np.full_like(truth, std), mean, std).score == 0.0
    noisy = truth + 50e-6 * np.random.default_rng(1).standard_normal(truth.shape)
    middle = gll_score(truth, noisy, np.full_like(truth, 50e-6), mean, std).score
    assert 0.2 < middle < 1.0
    # a confident but wrong submission falls below the reference and is clipped to 0
    assert gll_score(truth, truth + 1e-3, np.full_like(truth, 1e-6), mean, std).score == 0.0


def test_fgs_is_weighted() -> None:
    truth = _truth()
    mean, std = float(truth.mean()), float(truth.std())
    sigma = np.full_like(truth, 30e-6)
    bad_fgs, bad_airs = truth.copy(), truth.copy()
    bad_fgs[:, 0] += 300e-6
    bad_airs[:, 1] += 300e-6
    assert (
        gll_score(truth, bad_fgs, sigma, mean, std).score < gll_score(truth, bad_airs, sigma, mean, std).score
    )


def _write_submission(path: Path, ids: list[str], mu: np.ndarray, sigma: np.ndarray) -> None:
    fake_train = path.parent / "none.csv"
    writer = SubmissionWriter(path, ids, prior(fake_train))
    for pid, m, s in zip(ids, mu, sigma, strict=True):
        writer.update(pid, m, s)
    writer.flush()


def _write_truth(path: Path, ids: list[str], values: np.ndarray) -> None:
    lines = [",".join(["planet_id", *wl_columns()])]
    lines += [",".join([pid, *(f"{v:.12g}" for v in row)]) for pid, row in zip(ids, values, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def test_files_roundtrip_and_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = _truth(4)
    ids = ["11", "22", "33", "44"]
    _write_truth(tmp_path / "truth.csv", ids, truth)
    _write_truth(tmp_path / "train.csv", ids, _truth(6, seed=3)[:4])
    _write_submission(tmp_path / "sub.csv", ids[::-1], truth[::-1], np.full_like(truth, 20e-6))
    result = score_files(tmp_path / "sub.csv", tmp_path / "truth.csv", tmp_path / "train.csv")
    assert result.planets == 4 and result.score > 0.8  # rows matched by planet_id, not by position
    code = main(
        [
            "--submission",
            str(tmp_path / "sub.csv"),
            "--truth",
            str(tmp_path / "truth.csv"),
            f"data.root={tmp_path}",
            f"env.output_dir={tmp_path}",
        ]
    )
    assert code == 0
    assert (
        main(
            [
                "--json",
                "--submission",
                str(tmp_path / "sub.csv"),
                "--truth",
                str(tmp_path / "truth.csv"),
                f"data.root={tmp_path}",
            ]
        )
        == 0
    )
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert payload["score"] == pytest.approx(result.score) and payload["planets"] == 4


def test_negative_sigma_and_malformed_rows_are_rejected(tmp_path: Path) -> None:
    truth = _truth(2)
    ids = ["1", "2"]
    _write_truth(tmp_path / "truth.csv", ids, truth)
    _write_truth(tmp_path / "train.csv", ids, truth)
    sub = tmp_path / "sub.csv"
    _write_submission(sub, ids, truth, np.full_like(truth, 20e-6))
    lines = sub.read_text().splitlines()
    fields = lines[2].split(",")
    fields[N_WL + 5] = "-1e-5"
    sub.write_text("\n".join([*lines[:2], ",".join(fields)]) + "\n")
    with pytest.raises(DataError, match=r"negative sigma \(planet 2, sigma_5"):
        score_files(sub, tmp_path / "truth.csv", tmp_path / "train.csv")
    sub.write_text("\n".join([*lines[:2], ",".join(fields[:100])]) + "\n")
    with pytest.raises(DataError, match="row 3 has 100 fields"):
        score_files(sub, tmp_path / "truth.csv", tmp_path / "train.csv")
    sub.write_text("planet_id,wl_1\n1,0.1\n")
    with pytest.raises(DataError, match="header is malformed"):
        score_files(sub, tmp_path / "truth.csv", tmp_path / "train.csv")
    sub.write_text(header() + "\n" + lines[1] + "\n")
    with pytest.raises(DataError, match="1 missing"):
        score_files(sub, tmp_path / "truth.csv", tmp_path / "train.csv")


def test_writer_keeps_a_valid_file_while_planets_complete(tmp_path: Path) -> None:
    fallback = prior(tmp_path / "no-train.csv")
    assert fallback.source == "constant" and (fallback.sigma > 0).all()
    path = tmp_path / "out" / "submission.csv"
    writer = SubmissionWriter(path, ["7", "8", "9"], fallback, flush_every_s=0)
    writer.flush()
    writer.update("8", np.full(N_WL, 0.02), np.full(N_WL, 3e-5))
    ids, mu, sigma = read_submission(path)  # on disk already, without an explicit flush
    assert ids == ["7", "8", "9"]
    assert mu[1, 0] == pytest.approx(0.02) and mu[0, 0] == pytest.approx(fallback.mean[0])
    assert sigma[1, -1] == pytest.approx(3e-5)
    assert sorted(p.name for p in path.parent.iterdir()) == ["submission.csv"]  # no temp file left behind
    first = path.read_bytes()
    writer.flush()
    assert path.read_bytes() == first  # fixed formatting: same values, same bytes
