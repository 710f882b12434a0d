"""The co-training model update (§IV): which unlabelled fingerprints each location head learns from.

One line per choice:
- the pool of round t is the first min(60 · 2^t, |U|) fingerprints of one fixed shuffle of U (the
  pool grows, as §V-A says; earlier picks stay in it). The update runs until the pool holds U and
  then `rounds_after_full` more rounds (the paper does not say how many; 6 gives two smearing
  fine-tunes).
- for head k, the other two heads label a pooled fingerprint when their test-mode argmaxes agree and
  the mean of their two max probabilities exceeds σ (confident); then K dropout passes of those two
  heads (their averaged probabilities, batch norm in test mode) must not differ from that label more
  than K/3 times (stable) — the data-editing rule of §IV-A.
- output smearing (eq. 12-13) draws D1, D2, D3 from the labelled set every `smear_every` (3)
  rounds once the pool holds all of U, and the heads train on them in that round (§V-A: "fine-tune
  ... on the diverse training sets ... every 3 rounds"; `cotrain.smeared_sets="carry"` keeps them
  for the rounds that follow); σ drops by σ_os each time and stays lowered. Pseudo-labelled rows
  keep their one-hot labels.
- a round's steps: `cotrain_train.epochs_per_round` passes over the largest head's training set
  (labelled plus its pseudo labels) at the batch size (the paper gives the rate and batch only),
  the same count for every seed (the largest); 0 keeps `num_steps` per round.
- a round's batch: per head, `batch_size` rows drawn uniformly from its labelled set (smeared where
  smearing ran) and its pseudo-labelled rows; then `batch_size` rows of U for the discriminator.
- every seed draws its own pool order, smearing noise and dropout passes (keys named after the
  seed, the update and the round); the true locations of U feed only the log.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from jaxfp.train.keys import named_int, named_key, named_seed
from jaxfp.train.options import LoopOptions
from jaxfp.train.seed_stages import with_fresh_optimizer

if TYPE_CHECKING:
    from jaxfp.methods.itoloc.data import Scans
    from jaxfp.methods.itoloc.study import Study, Variant


def pool_size(round_index: int, unlabelled: int, base: int = 60) -> int:
    """60 · 2^t, capped at |U|."""
    return int(min(base * 2**round_index, unlabelled))


def rounds_needed(unlabelled: int, base: int, after_full: int) -> int:
    """Rounds until the pool holds all `unlabelled` fingerprints, plus `after_full` more."""
    if base < 1 or after_full < 0:
        raise ValueError(
            f"cotrain: pool_base >= 1 and rounds_after_full >= 0, got {base}, {after_full}"
        )
    full = 0
    while pool_size(full, unlabelled, base) < unlabelled:
        full += 1
    return full + 1 + after_full


def round_steps(rows: int, batch_size: int, epochs: float, fixed: int) -> int:
    """A round's optimiser steps: `epochs` passes over `rows` at `batch_size` (at least one), or
    `fixed` when `epochs` is 0."""
    if epochs <= 0:
        return int(fixed)
    return max(1, math.ceil(epochs * rows / batch_size))


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


class Schedule:
    """One seed's pool order, σ and labelled targets per head across the rounds."""

    def __init__(self, seed: int, name: str, unlabelled: int, base_targets: np.ndarray, u) -> None:
        rng = np.random.default_rng(named_seed(seed, name, "pool"))
        self.seed, self.name, self.u = seed, name, u
        self.order = rng.permutation(unlabelled)
        self.sigma, self.full_since = float(u.sigma0), None
        self.base_targets = base_targets

    def round(self, t: int, heads: int, targets: list[np.ndarray]) -> tuple[np.ndarray, list]:
        """The pool of round t and the heads' labelled targets (smeared on schedule)."""
        u = self.u
        pool = self.order[: pool_size(t, len(self.order), int(u.pool_base))]
        if len(pool) == len(self.order):
            self.full_since = t if self.full_since is None else self.full_since
            if t > self.full_since and (t - self.full_since) % int(u.smear_every) == 0:
                rng = np.random.default_rng(named_seed(self.seed, self.name, "smear", t))
                self.sigma -= float(u.sigma_step)
                return pool, [smear(self.base_targets, u.smear_std, rng) for _ in range(heads)]
        if u.get("smeared_sets", "round") == "carry":
            return pool, targets
        return pool, [self.base_targets] * heads


def update(
    study: Study,
    states: Any,
    variant: Variant,
    labelled: list[Scans],
    unlabelled: list[Scans],
    name: str,
) -> tuple[Any, list[dict[str, Any]]]:
    """Co-train every seed's heads on its `unlabelled` scans (§IV); returns the updated stacked
    states and a log line per seed, round and head (pool, σ, labels kept, their true error)."""
    config = study.config
    u, train = config.cotrain, config.cotrain_train
    states = with_fresh_optimizer(states, study.optimizer(train))
    seeds, heads, size = study.seeds, variant.heads, int(train.batch_size)
    onehot = np.eye(len(study.site.xy), dtype=np.float32)
    labels = [np.flatnonzero(s.location >= 0) for s in labelled]
    schedules, targets = [], []
    for m, seed in enumerate(seeds):
        base = onehot[labelled[m].location[labels[m]]]
        schedules.append(Schedule(seed, name, len(unlabelled[m].image), base, u))
        targets.append([base] * heads)  # D_k
    log: list[dict[str, Any]] = []
    rounds = max(
        rounds_needed(len(x.image), int(u.pool_base), int(u.rounds_after_full)) for x in unlabelled
    )
    for t in range(rounds):
        pools = []
        for m in range(len(seeds)):
            pool, targets[m] = schedules[m].round(t, heads, targets[m])
            pools.append(pool)
        images = [unlabelled[m].image[pool] for m, pool in enumerate(pools)]
        probs = study.probabilities(states, variant, images)
        passes = [
            study.probabilities(
                states, variant, images, [named_key(s, name, "dropout", t, k) for s in seeds]
            )
            for k in range(int(u.dropout_passes))
        ]
        picked = []  # per seed, per head: (rows into unlabelled, labels)
        for m, seed in enumerate(seeds):
            dropout = np.stack([p[m] for p in passes])  # (K, heads, n, C)
            per_head = []
            for k in range(heads):
                s = select_for_head(k, probs[m], dropout, schedules[m].sigma)
                rows = pools[m][s.keep]
                per_head.append((rows, s.label[s.keep]))
                true_xy = unlabelled[m].xy[rows]
                error = np.linalg.norm(study.site.xy[s.label[s.keep]] - true_xy, axis=-1)
                log.append(
                    {
                        "stage": name,
                        "round": t,
                        "seed": seed,
                        "head": k,
                        "pool": len(pools[m]),
                        "sigma": schedules[m].sigma,
                        "kept": int(s.keep.sum()),
                        "pseudo_label_error_m": float(error.mean()) if len(rows) else None,
                    }
                )
            picked.append(per_head)
        kept = [line["kept"] for line in log[-len(seeds) * heads :]]
        pools_t = sorted({len(p) for p in pools})
        sigmas = sorted({round(s.sigma, 4) for s in schedules})
        print(f"[itoloc] {name} round {t}: pool {pools_t}, σ {sigmas}, kept {kept}", flush=True)

        def batch_of(rng: np.random.Generator, m: int, picked=picked, targets=targets) -> dict:
            own, new = labelled[m], unlabelled[m]
            n_l = len(labels[m])
            rows_total = size * (heads + 1)
            full_target = np.zeros((heads, rows_total, len(onehot)), np.float32)
            full_weight = np.zeros((heads, rows_total), np.float32)
            full_rp = np.zeros((heads, rows_total), np.int64)
            images, domain = [], []
            for k in range(heads):
                rows, pseudo = picked[m][k]
                draw = rng.integers(0, n_l + len(rows), size)
                is_l = draw < n_l
                li, pi = labels[m][draw[is_l]], rows[draw[~is_l] - n_l]
                pl = pseudo[draw[~is_l] - n_l]
                images += [own.image[li], new.image[pi]]
                domain += [own.domain[li], new.domain[pi]]
                block = slice(k * size, (k + 1) * size)
                full_target[k, block] = np.concatenate([targets[m][k][draw[is_l]], onehot[pl]])
                full_weight[k, block] = 1.0
                full_rp[k, block] = np.concatenate([own.location[li], pl])
            extra = rng.integers(0, len(new.image), size)  # target-domain rows for Ld
            images.append(new.image[extra])
            domain.append(new.domain[extra])
            return {
                "image": np.concatenate(images),
                "target": full_target,
                "weight": full_weight,
                "rp": full_rp,
                "domain": np.concatenate(domain),
            }

        stage = f"{name}/round{t:02d}"
        largest = max(
            len(labels[m]) + len(rows) for m in range(len(seeds)) for rows, _ in picked[m]
        )
        steps = round_steps(
            largest, size, float(train.get("epochs_per_round", 0.0)), int(train.num_steps)
        )
        options = LoopOptions.from_config(
            train, seed=named_int(config.seed, stage), num_steps=steps
        )
        shaping = {
            "model": variant.settings.to_dict(),
            "cotrain": u.to_dict(),
            "cotrain_train": train.to_dict(),
            "kept": kept,
        }
        states = study.stages.stage(
            stage, states, study.step(variant, 1), batch_of, options, shaping
        )
    return states, log


def pseudo_label_summary(log: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One row per update round: pool, σ, labels kept per head and their true error (m), each
    the mean over seeds (and heads)."""
    rounds: dict[str, list[dict[str, Any]]] = {}
    for line in log:
        rounds.setdefault(f"{line['stage']} round {line['round']}", []).append(line)
    out = {}
    for name, lines in rounds.items():
        errors = [x["pseudo_label_error_m"] for x in lines if x["pseudo_label_error_m"] is not None]
        out[name] = {
            "pool": float(np.mean([x["pool"] for x in lines])),
            "sigma": float(np.mean([x["sigma"] for x in lines])),
            "kept": float(np.mean([x["kept"] for x in lines])),
            "error_m": float(np.mean(errors)) if errors else float("nan"),
        }
    return out
