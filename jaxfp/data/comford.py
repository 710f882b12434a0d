"""COMFORD, the common data format for RSSI-based indoor localization (Ferrato et al., IPIN 2026;
the `comford` package), read in both of its layouts from a folder or a zip.

Intermediate, the complete layout:
    Sample.csv  sample_id, x, y[, z, timestamp, split, floor, building, device, user,
                configurations, orientation]: one row per fingerprint
    RSSI.csv    sample_id, ap_id, rssi[, channel/freq]: one row per observed reading only
    AP.csv      ap_id[, technology, x, y, z] (optional): the AP list, in its order
ML-ready, derived from it per split: <split>_features.csv (sample_id, one `<ap>_rssi` column per AP,
optional `<ap>_ch` channel columns, optional timestamp; an undetected AP holds a fill value) and
<split>_coordinates.csv (sample_id, x, y, z, floor, building).

Conventions read as the reference package writes them: ';'-separated cells (',' accepted); `None` or
an empty cell for a missing value; the split column named `set`, `split` or `test/train/val`, with
values training / validation / testing (train, test accepted), read as parts train / validation /
test (rows without one form part `all`); Samples.csv and APs.csv accepted for Sample.csv and AP.csv.
The ML-ready fill value is not stored in the files: -120 dBm, the package's default, unless
`not_detected` says otherwise. floor, building and user must be whole numbers (jaxfp's integer
labels). Columns `rp_id` and `domain.<name>`, which jaxfp's writer adds, are read back as the
reference point and the domain labels; other extra columns are ignored.

Over ~400 lines because both layouts share one validation (file, row, field in every error).
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from jaxfp.data.files import FileTree
from jaxfp.data.tables import (
    MISSING,
    Table,
    complete,
    data_rows,
    missing_mask,
    numbers,
    read_header,
    read_table,
    unique_ids,
    whole_numbers,
)
from jaxfp.data.types import (
    RSS_MAX_DBM,
    RSS_MIN_DBM,
    DataFormatError,
    FingerprintSet,
    locate,
    rp_ids_from_positions,
)

ML_NOT_DETECTED = -120.0
SAMPLE_FILES = ("Sample.csv", "Samples.csv")
RSSI_FILES = ("RSSI.csv",)
AP_FILES = ("AP.csv", "APs.csv")
FEATURES_SUFFIX = "_features.csv"
COORDINATES_SUFFIX = "_coordinates.csv"
SPLIT_COLUMNS = ("split", "set", "test/train/val")
SPLIT_TO_PART = {
    "training": "train",
    "train": "train",
    "testing": "test",
    "test": "test",
    "validation": "validation",
    "val": "validation",
}
NO_SPLIT_PART = "all"
DOMAIN_PREFIX = "domain."
LAYOUTS = ("auto", "intermediate", "ml")


def _one_file(tree: FileTree, basenames: tuple[str, ...], required: bool) -> str | None:
    wanted = {b.lower() for b in basenames}
    found = [n for n in tree.names() if pathlib.PurePosixPath(n).name.lower() in wanted]
    if len(found) > 1 or (required and not found):
        raise DataFormatError(
            f"{tree.path}: expected exactly one {' or '.join(basenames)} (COMFORD intermediate "
            f"layout), found {found}"
        )
    return found[0] if found else None


def _parts(table: Table) -> dict[str, np.ndarray]:
    """Part name -> Sample.csv row indices, in order of first appearance."""
    col = table.find(*SPLIT_COLUMNS)
    if col is None:
        return {NO_SPLIT_PART: np.arange(len(table))}
    names = [
        NO_SPLIT_PART if v.lower() in MISSING else SPLIT_TO_PART.get(v.lower(), v)
        for v in table.columns[col]
    ]
    index = {name: i for i, name in enumerate(dict.fromkeys(names))}
    labels = np.array([index[n] for n in names])
    return {name: np.flatnonzero(labels == i) for name, i in index.items()}


# Optional Sample.csv columns: (field of FingerprintSet, column names, kind).
SAMPLE_FIELDS = (
    ("height", ("z",), "f"),
    ("timestamp", ("timestamp",), "f"),
    ("floor", ("floor",), "i"),
    ("building", ("building",), "i"),
    ("rp_id", ("rp_id",), "i"),
    ("device", ("device",), "U"),
    ("domain.user", ("user",), "i"),
)


def _labels(table: Table, rows: np.ndarray, part: str) -> dict[str, object]:
    """The optional per-sample fields of one part; a column empty on all its rows is left out."""
    wanted = [(field, table.find(*names), kind) for field, names, kind in SAMPLE_FIELDS]
    wanted += [
        (DOMAIN_PREFIX + name[len(DOMAIN_PREFIX) :], col, "i")
        for col, name in enumerate(table.names)
        if name.lower().startswith(DOMAIN_PREFIX)
    ]
    out: dict[str, object] = {}
    domain: dict[str, np.ndarray] = {}
    for field, col, kind in wanted:
        if col is None or not complete(table, col, rows, missing_mask(table.columns[col]), part):
            continue
        if kind == "U":
            values: np.ndarray = np.asarray([table.columns[col][r] for r in rows], dtype=str)
        elif kind == "f":
            values = numbers(table, col, required=False)[rows]
        else:
            values = whole_numbers(table, col)[rows].astype(np.int64)
        if field.startswith(DOMAIN_PREFIX):
            domain[field[len(DOMAIN_PREFIX) :]] = values
        else:
            out[field] = values
    out["domain"] = domain
    return out


def _build(
    table: Table,
    parts: dict[str, np.ndarray],
    xy: np.ndarray,
    rss: np.ndarray,
    ap_ids: list[str],
) -> dict[str, FingerprintSet]:
    sets = {}
    for part, rows in parts.items():
        labels = _labels(table, rows, part)
        rp_id = labels.pop("rp_id", None)
        if rp_id is None:
            rp_id = rp_ids_from_positions(
                xy[rows], labels.get("height"), labels.get("floor"), labels.get("building")
            )
        part_rss = rss[rows]
        sets[part] = FingerprintSet(
            rss=part_rss,
            detected=~np.isnan(part_rss),
            ap_ids=np.asarray(ap_ids, dtype=str),
            xy=xy[rows],
            rp_id=rp_id,
            source=f"{table.source}:{part}",
            **labels,  # type: ignore[arg-type]
        )
    return sets


def _positions(table: Table) -> np.ndarray:
    x = numbers(table, table.require("x", "the x coordinate"), required=True)
    y = numbers(table, table.require("y", "the y coordinate"), required=True)
    return np.column_stack([x, y])


def _check_range(values: np.ndarray, table: Table, col: int, hint: str) -> None:
    bad = (values < RSS_MIN_DBM) | (values > RSS_MAX_DBM)
    if bad.any():
        r = int(np.argmax(bad))
        raise DataFormatError(
            f"{table.at(r, col)}: expected {hint} in [{RSS_MIN_DBM:g}, {RSS_MAX_DBM:g}] dBm, "
            f"found {table.columns[col][r]!r}"
        )


def load_intermediate(tree: FileTree) -> dict[str, FingerprintSet]:
    """Parts of the intermediate layout in `tree`."""
    sample_name = _one_file(tree, SAMPLE_FILES, required=True)
    rssi_name = _one_file(tree, RSSI_FILES, required=True)
    ap_name = _one_file(tree, AP_FILES, required=False)
    assert sample_name is not None and rssi_name is not None
    samples = read_table(tree.read_text(sample_name), tree.describe(sample_name))
    sample_ids = unique_ids(samples, samples.require("sample_id", "the sample's identifier"))
    xy = _positions(samples)
    parts = _parts(samples)

    ap_index: dict[str, int] = {}
    if ap_name is not None:
        aps = read_table(tree.read_text(ap_name), tree.describe(ap_name))
        ap_index = {
            ap: j
            for j, ap in enumerate(unique_ids(aps, aps.require("ap_id", "the AP's identifier")))
        }

    readings = read_table(tree.read_text(rssi_name), tree.describe(rssi_name))
    sid_col = readings.require("sample_id", "the sample the reading belongs to")
    ap_col = readings.require("ap_id", "the AP heard")
    rssi_col = readings.require("rssi", "the reading in dBm")
    sample_index = {sid: i for i, sid in enumerate(sample_ids)}
    s = np.array([sample_index.get(v, -1) for v in readings.columns[sid_col]], np.int64)
    if (s < 0).any():
        r = int(np.argmax(s < 0))
        raise DataFormatError(
            f"{readings.at(r, sid_col)}: expected a sample_id listed in {samples.source}, found "
            f"{readings.columns[sid_col][r]!r}"
        )
    a = np.empty(len(readings), np.int64)
    for r, ap in enumerate(readings.columns[ap_col]):
        if ap not in ap_index:
            if ap_name is not None or ap.lower() in MISSING:
                where = f"an ap_id listed in {tree.describe(ap_name)}" if ap_name else "an ap_id"
                raise DataFormatError(f"{readings.at(r, ap_col)}: expected {where}, found {ap!r}")
            ap_index[ap] = len(ap_index)  # without AP.csv: order of first appearance
        a[r] = ap_index[ap]
    values = numbers(readings, rssi_col, required=True)
    _check_range(values, readings, rssi_col, "an observed RSS (RSSI.csv lists heard APs only)")

    n_aps = len(ap_index)
    key = s * max(n_aps, 1) + a
    _, first, counts = np.unique(key, return_index=True, return_counts=True)
    if (counts > 1).any():
        twice = np.flatnonzero(key == key[first[np.argmax(counts > 1)]])[:2]
        r0, r1 = (int(i) for i in twice)
        raise DataFormatError(
            f"{readings.source}, rows {readings.lines[r0]} and {readings.lines[r1]}: expected one "
            f"reading per (sample_id, ap_id), found two for "
            f"({readings.columns[sid_col][r0]!r}, {readings.columns[ap_col][r0]!r})"
        )
    rss = np.full((len(samples), n_aps), np.nan, np.float32)
    rss[s, a] = values
    return _build(samples, parts, xy, rss, list(ap_index))


def _ap_columns(names: list[str]) -> list[tuple[int, str]]:
    """(column, AP id) of an ML-ready features header: the `<ap>_rssi` columns, or where there are
    none, every column but sample_id, timestamp and the channel columns."""
    tagged = [(c, n[: -len("_rssi")]) for c, n in enumerate(names) if n.lower().endswith("_rssi")]
    if tagged:
        return tagged
    skip = {"sample_id", "timestamp"}
    return [
        (c, n)
        for c, n in enumerate(names)
        if n.lower() not in skip
        and not n.lower().endswith("_ch")
        and not n.lower().startswith("channel")
    ]


def read_features(
    text: str, source: str, not_detected: float
) -> tuple[list[str], list[str], np.ndarray, np.ndarray | None, list[int]]:
    """An ML-ready features file: (sample ids, AP ids, rss with NaN where not detected,
    timestamps or None, file lines). Rows are streamed: a wide file never sits in memory as text
    cells."""
    lines = text.splitlines()
    delimiter, names = read_header(lines[0] if lines else "", source)
    lowered = [n.lower() for n in names]
    if "sample_id" not in lowered:
        raise DataFormatError(
            f"{source}, header: expected a column 'sample_id' (the sample's identifier), "
            f"found columns {names[:8]}"
        )
    sid_col = lowered.index("sample_id")
    ts_col = lowered.index("timestamp") if "timestamp" in lowered else None
    aps = _ap_columns(names)
    if not aps:
        raise DataFormatError(f"{source}, header: expected AP columns (<ap>_rssi), found none")
    cols = [c for c, _ in aps]
    ids: list[str] = []
    stamps: list[str] = []
    numbers_at: list[int] = []
    rows: list[np.ndarray] = []
    for line_no, row in data_rows(lines, delimiter, names, source):
        cells = [row[c].strip() for c in cols]
        try:
            values = np.asarray(cells, dtype=np.float64)
        except ValueError:
            values = np.empty(len(cells))
            for j, cell in enumerate(cells):
                if cell.lower() in MISSING:
                    values[j] = not_detected  # an empty cell is an AP not heard
                    continue
                try:
                    values[j] = float(cell)
                except ValueError:
                    raise DataFormatError(
                        f"{locate(source, line_no, names[cols[j]])}: expected an RSS in dBm or "
                        f"the fill value {not_detected:g}, found {cell!r}"
                    ) from None
        bad = ~np.isfinite(values) | (
            (values != not_detected) & ((values < RSS_MIN_DBM) | (values > RSS_MAX_DBM))
        )
        if bad.any():
            j = int(np.argmax(bad))
            raise DataFormatError(
                f"{locate(source, line_no, names[cols[j]])}: expected an RSS in "
                f"[{RSS_MIN_DBM:g}, {RSS_MAX_DBM:g}] dBm or the fill value {not_detected:g} "
                f"(set not_detected to the value the files use), found {cells[j]!r}"
            )
        ids.append(row[sid_col].strip())
        if ts_col is not None:
            stamps.append(row[ts_col].strip())
        numbers_at.append(line_no)
        rows.append(values)
    if not rows:
        raise DataFormatError(f"{source}: expected at least one data row, found none")
    raw = np.stack(rows)
    rss = np.where(raw == not_detected, np.nan, raw).astype(np.float32)
    timestamps = None
    if ts_col is not None:
        columns = [stamps if c == ts_col else [] for c in range(len(names))]
        stamp_table = Table(source, names, columns, numbers_at)
        missing = missing_mask(stamps)
        if complete(stamp_table, ts_col, np.arange(len(stamps)), missing, "this file"):
            timestamps = numbers(stamp_table, ts_col, required=True)
    return ids, [ap for _, ap in aps], rss, timestamps, numbers_at


def _split_order(name: str) -> tuple[int, str]:
    """Training, validation, test first, then other splits by name."""
    split = pathlib.PurePosixPath(name[: -len(FEATURES_SUFFIX)]).name.lower()
    rank = {"train": 0, "validation": 1, "test": 2}.get(SPLIT_TO_PART.get(split, ""), 3)
    return rank, name


def load_ml_ready(tree: FileTree, not_detected: float) -> dict[str, FingerprintSet]:
    """Parts of the ML-ready layout in `tree`: one per <split>_features.csv."""
    names = set(tree.names())
    sets: dict[str, FingerprintSet] = {}
    features = [n for n in names if n.lower().endswith(FEATURES_SUFFIX)]
    for name in sorted(features, key=_split_order):
        stem = name[: -len(FEATURES_SUFFIX)]
        coord_name = stem + COORDINATES_SUFFIX
        split = pathlib.PurePosixPath(stem).name
        part = SPLIT_TO_PART.get(split.lower(), split)
        source = tree.describe(name)
        if coord_name not in names:
            raise DataFormatError(
                f"{source}: expected {pathlib.PurePosixPath(coord_name).name} beside it, found none"
            )
        if part in sets:
            raise DataFormatError(f"{source}: part {part!r} appears twice in {tree.path}")
        ids, ap_ids, rss, timestamps, _ = read_features(tree.read_text(name), source, not_detected)
        coords = read_table(tree.read_text(coord_name), tree.describe(coord_name))
        coord_ids = unique_ids(coords, coords.require("sample_id", "the sample's identifier"))
        if len(set(ids)) != len(ids):
            raise DataFormatError(f"{source}: expected unique sample_id values")
        position = {sid: r for r, sid in enumerate(coord_ids)}
        order = np.array([position.get(sid, -1) for sid in ids], np.int64)
        if (order < 0).any():
            raise DataFormatError(
                f"{coords.source}: expected coordinates for every sample of {source}, none for "
                f"sample_id {ids[int(np.argmax(order < 0))]!r}"
            )
        if len(coord_ids) != len(ids):
            extra = sorted(set(coord_ids) - set(ids))[:3]
            raise DataFormatError(
                f"{coords.source}: expected the samples of {source} only, found others {extra}"
            )
        rows = np.arange(len(coords))
        labels = {}
        for field, kind in (("z", "f"), ("floor", "i"), ("building", "i")):
            col = coords.find(field)
            if col is None or not complete(
                coords, col, rows, missing_mask(coords.columns[col]), part
            ):
                continue
            values = numbers(coords, col, False) if kind == "f" else whole_numbers(coords, col)
            labels["height" if field == "z" else field] = (
                values[order] if kind == "f" else values[order].astype(np.int64)
            )
        xy = _positions(coords)[order]
        sets[part] = FingerprintSet(
            rss=rss,
            detected=~np.isnan(rss),
            ap_ids=np.asarray(ap_ids, dtype=str),
            xy=xy,
            rp_id=rp_ids_from_positions(
                xy, labels.get("height"), labels.get("floor"), labels.get("building")
            ),
            timestamp=timestamps,
            source=source,
            **labels,  # type: ignore[arg-type]
        )
    if not sets:
        raise DataFormatError(
            f"{tree.path}: expected COMFORD ML-ready files (<split>_features.csv), found none"
        )
    return sets


def is_comford(names: list[str]) -> bool:
    """Whether file names show a COMFORD layout (for format detection)."""
    base = {pathlib.PurePosixPath(n).name.lower() for n in names}
    intermediate = bool(base & {s.lower() for s in SAMPLE_FILES}) and "rssi.csv" in base
    return intermediate or any(b.endswith(FEATURES_SUFFIX) for b in base)


def load_comford(
    path: str | os.PathLike, layout: str = "auto", not_detected: float = ML_NOT_DETECTED
) -> dict[str, FingerprintSet]:
    """Parts ('train', 'validation', 'test', ...) of a COMFORD set in a folder or zip.

    `layout` 'auto' reads the intermediate files where present (they hold every field), else the
    ML-ready ones; `not_detected` is the ML-ready fill value.
    """
    if layout not in LAYOUTS:
        raise DataFormatError(f"layout: expected one of {list(LAYOUTS)}, got {layout!r}")
    tree = FileTree(path)
    if layout == "auto":
        base = {pathlib.PurePosixPath(n).name.lower() for n in tree.names()}
        layout = "intermediate" if base & {s.lower() for s in SAMPLE_FILES} else "ml"
    if layout == "intermediate":
        return load_intermediate(tree)
    return load_ml_ready(tree, float(not_detected))
