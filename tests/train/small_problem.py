"""A small regression problem for the training-core tests (also run as a script by the kill test).

python tests/train/small_problem.py WORKDIR NUM_STEPS [SECONDS_PER_STEP]
"""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxfp.nets import MLP
from jaxfp.train import LoopOptions, create_train_state, fit, make_train_step, regression_loss

N, D = 96, 12


def dataset(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D)).astype(np.float32)
    w = rng.normal(size=(D, 2)).astype(np.float32)
    return {"x": x, "y": np.tanh(x @ w).astype(np.float32)}


def options(num_steps: int = 20) -> LoopOptions:
    return LoopOptions(
        num_steps=num_steps,
        log_every=1,
        eval_every=5,
        checkpoint_every=3,
        batch_size=16,
        max_to_keep=2,
        seed=7,
    )


def model() -> MLP:
    # Batch norm and dropout so the tests cover batch_stats and explicit dropout keys.
    return MLP(hidden=(16, 16), out=2, dropout=0.1, batch_norm=True)


def initial_state(seed: int = 0):
    return create_train_state(model(), jax.random.key(seed), jnp.zeros((1, D)), optax.adam(1e-2))


def batch_at_factory(
    data: dict[str, np.ndarray],
    batch_size: int,
    seed: int,
    delay: float = 0.0,
    nan_at: int | None = None,
):
    """Deterministic batches: epoch e is a permutation drawn from (seed, e)."""
    per_epoch = N // batch_size

    def batch_at(step: int) -> dict[str, np.ndarray]:
        if delay:
            time.sleep(delay)
        epoch, i = divmod(step, per_epoch)
        order = np.random.default_rng([seed, epoch]).permutation(N)[
            i * batch_size : (i + 1) * batch_size
        ]
        batch = {k: v[order] for k, v in data.items()}
        if nan_at is not None and step == nan_at:
            batch["x"] = np.full_like(batch["x"], np.nan)
        return batch

    return batch_at


def eval_fn(data):
    x, y = jnp.asarray(data["x"]), jnp.asarray(data["y"])

    def evaluate(state):
        out = state.apply_fn(
            {"params": state.params, "batch_stats": state.batch_stats}, x, train=False
        )
        return {"mse": jnp.mean(jnp.sum((out - y) ** 2, -1))}

    return evaluate


def run(workdir: str, num_steps: int, delay: float = 0.0, nan_at: int | None = None):
    data = dataset()
    opts = options(num_steps)
    step = make_train_step(regression_loss(model().apply))
    return fit(
        opts,
        workdir,
        initial_state(),
        step,
        batch_at_factory(data, opts.batch_size, opts.seed, delay, nan_at),
        eval_fn(data),
    )


if __name__ == "__main__":
    workdir, steps = sys.argv[1], int(sys.argv[2])
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    state, _ = run(workdir, steps, delay)
    flat = {
        "/".join(map(str, k)): np.asarray(v)
        for k, v in jax.tree_util.tree_flatten_with_path(state.params)[0]
    }
    np.savez(f"{workdir}/final_params.npz", **{k.replace("'", ""): v for k, v in flat.items()})
