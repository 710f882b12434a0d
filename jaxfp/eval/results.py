"""The results layer: summaries over seeds (Student-t intervals, `stats`), results.json, printed and
markdown tables.

Every protocol writes one `results.json` through `write_results`:
    {"title", "config", "results": {row: {column: value}}, "columns": [...],
     "tables": {name: {"columns": [...], "rows": {...}}}, ...anything else the protocol keeps}
so `jaxfp report WORKDIR [--markdown]` can print any finished run's tables again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxfp.common.atomic_files import write_json
from jaxfp.eval.metrics import error_summary
from jaxfp.eval.stats import INTERVAL_KIND, over_seeds

INTERVAL_NOTE = (
    "*_ci_low/high of a row with n_seeds: Student-t 95% interval of the mean over its seeds"
)

RESULTS_FILE = "results.json"


def error_row_over_seeds(
    errors: np.ndarray, seeds: Sequence[int], percentiles: Sequence[int]
) -> dict[str, Any]:
    """(seeds, n) errors -> the mean over seeds of each seed's mean and percentiles, the mean's
    t-interval over seeds, and each seed's mean."""
    per_seed = [error_summary(e, percentiles) for e in errors]
    row: dict[str, Any] = over_seeds([p["mean"] for p in per_seed])
    for q in percentiles:
        row[f"p{q}"] = float(np.mean([p[f"p{q}"] for p in per_seed]))
    row["per_seed_mean"] = {str(s): p["mean"] for s, p in zip(seeds, per_seed, strict=True)}
    return row


def table(rows: Mapping[str, Mapping[str, object]], columns: Sequence[str]) -> dict[str, Any]:
    """One named extra table for `write_results`."""
    return {"columns": list(columns), "rows": rows}


def write_results(
    workdir: str,
    title: str,
    config: Any,
    rows: Mapping[str, Mapping[str, object]],
    columns: Sequence[str],
    tables: Mapping[str, Mapping[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Write workdir/results.json (atomically) and print its tables; returns what was written."""
    payload = {
        "title": title,
        "config": config.to_dict() if hasattr(config, "to_dict") else config,
        "results": rows,
        "columns": list(columns),
        "tables": dict(tables or {}),
        **extra,
    }
    write_json(os.path.join(workdir, RESULTS_FILE), payload)
    print(render(payload), flush=True)
    return payload


class ResultsFileError(ValueError):
    """A results file that cannot be read back (not JSON, or not the layout `write_results` writes)."""


def read_results(path: str) -> dict[str, Any]:
    """The results of a finished run: `path` is its workdir or a results file (e.g. under
    docs/results/); the layout is checked so a damaged file is named, not half-rendered."""
    if os.path.isdir(path):
        path = os.path.join(path, RESULTS_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no results (has the run finished?)")
    elif not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such workdir or results file")
    try:
        with open(path) as f:
            payload = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ResultsFileError(
            f"{path}: expected a JSON results file, could not parse it ({err})"
        ) from None
    _check_layout(payload, path)
    return payload


def _check_layout(payload: Any, path: str) -> None:
    def rows_ok(rows: Any) -> bool:
        return isinstance(rows, Mapping) and all(isinstance(r, Mapping) for r in rows.values())

    if not isinstance(payload, Mapping):
        raise ResultsFileError(f"{path}: expected a JSON object, found {type(payload).__name__}")
    if not rows_ok(payload.get("results")):
        raise ResultsFileError(
            f"{path}, field 'results': expected an object of rows (name -> {{column: value}})"
        )
    if not isinstance(payload.get("columns", []), list):
        raise ResultsFileError(f"{path}, field 'columns': expected a list of column names")
    tables = payload.get("tables", {})
    if not isinstance(tables, Mapping):
        raise ResultsFileError(f"{path}, field 'tables': expected an object of named tables")
    for name, extra in tables.items():
        if (
            not isinstance(extra, Mapping)
            or not rows_ok(extra.get("rows"))
            or not isinstance(extra.get("columns"), list)
        ):
            raise ResultsFileError(
                f"{path}, field 'tables.{name}': expected {{'columns': [...], 'rows': {{...}}}}"
            )


def render(
    results: Mapping[str, Any], markdown: bool = False, only: Sequence[str] | None = None
) -> str:
    """The main table and every extra table of a results.json, as text or markdown; with `only`,
    the main table where it names "main" and the extra tables whose captions start with one of
    its other entries (the title always)."""
    fmt = markdown_table if markdown else format_table
    # markdown: a caption is its own paragraph, so a table never continues a line of text
    gap = [""] if markdown else []
    columns = results.get("columns") or None
    parts, tables = [str(results.get("title", ""))], []
    if only is None or "main" in only:
        parts += [*gap, fmt(results["results"], columns)]
        tables.append(results["results"])
    prefixes = None if only is None else tuple(p for p in only if p != "main")
    for name, extra in results.get("tables", {}).items():
        if prefixes is not None and not name.startswith(prefixes):
            continue
        parts += ["", name, *gap, fmt(extra["rows"], extra["columns"])]
        tables.append(extra["rows"])
    kinds = {r.get("interval") for t in tables for r in t.values() if isinstance(r, Mapping)}
    if INTERVAL_KIND in kinds:
        varies = results.get("seed_varies")
        parts += ["", INTERVAL_NOTE + (f"; a seed varies {varies}." if varies else ".")]
    return "\n".join(parts)


def format_table(
    rows: Mapping[str, Mapping[str, object]], columns: Sequence[str] | None = None
) -> str:
    """A fixed-width text table: one row per name, one column per metric."""
    if not rows:
        return "(no results)"
    header, body = _cells(rows, columns)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).rjust(w) if i else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    return "\n".join([line(header), rule, *(line(b) for b in body)])


def markdown_table(
    rows: Mapping[str, Mapping[str, object]], columns: Sequence[str] | None = None
) -> str:
    """The same table in GitHub markdown (as docs/ renders it)."""
    if not rows:
        return "(no results)"
    header, body = _cells(rows, columns)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(b) + " |" for b in body]
    return "\n".join(lines)


def _cells(
    rows: Mapping[str, Mapping[str, object]], columns: Sequence[str] | None
) -> tuple[list[str], list[list[str]]]:
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows.values() for k in r))
    elif any("n_seeds" in r for r in rows.values()) and "n_seeds" not in columns:
        columns = [*columns, "n_seeds"]  # an interval over seeds is always shown with its n
    header = ["", *columns]
    body = [[str(name), *(_cell(r.get(c)) for c in columns)] for name, r in rows.items()]
    return header, body


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not np.isfinite(value):
        return "-" if np.isnan(value) else str(value)
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.4g}"
    if isinstance(value, Mapping):
        return "-"
    return str(value)
