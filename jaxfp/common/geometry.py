"""Plane geometry shared by methods: rotation about a site, position scaling, grid cells."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


def rotate_xy(xy: jax.Array, angle_rad: float | jax.Array, center: Sequence[float]) -> jax.Array:
    """Rotate positions about `center` (e.g. the BS) by `angle_rad` counter-clockwise."""
    c, s = jnp.cos(angle_rad), jnp.sin(angle_rad)
    center = jnp.asarray(center[:2], xy.dtype)
    d = xy - center
    return jnp.stack([c * d[..., 0] - s * d[..., 1], s * d[..., 0] + c * d[..., 1]], -1) + center


class SiteFrame(NamedTuple):
    """Positions relative to a site, in units of `scale` metres, and the sector boresights.

    A rotation about the site is then a rotation about the origin. With `sector_frame`, a model's
    targets are in its serving sector's frame (rotated so the boresight lies along +x): the three
    sectors of a site then share one geometry, and `positions` rotates a prediction back.
    """

    origin: tuple[float, float]
    scale: float
    azimuths_rad: tuple[float, ...]
    sector_frame: bool = False

    def normalise(self, xy: jax.Array) -> jax.Array:
        return (xy - jnp.asarray(self.origin, xy.dtype)) / self.scale

    def to_metres(self, unit_xy: jax.Array) -> jax.Array:
        return unit_xy * self.scale + jnp.asarray(self.origin, unit_xy.dtype)

    def targets(self, xy: jax.Array, sector: jax.Array) -> jax.Array:
        """Metres -> what a model predicts: normalised, in the sector's frame when enabled."""
        unit = self.normalise(xy)
        if not self.sector_frame:
            return unit
        return rotate_xy(unit, -self._boresight(sector, unit.dtype), (0.0, 0.0))

    def positions(self, unit_xy: jax.Array, sector: jax.Array) -> jax.Array:
        """The inverse of `targets`; `sector` broadcasts against `unit_xy[..., 0]`."""
        if self.sector_frame:
            unit_xy = rotate_xy(unit_xy, self._boresight(sector, unit_xy.dtype), (0.0, 0.0))
        return self.to_metres(unit_xy)

    def head_azimuths(self) -> jax.Array:
        """The boresights the sector heads rotate between (all equal in the sector frame)."""
        zeros = (0.0,) * len(self.azimuths_rad)
        return jnp.asarray(zeros if self.sector_frame else self.azimuths_rad, jnp.float32)

    def _boresight(self, sector: jax.Array, dtype) -> jax.Array:
        return jnp.asarray(self.azimuths_rad, dtype)[jnp.asarray(sector).astype(jnp.int32)]


class Cells(NamedTuple):
    """A square grid over an area; each cell an integer class."""

    low: tuple[float, float]
    size_m: float
    shape: tuple[int, int]

    @classmethod
    def covering(cls, xy: np.ndarray, size_m: float) -> Cells:
        low = xy.min(0)
        shape = np.maximum(np.ceil((xy.max(0) - low) / size_m), 1).astype(int)
        return cls((float(low[0]), float(low[1])), float(size_m), (int(shape[0]), int(shape[1])))

    @property
    def count(self) -> int:
        return self.shape[0] * self.shape[1]

    def index(self, xy: jax.Array) -> jax.Array:
        ij = jnp.floor((xy - jnp.asarray(self.low, xy.dtype)) / self.size_m).astype(jnp.int32)
        ij = jnp.clip(ij, 0, jnp.asarray(self.shape) - 1)
        return ij[..., 0] * self.shape[1] + ij[..., 1]
