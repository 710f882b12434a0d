"""Many members in one program: vmapped == one by one, sharded over 4 fake devices, data parallel."""

import shutil

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxfp.nets import MLP
from jaxfp.train import (
    EpochOptions,
    create_train_state,
    data_parallel_step,
    fit_members,
    init_members,
    make_train,
    make_train_step,
    member_mesh,
    member_step,
    read_metrics,
    regression_loss,
    train_members,
)

from . import small_problem as sp


def whole_run(num_epochs=3, epochs_per_call=None):
    data = {k: jnp.asarray(v) for k, v in sp.dataset().items()}
    model = MLP(hidden=(16,), out=2, dropout=0.1)

    def init_fn(key):
        return create_train_state(model, key, jnp.zeros((1, sp.D)), optax.adam(1e-2))

    step = make_train_step(regression_loss(model.apply), jit=False)
    return make_train(init_fn, step, data, 16, num_epochs, epochs_per_call)


def test_vmapped_members_match_one_by_one():
    run = whole_run()
    keys = jax.random.split(jax.random.key(0), 4)
    one = jax.jit(run.train)
    singles = [one(k) for k in keys]
    together = jax.jit(jax.vmap(run.train))(keys)
    for i, (state, metrics) in enumerate(singles):
        member = jax.tree.map(lambda x, i=i: x[i], together[0].params)
        chex.assert_trees_all_close(state.params, member, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(metrics["loss"], together[1]["loss"][i], rtol=1e-5, atol=1e-6)
    assert together[1]["loss"].shape == (4, 3 * (sp.N // 16))
    # Different keys give different members (initialisation and data order).
    assert not np.allclose(together[1]["loss"][0], together[1]["loss"][1])


def test_members_sharded_over_four_devices_without_collectives():
    assert jax.device_count() == 4, "tests/conftest.py forces four CPU devices"
    run = whole_run()
    keys = jax.random.split(jax.random.key(1), 8)
    mesh = member_mesh(8)
    assert mesh.devices.size == 4
    state, metrics = train_members(run.train, keys, mesh)
    jax.block_until_ready(metrics)
    assert len(metrics["loss"].sharding.device_set) == 4
    reference = jax.jit(jax.vmap(run.train))(keys)
    np.testing.assert_allclose(metrics["loss"], reference[1]["loss"], rtol=1e-5, atol=1e-6)
    sharding = NamedSharding(mesh, P("members"))
    hlo = (
        jax.jit(jax.vmap(run.train), in_shardings=sharding, out_shardings=sharding)
        .lower(jax.device_put(keys, sharding))
        .compile()
        .as_text()
    )
    for collective in ("all-reduce", "all-gather", "all-to-all", "collective-permute"):
        assert collective not in hlo
    assert member_mesh(6).devices.size == 3 and member_mesh(5).devices.size == 1


@pytest.mark.parametrize("repeat", range(3))
def test_data_parallel_matches_one_device(repeat):
    """Batch sharded over 4 devices, gradients averaged by XLA; block on every step."""
    mesh = Mesh(np.array(jax.devices()), ("data",))
    loss = regression_loss(sp.model().apply)
    parallel = data_parallel_step(make_train_step(loss, jit=False), mesh)
    single = make_train_step(loss, donate=False)
    batch_at = sp.batch_at_factory(sp.dataset(), 16, seed=repeat)
    rng = jax.random.key(repeat)
    a = sp.initial_state(repeat)
    b = jax.device_put(sp.initial_state(repeat), NamedSharding(mesh, P()))
    for step in range(8):
        batch = batch_at(step)
        a, ma = single(a, batch, rng)
        b, mb = parallel(b, batch, rng)
        jax.block_until_ready(mb)
        np.testing.assert_allclose(ma["loss"], mb["loss"], rtol=1e-4, atol=1e-5)
    chex.assert_trees_all_close(a.params, b.params, rtol=1e-3, atol=1e-4)


def members_config(epochs=6):
    return EpochOptions(num_epochs=epochs, epochs_per_call=2, max_to_keep=10, seed=0)


def test_fit_members_resumes_after_a_lost_tail(tmp_path):
    """Lose every checkpoint after epoch 2 and leave a half-written save: the rerun ends the same."""
    keys = jax.random.split(jax.random.key(2), 4)
    x = jnp.asarray(sp.dataset()["x"])

    def eval_fn(states):
        return {
            "output_mean": jax.vmap(
                lambda p: jnp.mean(MLP(hidden=(16,), out=2).apply({"params": p}, x))
            )(states.params)
        }

    full, evals = fit_members(members_config(), str(tmp_path / "a"), whole_run(6, 2), keys, eval_fn)
    assert [e["epoch"] for e in evals] == [2, 4, 6] and len(evals[0]["output_mean"]) == 4
    partial = tmp_path / "b"
    fit_members(members_config(), str(partial), whole_run(6, 2), keys, eval_fn)
    for epoch in ("4", "6"):
        shutil.rmtree(partial / "checkpoints" / epoch)
    (partial / "checkpoints" / "4.orbax-checkpoint-tmp-123").mkdir()
    resumed, _ = fit_members(members_config(), str(partial), whole_run(6, 2), keys, eval_fn)
    chex.assert_trees_all_equal(full.params, resumed.params)
    rows = read_metrics(partial)
    steps = [r["step"] for r in rows if "loss/mean" in r]
    assert steps == list(range(1, 6 * (sp.N // 16) + 1))
    assert rows == read_metrics(tmp_path / "a")


@pytest.mark.parametrize("execution", ["vmap", "loop"])
def test_member_step_matches_one_by_one_and_shards_over_four_devices(execution):
    """`member_step` (stacked states, per-member batches and keys) == each member stepped alone,
    whether the members run as one vmapped program or a jitted step each in turn."""
    data = sp.dataset()
    model = MLP(hidden=(16,), out=2, dropout=0.1, batch_norm=True)
    step_fn = make_train_step(regression_loss(model.apply), jit=False)

    def init(key):
        return create_train_state(model, key, jnp.zeros((1, sp.D)), optax.adam(1e-2))

    keys = jax.random.split(jax.random.key(3), 4)
    stacked = init_members(init, keys)
    assert len(jax.tree.leaves(stacked.params)[0].sharding.device_set) == 4
    singles = [init(k) for k in keys]
    rng = jax.random.key(9)
    step = member_step(step_fn, 4, execution=execution)
    one = jax.jit(step_fn)
    for s in range(3):
        idx = np.stack([np.arange(16) + 16 * ((s + m) % 6) for m in range(4)])
        batch = {"x": data["x"][idx], "y": data["y"][idx]}
        stacked, metrics = step(stacked, batch, rng)
        jax.block_until_ready(metrics)
        member_keys = jax.random.split(rng, 4)
        for m in range(4):
            singles[m], single_metrics = one(
                singles[m], {"x": batch["x"][m], "y": batch["y"][m]}, member_keys[m]
            )
            np.testing.assert_allclose(metrics["loss"][m], single_metrics["loss"], rtol=1e-5)
    for m in range(4):
        member = jax.tree.map(lambda x, m=m: x[m], stacked.params)
        chex.assert_trees_all_close(singles[m].params, member, rtol=1e-5, atol=1e-6)
    assert metrics["loss"].shape == (4,) and len(metrics["loss"].sharding.device_set) == 4
