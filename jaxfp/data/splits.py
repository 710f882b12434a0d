"""Reproducible splits: by reference point (ComGAN Table I style) and by labelled fraction."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxfp.data.types import FingerprintSet


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    f = np.asarray(fractions, np.float64)
    if f.ndim != 1 or len(f) < 2 or (f <= 0).any() or not np.isclose(f.sum(), 1.0):
        raise ValueError(
            f"fractions: expected two or more positive numbers summing to 1, got {fractions}"
        )
    return f


def _cut(n: int, fractions: np.ndarray) -> np.ndarray:
    """Boundaries that give every part at least one item where n allows it."""
    bounds = np.round(np.cumsum(fractions)[:-1] * n).astype(int)
    return np.clip(bounds, 1, max(n - 1, 1))


def split_indices_by_rp(
    rp_id: np.ndarray, fractions: Sequence[float], seed: int
) -> list[np.ndarray]:
    """Sample indices per part; every sample of one reference point lands in the same part."""
    f = _check_fractions(fractions)
    rps = np.unique(rp_id)
    if len(rps) < len(f):
        raise ValueError(f"split by RP: {len(rps)} reference points cannot fill {len(f)} parts")
    order = np.random.default_rng(seed).permutation(rps)
    groups = np.split(order, _cut(len(rps), f))
    return [np.flatnonzero(np.isin(rp_id, g)) for g in groups]


def split_by_rp(fs: FingerprintSet, fractions: Sequence[float], seed: int) -> list[FingerprintSet]:
    """Parts of `fs` with disjoint reference points, sized by `fractions` of the RPs."""
    return [
        fs.subset(idx, source=f"{fs.source}[rp part {i}]")
        for i, idx in enumerate(split_indices_by_rp(fs.rp_id, fractions, seed))
    ]


def labelled_indices(
    n: int, labelled_fraction: float, seed: int, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(labelled, unlabelled) sample indices; with `groups`, the fraction is taken in each group."""
    if not 0.0 < labelled_fraction < 1.0:
        raise ValueError(f"labelled_fraction: expected a value in (0, 1), got {labelled_fraction}")
    rng = np.random.default_rng(seed)
    if groups is None:
        groups = np.zeros(n, np.int64)
    labelled = []
    for g in np.unique(groups):
        members = rng.permutation(np.flatnonzero(groups == g))
        take = max(1, int(round(labelled_fraction * len(members))))
        labelled.append(members[:take])
    lab = np.sort(np.concatenate(labelled))
    return lab, np.setdiff1d(np.arange(n), lab)


def labelled_split(
    fs: FingerprintSet, labelled_fraction: float, seed: int, per_rp: bool = False
) -> tuple[FingerprintSet, FingerprintSet]:
    """(labelled, unlabelled); per_rp takes the fraction inside every reference point."""
    lab, unlab = labelled_indices(fs.n, labelled_fraction, seed, fs.rp_id if per_rp else None)
    return fs.subset(lab, f"{fs.source}[labelled]"), fs.subset(unlab, f"{fs.source}[unlabelled]")
