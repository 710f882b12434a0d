"""iToLoc's inputs: each seed's data draw, the site's reference locations, images, domains, regions.

What a seed draws (each from a key named after it, so a seed's data never depends on the others):
- synthetic devices: its own world (`named_seed(seed, "world")`), each device's training and test
  survey with its own fading (`named_seed(seed, "survey", "train" | "test", device)`), and the
  held-out devices' unlabelled target scans (`named_seed(seed, "unlabelled target")`).
- a real set's device protocol (fixed train/test files): the unlabelled target scans only.

One line per choice:
- locations: the distinct (x, y, floor) of the labelled training scans are the C classes (eq. 4);
  a building, where a set has several, is folded into the floor code (building · 100 + floor).
  Scans taken anywhere rather than at reference points (UJIIndoorLoc's validation scans) are
  grouped into square cells of `data.location_grid_m` per floor, each class at the mean
  position of its training scans (the paper's sites are surveyed on 1-1.5 m grids, Table I).
- distances for Ls (eq. 10): 3-D metres between locations, floors `floor_height_m` apart.
- an estimate is the location with the highest probability averaged over the location heads.
- domains (§III-D: a device and time pair): the distinct values of the config's `domain_keys`
  (device, and a period such as the long-term set's collection) among the labelled scans; the
  unlabelled target scans share one "unknown target" id (`Domains`, `config.domain_target`).
- region (the success rate's unit): the floor and a square grid cell of `region_cell_m`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import ml_collections
import numpy as np

from jaxfp.config import ConfigError
from jaxfp.data.places import ReferencePoints, floor_code
from jaxfp.data.registry import load_parts
from jaxfp.data.synthetic import WorldParams, make_world, survey
from jaxfp.data.types import DataFormatError, FingerprintSet, concat
from jaxfp.methods.itoloc.image import fingerprint_image, image_values, vector_image
from jaxfp.train.keys import named_seed


class Site(NamedTuple):
    """The C reference locations of the labelled training scans."""

    xy: np.ndarray  # (C, 2)
    floor: np.ndarray  # (C,)
    distances: np.ndarray  # (C, C) metres
    cell_m: float = 0.0  # 0: the scans' own places; > 0: grid cells of this side
    cells: np.ndarray | None = None  # (C, 3) floor code and cell indices, where cell_m > 0

    @classmethod
    def of(cls, fs: FingerprintSet, floor_height_m: float, cell_m: float = 0.0) -> Site:
        """The distinct places of `fs`, or (cell_m > 0) the grid cells its scans fall in, each
        at the mean position of its scans."""
        if cell_m < 0:
            raise ConfigError(f"data.location_grid_m: expected >= 0, got {cell_m}")
        cells = None
        if cell_m > 0:
            keys = _cell_keys(fs, cell_m)
            cells, which = np.unique(keys, axis=0, return_inverse=True)
            which = which.reshape(-1)
            counts = np.bincount(which, minlength=len(cells))
            xy = np.stack(
                [np.bincount(which, fs.xy[:, i], len(cells)) / counts for i in range(2)], -1
            )
            floor = cells[:, 0]
        else:
            points = ReferencePoints.of(fs)
            xy, floor = points.xy, points.floor
        xyz = np.c_[xy, floor * floor_height_m]
        distances = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
        return cls(xy, floor, distances.astype(np.float32), float(cell_m), cells)

    def locate(self, fs: FingerprintSet) -> np.ndarray:
        """(n,) class index of each scan's own location (or cell); -1 where it is not one."""
        if self.cells is None:
            return ReferencePoints(self.xy, self.floor).locate(fs)
        table = {tuple(k): i for i, k in enumerate(self.cells.tolist())}
        return np.array(
            [table.get(tuple(k), -1) for k in _cell_keys(fs, self.cell_m).tolist()], np.int64
        )


def _cell_keys(fs: FingerprintSet, cell_m: float) -> np.ndarray:
    """(n, 3) floor code and grid cell of every scan."""
    return np.c_[floor_code(fs), np.floor(fs.xy / cell_m)].astype(np.int64)


TARGETS = ("unknown", "known")


class Domains:
    """Ids for the values of `keys` (FingerprintSet.device as 'device', else a `domain` column).

    `target`: how unlabelled target scans are labelled for the discriminator. "unknown" (§III-A:
    the domain "without label information", one id for every target scan, whose device or time
    is not known at deployment); "known" (ours: each target scan by its own key values, e.g. the
    held-out device's name)."""

    UNKNOWN = ("unknown target",)

    def __init__(self, keys: Sequence[str], target: str = "unknown") -> None:
        if target not in TARGETS:
            raise ConfigError(f"domain_target: expected one of {TARGETS}, got {target!r}")
        self.keys, self.target, self.ids = tuple(keys), target, {}

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
        """Labelled (source) scans: the id of each scan's key values."""
        out = []
        for value in self.values(fs):
            out.append(self.ids.setdefault(value, len(self.ids)))
        return np.array(out, np.int64)

    def of_target(self, fs: FingerprintSet) -> np.ndarray:
        """Unlabelled target scans: one shared id ("unknown") or their own key values ("known")."""
        if self.target == "known":
            return self.of(fs)
        return np.full(fs.n, self.ids.setdefault(self.UNKNOWN, len(self.ids)), np.int64)


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
    values: str,
    missing_dbm: float,
    target: bool = False,
) -> Scans:
    """`fs` restricted to the selected AP ids `aps`, as model inputs with labels and domains
    (`target`: unlabelled target scans, their domain per `domains.target`); `values` and
    `missing_dbm` as `image.image_values` takes them."""
    rss = fs.select_aps(aps.tolist()).rss
    if image == "eq1":
        pictures = fingerprint_image(image_values(rss, values, missing_dbm))
    elif image == "vector":
        pictures = vector_image(rss, missing_dbm)
    else:
        raise ValueError(f"image: expected 'eq1' or 'vector', got {image!r}")
    domain = domains.of_target(fs) if target else domains.of(fs)
    return Scans(pictures, fs.xy, floor_code(fs), site.locate(fs), domain)


def regions(xy: np.ndarray, floor: np.ndarray, cell_m: float) -> np.ndarray:
    """(n, 3) region keys: floor and grid cell."""
    return np.c_[floor, np.floor(xy / cell_m)].astype(np.int64)


# --- the device protocol's data draw ---------------------------------------------------------------
class DeviceDraw(NamedTuple):
    """One seed's data for the device protocol."""

    train: FingerprintSet  # the training devices' labelled scans
    target: FingerprintSet | None  # the held-out devices' unlabelled scans (None: fraction 0)
    scored: FingerprintSet  # the held-out devices' scans that are scored


def device_draws(config: ml_collections.ConfigDict) -> list[DeviceDraw]:
    """One draw per seed of `config.seeds` (a real set is read once; its split is per seed)."""
    fixed = _real_sets(config) if config.data.source == "real" else None
    draws = []
    for seed in config.seeds:
        train, test = fixed if fixed is not None else device_sets(config, seed)
        target, scored = split_target(config, test, seed)
        draws.append(DeviceDraw(train, target, scored))
    return draws


def device_sets(
    config: ml_collections.ConfigDict, seed: int
) -> tuple[FingerprintSet, FingerprintSet]:
    """(training scans of the training devices, test scans of the held-out devices) of `seed`."""
    if config.data.source == "real":
        return _real_sets(config)
    if config.data.source != "synthetic":
        raise ConfigError(
            f"config.data.source: expected 'synthetic' or 'real', got {config.data.source!r}"
        )
    s = config.synthetic
    world = make_world(WorldParams.from_mapping(s), named_seed(seed, "world"))
    devices = range(s.n_devices)
    train = concat(
        [
            survey(world, s.train_scans_per_rp, named_seed(seed, "survey", "train", d), d)
            for d in devices
        ],
        source=f"synthetic world ({s.n_devices} devices)",
    )
    test = concat(
        [
            survey(world, s.test_scans_per_rp, named_seed(seed, "survey", "test", d), d)
            for d in devices
        ],
        source=f"synthetic world ({s.n_devices} devices, test survey)",
    )
    return _hold_out(config, train, test)


def _real_sets(config: ml_collections.ConfigDict) -> tuple[FingerprintSet, FingerprintSet]:
    d = config.data
    train = _in_buildings(load_parts(d.path, list(d.train_parts), d.format), d.get("buildings"))
    test = load_parts(d.path, list(d.test_parts), d.format).aligned_to(train)
    return _hold_out(config, train, _in_buildings(test, d.get("buildings")))


def _in_buildings(fs: FingerprintSet, buildings: Sequence[int] | None) -> FingerprintSet:
    """The scans of `buildings` (`data.buildings`; empty or None: every scan)."""
    if not buildings:
        return fs
    if fs.building is None:
        raise ConfigError(f"data.buildings: {fs.source} has no building column")
    keep = np.isin(fs.building, [int(b) for b in buildings])
    if not keep.any():
        raise ConfigError(
            f"data.buildings: none of {list(buildings)} in {fs.source}; it has "
            f"{sorted(np.unique(fs.building).tolist())}"
        )
    return fs.subset(keep, source=f"{fs.source} (buildings {list(buildings)})")


def _hold_out(
    config: ml_collections.ConfigDict, train: FingerprintSet, test: FingerprintSet
) -> tuple[FingerprintSet, FingerprintSet]:
    if train.device is None:
        raise ConfigError(f"{train.source}: has no device labels; the device protocol needs them")
    held_out = [str(v) for v in config.data.held_out]
    excluded = [str(v) for v in config.data.get("excluded", ())]
    if set(held_out) & set(excluded):
        raise ConfigError(
            f"config.data.held_out and config.data.excluded share {sorted(set(held_out) & set(excluded))}"
        )
    if excluded:  # a validation protocol: the reported devices are in no part of it
        train = train.subset(~np.isin(train.device, excluded), source=train.source)
        test = test.subset(~np.isin(test.device, excluded), source=test.source)
    missing = sorted(set(held_out) - set(np.unique(test.device).tolist()))
    if missing or not held_out:
        raise ConfigError(
            f"config.data.held_out: {missing or 'empty'}; devices in the test scans: "
            f"{sorted(np.unique(test.device).tolist())}"
        )
    train = train.subset(
        ~np.isin(train.device, held_out), source=f"{train.source} (training devices)"
    )
    test = test.subset(np.isin(test.device, held_out), source=f"{test.source} (held-out devices)")
    if train.n == 0:
        raise ConfigError("config.data.held_out: no training scans are left")
    return train, test


def split_target(
    config: ml_collections.ConfigDict, test: FingerprintSet, seed: int
) -> tuple[FingerprintSet | None, FingerprintSet]:
    """(unlabelled target scans, scored scans): per held-out device, a random
    `data.unlabelled_target_fraction` of its scans (drawn for `seed`) is the target set."""
    fraction = float(config.data.unlabelled_target_fraction)
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(
            f"config.data.unlabelled_target_fraction: expected 0 <= f < 1, got {fraction}"
        )
    if fraction == 0.0:
        return None, test
    rng = np.random.default_rng(named_seed(seed, "unlabelled target"))
    is_target = np.zeros(test.n, bool)
    for device in np.unique(test.device):
        rows = np.flatnonzero(test.device == device)
        is_target[rng.permutation(rows)[: int(round(fraction * len(rows)))]] = True
    unlabelled = test.subset(is_target, source=f"{test.source}, unlabelled target")
    return unlabelled, test.subset(~is_target, source=f"{test.source}, scored")
