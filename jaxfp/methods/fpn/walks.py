"""Walks over reference points: the sequences FPN's LSTM reads.

- A walk steps from a point to a uniformly drawn neighbour: a point on the same floor within
  `radius_m` (the grid spacing on a synthetic grid). It starts at a point that has a neighbour,
  so it never gets stuck (the neighbour relation is symmetric).
- One scan per step, drawn at random from the scans taken at that point. No shipped set records a
  continuous path, so on real sets walks are assembled this way from the scans of one period.
"""

from __future__ import annotations

import numpy as np


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
