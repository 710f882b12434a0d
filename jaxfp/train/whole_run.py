"""Whole training runs as one program (purejaxrl's `make_train(config) -> train(rng)`).

`train(rng)` initialises from the key, draws each epoch's data order from it and scans over the
steps; `jax.jit(jax.vmap(train))` then trains many seeds or ensemble members at once. The member
axis is sharded over devices with a NamedSharding: each device trains its own members and no
collective runs. For one large model, `data_parallel_step` shards the batch instead (XLA averages
the gradients across devices).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxfp.train.steps import Metrics, Step


class WholeRun(NamedTuple):
    """init(rng) -> carry; run_epochs(carry, first_epoch) -> (carry, metrics of those epochs);
    train(rng) -> (state, metrics of the whole run). carry = (state, data key, step key)."""

    init: Callable[[jax.Array], Any]
    run_epochs: Callable[[Any, jax.Array], tuple[Any, Metrics]]
    train: Callable[[jax.Array], tuple[Any, Metrics]]


def make_train(
    init_fn: Callable[[jax.Array], Any],
    step_fn: Step,
    data: dict[str, jax.Array],
    batch_size: int,
    num_epochs: int,
    epochs_per_call: int | None = None,
) -> WholeRun:
    """A whole run over `data`; `step_fn` must be un-jitted and pure.

    `run_epochs` runs `epochs_per_call` epochs (default: all) from a traced first epoch, so a
    checkpointed driver calls one compiled program repeatedly.
    """
    n = int(next(iter(data.values())).shape[0])
    steps_per_epoch = n // batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {batch_size} exceeds the {n} training samples")
    epochs_per_call = num_epochs if epochs_per_call is None else epochs_per_call
    if num_epochs % epochs_per_call:
        raise ValueError(
            f"num_epochs {num_epochs} is not a multiple of epochs_per_call {epochs_per_call}"
        )

    def init(rng: jax.Array) -> Any:
        init_key, data_key, step_key = jax.random.split(rng, 3)
        return init_fn(init_key), data_key, step_key

    def run_epochs(carry: Any, first_epoch: jax.Array) -> tuple[Any, Metrics]:
        state, data_key, step_key = carry

        def epoch(state: Any, epoch_index: jax.Array) -> tuple[Any, Metrics]:
            order = jax.random.permutation(jax.random.fold_in(data_key, epoch_index), n)
            order = order[: steps_per_epoch * batch_size].reshape(steps_per_epoch, batch_size)

            def step(state: Any, index: jax.Array) -> tuple[Any, Metrics]:
                return step_fn(state, jax.tree.map(lambda a: a[index], data), step_key)

            return jax.lax.scan(step, state, order)

        epochs = first_epoch + jnp.arange(epochs_per_call)
        state, metrics = jax.lax.scan(epoch, state, epochs)
        metrics = jax.tree.map(lambda m: m.reshape(-1, *m.shape[2:]), metrics)
        return (state, data_key, step_key), metrics

    def train(rng: jax.Array) -> tuple[Any, Metrics]:
        carry, all_metrics = init(rng), []
        for first in range(0, num_epochs, epochs_per_call):
            carry, metrics = run_epochs(carry, jnp.asarray(first))
            all_metrics.append(metrics)
        merged = jax.tree.map(lambda *m: jnp.concatenate(m), *all_metrics)
        return carry[0], merged

    return WholeRun(init, run_epochs, train)


def member_mesh(n_members: int, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh 'members' over the most devices that divide the member count evenly."""
    devices = list(jax.devices() if devices is None else devices)
    use = max(d for d in range(1, len(devices) + 1) if n_members % d == 0)
    return Mesh(np.array(devices[:use]), ("members",))


def train_members(
    train: Callable[[jax.Array], Any], rngs: jax.Array, mesh: Mesh | None = None
) -> Any:
    """Run `train` for every key in `rngs` as one vmapped program, members sharded over `mesh`."""
    mesh = member_mesh(rngs.shape[0]) if mesh is None else mesh
    sharding = NamedSharding(mesh, P("members"))
    rngs = jax.device_put(rngs, sharding)
    return jax.jit(jax.vmap(train), in_shardings=sharding, out_shardings=sharding)(rngs)


def data_parallel_step(step_fn: Step, mesh: Mesh, axis: str = "data") -> Step:
    """`step_fn` with the batch sharded over `axis` and the state replicated.

    On forced CPU devices, block on each step's output before queueing the next (collectives may
    otherwise abort with 'Expected N threads to join the rendezvous'); `fit(block_each_step=True)`.
    """
    replicated = NamedSharding(mesh, P())
    batch_sharding = NamedSharding(mesh, P(axis))
    return jax.jit(
        step_fn,
        in_shardings=(replicated, batch_sharding, replicated),
        out_shardings=(replicated, replicated),
        donate_argnums=(0,),
    )
