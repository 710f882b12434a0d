"""Any set jaxfp reads written as COMFORD (both layouts), atomically, so that it reads back equal.

Columns are written in the reference package's order (Sample.csv: sample_id, x, y, z, timestamp, set,
floor, building, device, user, config, orientation; RSSI.csv: sample_id, rssi, ap_id, channel/freq),
';'-separated with `None` for a missing value, so that package can derive its ML-ready files from ours.
Two columns are added after Sample.csv's own so that nothing is lost: `rp_id` and one
`domain.<name>` per domain label other than `user` (which has its own column). Sample ids number the
samples of all parts in order from 0.
"""

from __future__ import annotations

import csv
import io
import os
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from jaxfp.common.atomic_files import atomic_path
from jaxfp.data.comford import DOMAIN_PREFIX, ML_NOT_DETECTED
from jaxfp.data.types import DataFormatError, FingerprintSet

SAMPLE_HEADER = (
    "sample_id",
    "x",
    "y",
    "z",
    "timestamp",
    "set",
    "floor",
    "building",
    "device",
    "user",
    "config",
    "orientation",
    "rp_id",
)
RSSI_HEADER = ("sample_id", "rssi", "ap_id", "channel/freq")
AP_HEADER = ("ap_id", "technology", "x", "y", "z")
PART_TO_SPLIT = {"train": "training", "test": "testing", "validation": "validation"}
NONE = "None"
WRITE_LAYOUTS = ("intermediate", "ml")


def _number(value: float) -> str:
    """Shortest text that reads back to the same float64 (whole numbers without '.0')."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _column(values: np.ndarray | None, n: int, as_number: bool = True) -> list[str]:
    if values is None:
        return [NONE] * n
    return [_number(v) for v in values.tolist()] if as_number else [str(v) for v in values]


def _csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _common_aps(sets: Mapping[str, FingerprintSet]) -> list[str]:
    """The AP list of all parts, in first-seen order."""
    return list(dict.fromkeys(ap for fs in sets.values() for ap in fs.ap_ids.tolist()))


def intermediate_files(sets: Mapping[str, FingerprintSet]) -> dict[str, str]:
    """{'Sample.csv', 'RSSI.csv', 'AP.csv'} texts of the intermediate layout."""
    ap_ids = _common_aps(sets)
    domain_keys = sorted({k for fs in sets.values() for k in fs.domain if k != "user"})
    sample_rows: list[list[str]] = []
    rssi_rows: list[tuple[str, str, str, str]] = []
    start = 0
    for part, fs in sets.items():
        n = fs.n
        ids = [str(start + i) for i in range(n)]
        columns = [
            ids,
            _column(fs.xy[:, 0], n),
            _column(fs.xy[:, 1], n),
            _column(fs.height, n),
            _column(fs.timestamp, n),
            [PART_TO_SPLIT.get(part, part)] * n,
            _column(fs.floor, n),
            _column(fs.building, n),
            _column(fs.device, n, as_number=False),
            _column(fs.domain.get("user"), n),
            [NONE] * n,
            [NONE] * n,
            _column(fs.rp_id, n),
            *(_column(fs.domain.get(k), n) for k in domain_keys),
        ]
        sample_rows.extend(zip(*columns, strict=True))
        r, c = np.nonzero(fs.detected)
        values = [_number(v) for v in fs.rss[r, c].astype(np.float64).tolist()]
        names = fs.ap_ids[c].tolist()
        rssi_rows.extend(
            (ids[i], v, ap, NONE) for i, v, ap in zip(r.tolist(), values, names, strict=True)
        )
        start += n
    header = SAMPLE_HEADER + tuple(DOMAIN_PREFIX + k for k in domain_keys)
    return {
        "Sample.csv": _csv(header, sample_rows),
        "RSSI.csv": _csv(RSSI_HEADER, rssi_rows),
        "AP.csv": _csv(AP_HEADER, [(ap, "WiFi", NONE, NONE, NONE) for ap in ap_ids]),
    }


def _file_stem(split: str) -> str:
    """A split name usable in a file name ('01/trn01' -> '01-trn01')."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", split)


def ml_ready_files(
    sets: Mapping[str, FingerprintSet], not_detected: float = ML_NOT_DETECTED
) -> dict[str, str]:
    """{'<split>_features.csv', '<split>_coordinates.csv'} texts of the ML-ready layout; an
    undetected AP holds `not_detected`, which no detected reading may equal."""
    files: dict[str, str] = {}
    start = 0
    for part, fs in sets.items():
        clash = fs.detected & (fs.rss == np.float32(not_detected))
        if clash.any():
            r, c = np.argwhere(clash)[0]
            raise DataFormatError(
                f"{fs.source}: sample {int(r) + 1} of part {part!r} hears AP {str(fs.ap_ids[c])!r} at "
                f"{not_detected:g} dBm, the ML-ready fill value; expected a fill value that no "
                "reading has (--not-detected)"
            )
        stem = _file_stem(PART_TO_SPLIT.get(part, part))
        if f"{stem}_features.csv" in files:
            raise DataFormatError(f"part {part!r}: its file name {stem!r} is taken by another part")
        ids = [str(start + i) for i in range(fs.n)]
        filled = np.where(fs.detected, fs.rss.astype(np.float64), float(not_detected))
        whole = np.array_equal(filled, np.round(filled))
        values = filled.astype(np.int64) if whole else filled
        text = str if whole else _number
        stamps = _column(fs.timestamp, fs.n) if fs.timestamp is not None else None
        header = ["sample_id", *(f"{ap}_rssi" for ap in fs.ap_ids.tolist())]
        header += ["timestamp"] if stamps is not None else []
        # Rows are numbers only (never quoted): joined directly, one string per row, which keeps
        # a wide set's text small in memory.
        lines = [_csv(header, [])]
        for i, (sid, row) in enumerate(zip(ids, values, strict=True)):
            tail = f";{stamps[i]}" if stamps is not None else ""
            lines.append(f"{sid};{';'.join(map(text, row.tolist()))}{tail}\n")
        files[f"{stem}_features.csv"] = "".join(lines)
        coordinates = zip(
            ids,
            _column(fs.xy[:, 0], fs.n),
            _column(fs.xy[:, 1], fs.n),
            _column(fs.height, fs.n),
            _column(fs.floor, fs.n),
            _column(fs.building, fs.n),
            strict=True,
        )
        files[f"{stem}_coordinates.csv"] = _csv(
            ("sample_id", "x", "y", "z", "floor", "building"), coordinates
        )
        start += fs.n
    return files


def write_comford(
    sets: Mapping[str, FingerprintSet],
    out: str | os.PathLike,
    layouts: Sequence[str] = WRITE_LAYOUTS,
    not_detected: float = ML_NOT_DETECTED,
) -> str:
    """Write `sets` (part name -> set) to `out`, a new folder or a new `.zip`, as
    intermediate/{Sample,RSSI,AP}.csv and ML_final/<split>_{features,coordinates}.csv.

    Everything is rendered first and renamed into place last: a failure leaves nothing at `out`.
    """
    out = os.fspath(out)
    if os.path.exists(out):
        raise FileExistsError(f"{out}: exists; expected a new path (nothing is overwritten)")
    unknown = sorted(set(layouts) - set(WRITE_LAYOUTS))
    if unknown or not layouts:
        raise ValueError(f"layouts: expected some of {list(WRITE_LAYOUTS)}, got {list(layouts)}")
    if not sets:
        raise DataFormatError(f"{out}: expected at least one part to write, got none")
    files: dict[str, str] = {}
    if "intermediate" in layouts:
        files.update({f"intermediate/{k}": v for k, v in intermediate_files(sets).items()})
    if "ml" in layouts:
        files.update({f"ML_final/{k}": v for k, v in ml_ready_files(sets, not_detected).items()})
    with atomic_path(out) as tmp:
        if out.lower().endswith(".zip"):
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
                for name, text in files.items():
                    archive.writestr(name, text)
        else:
            for name, text in files.items():
                path = os.path.join(tmp, *name.split("/"))
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8", newline="") as f:
                    f.write(text)
    return out
