"""Places of scans: a floor code that folds the building in, and a set's reference points."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxfp.data.types import FingerprintSet


def floor_code_of(floor: np.ndarray, building: np.ndarray | None) -> np.ndarray:
    """building · 100 + floor where a set has buildings, else the floor."""
    floor = np.asarray(floor, np.int64)
    return floor if building is None else np.asarray(building, np.int64) * 100 + floor


def split_floor_code(code: np.ndarray, buildings: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(floor, building) of floor codes (`floor_code_of`; unambiguous for floors -50 to 49);
    (code, None) without buildings."""
    code = np.asarray(code, np.int64)
    if not buildings:
        return code, None
    building = np.floor_divide(code + 50, 100)
    return code - 100 * building, building


def floor_code(fs: FingerprintSet) -> np.ndarray:
    floor = np.zeros(fs.n, np.int64) if fs.floor is None else fs.floor
    return floor_code_of(floor, fs.building)


def place_keys(fs: FingerprintSet) -> np.ndarray:
    """(n, 3) x, y (rounded to mm) and floor code of every scan."""
    return np.c_[np.round(fs.xy, 3), floor_code(fs)]


class ReferencePoints(NamedTuple):
    """The distinct places (x, y, floor code) of a set's scans, sorted."""

    xy: np.ndarray  # (R, 2)
    floor: np.ndarray  # (R,)

    @classmethod
    def of(cls, fs: FingerprintSet) -> ReferencePoints:
        unique = np.unique(place_keys(fs), axis=0)
        return cls(unique[:, :2], unique[:, 2].astype(np.int64))

    def __len__(self) -> int:  # type: ignore[override]
        return len(self.xy)

    def locate(self, fs: FingerprintSet) -> np.ndarray:
        """(n,) index of each scan's own place; -1 where it is not one of these points."""
        table = {tuple(k): i for i, k in enumerate(np.c_[self.xy, self.floor])}
        return np.array([table.get(tuple(k), -1) for k in place_keys(fs)], np.int64)
