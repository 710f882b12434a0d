"""Completing incomplete fingerprints (§III-C) and the interpolation baselines.

`subset_completion` is eq. 6: r̃ = m ⊙ r_meas + (1 - m) ⊙ (1/K) Σ_k r̂^(k), where the K measured RUs
of a sample each make one subset (the sample with only that RU measured) and r̂^(k) is the
generator's completion of it. Measured entries are never overwritten. The interpolation baselines
(IDW, Gaussian-process regression over the RSS-training RPs' mean fingerprints) predict from the
RP's position alone and keep the measured entries the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxfp.common.neighbours import idw_average


def incomplete_mask(key: jax.Array, batch: int, rus: int, measured: int) -> jax.Array:
    """(batch, rus) float mask with `measured` RUs kept per sample, drawn uniformly (training)."""
    scores = jax.random.uniform(key, (batch, rus))
    kth = jnp.sort(scores, axis=1)[:, measured - 1 : measured]
    return (scores <= kth).astype(jnp.float32)


def measured_rus(n: int, rus: int, k: int, seed: int | list[int]) -> np.ndarray:
    """(n, k) distinct RU indices per sample, drawn once so every method sees the same ones."""
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((n, rus)), axis=1)[:, :k]


def mask_of(measured: np.ndarray, rus: int) -> np.ndarray:
    """(n, rus) float32 mask with ones at each row's measured RUs."""
    mask = np.zeros((len(measured), rus), np.float32)
    np.put_along_axis(mask, measured, 1.0, axis=1)
    return mask


def keep_measured(
    measured_values: np.ndarray, mask: np.ndarray, predicted: np.ndarray
) -> np.ndarray:
    """Eq. 6's outer form: measured entries as measured, the rest predicted."""
    return mask * measured_values + (1.0 - mask) * predicted


def subset_completion(
    generate: Callable[..., jax.Array],
    rss: jax.Array,
    rp: jax.Array,
    measured: jax.Array,
    key: jax.Array | None = None,
) -> jax.Array:
    """Eq. 6 for (n, L) standardised `rss` (only the `measured` (n, K) entries are read), RPs `rp`.
    `generate(x, mask, rp)`, or `generate(x, mask, rp, key)` with a key of its own per subset when
    `key` is given (a generator that draws noise)."""
    rus = rss.shape[1]
    subsets = jax.nn.one_hot(measured, rus, dtype=rss.dtype)  # (n, K, L): one RU each
    if key is None:
        predicted = jax.vmap(lambda m: generate(rss * m, m, rp), in_axes=1)(subsets)  # (K, n, L)
    else:
        keys = jax.random.split(key, measured.shape[1])
        predicted = jax.vmap(lambda m, k: generate(rss * m, m, rp, k), in_axes=(1, 0))(
            subsets, keys
        )
    mask = jnp.max(subsets, axis=1)
    return keep_measured(rss, mask, jnp.mean(predicted, axis=0))


def idw_map(train_xy: np.ndarray, train_means: np.ndarray, xy: np.ndarray, k: int) -> np.ndarray:
    """Each RU's mean RSS at `xy` by inverse-distance weighting of the training RPs' means."""
    return idw_average(xy, train_xy, train_means, k)


@jax.jit
def _gp_fit(x, y, query, length, noise):
    """Log marginal likelihood per output column and the posterior mean at `query` (RBF kernel)."""
    d2 = jnp.sum((x[:, None] - x[None]) ** 2, -1)
    chol = jnp.linalg.cholesky(jnp.exp(-0.5 * d2 / length**2) + noise * jnp.eye(len(x)))
    alpha = jax.scipy.linalg.cho_solve((chol, True), y)
    evidence = (
        -0.5 * jnp.sum(y * alpha, 0)
        - jnp.sum(jnp.log(jnp.diag(chol)))
        - 0.5 * len(x) * jnp.log(2 * jnp.pi)
    )
    cross = jnp.exp(-0.5 * jnp.sum((query[:, None] - x[None]) ** 2, -1) / length**2)
    return evidence, cross @ alpha


def gp_map(
    train_xy: np.ndarray,
    train_means: np.ndarray,
    xy: np.ndarray,
    lengths: tuple[float, ...],
    noises: tuple[float, ...],
) -> np.ndarray:
    """Gaussian-process regression of each RU's (standardised) mean RSS over RP positions: an RBF
    kernel whose length and noise are picked per RU from the grids by the marginal likelihood."""
    mean, scale = train_means.mean(0), np.maximum(train_means.std(0), 1e-6)
    y = jnp.asarray((train_means - mean) / scale)
    x, q = jnp.asarray(train_xy, jnp.float32), jnp.asarray(xy, jnp.float32)
    best = np.full(y.shape[1], -np.inf)
    out = np.zeros((len(xy), y.shape[1]))
    for length in lengths:
        for noise in noises:
            evidence, prediction = (np.asarray(a) for a in _gp_fit(x, y, q, length, noise))
            better = evidence > best
            out[:, better] = prediction[:, better]
            best = np.where(better, evidence, best)
    return out * scale + mean


def gp_map_left_out(
    train_xy: np.ndarray,
    train_means: np.ndarray,
    lengths: tuple[float, ...],
    noises: tuple[float, ...],
) -> np.ndarray:
    """`gp_map` at each training RP from the other training RPs only: the prior a GPR-GAN is trained
    with, so that at training RPs it is as coarse as it will be at unseen ones."""
    out = np.zeros_like(train_means, dtype=np.float64)
    for i in range(len(train_xy)):
        others = np.arange(len(train_xy)) != i
        out[i] = gp_map(
            train_xy[others], train_means[others], train_xy[i : i + 1], lengths, noises
        )[0]
    return out
