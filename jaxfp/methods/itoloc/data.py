"""iToLoc's inputs: the training site's reference locations, images, domains, regions.

One line per choice:
- locations: the distinct (x, y, floor) of the labelled training scans are the C classes (eq. 4);
  a building, where a set has several, is folded into the floor code (building · 100 + floor).
- distances for Ls (eq. 10): 3-D metres between locations, floors `floor_height_m` apart.
- an estimate is the location with the highest probability averaged over the location heads.
- domains: the distinct values of the config's `domain_keys` (device, and a period such as the
  long-term set's collection) among the labelled scans; new values (held-out phones, a new month)
  get further ids in the order met.
- region (the success rate's unit): the floor and a square grid cell of `region_cell_m`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from jaxfp.data.places import ReferencePoints, floor_code
from jaxfp.data.types import DataFormatError, FingerprintSet
from jaxfp.methods.itoloc.image import fingerprint_image, positive_rss, vector_image


class Site(NamedTuple):
    """The C reference locations of the labelled training scans."""

    xy: np.ndarray  # (C, 2)
    floor: np.ndarray  # (C,)
    distances: np.ndarray  # (C, C) metres

    @classmethod
    def of(cls, fs: FingerprintSet, floor_height_m: float) -> Site:
        points = ReferencePoints.of(fs)
        xyz = np.c_[points.xy, points.floor * floor_height_m]
        distances = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
        return cls(points.xy, points.floor, distances.astype(np.float32))

    def locate(self, fs: FingerprintSet) -> np.ndarray:
        """(n,) class index of each scan's own location; -1 where it is not a training location."""
        return ReferencePoints(self.xy, self.floor).locate(fs)


class Domains:
    """Ids for the values of `keys` (FingerprintSet.device as 'device', else a `domain` column)."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys, self.ids = tuple(keys), {}

    def values(self, fs: FingerprintSet) -> list[tuple]:
        columns = []
        for key in self.keys:
            column = fs.device if key == "device" else fs.domain.get(key)
            if column is None:
                known = ["device"] + sorted(fs.domain)
                raise DataFormatError(
                    f"{fs.source}: domain key {key!r} not in this set; it has {known}"
                )
            columns.append(np.asarray(column).astype(str))
        return list(zip(*columns, strict=True)) if columns else [()] * fs.n

    def of(self, fs: FingerprintSet) -> np.ndarray:
        out = []
        for value in self.values(fs):
            out.append(self.ids.setdefault(value, len(self.ids)))
        return np.array(out, np.int64)


class Scans(NamedTuple):
    image: np.ndarray  # (n, S, S) float32
    xy: np.ndarray  # (n, 2)
    floor: np.ndarray  # (n,)
    location: np.ndarray  # (n,) class index, -1 where not a training location
    domain: np.ndarray  # (n,)

    def take(self, rows: np.ndarray) -> Scans:
        return Scans(*(a[rows] for a in self))


def scans(
    fs: FingerprintSet,
    aps: np.ndarray,
    site: Site,
    domains: Domains,
    image: str,
    missing_dbm: float,
) -> Scans:
    """`fs` restricted to the selected AP ids `aps`, as model inputs with labels and domains."""
    f = positive_rss(fs.select_aps(aps.tolist()).rss, missing_dbm)
    if image == "eq1":
        pictures = fingerprint_image(f)
    elif image == "vector":
        pictures = vector_image(f)
    else:
        raise ValueError(f"image: expected 'eq1' or 'vector', got {image!r}")
    return Scans(pictures, fs.xy, floor_code(fs), site.locate(fs), domains.of(fs))


def regions(xy: np.ndarray, floor: np.ndarray, cell_m: float) -> np.ndarray:
    """(n, 3) region keys: floor and grid cell."""
    return np.c_[floor, np.floor(xy / cell_m)].astype(np.int64)
