"""Results tables: printed for people, saved as JSON for programs; writes are atomic."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary name beside `path`; rename it onto `path` only if the block succeeds."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    return value


def write_json(path: str | os.PathLike, obj: object) -> str:
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(_plain(obj), f, indent=2, sort_keys=False)
        f.write("\n")
    return os.fspath(path)


def format_table(
    rows: Mapping[str, Mapping[str, object]], columns: Sequence[str] | None = None
) -> str:
    """A fixed-width text table: one row per name, one column per metric."""
    if not rows:
        return "(no results)"
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows.values() for k in r))
    header = ["", *columns]
    body = [[name, *(_cell(r.get(c)) for c in columns)] for name, r in rows.items()]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).rjust(w) if i else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    return "\n".join([line(header), rule, *(line(b) for b in body)])


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.4g}"
    return str(value)
