"""The validated in-memory type for an RSS fingerprint set, and the data-layer error.

Undetected entries are NaN in `rss` and False in `detected`: the mask is the truth, and NaN makes any
use that forgets the mask fail loudly instead of silently averaging a magic number.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

# Physical range accepted for a detected RSS value (dBm).
RSS_MIN_DBM = -130.0
RSS_MAX_DBM = 0.0


class DataFormatError(ValueError):
    """A data file (or in-memory set) does not have the expected content.

    The message names the file, the row and/or field, and what was expected.
    """


def locate(source: str, row: int | None = None, field: str | None = None) -> str:
    """Format 'file, row R, field F' for error messages (rows are 1-based file lines)."""
    parts = [source]
    if row is not None:
        parts.append(f"row {row}")
    if field is not None:
        parts.append(f"field {field!r}")
    return ", ".join(parts)


@dataclasses.dataclass(frozen=True, eq=False)
class FingerprintSet:
    """RSS fingerprints with their labels; every per-sample array has length `n`.

    rss: float32 (n, n_aps) dBm, NaN where not detected.
    detected: bool (n, n_aps).
    ap_ids: (n_aps,) unique strings.
    xy: float64 (n, 2) metres. height: float64 (n,) or None.
    floor, building: int64 (n,) or None. timestamp: float64 (n,) unix seconds or None.
    device: (n,) strings or None. rp_id: int64 (n,) reference point, derived from the position
    (x, y, height, floor, building) when a source has none.
    domain: free per-sample int64 labels (month, user, scene, ...).
    """

    rss: np.ndarray
    detected: np.ndarray
    ap_ids: np.ndarray
    xy: np.ndarray
    rp_id: np.ndarray
    height: np.ndarray | None = None
    floor: np.ndarray | None = None
    building: np.ndarray | None = None
    timestamp: np.ndarray | None = None
    device: np.ndarray | None = None
    domain: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    source: str = "<memory>"

    def __post_init__(self) -> None:
        validate(self)

    @property
    def n(self) -> int:
        return int(self.rss.shape[0])

    @property
    def n_aps(self) -> int:
        return int(self.rss.shape[1])

    def __len__(self) -> int:
        return self.n

    def per_sample_fields(self) -> dict[str, np.ndarray]:
        """All arrays indexed by sample (None fields left out), domain labels prefixed 'domain.'."""
        fields = {
            name: getattr(self, name)
            for name in ("rss", "detected", "xy", "rp_id", "height", "floor", "building")
            + ("timestamp", "device")
            if getattr(self, name) is not None
        }
        fields.update({f"domain.{k}": v for k, v in self.domain.items()})
        return fields

    def subset(
        self, index: np.ndarray | Sequence[int], source: str | None = None
    ) -> FingerprintSet:
        """Rows `index` (integer indices or a boolean mask) as a new set."""
        index = np.asarray(index)
        taken = {
            name: (getattr(self, name)[index] if getattr(self, name) is not None else None)
            for name in ("rss", "detected", "xy", "rp_id", "height", "floor", "building")
            + ("timestamp", "device")
        }
        return FingerprintSet(
            ap_ids=self.ap_ids,
            domain={k: v[index] for k, v in self.domain.items()},
            source=source or self.source,
            **taken,
        )

    def select_aps(self, ap_ids: Sequence[str]) -> FingerprintSet:
        """Columns re-ordered to `ap_ids`; APs this set lacks become never-detected columns."""
        position = {ap: i for i, ap in enumerate(self.ap_ids.tolist())}
        cols = np.array([position.get(ap, -1) for ap in ap_ids], dtype=np.int64)
        have = cols >= 0
        rss = np.full((self.n, len(cols)), np.nan, np.float32)
        detected = np.zeros((self.n, len(cols)), bool)
        rss[:, have] = self.rss[:, cols[have]]
        detected[:, have] = self.detected[:, cols[have]]
        return dataclasses.replace(
            self, rss=rss, detected=detected, ap_ids=np.asarray(list(ap_ids), dtype=str)
        )

    def aligned_to(self, reference: FingerprintSet) -> FingerprintSet:
        """This set with `reference`'s AP columns (itself when they already match)."""
        if self.n_aps == reference.n_aps and (self.ap_ids == reference.ap_ids).all():
            return self
        return self.select_aps(reference.ap_ids.tolist())

    def summary(self) -> dict[str, object]:
        """Counts a person checks against the source files."""
        out: dict[str, object] = {
            "samples": self.n,
            "aps": self.n_aps,
            "aps_ever_detected": int(self.detected.any(axis=0).sum()),
            "reference_points": int(np.unique(self.rp_id).size),
            "detected_per_sample_mean": float(self.detected.sum(axis=1).mean()) if self.n else 0.0,
            "rss_dbm_min": float(np.nanmin(self.rss)) if self.detected.any() else None,
            "rss_dbm_max": float(np.nanmax(self.rss)) if self.detected.any() else None,
            "x_range": [float(self.xy[:, 0].min()), float(self.xy[:, 0].max())],
            "y_range": [float(self.xy[:, 1].min()), float(self.xy[:, 1].max())],
        }
        labels = {"floors": self.floor, "buildings": self.building, "devices": self.device}
        labels.update({f"domain.{k}": v for k, v in self.domain.items()})
        for key, values in labels.items():
            if values is not None:
                distinct = np.unique(values).tolist()
                out[key] = distinct if len(distinct) <= 20 else f"{len(distinct)} distinct"
        return out


def validate(fs: FingerprintSet) -> None:
    """Check shapes, dtypes and ranges of a set; raise DataFormatError naming the field."""
    src = fs.source

    def fail(field: str, expected: str, row: int | None = None) -> None:
        raise DataFormatError(f"{locate(src, row, field)}: expected {expected}")

    if fs.rss.ndim != 2 or fs.rss.dtype != np.float32:
        fail("rss", f"a float32 matrix (samples, aps), got {fs.rss.dtype} shape {fs.rss.shape}")
    n, n_aps = fs.rss.shape
    if n == 0:
        fail("rss", "at least one sample, got an empty set")
    if fs.detected.shape != (n, n_aps) or fs.detected.dtype != bool:
        fail("detected", f"a bool matrix of shape {(n, n_aps)}, got {fs.detected.shape}")
    if fs.ap_ids.shape != (n_aps,):
        fail("ap_ids", f"{n_aps} AP identifiers, got {fs.ap_ids.shape}")
    uniq, counts = np.unique(fs.ap_ids, return_counts=True)
    if (counts > 1).any():
        fail("ap_ids", f"unique AP identifiers, duplicated: {uniq[counts > 1][:5].tolist()}")
    if np.isnan(fs.rss[fs.detected]).any():
        row = int(np.argwhere(fs.detected & np.isnan(fs.rss))[0, 0])
        fail("rss", "a finite RSS wherever detected", row)
    if not np.isnan(fs.rss[~fs.detected]).all():
        fail("rss", "NaN wherever not detected")
    bad = fs.detected & ((fs.rss < RSS_MIN_DBM) | (fs.rss > RSS_MAX_DBM))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        fail(
            "rss",
            f"RSS within [{RSS_MIN_DBM}, {RSS_MAX_DBM}] dBm, AP {fs.ap_ids[c]} has {fs.rss[r, c]}",
            int(r),
        )
    if fs.xy.shape != (n, 2) or fs.xy.dtype != np.float64:
        fail("xy", f"float64 coordinates of shape {(n, 2)}, got {fs.xy.dtype} {fs.xy.shape}")
    if not np.isfinite(fs.xy).all():
        fail("xy", "finite coordinates", int(np.argwhere(~np.isfinite(fs.xy))[0, 0]))
    for name, kind in (
        ("rp_id", "i"),
        ("height", "f"),
        ("floor", "i"),
        ("building", "i"),
        ("timestamp", "f"),
        ("device", "U"),
    ):
        values = getattr(fs, name)
        if values is None:
            if name == "rp_id":
                fail(name, "reference point ids")
            continue
        if values.shape != (n,) or values.dtype.kind != kind:
            fail(
                name,
                f"an array of kind {kind!r} and shape {(n,)}, got {values.dtype} {values.shape}",
            )
        if kind == "f" and not np.isfinite(values).all():
            fail(name, "finite values", int(np.argwhere(~np.isfinite(values))[0, 0]))
    for key, values in fs.domain.items():
        if values.shape != (n,) or values.dtype.kind != "i":
            fail(
                f"domain.{key}",
                f"integer labels of shape {(n,)}, got {values.dtype} {values.shape}",
            )


def rp_ids_from_positions(*columns: np.ndarray | None) -> np.ndarray:
    """Reference-point id per sample: samples at the same position (and floor, building) share one."""
    present = [np.asarray(c, np.float64) for c in columns if c is not None]
    stacked = np.column_stack([c.reshape(len(c), -1) for c in present])
    _, inverse = np.unique(np.round(stacked, 6), axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def require_real(values: object, source: str, field: str, ndim: int) -> np.ndarray:
    """`values` as an array of real numbers (integers or floats) of rank `ndim`; a complex, boolean,
    text-typed or object array, or another rank, is refused naming the field and what was found."""
    array = np.asarray(values)
    if array.dtype.kind not in "iuf":
        kinds = {"c": "complex", "b": "boolean", "U": "text", "S": "text", "O": "object"}
        found = kinds.get(array.dtype.kind, array.dtype.kind)
        raise DataFormatError(
            f"{locate(source, field=field)}: expected real numbers, found {found} values "
            f"(dtype {array.dtype})"
        )
    if array.ndim != ndim:
        raise DataFormatError(
            f"{locate(source, field=field)}: expected a {ndim}-D array, found {array.ndim}-D "
            f"of shape {array.shape}"
        )
    return array


def from_raw(
    raw_rss: np.ndarray,
    not_detected: float,
    ap_ids: Sequence[str],
    xy: np.ndarray,
    source: str,
    rp_id: np.ndarray | None = None,
    first_row: int = 1,
    **labels: object,
) -> FingerprintSet:
    """Build a set from a raw RSS matrix that marks missing readings with `not_detected`.

    Raw cells are checked first so that errors name the row and AP column; `first_row` is the
    file line (or matrix row, 1-based) of the first sample.
    """
    raw_rss = require_real(raw_rss, source, "rss", 2).astype(np.float64)
    check_raw_rss(raw_rss, not_detected, ap_ids, source, first_row)
    detected = raw_rss != not_detected
    rss = np.where(detected, raw_rss, np.nan).astype(np.float32)
    xy = np.asarray(xy, np.float64)
    if rp_id is None:
        rp_id = rp_ids_from_positions(
            xy, labels.get("height"), labels.get("floor"), labels.get("building")
        )
    return FingerprintSet(
        rss=rss,
        detected=detected,
        ap_ids=np.asarray(list(ap_ids), dtype=str),
        xy=xy,
        rp_id=np.asarray(rp_id, np.int64),
        source=source,
        **labels,  # type: ignore[arg-type]
    )


def check_raw_rss(
    raw: np.ndarray,
    not_detected: float,
    ap_ids: Sequence[str],
    source: str,
    first_row: int = 1,
) -> None:
    """Raise on NaN/inf or RSS outside the physical range (other than the marker), naming the cell."""
    if raw.ndim != 2 or raw.shape[0] == 0:
        raise DataFormatError(f"{source}: expected at least one fingerprint row, found none")
    if raw.shape[1] != len(ap_ids):
        raise DataFormatError(f"{source}: expected {len(ap_ids)} AP columns, found {raw.shape[1]}")
    marker = raw == not_detected
    bad = ~np.isfinite(raw) | (~marker & ((raw < RSS_MIN_DBM) | (raw > RSS_MAX_DBM)))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataFormatError(
            f"{locate(source, int(r) + first_row, str(ap_ids[c]))}: expected RSS in "
            f"[{RSS_MIN_DBM:g}, {RSS_MAX_DBM:g}] dBm or the not-detected marker "
            f"{not_detected:g}, found {float(raw[r, c])!r}"
        )


def concat(sets: Sequence[FingerprintSet], source: str | None = None) -> FingerprintSet:
    """Stack sets over samples; the AP list is the union in first-seen order."""
    if not sets:
        raise DataFormatError("concat: expected at least one set")
    ap_ids: list[str] = []
    seen: set[str] = set()
    for fs in sets:
        for ap in fs.ap_ids.tolist():
            if ap not in seen:
                seen.add(ap)
                ap_ids.append(ap)
    aligned = [fs if fs.ap_ids.tolist() == ap_ids else fs.select_aps(ap_ids) for fs in sets]

    def stack(name: str) -> np.ndarray | None:
        values = [getattr(fs, name) for fs in aligned]
        if any(v is None for v in values):
            return None
        return np.concatenate(values)

    # rp ids are per-set; re-derive them from positions so equal positions share one id.
    xy = stack("xy")
    height, floor, building = stack("height"), stack("floor"), stack("building")
    domain_keys = set.intersection(*(set(fs.domain) for fs in aligned))
    return FingerprintSet(
        rss=stack("rss"),
        detected=stack("detected"),
        ap_ids=np.asarray(ap_ids, dtype=str),
        xy=xy,
        rp_id=rp_ids_from_positions(xy, height, floor, building),
        height=height,
        floor=floor,
        building=building,
        timestamp=stack("timestamp"),
        device=stack("device"),
        domain={k: np.concatenate([fs.domain[k] for fs in aligned]) for k in sorted(domain_keys)},
        source=source or " + ".join(fs.source for fs in sets),
    )
