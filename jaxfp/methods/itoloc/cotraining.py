"""The co-training model update (§IV): which unlabelled fingerprints each location head learns from.

One line per choice:
- the pool of round t is the first min(60 · 2^t, |U|) fingerprints of one fixed shuffle of U (the
  pool grows, as §V-A says; earlier picks stay in it).
- for head k, the other two heads label a pooled fingerprint when their test-mode argmaxes agree and
  the mean of their two max probabilities exceeds σ (confident); then K dropout passes of those two
  heads (their averaged probabilities, batch norm in test mode) must not differ from that label more
  than K/3 times (stable) — the data-editing rule of §IV-A.
- output smearing (eq. 12-13) redraws D1, D2, D3 from the labelled set every `smear_every` rounds once
  the pool holds all of U; σ drops by σ_os each time it does.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def pool_size(round_index: int, unlabelled: int, base: int = 60) -> int:
    """60 · 2^t, capped at |U|."""
    return int(min(base * 2**round_index, unlabelled))


class Selection(NamedTuple):
    keep: np.ndarray  # (n,) bool
    label: np.ndarray  # (n,) int: the agreed location (valid where keep)
    confidence: np.ndarray  # (n,) mean max probability of the two heads


def agree_and_confident(p_a: np.ndarray, p_b: np.ndarray, sigma: float) -> Selection:
    """Two heads' (n, C) test-mode probabilities -> the rows they agree on above σ."""
    label_a, label_b = p_a.argmax(-1), p_b.argmax(-1)
    confidence = (p_a.max(-1) + p_b.max(-1)) / 2
    return Selection((label_a == label_b) & (confidence > sigma), label_a, confidence)


def stable(dropout_labels: np.ndarray, label: np.ndarray) -> np.ndarray:
    """(K, n) labels from K dropout passes -> (n,) True where at most K/3 differ from `label`."""
    passes = dropout_labels.shape[0]
    return (dropout_labels != label[None]).sum(0) <= passes / 3


def select_for_head(
    head: int, probs: np.ndarray, dropout_probs: np.ndarray, sigma: float
) -> Selection:
    """Rows the two heads other than `head` label for it. probs (H, n, C) in test mode;
    dropout_probs (K, H, n, C) with dropout on."""
    a, b = [h for h in range(probs.shape[0]) if h != head]
    chosen = agree_and_confident(probs[a], probs[b], sigma)
    votes = (dropout_probs[:, a] + dropout_probs[:, b]).argmax(-1)  # (K, n)
    keep = chosen.keep & stable(votes, chosen.label)
    return chosen._replace(keep=keep)


def smear(targets: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """Eq. 12-13: y' = y + ReLU(z · std), z ~ N(0, 1) per component, then normalised to sum 1."""
    noisy = targets + np.maximum(rng.standard_normal(targets.shape) * std, 0.0)
    return (noisy / noisy.sum(-1, keepdims=True)).astype(np.float32)
