"""A synthetic RSS world for tests and ablations (ComGAN eq. 1 in dB, with shadowing and fading).

RSS_l(p) = P_l + G_dev - 10 alpha log10(max(d_l, d0)) - FAF * floors crossed + S_l(p) + h, where P_l
is AP l's power (transmit power and link gain K_l of eq. 1), S_l a spatially smooth shadowing field
(random Fourier features, so repeated visits to a place see the same shadowing), h Rayleigh fading in
dB. Readings below the sensitivity are 'not detected'. Two optional per-scan terms shared by every
AP of a scan (both off by default): the surveyor's body, facing a uniform random heading theta,
takes body_loss_db * (1 - cos(theta - phi_l)) / 2 from AP l at bearing phi_l (most when the AP is
behind them), and an occupancy term N(0, scan_common_db^2) shifts every AP alike; they make one
AP's deviation from its place's mean predictable from the others', as on real sets. Churn per
period follows GUFU Table 5's order of magnitude (Campus GF: ~6% of APs installed and ~4% removed
per week).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxfp.data.types import FingerprintSet


@dataclasses.dataclass(frozen=True)
class WorldParams:
    width_m: float = 40.0
    height_m: float = 24.0
    n_floors: int = 1
    floor_attenuation_db: float = 15.0
    n_aps: int = 30
    ap_power_dbm: float = -30.0  # P_t + K_l at the reference distance
    ap_power_spread_db: float = 4.0
    path_loss_exponent: float = 3.0
    reference_distance_m: float = 1.0
    shadowing_db: float = 4.0
    shadowing_length_m: float = 6.0
    shadowing_features: int = 32
    rayleigh_fading: bool = True
    sensitivity_dbm: float = -95.0
    rp_spacing_m: float = 2.0
    n_devices: int = 3
    device_offset_db: float = 4.0
    device_gain_spread: float = 0.05
    install_rate: float = 0.06
    removal_rate: float = 0.04
    power_change_rate: float = 0.05
    power_change_db: float = 6.0
    body_loss_db: float = 0.0  # per-scan body shadowing by heading (0: none)
    scan_common_db: float = 0.0  # per-scan term shared by every AP (0: none)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> WorldParams:
        """The fields a config section sets (its other keys, e.g. scan counts, are not ours)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in mapping.items() if k in names})


@dataclasses.dataclass(frozen=True)
class World:
    params: WorldParams
    ap_xy: np.ndarray  # (L, 2), every AP ever installed
    ap_floor: np.ndarray  # (L,)
    ap_power: np.ndarray  # (L,) dBm
    ap_active: np.ndarray  # (L,) bool
    shadow_freq: np.ndarray  # (L, F, 2)
    shadow_phase: np.ndarray  # (L, F)
    device_offset: np.ndarray  # (D,) dB
    device_gain: np.ndarray  # (D,)
    period: int = 0

    @property
    def ap_ids(self) -> np.ndarray:
        return np.array([f"SYN{i:04d}" for i in range(len(self.ap_xy))])

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Reference points (xy, floor) on a grid of `rp_spacing_m`, every floor."""
        p = self.params
        xs = np.arange(p.rp_spacing_m / 2, p.width_m, p.rp_spacing_m)
        ys = np.arange(p.rp_spacing_m / 2, p.height_m, p.rp_spacing_m)
        gx, gy = np.meshgrid(xs, ys, indexing="xy")
        xy = np.column_stack([gx.ravel(), gy.ravel()])
        floors = np.repeat(np.arange(p.n_floors), len(xy))
        return np.tile(xy, (p.n_floors, 1)), floors


def _new_aps(p: WorldParams, rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    return {
        "ap_xy": rng.uniform([0, 0], [p.width_m, p.height_m], size=(count, 2)),
        "ap_floor": rng.integers(0, p.n_floors, count),
        "ap_power": p.ap_power_dbm + p.ap_power_spread_db * rng.standard_normal(count),
        "shadow_freq": rng.standard_normal((count, p.shadowing_features, 2)) / p.shadowing_length_m,
        "shadow_phase": rng.uniform(0, 2 * np.pi, (count, p.shadowing_features)),
    }


def make_world(params: WorldParams, seed: int) -> World:
    rng = np.random.default_rng(seed)
    aps = _new_aps(params, rng, params.n_aps)
    return World(
        params=params,
        ap_active=np.ones(params.n_aps, bool),
        device_offset=params.device_offset_db * rng.standard_normal(params.n_devices),
        device_gain=1.0 + params.device_gain_spread * rng.standard_normal(params.n_devices),
        **aps,
    )


def evolve(world: World, seed: int) -> World:
    """One period later: some APs removed, some installed, some change power."""
    p, rng = world.params, np.random.default_rng([seed, world.period])
    active = world.ap_active.copy()
    power = world.ap_power.copy()
    removed = active & (rng.random(len(active)) < p.removal_rate)
    active &= ~removed
    changed = active & (rng.random(len(active)) < p.power_change_rate)
    power[changed] += p.power_change_db * rng.choice([-1.0, 1.0], changed.sum())
    n_new = rng.binomial(max(int(world.ap_active.sum()), 1), p.install_rate)
    new = _new_aps(p, rng, n_new)
    return dataclasses.replace(
        world,
        ap_xy=np.concatenate([world.ap_xy, new["ap_xy"]]),
        ap_floor=np.concatenate([world.ap_floor, new["ap_floor"]]),
        ap_power=np.concatenate([power, new["ap_power"]]),
        ap_active=np.concatenate([active, np.ones(n_new, bool)]),
        shadow_freq=np.concatenate([world.shadow_freq, new["shadow_freq"]]),
        shadow_phase=np.concatenate([world.shadow_phase, new["shadow_phase"]]),
        period=world.period + 1,
    )


def relocate_aps(world: World, count: int, seed: int) -> World:
    """`count` active APs moved to new random places (same ids and powers, a new shadowing field
    around the new place); the next period."""
    rng = np.random.default_rng([seed, world.period, count])
    active = np.flatnonzero(world.ap_active)
    if not 0 <= count <= len(active):
        raise ValueError(f"count: expected 0..{len(active)} (the active APs), got {count}")
    moved = rng.choice(active, count, replace=False)
    new = _new_aps(world.params, rng, count)
    names = ("ap_xy", "ap_floor", "shadow_freq", "shadow_phase")
    arrays = {name: getattr(world, name).copy() for name in names}
    for name, values in arrays.items():
        values[moved] = new[name]
    return dataclasses.replace(world, period=world.period + 1, **arrays)


def mean_rss(world: World, xy: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """Noise-free RSS (n, L) in dBm: path loss, floor attenuation and shadowing, no fading."""
    p = world.params
    d = np.linalg.norm(xy[:, None, :] - world.ap_xy[None], axis=-1)
    d = np.maximum(d, p.reference_distance_m)
    loss = 10 * p.path_loss_exponent * np.log10(d / p.reference_distance_m)
    floors_crossed = np.abs(floor[:, None] - world.ap_floor[None])
    phase = np.einsum("nc,lfc->nlf", xy, world.shadow_freq) + world.shadow_phase[None]
    shadow = p.shadowing_db * np.sqrt(2.0 / p.shadowing_features) * np.cos(phase).sum(-1)
    return world.ap_power[None] - loss - p.floor_attenuation_db * floors_crossed + shadow


def scan_terms(world: World, xy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, L) dB of the per-scan terms shared across APs (body by heading, occupancy); zeros, with
    nothing drawn from `rng`, when both are off (so worlds without them are unchanged)."""
    p = world.params
    out = np.zeros((len(xy), len(world.ap_xy)))
    if p.body_loss_db:
        heading = rng.uniform(0.0, 2 * np.pi, (len(xy), 1))
        to_ap = world.ap_xy[None] - xy[:, None]
        bearing = np.arctan2(to_ap[..., 1], to_ap[..., 0])
        out -= p.body_loss_db * (1.0 - np.cos(heading - bearing)) / 2
    if p.scan_common_db:
        out += p.scan_common_db * rng.standard_normal((len(xy), 1))
    return out


def measure(
    world: World,
    xy: np.ndarray,
    floor: np.ndarray,
    seed: int,
    device: int | np.ndarray = 0,
    source: str = "synthetic",
) -> FingerprintSet:
    """One noisy scan per position, columns = every AP ever installed (inactive: never detected)."""
    p, rng = world.params, np.random.default_rng(seed)
    xy, floor = np.asarray(xy, np.float64), np.asarray(floor, np.int64)
    device = np.broadcast_to(np.asarray(device, np.int64), (len(xy),))
    rss = mean_rss(world, xy, floor)
    if p.rayleigh_fading:
        rss = rss + 10 * np.log10(rng.exponential(1.0, rss.shape))
    rss = rss + scan_terms(world, xy, rng)
    rss = world.device_gain[device, None] * rss + world.device_offset[device, None]
    rss = np.clip(np.round(rss), -130.0, 0.0)
    detected = (rss >= p.sensitivity_dbm) & world.ap_active[None]
    return FingerprintSet(
        rss=np.where(detected, rss, np.nan).astype(np.float32),
        detected=detected,
        ap_ids=world.ap_ids,
        xy=xy,
        rp_id=np.unique(np.column_stack([xy, floor]), axis=0, return_inverse=True)[1]
        .reshape(-1)
        .astype(np.int64),
        floor=floor,
        building=np.zeros(len(xy), np.int64),
        device=np.char.add("device", device.astype(str)),
        domain={"period": np.full(len(xy), world.period, np.int64), "device": device.copy()},
        source=source,
    )


def survey(world: World, samples_per_rp: int, seed: int, device: int = 0) -> FingerprintSet:
    """A site survey: `samples_per_rp` scans at every grid reference point."""
    xy, floor = world.grid()
    return measure(
        world,
        np.repeat(xy, samples_per_rp, axis=0),
        np.repeat(floor, samples_per_rp),
        seed,
        device,
        source=f"synthetic survey (period {world.period})",
    )


def walk(
    world: World,
    n_steps: int,
    seed: int,
    speed_mps: float = 1.2,
    dt_s: float = 1.0,
    turn_std: float = 0.4,
) -> np.ndarray:
    """A walking trajectory (n_steps, 2) with persistent heading, reflected at the area's walls."""
    p, rng = world.params, np.random.default_rng(seed)
    size = np.array([p.width_m, p.height_m])
    pos = rng.uniform(0, size)
    heading = rng.uniform(0, 2 * np.pi)
    out = np.empty((n_steps, 2))
    for t in range(n_steps):
        out[t] = pos
        heading += turn_std * rng.standard_normal()
        pos = pos + speed_mps * dt_s * np.array([np.cos(heading), np.sin(heading)])
        # Reflect into the area; flip the heading component that hit a wall.
        for axis in range(2):
            if pos[axis] < 0 or pos[axis] > size[axis]:
                pos[axis] = np.clip(
                    np.abs(pos[axis]) if pos[axis] < 0 else 2 * size[axis] - pos[axis],
                    0,
                    size[axis],
                )
                heading = np.pi - heading if axis == 0 else -heading
    return out
