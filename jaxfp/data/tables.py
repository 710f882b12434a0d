"""Delimited text tables read column by column, with errors that name the file, the row and the
field: what the COMFORD and own-CSV readers share."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterator

import numpy as np

from jaxfp.data.types import DataFormatError, locate

# Cells that mean "no value" (compared lower-cased).
MISSING = frozenset({"", "none", "null", "nan", "na", "n/a"})


@dataclasses.dataclass
class Table:
    """A delimited file held column by column, with each row's 1-based file line."""

    source: str
    names: list[str]
    columns: list[list[str]]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.lines)

    def find(self, *aliases: str) -> int | None:
        lowered = [n.lower() for n in self.names]
        for alias in aliases:
            if alias in lowered:
                return lowered.index(alias)
        return None

    def require(self, name: str, what: str, *aliases: str) -> int:
        col = self.find(name, *aliases)
        if col is None:
            raise DataFormatError(
                f"{self.source}, header: expected a column {name!r} ({what}), "
                f"found columns {self.names}"
            )
        return col

    def at(self, row: int, col: int) -> str:
        """'file, row R, field F' of a cell (row is the 0-based data row)."""
        return locate(self.source, self.lines[row], self.names[col])


def read_header(line: str, source: str) -> tuple[str, list[str]]:
    if not line.strip():
        raise DataFormatError(f"{source}: expected a header line, the file is empty")
    delimiter = ";" if ";" in line else ","
    names = [n.strip() for n in next(csv.reader([line], delimiter=delimiter))]
    seen: dict[str, int] = {}
    for col, name in enumerate(names, start=1):
        if name.lower() in seen:
            raise DataFormatError(
                f"{source}, header: expected each column once, found {name!r} in columns "
                f"{seen[name.lower()]} and {col}"
            )
        seen[name.lower()] = col
    return delimiter, names


def data_rows(
    lines: list[str], delimiter: str, names: list[str], source: str
) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank row after the header; a row with another number of
    cells than the header is refused naming its line."""
    reader = csv.reader(lines[1:], delimiter=delimiter)
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        line_no = reader.line_num + 1
        if len(row) != len(names):
            raise DataFormatError(
                f"{locate(source, line_no)}: expected {len(names)} {delimiter!r}-separated values "
                f"as in the header, found {len(row)} (truncated or malformed line)"
            )
        yield line_no, row


def read_table(text: str, source: str) -> Table:
    """A COMFORD CSV's text as a Table; every row must have as many cells as the header."""
    lines = text.splitlines()
    delimiter, names = read_header(lines[0] if lines else "", source)
    columns: list[list[str]] = [[] for _ in names]
    numbers: list[int] = []
    for line_no, row in data_rows(lines, delimiter, names, source):
        for column, cell in zip(columns, row, strict=True):
            column.append(cell.strip())
        numbers.append(line_no)
    if not numbers:
        raise DataFormatError(f"{source}: expected at least one data row, found none")
    return Table(source, names, columns, numbers)


def missing_mask(values: list[str]) -> np.ndarray:
    return np.array([v.lower() in MISSING for v in values], bool)


def numbers(table: Table, col: int, required: bool, expected: str = "a number") -> np.ndarray:
    """float64 column, NaN where a cell is missing (refused when `required`); non-finite refused."""
    values = table.columns[col]
    missing = missing_mask(values)
    if required and missing.any():
        r = int(np.argmax(missing))
        raise DataFormatError(f"{table.at(r, col)}: expected {expected}, found {values[r]!r}")
    out = np.full(len(values), np.nan)
    present = np.flatnonzero(~missing)
    try:
        out[present] = np.asarray([values[i] for i in present], dtype=np.float64)
    except ValueError:
        for i in present:
            try:
                float(values[i])
            except ValueError:
                raise DataFormatError(
                    f"{table.at(int(i), col)}: expected {expected}, found {values[i]!r}"
                ) from None
        raise
    bad = ~missing & ~np.isfinite(out)
    if bad.any():
        r = int(np.argmax(bad))
        raise DataFormatError(f"{table.at(r, col)}: expected {expected}, found {values[r]!r}")
    return out


def whole_numbers(table: Table, col: int) -> np.ndarray:
    """float64 column of whole numbers (NaN where missing)."""
    expected = "a whole number (jaxfp's integer labels)"
    out = numbers(table, col, required=False, expected=expected)
    bad = ~np.isnan(out) & (np.abs(out - np.round(out)) > 1e-6)
    if bad.any():
        r = int(np.argmax(bad))
        raise DataFormatError(
            f"{table.at(r, col)}: expected {expected}, found {table.columns[col][r]!r}"
        )
    return np.round(out)


def unique_ids(table: Table, col: int) -> list[str]:
    """The column's values, each present and unique (errors name both rows of a duplicate)."""
    ids = table.columns[col]
    first: dict[str, int] = {}
    for r, value in enumerate(ids):
        if value.lower() in MISSING:
            raise DataFormatError(f"{table.at(r, col)}: expected an identifier, found {value!r}")
        if value in first:
            raise DataFormatError(
                f"{table.source}, rows {table.lines[first[value]]} and {table.lines[r]}, field "
                f"{table.names[col]!r}: expected unique identifiers, found {value!r} twice"
            )
        first[value] = r
    return ids


def complete(table: Table, col: int, rows: np.ndarray, missing: np.ndarray, part: str) -> bool:
    """Whether a column has a value on the part's rows: every row (True) or none (False)."""
    gaps = missing[rows]
    if gaps.all():
        return False
    if gaps.any():
        r = int(rows[np.argmax(gaps)])
        raise DataFormatError(
            f"{table.at(r, col)}: expected a value on every row of part {part!r} or on none, "
            f"found {table.columns[col][r]!r}"
        )
    return True


def read_numeric_rows(
    text: str, source: str, text_names: tuple[str, ...] = ()
) -> tuple[Table, np.ndarray]:
    """A delimited file of numbers, streamed row by row into a float64 matrix (a wide file never
    sits in memory as text cells); columns named in `text_names` (lower-case) are kept as text in
    the returned Table, and hold NaN in the matrix. A cell that is not a number is refused, naming
    its row and column."""
    lines = text.splitlines()
    delimiter, names = read_header(lines[0] if lines else "", source)
    kept = [c for c, n in enumerate(names) if n.lower() in text_names]
    numeric = [c for c in range(len(names)) if c not in kept]
    columns: list[list[str]] = [[] for _ in names]
    numbers_at: list[int] = []
    rows: list[np.ndarray] = []
    for line_no, row in data_rows(lines, delimiter, names, source):
        values = np.full(len(names), np.nan)
        cells = [row[c] for c in numeric]
        try:
            values[numeric] = np.asarray(cells, dtype=np.float64)
        except ValueError:
            for c, cell in zip(numeric, cells, strict=True):
                try:
                    float(cell)
                except ValueError:
                    raise DataFormatError(
                        f"{locate(source, line_no, names[c])}: expected a number, found {cell!r}"
                    ) from None
            raise
        for c in kept:
            columns[c].append(row[c].strip())
        numbers_at.append(line_no)
        rows.append(values)
    if not rows:
        raise DataFormatError(f"{source}: expected at least one data row, found none")
    return Table(source, names, columns, numbers_at), np.stack(rows)
