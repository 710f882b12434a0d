"""GUFU's update module (§5.2) and the records' rewrite.

MLP1 maps an embedding to a location, MLP2 a location to a feature; both train on eq. 9 = eq. 5 +
eq. 6 + λ (eq. 7 + eq. 8) (`losses.update_module_loss`): eq. 5 and 6 on the records, eq. 7 pulls
a new sample's location towards its old virtual neighbours' locations, eq. 8 an old sample's
updated feature towards its new virtual neighbours' features. Choices, one line each:
- the old-new virtual pairs are eq. 7-8's only path; they are padded (weight 0) to a budget
  (`budgets.pairs_budget`, kept from update to update while the count fits it), so later
  updates reuse the compiled step.
- `update_batch` = b > 0 (ours, for speed) estimates each term on b records and b pairs a step.
- rewrite: "replace" (the paper: decoded updated features replace the records), "residual"
  (ours: records move by decode(MLP2(loc)) - decode(MLP2'(loc)), MLP2' the same fit with the
  batch weighted 0, from the same init and the same mini-batch draws, so the two differ by what
  the batch changed and the decoder's own error cancels), or "none" (an ablation).
- a decoded value at or below `detect_floor_dbm` ends the detection (`below_floor="ends"`, the
  paper's replacement); "keeps" (ours) keeps the old value, so no detection ends here.
- `ridge_readout` maps GNN embeddings to codes when MLP2 learns embeddings (`rewrite_from`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxfp.common.rss_scale import from_unit, to_unit
from jaxfp.methods.gufu import budgets
from jaxfp.methods.gufu.losses import UpdateModuleStatic, update_module_loss
from jaxfp.methods.gufu.nets import update_module_nets
from jaxfp.train.keys import named_key

# (name, loss_fn, static, params, data, steps, key) -> (params, final loss)
KeyedFit = Callable[[str, Callable, Any, Any, Any, int, jax.Array], tuple[Any, float]]


class UpdateModuleOptions(NamedTuple):
    """The settings of §5.2's fit (from `config.gufu`)."""

    hidden: int
    consistency_weight: float  # λ of eq. 9
    batch: int  # records and pairs a step; 0 = all
    steps: int
    residual: bool  # also fit MLP2' without the batch (the residual rewrite)
    pairs_multiple: int  # the old-new pairs' padding multiple
    pairs_last: int = 0  # the last padded length of the old-new pairs, kept while it fits

    @classmethod
    def from_settings(cls, g: ml_collections.ConfigDict) -> UpdateModuleOptions:
        return cls(
            int(g.hidden),
            float(g.consistency_weight),
            int(g.update_batch),
            int(g.update_steps),
            g.rewrite == "residual",
            int(g.budget_multiple),
        )


class UpdateModuleOutput(NamedTuple):
    located: np.ndarray  # (new, d) the batch's locations, in the records' scaled units
    updated: np.ndarray  # (S, F) the records' updated features (MLP2 of their locations)
    without_batch: np.ndarray | None  # (S, F) MLP2' of their locations (residual, last round)


def crossing_pairs(virtual: np.ndarray, num_old: int) -> np.ndarray:
    """(P, 2) (old, new) ends of the virtual pairs that join a record and a batch sample."""
    crossing = virtual[(virtual[:, 0] < num_old) != (virtual[:, 1] < num_old)]
    return np.sort(crossing, axis=1)


def link_diagnostics(virtual: np.ndarray, num_old: int, num_new: int) -> dict[str, float]:
    """How much of the batch the old-new virtual pairs reach (the only path of eq. 7-8)."""
    cross = crossing_pairs(virtual, num_old)
    return {
        "old_new_pairs": int(len(cross)),
        "new_samples_linked": float(len(np.unique(cross[:, 1])) / max(num_new, 1)),
        "records_linked": float(len(np.unique(cross[:, 0])) / max(num_old, 1)),
    }


def ridge_readout(
    z: np.ndarray, codes: np.ndarray, ridge: float = 1e-3
) -> Callable[[np.ndarray], np.ndarray]:
    """The least-squares affine map from GNN embeddings to codes (with a small ridge)."""
    design = np.c_[z, np.ones(len(z))].astype(np.float64)
    gram = design.T @ design + ridge * len(z) * np.eye(design.shape[1])
    weights = np.linalg.solve(gram, design.T @ codes.astype(np.float64))
    return lambda e: (np.c_[e, np.ones(len(e))] @ weights).astype(np.float32)


def _module_fit(
    options: UpdateModuleOptions,
    key: jax.Array,
    loc: np.ndarray,
    z: np.ndarray,
    features: np.ndarray,
    virtual: np.ndarray,
) -> tuple[Any, dict[str, jax.Array], Any, tuple[Any, Any]]:
    """(initial params, data, static, (MLP1, MLP2)) of eq. 5-9's fit; inits named from `key`."""
    s = len(loc)
    loc = jnp.asarray(loc)
    z = jnp.asarray(z)
    cross = crossing_pairs(virtual, s)
    budget = budgets.pairs_budget(len(cross), options.pairs_multiple, options.pairs_last)
    pad = budget - len(cross)
    mlp1, mlp2 = update_module_nets(options.hidden, loc.shape[1], features.shape[1])
    initial = {
        "mlp1": mlp1.init(named_key(key, "mlp1", "init"), z[:1]),
        "mlp2": mlp2.init(named_key(key, "mlp2", "init"), loc[:1]),
    }
    data = {
        "z": z,
        "loc": loc,
        "codes_old": jnp.asarray(features[:s]),
        "codes_new": jnp.asarray(features[s:]),
        "old_end": jnp.asarray(np.pad(cross[:, 0], (0, pad))),
        "new_end": jnp.asarray(np.pad(cross[:, 1] - s, (0, pad))),
        "cross_weight": jnp.asarray(np.pad(np.ones(len(cross), np.float32), (0, pad))),
        "num_pairs": jnp.int32(max(len(cross), 1)),
    }
    static = UpdateModuleStatic(
        mlp1, mlp2, s, len(cross) > 0, options.consistency_weight, options.batch
    )
    return initial, data, static, (mlp1, mlp2)


def fit_update_module(
    options: UpdateModuleOptions,
    fit: KeyedFit,
    key: jax.Array,
    loc: np.ndarray,
    z: np.ndarray,
    features: np.ndarray,
    features_alone: np.ndarray,
    virtual: np.ndarray,
    last_round: bool = True,
) -> UpdateModuleOutput:
    """Eq. (5)-(9) on one batch: `loc` (S, d) the records' scaled locations, `z` (S + new, E)
    the embeddings, `features` (S + new, F) what MLP2 learns (eq. 6) and eq. 8 pulls towards,
    `features_alone` the records' features without the batch, `virtual` the graph's virtual
    pairs. `key` names this fit: MLP1's and MLP2's inits and the mini-batch draws come from it by
    name, and the residual rewrite's batch-free fit (with `last_round`: the rewrite reads no
    other round's; `fit_without_batch` runs it alone) starts from the same init and draws the
    same mini-batches."""
    initial, data, static, (mlp1, mlp2) = _module_fit(options, key, loc, z, features, virtual)
    s = len(loc)
    draws = named_key(key, "steps")
    params, _ = fit(
        "update_module", update_module_loss, static, initial, data, options.steps, draws
    )
    located = np.asarray(mlp1.apply(params["mlp1"], data["z"][s:]))
    updated = np.asarray(mlp2.apply(params["mlp2"], data["loc"]))
    without_batch = None
    if options.residual and last_round:
        without_batch = fit_without_batch(
            options, fit, key, loc, z, features, features_alone, virtual
        )
    return UpdateModuleOutput(located, updated, without_batch)


def fit_without_batch(
    options: UpdateModuleOptions,
    fit: KeyedFit,
    key: jax.Array,
    loc: np.ndarray,
    z: np.ndarray,
    features: np.ndarray,
    features_alone: np.ndarray,
    virtual: np.ndarray,
) -> np.ndarray:
    """MLP2' of the records' locations: `fit_update_module`'s fit under the same `key` with the
    batch weighted 0 and the records' features without the batch (the residual rewrite)."""
    initial, data, static, (_, mlp2) = _module_fit(options, key, loc, z, features, virtual)
    data["cross_weight"] = jnp.zeros_like(data["cross_weight"])
    data["codes_old"] = jnp.asarray(features_alone)
    # ... and the same mini-batches: the two fits differ by what the batch changed, not by
    # their draws (independent draws carried their noise into every record: 7.14 against
    # 7.05 dB on the 10,000-record synthetic site)
    draws = named_key(key, "steps")
    params, _ = fit(
        "update_module_without_batch",
        update_module_loss,
        static,
        initial,
        data,
        options.steps,
        draws,
    )
    return np.asarray(mlp2.apply(params["mlp2"], data["loc"]))


def rewritten_records(
    rss: np.ndarray,
    rewrite: str,
    below_floor: str,
    floor_dbm: float,
    decode_normalised: Callable[[np.ndarray], np.ndarray],
    updated_codes: np.ndarray,
    without_batch: np.ndarray | None,
) -> np.ndarray:
    """The database's new values (dBm, NaN = not detected). A value the update takes from above
    the detection floor to at or below it ends that detection with `below_floor="ends"`; none
    starts here (§6 adds them); a value the decoder does not give (NaN) keeps the old one."""
    if rewrite == "none":
        return rss.copy()
    if rewrite == "replace":  # the paper: decoded updated features replace the records
        unit = decode_normalised(updated_codes)
    else:  # residual: only what the batch changed; the decoder's own errors cancel
        change = decode_normalised(updated_codes) - decode_normalised(without_batch)
        unit = to_unit(rss) + change
    updated = from_unit(unit, -np.inf)
    updated = np.where(np.isnan(unit), rss, updated)
    below = updated <= floor_dbm
    if below_floor == "keeps":
        updated = np.where(below, rss, updated)
    else:
        updated = np.where(below & (rss > floor_dbm), np.nan, updated)
    return np.where(np.isnan(rss), np.nan, updated).astype(np.float32)
