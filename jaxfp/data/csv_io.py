"""Numeric CSV tables with errors that name the file, the line and the column.

numpy's C parser reads well-formed files fast; when it refuses one, a slow pass over the text finds
the first offending line and says what it expected there.
"""

from __future__ import annotations

import csv
import io

import numpy as np

from jaxfp.data.types import DataFormatError, locate


def read_numeric_csv(
    text: str, source: str, header: bool, columns: int | None = None
) -> tuple[list[str] | None, np.ndarray]:
    """Parse comma-separated numbers; returns (header names or None, float64 matrix)."""
    lines = text.splitlines()
    names: list[str] | None = None
    if header:
        if not lines or not lines[0].strip():
            raise DataFormatError(f"{source}: expected a header line, the file is empty")
        names = [n.strip().strip('"') for n in next(csv.reader([lines[0]]))]
        columns = len(names)
    body_start = 1 if header else 0
    if len(lines) <= body_start or not any(line.strip() for line in lines[body_start:]):
        raise DataFormatError(f"{source}: expected at least one data row, found none")
    try:
        table = np.loadtxt(
            io.StringIO(text), delimiter=",", skiprows=body_start, ndmin=2, dtype=np.float64
        )
    except ValueError:
        _raise_first_bad_line(lines, body_start, columns, names, source)
        raise  # unreachable: the scan always finds what numpy refused
    if columns is not None and table.shape[1] != columns:
        raise DataFormatError(f"{source}: expected {columns} columns, found {table.shape[1]}")
    return names, table


def _raise_first_bad_line(
    lines: list[str], start: int, columns: int | None, names: list[str] | None, source: str
) -> None:
    for line_no, cells in enumerate(csv.reader(lines[start:]), start=start + 1):
        if not cells:
            continue
        if columns is None:
            columns = len(cells)
        if len(cells) != columns:
            raise DataFormatError(
                f"{locate(source, line_no)}: expected {columns} comma-separated values, "
                f"found {len(cells)} (truncated or malformed line)"
            )
        for col, cell in enumerate(cells):
            try:
                float(cell)
            except ValueError:
                field = names[col] if names else f"column {col + 1}"
                raise DataFormatError(
                    f"{locate(source, line_no, field)}: expected a number, found {cell!r}"
                ) from None
    raise DataFormatError(f"{source}: could not parse the file as a numeric CSV table")


def require_integral(values: np.ndarray, source: str, field: str, first_row: int) -> np.ndarray:
    """int64 copy of a column that must hold whole numbers (float noise below 1e-6 is rounded off)."""
    bad = ~np.isfinite(values) | (np.abs(values - np.round(values)) > 1e-6)
    if bad.any():
        r = int(np.argmax(bad))
        raise DataFormatError(
            f"{locate(source, r + first_row, field)}: expected an integer, found {float(values[r])!r}"
        )
    return np.round(values).astype(np.int64)


def require_finite(values: np.ndarray, source: str, field: str, first_row: int) -> np.ndarray:
    bad = ~np.isfinite(values)
    if bad.any():
        r = int(np.argwhere(bad)[0][0])
        raise DataFormatError(
            f"{locate(source, r + first_row, field)}: expected finite numbers, found {values[r].tolist()!r}"
        )
    return values


def check_unique_names(names: list[str], source: str) -> None:
    seen: dict[str, int] = {}
    for col, name in enumerate(names, start=1):
        if name in seen:
            raise DataFormatError(
                f"{source}: duplicate column {name!r} (columns {seen[name]} and {col}); "
                "expected each AP once"
            )
        seen[name] = col
