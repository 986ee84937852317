"""``spectramind score``: the Ariel Gaussian log-likelihood metric.

score = (L - L_ref) / (L_ideal - L_ref), clipped to [0, 1], where L is the weighted Gaussian
log-likelihood of the truth under the submission, L_ideal the same with mean = truth and sigma =
10 ppm (AIRS) / 1 ppm (FGS1), and L_ref with the train set's mean and std (scalars). FGS1 (the first
wavelength) is weighted 57.846.

Usage: ``spectramind score [--submission CSV] [--truth CSV] [--json] [OVERRIDES...]``; defaults are
``<output>/submission.csv`` and ``<data>/test_labels.csv`` (the synthetic set's ground truth).
``--json`` prints one JSON object on stdout.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from spectramind.dataio import N_WL, read_table, sigma_columns, wl_columns
from spectramind.errors import DataError

FGS_WEIGHT = 57.846
SIGMA_TRUE_AIRS = 10e-6
SIGMA_TRUE_FGS = 1e-6


@dataclass(frozen=True)
class Score:
    score: float
    log_likelihood: float
    log_likelihood_ideal: float
    log_likelihood_ref: float
    planets: int


def _gll(truth: np.ndarray, mu: np.ndarray, sigma: np.ndarray | float) -> np.ndarray:
    return np.asarray(-0.5 * (np.log(2 * np.pi) + 2 * np.log(sigma) + ((truth - mu) / sigma) ** 2))


def gll_score(
    truth: np.ndarray, mu: np.ndarray, sigma: np.ndarray, naive_mean: float, naive_sigma: float
) -> Score:
    """The metric for arrays shaped (planets, 283); sigma must be positive."""
    if (sigma <= 0).any() or not np.isfinite(sigma).all():
        raise DataError(
            "submission has non-positive or non-finite sigma values", fix="every sigma must be > 0"
        )
    if not np.isfinite(mu).all():
        raise DataError("submission has non-finite wl values", fix="every wl value must be a finite number")
    weights = np.ones(N_WL)
    weights[0] = FGS_WEIGHT
    ideal_sigma = np.full(N_WL, SIGMA_TRUE_AIRS)
    ideal_sigma[0] = SIGMA_TRUE_FGS
    ll = float((_gll(truth, mu, sigma) * weights).sum())
    ll_ideal = float((_gll(truth, truth, ideal_sigma[None, :]) * weights).sum())
    ll_ref = float((_gll(truth, np.full_like(truth, naive_mean), naive_sigma) * weights).sum())
    value = (ll - ll_ref) / (ll_ideal - ll_ref)
    return Score(float(np.clip(value, 0.0, 1.0)), ll, ll_ideal, ll_ref, truth.shape[0])


def read_submission(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Planet ids, means and sigmas of a submission; malformed headers or rows raise DataError."""
    if not path.is_file():
        raise DataError("submission file is missing", where=str(path), fix="run `spectramind predict` first")
    with path.open() as fh:
        header = fh.readline().strip().split(",")
    expected = ["planet_id", *wl_columns(), *sigma_columns()]
    if header != expected:
        raise DataError(
            f"submission header is malformed ({len(header)} columns, expected {len(expected)})",
            where=str(path),
            fix="columns are planet_id, wl_1..wl_283, sigma_1..sigma_283",
        )
    ids, values = read_table(path, width=2 * N_WL)
    sigma = values[:, N_WL:]
    bad = np.argwhere(sigma < 0)
    if bad.size:
        row, col = bad[0]
        raise DataError(
            f"submission has a negative sigma (planet {ids[row]}, sigma_{col + 1} = {sigma[row, col]})",
            where=f"{path}:{row + 2}",
            fix="sigma is a standard deviation: it must be positive",
        )
    return ids, values[:, :N_WL], sigma


def score_files(submission: Path, truth_path: Path, train_path: Path) -> Score:
    ids, mu, sigma = read_submission(submission)
    truth_ids, truth = read_table(truth_path, width=N_WL)
    _, train = read_table(train_path, width=N_WL)
    index = {pid: i for i, pid in enumerate(ids)}
    missing = [pid for pid in truth_ids if pid not in index]
    if missing or len(ids) != len(set(ids)):
        raise DataError(
            f"submission planets do not match the ground truth ({len(missing)} missing, "
            f"{len(ids) - len(set(ids))} duplicated)",
            where=str(submission),
            fix="one row per planet of the ground truth",
        )
    order = [index[pid] for pid in truth_ids]
    return gll_score(truth, mu[order], sigma[order], float(train.mean()), float(train.std()))


def main(argv: list[str]) -> int:
    from spectramind.cli import command_parser
    from spectramind.config import compose, find_config_dir
    from spectramind.runtime import print_json, run_paths

    parser = command_parser("score")
    parser.add_argument(
        "--submission", type=Path, default=None, help="submission CSV (default: <output>/submission.csv)"
    )
    parser.add_argument(
        "--truth", type=Path, default=None, help="ground-truth CSV (default: <data>/test_labels.csv)"
    )
    args = parser.parse_intermixed_args(argv)
    config_dir = find_config_dir()
    paths = run_paths(compose(list(args.overrides), config_dir), config_dir)
    submission = args.submission or paths.output / "submission.csv"
    truth = args.truth or paths.data / "test_labels.csv"
    result = score_files(submission, truth, paths.data / "train.csv")
    print(f"score {result.score:.6f} over {result.planets} planets ({submission})", file=sys.stderr)
    if args.json:
        print_json({**asdict(result), "submission": str(submission), "truth": str(truth)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
