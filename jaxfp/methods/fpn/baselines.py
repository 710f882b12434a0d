"""FPN's baselines over walks: the basic fingerprint (nearest map row) and a Kalman filter on its
positions. WkNN comes from `jaxfp.methods.baselines`.

- Basic fingerprint (Table 1): the reference point whose radio-map row is nearest (Euclidean, dBm
  after the −95/−100 rule) to the scan — no preprocessing, as the paper's 10.61 m row.
- Kalman fingerprint ([30]'s model is not given): the basic fingerprint's positions filtered along
  each walk by a constant-velocity model per axis, state (position, velocity), one scan interval
  per step, white-noise acceleration of std `accel_std` (m per step²) and measurement std
  `measurement_std_m`; it starts at the first fix at rest, velocity std `initial_speed_std`. The
  two stds are chosen per seed on validation walks from a config grid; the floor is the basic
  fingerprint's. `kalman_track` keeps the constant-position (random-walk) filter.
- Walk filter (not in the paper; a diagnostic of what the sequence can give): the exact Bayes
  filter of a walk on the reference-point graph — each step moves to a uniformly drawn neighbour,
  each scan is the point's map row plus independent Gaussian noise of `signal_std_db` per AP;
  the estimate is the most probable point given the scans so far (causal, like the LSTM).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxfp.common.neighbours import pairwise_distance


def nearest_point(signals: np.ndarray, radio_map: np.ndarray) -> np.ndarray:
    """(...,) index of the map row (R, L) nearest each signal (..., L)."""
    flat = signals.reshape(-1, signals.shape[-1])
    d = pairwise_distance(jnp.asarray(flat), jnp.asarray(radio_map), "euclidean")
    return np.asarray(jnp.argmin(d, -1)).reshape(signals.shape[:-1])


def kalman_track(measured_xy: np.ndarray, process_std_m: float, measurement_std_m: float):
    """(W, T, 2) filtered positions of measurements (W, T, 2) under the random-walk model."""
    q, r = process_std_m**2, measurement_std_m**2
    out = np.empty_like(measured_xy, dtype=np.float64)
    x, p = measured_xy[:, 0].astype(np.float64), r
    out[:, 0] = x
    for t in range(1, measured_xy.shape[1]):
        p = p + q
        gain = p / (p + r)
        x = x + gain * (measured_xy[:, t] - x)
        p = (1 - gain) * p
        out[:, t] = x
    return out


def kalman_cv_track(
    measured_xy: np.ndarray,
    accel_std: float,
    measurement_std_m: float,
    initial_speed_std: float,
) -> np.ndarray:
    """(W, T, 2) filtered positions of measurements (W, T, 2) under the constant-velocity model
    (each axis its own (position, velocity) state, one time unit per step)."""
    q, r = accel_std**2, measurement_std_m**2
    z = measured_xy.astype(np.float64)
    out = np.empty_like(z)
    # Per walk and axis: state (p, v) and covariance [[a, b], [b, c]].
    p, v = z[:, 0].copy(), np.zeros_like(z[:, 0])
    a, b, c = np.full_like(p, r), np.zeros_like(p), np.full_like(p, initial_speed_std**2)
    out[:, 0] = p
    for t in range(1, z.shape[1]):
        # Predict: F = [[1, 1], [0, 1]], Q = q [[1/4, 1/2], [1/2, 1]] (acceleration per step).
        p = p + v
        a, b, c = a + 2 * b + c + q / 4, b + c + q / 2, c + q
        # Update with H = [1, 0].
        s = a + r
        k_p, k_v = a / s, b / s
        innovation = z[:, t] - p
        p, v = p + k_p * innovation, v + k_v * innovation
        a, b, c = (1 - k_p) * a, (1 - k_p) * b, c - k_v * b
        out[:, t] = p
    return out


def walk_filter(
    signals: np.ndarray, radio_map: np.ndarray, neighbours: list[np.ndarray], signal_std: float
) -> np.ndarray:
    """(W, T) most probable point per step of walks (W, T, L) given the scans up to that step;
    `signal_std` on the signals' scale. A point without neighbours keeps to itself."""
    n = len(radio_map)
    transition = np.zeros((n, n))
    for p, near in enumerate(neighbours):
        transition[p, near if len(near) else [p]] = 1.0 / max(len(near), 1)
    d2 = (
        np.asarray(
            pairwise_distance(
                jnp.asarray(signals.reshape(-1, signals.shape[-1])),
                jnp.asarray(radio_map),
                "euclidean",
            )
        ).reshape(*signals.shape[:2], n)
        ** 2
    )
    log_likelihood = -d2 / (2 * signal_std**2)
    out = np.empty(signals.shape[:2], np.int64)
    belief = np.full((signals.shape[0], n), 1.0 / n)
    for t in range(signals.shape[1]):
        prior = belief if t == 0 else belief @ transition
        log_post = np.log(np.maximum(prior, 1e-300)) + log_likelihood[:, t]
        log_post -= log_post.max(-1, keepdims=True)
        belief = np.exp(log_post)
        belief /= belief.sum(-1, keepdims=True)
        out[:, t] = belief.argmax(-1)
    return out
