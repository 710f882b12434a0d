"""One entry point that loads any supported set from a path, guessing the format when asked."""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Callable

from jaxfp.data.comford import is_comford, load_comford
from jaxfp.data.files import FileTree
from jaxfp.data.longterm import LONGTERM_MEMBER, index_longterm, load_longterm
from jaxfp.data.mat import load_mat
from jaxfp.data.rss_csv import label_columns, load_rss_csv
from jaxfp.data.tabular import SOD_LABELS, UJI_LABELS, load_sodindoorloc, load_ujiindoorloc
from jaxfp.data.types import DataFormatError, FingerprintSet, concat

LONGTERM_PART = re.compile(r"(\d\d)/")  # a long-term part's month, 'MM/trnNN'

LOADERS: dict[str, Callable[..., dict[str, FingerprintSet]]] = {
    "mat": load_mat,
    "ujiindoorloc": load_ujiindoorloc,
    "sodindoorloc": load_sodindoorloc,
    "longterm": load_longterm,
    "comford": load_comford,
    "csv": load_rss_csv,
}


def detect_format(path: str | os.PathLike) -> str:
    """The loader name for `path`, from its extension, file names or CSV header."""
    path = pathlib.Path(path)
    if path.suffix.lower() == ".mat":
        return "mat"
    tree = FileTree(path)
    names = tree.names()
    if any(LONGTERM_MEMBER.search(n) for n in names):
        return "longterm"
    # Before UJIIndoorLoc: the comford package keeps the raw CSVs beside its own.
    if is_comford(names):
        return "comford"
    if any(pathlib.PurePosixPath(n).name == "trainingData.csv" for n in names):
        return "ujiindoorloc"
    csvs = [n for n in names if n.lower().endswith(".csv")]
    if csvs:
        header = tree.read_text(csvs[0]).split("\n", 1)[0]
        columns = [c.strip().strip('"') for c in header.split(",")]
        if tuple(columns[-len(UJI_LABELS) :]) == UJI_LABELS:
            return "ujiindoorloc"
        if tuple(columns[-len(SOD_LABELS) :]) == SOD_LABELS:
            return "sodindoorloc"
        if label_columns(columns):
            return "csv"
    raise DataFormatError(
        f"{path}: could not recognise the format; expected a .mat of the Torres-Sospedra "
        "collection, UJIIndoorLoc or SODIndoorLoc CSV, the long-term db/MM/ layout, a COMFORD "
        "set, or a CSV with AP columns and x, y columns"
    )


def load(
    path: str | os.PathLike, format: str = "auto", **options: object
) -> dict[str, FingerprintSet]:
    """Named parts of a data set (e.g. {'train', 'test'}), each a validated FingerprintSet."""
    fmt = detect_format(path) if format == "auto" else format
    if fmt not in LOADERS:
        raise DataFormatError(f"format: expected one of {sorted(LOADERS)} or 'auto', got {fmt!r}")
    return LOADERS[fmt](path, **options)


def load_parts(
    path: str | os.PathLike, parts: str | list[str], format: str = "auto", **options: object
) -> FingerprintSet:
    """The named parts of a set, stacked; `parts` may use a trailing '*' (e.g. '01/trn*')."""
    wanted = [parts] if isinstance(parts, str) else list(parts)
    fmt = detect_format(path) if format == "auto" else format
    months = [LONGTERM_PART.match(p) for p in wanted]
    if fmt == "longterm" and "months" not in options and all(months):
        # Parse only the months asked for (a protocol asks for one month's parts at a time); a
        # month the set lacks is left to the part check below, which lists the parts there are.
        held = {m for m, _, _ in index_longterm(FileTree(path))}
        asked = {int(m.group(1)) for m in months if m}
        options = {**options, "months": sorted(asked & held or held)}
    sets = load(path, fmt, **options)
    chosen = []
    for pattern in wanted:
        names = [
            k
            for k in sets
            if k == pattern or (pattern.endswith("*") and k.startswith(pattern[:-1]))
        ]
        if not names:
            raise DataFormatError(f"{path}: part {pattern!r} not found; parts are {sorted(sets)}")
        chosen.extend(sets[k] for k in names)
    return chosen[0] if len(chosen) == 1 else concat(chosen, source=f"{path}:{'+'.join(wanted)}")
