"""The receiver grid: 1 m points over a region, outdoor only, each with its serving sector."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def grid_points(region: Sequence[float], spacing: float) -> np.ndarray:
    """(n, 2) points on a grid over [x_min, x_max] x [y_min, y_max], row by row."""
    x_min, x_max, y_min, y_max = region
    xs = np.arange(x_min, x_max + spacing / 2, spacing)
    ys = np.arange(y_min, y_max + spacing / 2, spacing)
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    return np.column_stack([gx.ravel(), gy.ravel()])


def serving_sector(
    xy: np.ndarray, bs_xy: Sequence[float], azimuths_deg: Sequence[float]
) -> np.ndarray:
    """Index of the sector whose boresight azimuth is closest to the direction BS -> receiver."""
    angle = np.degrees(np.arctan2(xy[:, 1] - bs_xy[1], xy[:, 0] - bs_xy[0]))
    diff = (angle[:, None] - np.asarray(azimuths_deg)[None, :] + 180.0) % 360.0 - 180.0
    return np.argmin(np.abs(diff), axis=1).astype(np.int8)


def receivers(
    region: Sequence[float],
    spacing: float,
    bs_xy: Sequence[float],
    azimuths_deg: Sequence[float],
    is_outdoor: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """(xy, sector) of every outdoor grid point, ordered by sector then grid position.

    Ordering by sector keeps every solver batch inside one sector (one transmitter orientation).
    """
    points = grid_points(region, spacing)
    points = points[is_outdoor(points)]
    sector = serving_sector(points, bs_xy, azimuths_deg)
    order = np.argsort(sector, kind="stable")
    return points[order], sector[order]
