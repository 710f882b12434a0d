"""Walks over reference points: the sequences FPN's LSTM reads.

- `walk.kind="motion"` (the default; §2.2: "users move in a continuous trajectory"): a walker
  moves continuously at a speed drawn per walk from `walk.speed_mps` (uniform), one scan every
  `walk.scan_interval_s`; its heading persists, turning by a Gaussian of `walk.turn_std_rad` per
  scan, and reflects at the bounding box of its floor's points. Each scan is one taken at the
  point nearest the walker on its floor (the survey's scans, so the truth is a point as in §4.1).
  It starts at a uniformly drawn point with a uniformly drawn heading.
- `walk.kind="neighbour"`: a walk steps from a point to a uniformly drawn neighbour (a point on
  the same floor within `walk.radius_m`); no heading or speed.
- One scan per step, drawn at random from the scans taken at that point. No shipped set records a
  continuous path, so on real sets walks are assembled this way from the scans of one period.
"""

from __future__ import annotations

from typing import NamedTuple

import ml_collections
import numpy as np

WALK_KINDS = ("motion", "neighbour")


def neighbour_lists(xy: np.ndarray, floor: np.ndarray, radius_m: float) -> list[np.ndarray]:
    """For each point, the indices of the other points on its floor within `radius_m`."""
    distance = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    near = (distance <= radius_m) & (floor[:, None] == floor[None]) & ~np.eye(len(xy), dtype=bool)
    return [np.flatnonzero(row) for row in near]


def random_walks(
    neighbours: list[np.ndarray], count: int, length: int, rng: np.random.Generator
) -> np.ndarray:
    """(count, length) point indices, each step to a neighbour of the previous point."""
    degree = np.array([len(n) for n in neighbours])
    starts = np.flatnonzero(degree > 0)
    if len(starts) == 0:
        raise ValueError("no point has a neighbour within the walk radius; enlarge walk.radius_m")
    table = np.zeros((len(neighbours), max(degree.max(), 1)), np.int64)
    for p, n in enumerate(neighbours):
        table[p, : len(n)] = n
    walks = np.empty((count, length), np.int64)
    walks[:, 0] = rng.choice(starts, count)
    for t in range(1, length):
        prev = walks[:, t - 1]
        walks[:, t] = table[prev, (rng.random(count) * degree[prev]).astype(np.int64)]
    return walks


class Motion(NamedTuple):
    """A walker's motion: speed range (m/s), seconds between scans, heading change per scan."""

    speed_mps: tuple[float, float]
    scan_interval_s: float
    turn_std_rad: float

    @classmethod
    def from_config(cls, walk: ml_collections.ConfigDict) -> Motion:
        low, high = (float(v) for v in walk.speed_mps)
        if not 0 <= low <= high:
            raise ValueError(
                f"walk.speed_mps: expected (low, high) with 0 <= low <= high, got {walk.speed_mps}"
            )
        if not float(walk.scan_interval_s) > 0:
            raise ValueError(f"walk.scan_interval_s: expected > 0, got {walk.scan_interval_s}")
        return cls((low, high), float(walk.scan_interval_s), float(walk.turn_std_rad))


def motion_paths(
    start: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    length: int,
    motion: Motion,
    rng: np.random.Generator,
    heading: np.ndarray | None = None,
) -> np.ndarray:
    """(W, length, 2) continuous positions of walkers starting at `start` (W, 2) inside their
    boxes [`low`, `high`] (W, 2); `heading` (W,) radians, drawn uniformly when None."""
    count = len(start)
    if heading is None:
        heading = rng.uniform(0, 2 * np.pi, count)
    heading = np.asarray(heading, np.float64).copy()
    speed = rng.uniform(*motion.speed_mps, count) * motion.scan_interval_s
    pos = np.asarray(start, np.float64).copy()
    out = np.empty((count, length, 2))
    for t in range(length):
        out[:, t] = pos
        heading += motion.turn_std_rad * rng.standard_normal(count)
        pos = pos + speed[:, None] * np.stack([np.cos(heading), np.sin(heading)], -1)
        # Reflect at the box: the position mirrors into it and the heading component flips.
        for axis in range(2):
            below, above = pos[:, axis] < low[:, axis], pos[:, axis] > high[:, axis]
            pos[:, axis] = np.where(below, 2 * low[:, axis] - pos[:, axis], pos[:, axis])
            pos[:, axis] = np.where(above, 2 * high[:, axis] - pos[:, axis], pos[:, axis])
            pos[:, axis] = np.clip(pos[:, axis], low[:, axis], high[:, axis])
            hit = below | above
            flipped = np.pi - heading if axis == 0 else -heading
            heading = np.where(hit, flipped, heading)
    return out


def motion_walks(
    xy: np.ndarray,
    floor: np.ndarray,
    count: int,
    length: int,
    motion: Motion,
    rng: np.random.Generator,
) -> np.ndarray:
    """(count, length) point indices: at each scan the point nearest the walker on its floor."""
    return FloorBoxes(xy, floor).walks(count, length, motion, rng)


class FloorBoxes:
    """Each floor's bounding box and points, computed once: walks are drawn every training step."""

    def __init__(self, xy: np.ndarray, floor: np.ndarray) -> None:
        self.xy = np.asarray(xy, np.float64)
        floors, self.floor_index = np.unique(floor, return_inverse=True)
        self.low = np.stack([self.xy[floor == f].min(0) for f in floors])
        self.high = np.stack([self.xy[floor == f].max(0) for f in floors])
        # Another floor's points are never nearest: +inf is added to their squared distance.
        self.off_floor = np.where(
            self.floor_index[None] == np.arange(len(floors))[:, None], 0, np.inf
        )

    def walks(
        self, count: int, length: int, motion: Motion, rng: np.random.Generator
    ) -> np.ndarray:
        first = rng.integers(0, len(self.xy), count)
        f = self.floor_index[first]
        paths = motion_paths(self.xy[first], self.low[f], self.high[f], length, motion, rng)
        # Squared distance: the same nearest point as the distance, without the square root.
        d2 = ((paths[:, :, None, 0] - self.xy[:, 0]) ** 2) + (
            (paths[:, :, None, 1] - self.xy[:, 1]) ** 2
        )
        return np.argmin(d2 + self.off_floor[f][:, None], -1)


class Walker:
    """Walks over a set of points (xy, floor) as `config.walk` says."""

    def __init__(self, walk: ml_collections.ConfigDict, xy: np.ndarray, floor: np.ndarray):
        self.kind = str(walk.kind)
        if self.kind not in WALK_KINDS:
            raise ValueError(f"walk.kind: expected one of {WALK_KINDS}, got {self.kind!r}")
        self.xy, self.floor = np.asarray(xy, np.float64), np.asarray(floor)
        if self.kind == "motion":
            self.motion = Motion.from_config(walk)
            self.boxes = FloorBoxes(self.xy, self.floor)
        else:
            self.neighbours = neighbour_lists(self.xy, self.floor, float(walk.radius_m))

    def draw(self, count: int, length: int, rng: np.random.Generator) -> np.ndarray:
        """(count, length) point indices."""
        if self.kind == "motion":
            return self.boxes.walks(count, length, self.motion, rng)
        return random_walks(self.neighbours, count, length, rng)


class ScanPool:
    """The scans taken at each point, for drawing one per walk step."""

    def __init__(self, point_of_scan: np.ndarray, n_points: int) -> None:
        inside = np.flatnonzero(point_of_scan >= 0)
        order = inside[np.argsort(point_of_scan[inside], kind="stable")]
        self.rows = order
        self.sizes = np.bincount(point_of_scan[inside], minlength=n_points)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])

    def draw(self, walks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(count, length) scan rows: one random scan of each visited point."""
        if (self.sizes[walks] == 0).any():
            raise ValueError("a walk visits a point without scans")
        pick = (rng.random(walks.shape) * self.sizes[walks]).astype(np.int64)
        return self.rows[self.offsets[walks] + pick]
