"""Your own RSS set: one CSV per part, a header, one row per fingerprint, AP and label columns in any
order.

Label columns are found by name (case-insensitive): x and y (required, metres), z (height, metres),
floor, building and user (whole numbers), device (any text), timestamp (unix seconds). Every other
column is an AP, named by its header; a cell equal to the not-detected marker (100 unless told) is an
AP not heard. Cells are separated by ',' (';' when the header holds one).
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable

import numpy as np

from jaxfp.data.files import FileTree
from jaxfp.data.tables import Table, read_numeric_rows
from jaxfp.data.types import DataFormatError, FingerprintSet, from_raw

NOT_DETECTED = 100.0
REQUIRED = {"x": "the x coordinate, metres", "y": "the y coordinate, metres"}
OPTIONAL = ("z", "floor", "building", "device", "user", "timestamp")
LABELS = (*REQUIRED, *OPTIONAL)


def label_columns(names: list[str]) -> bool:
    """Whether a header has the required x and y columns (for format detection)."""
    cells = {c.strip().strip('"').lower() for n in names for c in n.split(";")}
    return cells >= set(REQUIRED)


def parse_rss_csv(text: str, source: str, not_detected: float = NOT_DETECTED) -> FingerprintSet:
    """One CSV file's text as a validated set."""
    table, matrix = read_numeric_rows(text, source, text_names=("device",))
    cols = {name: table.require(name, what) for name, what in REQUIRED.items()}
    cols.update({name: col for name in OPTIONAL if (col := table.find(name)) is not None})
    ap_cols = [c for c in range(len(table.names)) if c not in set(cols.values())]
    if not ap_cols:
        raise DataFormatError(
            f"{source}, header: expected AP columns beside the labels {list(LABELS)}, found none"
        )
    for name in ("x", "y", "z", "timestamp"):
        if name in cols:
            _check(table, matrix, cols[name], np.isfinite, "a finite number")
    for name in ("floor", "building", "user"):
        if name in cols:
            _check(table, matrix, cols[name], _whole, "a whole number")
    labels: dict[str, object] = {}
    if "z" in cols:
        labels["height"] = matrix[:, cols["z"]]
    if "timestamp" in cols:
        labels["timestamp"] = matrix[:, cols["timestamp"]]
    for name in ("floor", "building"):
        if name in cols:
            labels[name] = np.round(matrix[:, cols[name]]).astype(np.int64)
    if "device" in cols:
        labels["device"] = np.asarray(table.columns[cols["device"]], dtype=str)
    domain = {}
    if "user" in cols:
        domain["user"] = np.round(matrix[:, cols["user"]]).astype(np.int64)
    return from_raw(
        matrix[:, ap_cols],
        float(not_detected),
        [table.names[c] for c in ap_cols],
        xy=matrix[:, [cols["x"], cols["y"]]],
        source=source,
        first_row=table.lines[0],
        domain=domain,
        **labels,
    )


def _whole(values: np.ndarray) -> np.ndarray:
    return np.isfinite(values) & (np.abs(values - np.round(values)) <= 1e-6)


def _check(
    table: Table,
    matrix: np.ndarray,
    col: int,
    ok: Callable[[np.ndarray], np.ndarray],
    expected: str,
) -> None:
    bad = ~ok(matrix[:, col])
    if bad.any():
        r = int(np.argmax(bad))
        raise DataFormatError(
            f"{table.at(r, col)}: expected {expected}, found {float(matrix[r, col])!r}"
        )


def load_rss_csv(
    path: str | os.PathLike, not_detected: float = NOT_DETECTED
) -> dict[str, FingerprintSet]:
    """A CSV file, or a folder or zip of them; each file is a part named after it (e.g. 'train')."""
    tree = FileTree(path)
    names = [n for n in tree.names() if n.lower().endswith(".csv")]
    if not names:
        raise DataFormatError(f"{path}: expected CSV files of fingerprints, found none")
    return {
        pathlib.PurePosixPath(n).stem: parse_rss_csv(
            tree.read_text(n), tree.describe(n), not_detected
        )
        for n in names
    }
