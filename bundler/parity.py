"""Byte-for-byte comparison of submissions from different profiles, and where they first differ.

Two submissions agree only when their bytes are equal. When they are not, the first differing cell
is found by reading both as CSV: the header first (a column missing, extra or out of order), then
row by row (a planet missing or out of order), then cell by cell. A difference the CSV reading
cannot see (line endings, quoting, a trailing newline) is reported as the first differing byte.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bundler.errors import UsageError


@dataclass(frozen=True)
class Difference:
    """Where two submissions first differ: a cell (row/column) or, below the CSV level, a byte."""

    kind: str  # cell | header | rows | bytes
    row: int | None  # 1-based data row (the header is row 0)
    planet_id: str | None
    column: str | None
    reference: str
    value: str

    def describe(self) -> str:
        if self.kind == "cell":
            return (
                f"row {self.row} (planet {self.planet_id}), column {self.column}: "
                f"{self.reference} != {self.value}"
            )
        if self.kind == "header":
            return f"header, column {self.column}: {self.reference} != {self.value}"
        if self.kind == "rows":
            return f"row {self.row}: {self.reference} != {self.value}"
        return f"byte {self.row}: {self.reference} != {self.value}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def read_submission(path: Path, label: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"the {label} submission cannot be read: {exc.strerror or exc}",
            where=str(path),
            fix="run that profile first, or pass the path of the submission.csv it wrote",
        ) from exc


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8", errors="replace"), newline="")))


def _first_byte(reference: bytes, value: bytes) -> Difference:
    index = next(
        (i for i, (a, b) in enumerate(zip(reference, value, strict=False)) if a != b),
        min(len(reference), len(value)),
    )
    return Difference(
        "bytes", index, None, None, repr(reference[index : index + 16]), repr(value[index : index + 16])
    )


def first_difference(reference: bytes, value: bytes) -> Difference | None:
    """None when the bytes are equal; else the first differing cell (or byte)."""
    if reference == value:
        return None
    ref_rows, rows = _rows(reference), _rows(value)
    ref_head, head = (ref_rows[0] if ref_rows else []), (rows[0] if rows else [])
    for i in range(max(len(ref_head), len(head))):
        a = ref_head[i] if i < len(ref_head) else "<missing>"
        b = head[i] if i < len(head) else "<missing>"
        if a != b:
            return Difference("header", 0, None, f"#{i + 1}", a, b)
    for r in range(1, max(len(ref_rows), len(rows))):
        if r >= len(ref_rows) or r >= len(rows):
            extra = rows if r >= len(ref_rows) else ref_rows
            planet = extra[r][0] if extra[r] else ""
            a, b = ("<missing>", planet) if r >= len(ref_rows) else (planet, "<missing>")
            return Difference("rows", r, planet, None, a, b)
        ref_row, row = ref_rows[r], rows[r]
        if ref_row[:1] != row[:1]:
            return Difference("rows", r, ref_row[0] if ref_row else None, ref_head[0], *_ids(ref_row, row))
        for c in range(max(len(ref_row), len(row))):
            a = ref_row[c] if c < len(ref_row) else "<missing>"
            b = row[c] if c < len(row) else "<missing>"
            if a != b:
                column = ref_head[c] if c < len(ref_head) else f"#{c + 1}"
                return Difference("cell", r, ref_row[0], column, a, b)
    return _first_byte(reference, value)


def _ids(ref_row: list[str], row: list[str]) -> tuple[str, str]:
    return (ref_row[0] if ref_row else "<empty>"), (row[0] if row else "<empty>")
