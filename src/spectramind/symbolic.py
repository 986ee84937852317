"""The physical bounds of a predicted spectrum, checked by the z3 solver (the ``symbolic`` extra).

``spectramind predict predict.check_bounds=true`` checks ``submission.csv`` once it is written:
every transit depth in [0, 1), every sigma > 0, every value finite and, when the data root has
``wavelengths.csv``, the wavelengths strictly increasing. The bounds are stated once, as z3
formulas over a row's extremes; each row's observed extremes are tracked facts, taken as exact
rationals (no float rounding at the edges), so the solver's unsat cores name exactly the bounds a row
breaks. Violations are reported (log and ``predict_summary.json``); they do not change the exit code.

z3 comes with the optional extra (``pip install -e '.[symbolic]'``, or ``bundle.extras=[symbolic]``
in a bundle) and is imported only when the check runs; without it the run says so once and goes on.
"""

from __future__ import annotations

import csv
import importlib.util
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from spectramind.dataio import N_WL, read_table
from spectramind.errors import DataError
from spectramind.runtime import log

MISSING = (
    "predict.check_bounds=true but the 'symbolic' extra (z3-solver) is not installed: bounds not "
    "checked (pip install -e '.[symbolic]'; in a bundle: build with bundle.extras=[symbolic])"
)
# Each bound: the fact it judges (a row's extreme) and the formula that fact must satisfy.
BOUNDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "depth >= 0": ("min depth", lambda x: x >= 0),
    "depth < 1": ("max depth", lambda x: x < 1),
    "sigma > 0": ("min sigma", lambda x: x > 0),
    "wavelengths increasing": ("min wavelength step", lambda x: x > 0),
}


@dataclass(frozen=True)
class Violation:
    """One broken bound of one row: its worst column and value."""

    row: str  # a planet_id, or "wavelengths.csv"
    bound: str
    column: str
    value: float | str  # "nan", "inf", "-inf" for what JSON cannot hold


def available() -> bool:
    """True when z3 can be imported (the ``symbolic`` extra is installed)."""
    return importlib.util.find_spec("z3") is not None


def broken(extremes: dict[str, float]) -> list[str]:
    """The bounds (names of `BOUNDS`) that these finite extremes break, by the solver's unsat cores."""
    import z3

    solver = z3.Solver()
    facts = {}
    for bound, (fact, holds) in BOUNDS.items():
        if fact in extremes:
            variable = z3.Real(fact)
            solver.add(holds(variable))  # the physics
            facts[bound] = variable == z3.RealVal(str(Fraction(extremes[fact])))  # what was observed
    found: list[str] = []
    while True:
        solver.push()
        for bound, fact in facts.items():
            solver.assert_and_track(fact, bound)
        verdict = solver.check()
        core = [str(name) for name in solver.unsat_core()] if verdict == z3.unsat else []
        solver.pop()
        if not core:
            return sorted(found)
        found += core  # peel this core off: the rest may break bounds of its own
        facts = {bound: fact for bound, fact in facts.items() if bound not in core}


def check_row(row: str, columns: list[str], depth: np.ndarray, sigma: np.ndarray) -> list[Violation]:
    """The violations of one submission row (``columns``: its header without planet_id)."""
    values = np.concatenate([depth, sigma])
    found = [
        Violation(row, "finite", columns[i], str(values[i])) for i in np.flatnonzero(~np.isfinite(values))
    ]
    where: dict[str, tuple[str, float]] = {}
    for fact, part, offset, lowest in (
        ("min depth", depth, 0, True),
        ("max depth", depth, 0, False),
        ("min sigma", sigma, depth.size, True),
    ):
        finite = np.isfinite(part)
        if finite.any():
            i = int(
                np.argmin(np.where(finite, part, np.inf))
                if lowest
                else np.argmax(np.where(finite, part, -np.inf))
            )
            where[fact] = (columns[offset + i], float(part[i]))
    return found + _judge(row, where)


def check_wavelengths(columns: list[str], grid: np.ndarray) -> list[Violation]:
    """The violations of the wavelength grid (one row of wavelengths.csv): finite, strictly increasing."""
    found = [
        Violation("wavelengths.csv", "finite", columns[i], str(grid[i]))
        for i in np.flatnonzero(~np.isfinite(grid))
    ]
    steps = np.diff(np.where(np.isfinite(grid), grid, np.nan))
    finite = np.isfinite(steps)
    if not finite.any():
        return found
    i = int(np.argmin(np.where(finite, steps, np.inf)))
    return found + _judge("wavelengths.csv", {"min wavelength step": (columns[i + 1], float(steps[i]))})


def _judge(row: str, where: dict[str, tuple[str, float]]) -> list[Violation]:
    names = broken({fact: value for fact, (_column, value) in where.items()})
    return [Violation(row, bound, *where[BOUNDS[bound][0]]) for bound in names]


def read_grid(path: Path) -> tuple[list[str], np.ndarray]:
    """wavelengths.csv: a header of wavelength columns and one row of values."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if r]
    try:
        if len(rows) != 2 or len(rows[0]) != len(rows[1]):
            raise ValueError(f"expected a header and one row of {len(rows[0]) if rows else 0} values")
        return rows[0], np.asarray([float(v) for v in rows[1]], dtype=np.float64)
    except ValueError as exc:
        raise DataError(f"{path.name} is not one row of wavelengths: {exc}", where=str(path)) from exc


def check_files(submission: Path, wavelengths: Path) -> dict[str, Any]:
    """Check a submission (and the wavelength grid, when present): the report as JSON."""
    ids, values = read_table(submission, width=2 * N_WL)
    with submission.open(encoding="utf-8") as fh:
        columns = fh.readline().strip().split(",")[1:]
    found: list[Violation] = []
    for planet, row in zip(ids, values, strict=True):
        found += check_row(planet, columns, row[:N_WL], row[N_WL:])
    if wavelengths.is_file():
        found += check_wavelengths(*read_grid(wavelengths))
    return {"checked": True, "rows": len(ids), "ok": not found, "violations": [asdict(v) for v in found]}


def check_output(submission: Path, wavelengths: Path) -> dict[str, Any]:
    """predict's hook: the report, or why there is none (said once, in the run's log)."""
    if not available():
        log(f"predict: {MISSING}")
        return {"checked": False, "reason": MISSING}
    report = check_files(submission, wavelengths)
    violations = report["violations"]
    listed = "; ".join(_describe(v) for v in violations[:5]) + (
        f" and {len(violations) - 5} more" if len(violations) > 5 else ""
    )
    verdict = f"{len(violations)} violation(s): {listed}" if violations else "all within bounds"
    log(f"predict: bounds check of {report['rows']} row(s): {verdict}")
    return report


def _describe(violation: dict[str, Any]) -> str:
    value = violation["value"]
    shown = value if isinstance(value, str) else f"{value:.6g}"
    return f"{violation['row']} {violation['bound']} ({violation['column']}={shown})"
