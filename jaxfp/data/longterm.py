"""The UJI library long-term Wi-Fi set (Mendoza-Silva et al., Data 2018; doi 10.5281/zenodo.1066041).

Layout (folder or zip): `.../db/MM/{trn,tst}NN{rss,crd,tms,ids}.csv`; row i of the four files is one
fingerprint: RSS per AP (100 = not detected), x, y, floor, time YYYYMMDDhhmmssfff, sample id. Any
month present in that layout loads (the full release has 25); nothing lists months by hand. A parsed
set is kept in jaxfp's data cache (`jaxfp.data.cache`), keyed by its four files' content.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

import numpy as np

from jaxfp.data.cache import cache_dir, cached, key_of, member_digests
from jaxfp.data.csv_io import read_numeric_csv, require_finite, require_integral
from jaxfp.data.files import FileTree
from jaxfp.data.types import DataFormatError, FingerprintSet, concat, from_raw, locate

NOT_DETECTED = 100.0
KINDS = ("trn", "tst")
PARTS = ("rss", "crd", "tms", "ids")
# Part of every cache key: raise it whenever what a set parses to changes, so older entries miss.
PARSER_VERSION = "1"
LONGTERM_MEMBER = re.compile(r"(?:^|/)db/(\d{2})/(trn|tst)(\d{2})(rss|crd|tms|ids)\.csv$")

# The db Readme: most samples were taken with a Samsung Galaxy S3; training set 2 and test sets 6-10
# of month 25 with a Samsung Galaxy A5 (2017).
DEFAULT_DEVICE = "Samsung Galaxy S3"
OTHER_DEVICE = "Samsung Galaxy A5 (2017)"


def device_of(month: int, kind: str, number: int) -> str:
    if month == 25 and ((kind == "trn" and number == 2) or (kind == "tst" and 6 <= number <= 10)):
        return OTHER_DEVICE
    return DEFAULT_DEVICE


def index_longterm(tree: FileTree) -> dict[tuple[int, str, int], dict[str, str]]:
    """{(month, kind, number): {'rss'|'crd'|'tms'|'ids': member name}} for every set in the tree."""
    index: dict[tuple[int, str, int], dict[str, str]] = {}
    for name in tree.names():
        match = LONGTERM_MEMBER.search(name)
        if match:
            month, kind, number, what = match.groups()
            index.setdefault((int(month), kind, int(number)), {})[what] = name
    if not index:
        raise DataFormatError(
            f"{tree.path}: expected the long-term layout db/MM/{{trn,tst}}NN{{rss,crd,tms,ids}}.csv, "
            "found no such files"
        )
    for key, files in index.items():
        missing = sorted(set(PARTS) - set(files))
        if missing:
            month, kind, number = key
            raise DataFormatError(
                f"{tree.path}: set db/{month:02d}/{kind}{number:02d} lacks its "
                f"{', '.join(m + ' file' for m in missing)}; expected rss, crd, tms and ids"
            )
    return index


def parse_timestamps(text: str, source: str) -> np.ndarray:
    """YYYYMMDDhhmmssfff lines -> float64 unix seconds (parsed as text: 17 digits exceed float64)."""
    stamps = [line.strip() for line in text.splitlines() if line.strip()]
    if not stamps:
        raise DataFormatError(f"{source}: expected one timestamp per row, found none")
    for row, stamp in enumerate(stamps, start=1):
        if len(stamp) != 17 or not (stamp.isascii() and stamp.isdigit()):
            raise DataFormatError(
                f"{locate(source, row)}: expected a timestamp YYYYMMDDhhmmssfff, found {stamp!r}"
            )
    digits = np.frombuffer("".join(stamps).encode("ascii"), np.uint8).reshape(-1, 17) - ord("0")

    def number(a: int, b: int) -> np.ndarray:
        return digits[:, a:b].astype(np.int64) @ (10 ** np.arange(b - a - 1, -1, -1))

    hour, minute, second, milli = number(8, 10), number(10, 12), number(12, 14), number(14, 17)
    # The recordings contain second == 60 (e.g. month 02, tst03), so the clock part is added as a
    # number of seconds rather than parsed as a calendar time.
    bad_clock = (hour > 23) | (minute > 59) | (second > 60)
    dates = [f"{s[:4]}-{s[4:6]}-{s[6:8]}" for s in stamps]
    try:
        if bad_clock.any():
            raise ValueError
        days = np.array(dates, "datetime64[D]")
    except ValueError:
        _raise_first_bad_date(stamps, dates, bad_clock, source)
        raise  # unreachable: one row is always found
    day_seconds = days.astype(np.int64).astype(np.float64) * 86400.0
    return day_seconds + hour * 3600.0 + minute * 60.0 + second + milli / 1000.0


def _raise_first_bad_date(
    stamps: list[str], dates: list[str], bad_clock: np.ndarray, source: str
) -> None:
    for row, (stamp, date) in enumerate(zip(stamps, dates, strict=True), start=1):
        try:
            if bad_clock[row - 1]:
                raise ValueError
            np.datetime64(date, "D")
        except ValueError:
            raise DataFormatError(
                f"{locate(source, row)}: expected a valid date and time, found {stamp!r}"
            ) from None


def _parse_one(tree: FileTree, key: tuple[int, str, int], files: dict[str, str]) -> FingerprintSet:
    month, kind, number = key
    src = {what: tree.describe(name) for what, name in files.items()}
    _, raw = read_numeric_csv(tree.read_text(files["rss"]), src["rss"], header=False)
    _, crd = read_numeric_csv(tree.read_text(files["crd"]), src["crd"], header=False, columns=3)
    _, ids = read_numeric_csv(tree.read_text(files["ids"]), src["ids"], header=False, columns=1)
    tms = parse_timestamps(tree.read_text(files["tms"]), src["tms"])
    counts = {"rss": len(raw), "crd": len(crd), "tms": len(tms), "ids": len(ids)}
    if len(set(counts.values())) != 1:
        listed = ", ".join(f"{src[w]} has {c}" for w, c in counts.items())
        raise DataFormatError(
            f"set db/{month:02d}/{kind}{number:02d}: expected equal row counts, {listed}"
        )
    n = len(raw)
    return from_raw(
        raw,
        NOT_DETECTED,
        _ap_ids(raw.shape[1]),
        xy=require_finite(crd[:, :2], src["crd"], "x, y", 1),
        source=src["rss"],
        floor=require_integral(crd[:, 2], src["crd"], "floor", 1),
        timestamp=tms,
        device=np.full(n, device_of(month, kind, number)),
        domain=_domain(key, require_integral(ids[:, 0], src["ids"], "id", 1)),
    )


def _ap_ids(count: int) -> list[str]:
    return [f"AP{i + 1:03d}" for i in range(count)]


def _domain(key: tuple[int, str, int], sample_id: np.ndarray) -> dict[str, np.ndarray]:
    month, kind, number = key
    n = len(sample_id)
    return {
        "month": np.full(n, month, np.int64),
        "set_kind": np.full(n, KINDS.index(kind), np.int64),
        "set_number": np.full(n, number, np.int64),
        "sample_id": sample_id,
    }


def _stored(fs: FingerprintSet) -> dict[str, np.ndarray]:
    """What a cache entry keeps of a parsed set (the rest follows from the set's name)."""
    return {
        "rss": fs.rss,
        "xy": fs.xy,
        "rp_id": fs.rp_id,
        "floor": fs.floor,
        "timestamp": fs.timestamp,
        "sample_id": fs.domain["sample_id"],
    }


def _restored(
    arrays: Mapping[str, np.ndarray], key: tuple[int, str, int], source: str
) -> FingerprintSet:
    """A set from its cache entry; the set's own validation catches a damaged entry."""
    rss = arrays["rss"]
    return FingerprintSet(
        rss=rss,
        detected=~np.isnan(rss),  # NaN exactly where not detected, as validation requires
        ap_ids=np.asarray(_ap_ids(rss.shape[1]), dtype=str),
        xy=arrays["xy"],
        rp_id=arrays["rp_id"],
        floor=arrays["floor"],
        timestamp=arrays["timestamp"],
        device=np.full(len(rss), device_of(*key)),
        domain=_domain(key, arrays["sample_id"]),
        source=source,
    )


def _load_one(
    tree: FileTree,
    key: tuple[int, str, int],
    files: dict[str, str],
    digests: dict[str, str] | None,
) -> FingerprintSet:
    """One set, from the cache when its four files' content was parsed before (`digests` None:
    no cache)."""
    if digests is None:
        return _parse_one(tree, key, files)
    month, kind, number = key
    entry = key_of(
        "longterm",
        PARSER_VERSION,
        f"{month:02d}/{kind}{number:02d}",
        *(digests[files[what]] for what in PARTS),
    )

    def build() -> tuple[FingerprintSet, dict[str, np.ndarray]]:
        fs = _parse_one(tree, key, files)
        return fs, _stored(fs)

    return cached(
        "longterm", entry, build, lambda a: _restored(a, key, tree.describe(files["rss"]))
    )


def load_longterm(
    path: str | os.PathLike,
    months: Iterable[int] | None = None,
    kinds: Iterable[str] = KINDS,
    numbers: Iterable[int] | None = None,
    cache: bool = True,
) -> dict[str, FingerprintSet]:
    """Sets keyed 'MM/trnNN' / 'MM/tstNN', filtered by month, kind and set number (None = all).

    Parsed sets are kept in jaxfp's data cache (`jaxfp.data.cache`), keyed by their files' content
    and `PARSER_VERSION`; `cache=False` (or `JAXFP_CACHE=0`) parses every file."""
    tree = FileTree(path)
    index = index_longterm(tree)
    kinds = tuple(kinds)
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise DataFormatError(f"kinds: expected a subset of {KINDS}, got {sorted(unknown)}")
    months = None if months is None else {int(m) for m in months}
    numbers = None if numbers is None else {int(m) for m in numbers}
    if months is not None:
        absent = months - {m for m, _, _ in index}
        if absent:
            have = sorted({m for m, _, _ in index})
            raise DataFormatError(
                f"{path}: months {sorted(absent)} requested, the set holds {have}"
            )
    selected = {
        key: files
        for key, files in sorted(index.items())
        if (months is None or key[0] in months)
        and key[1] in kinds
        and (numbers is None or key[2] in numbers)
    }
    if not selected:
        raise DataFormatError(f"{path}: no long-term sets match months={months} kinds={kinds}")
    digests = None
    if cache and cache_dir() is not None:
        digests = member_digests(
            tree.path, [name for f in selected.values() for name in f.values()]
        )
    sets = {
        f"{m:02d}/{k}{n:02d}": _load_one(tree, (m, k, n), f, digests)
        for (m, k, n), f in selected.items()
    }
    widths = {fs.n_aps for fs in sets.values()}
    if len(widths) > 1:
        detail = ", ".join(f"{k}: {fs.n_aps}" for k, fs in sets.items() if fs.n_aps != min(widths))
        raise DataFormatError(f"{path}: expected every set to have the same AP columns, {detail}")
    return sets


def load_longterm_month(path: str | os.PathLike, month: int, kind: str) -> FingerprintSet:
    """All sets of one kind ('trn' or 'tst') of one month, stacked."""
    sets = load_longterm(path, months=[month], kinds=[kind])
    return concat(list(sets.values()), source=f"{path}:db/{month:02d}/{kind}*")


def floor_outlier_scans(fs: FingerprintSet) -> np.ndarray:
    """(n,) True for the scans of a floor-outlier place: the only (x, y) of its floor in `fs`
    (per building), at an (x, y) that scans of another floor share. Such a floor cannot be one of
    the building's survey floors (month 01 trn14: 6 scans labelled floor 0 at (12.91, 16.70),
    where floors 3 and 5 are surveyed). x, y are compared at 1 cm."""
    if fs.floor is None:
        return np.zeros(fs.n, bool)
    building = np.zeros(fs.n, np.int64) if fs.building is None else np.asarray(fs.building)
    xy = np.round(np.asarray(fs.xy, np.float64) * 100).astype(np.int64)
    floor = np.asarray(fs.floor, np.int64)
    out = np.zeros(fs.n, bool)
    for b in np.unique(building):
        rows = np.flatnonzero(building == b)
        places = {tuple(p) for p in np.c_[xy[rows], floor[rows]]}
        xy_of_floor: dict[int, set] = {}
        floors_at: dict[tuple, set] = {}
        for x, y, f in places:
            xy_of_floor.setdefault(f, set()).add((x, y))
            floors_at.setdefault((x, y), set()).add(f)
        lone = {
            (x, y, f)
            for f, spots in xy_of_floor.items()
            if len(spots) == 1
            for x, y in spots
            if len(floors_at[(x, y)]) > 1
        }
        if lone:
            keys = np.c_[xy[rows], floor[rows]]
            out[rows] = [tuple(k) in lone for k in keys]
    return out


def floor_outlier_places(fs: FingerprintSet) -> list[dict[str, float | int]]:
    """The floor-outlier places of `fs` (see `floor_outlier_scans`): x, y, floor, building and
    how many scans each holds, and the floors the other scans at that (x, y) have."""
    mask = floor_outlier_scans(fs)
    if not mask.any():
        return []
    building = np.zeros(fs.n, np.int64) if fs.building is None else np.asarray(fs.building)
    xy = np.round(np.asarray(fs.xy, np.float64), 2)
    keys = np.c_[xy[mask], np.asarray(fs.floor)[mask], building[mask]]
    places, counts = np.unique(keys, axis=0, return_counts=True)
    out = []
    for (x, y, f, b), count in zip(places, counts, strict=True):
        same = (xy[:, 0] == x) & (xy[:, 1] == y) & (building == b) & ~mask
        out.append(
            {
                "x": float(x),
                "y": float(y),
                "floor": int(f),
                "building": int(b),
                "scans": int(count),
                "other_floors_here": sorted({int(v) for v in np.asarray(fs.floor)[same]}),
            }
        )
    return out
