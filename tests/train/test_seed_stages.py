"""The trainer's stages of stacked seeds: a NaN names its member; a damaged checkpoint is not fatal."""

import os
import shutil

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxfp.nets import MLP
from jaxfp.train import LoopOptions, NonFiniteError, create_train_state, make_train_step
from jaxfp.train import regression_loss as regression
from jaxfp.train.seed_stages import SeedStages

from . import small_problem as sp

MODEL = MLP(hidden=(8,), out=2)
STEP = make_train_step(regression(MODEL.apply), jit=False)
OPTIONS = LoopOptions(num_steps=6, log_every=1, checkpoint_every=2, max_to_keep=5, batch_size=8)


def _init(key):
    return create_train_state(MODEL, key, jnp.zeros((1, sp.D)), optax.adam(1e-2))


SEEDS = (11, 12, 13)


def _stage(workdir, batch_of, execution="loop"):
    stages = SeedStages(str(workdir), SEEDS, {"data": "small"}, execution=execution)
    return stages.stage("fit", _init, STEP, batch_of, OPTIONS, {"what": "test"})


@pytest.mark.parametrize("execution", ["loop", "vmap"])
def test_a_nan_in_one_stacked_member_stops_the_run_naming_the_member(tmp_path, execution):
    data = sp.dataset()
    counter = [2]  # member 1's batch turns NaN on the third step

    def batch_of(rng, m):
        idx = rng.choice(sp.N, 8, replace=False)
        batch = {k: v[idx] for k, v in data.items()}
        if m == 1 and counter[0] == 0:
            batch["x"] = np.full_like(batch["x"], np.nan)
        if m == len(SEEDS) - 1:
            counter[0] -= 1
        return batch

    with pytest.raises(NonFiniteError, match=r"^member 1 of the stacked seeds: step 3: non-finite"):
        _stage(tmp_path, batch_of, execution)


def test_a_garbled_newest_checkpoint_falls_back_with_a_warning(tmp_path):
    data = sp.dataset()

    def batch_of(rng, m):
        idx = rng.choice(sp.N, 8, replace=False)
        return {k: v[idx] for k, v in data.items()}

    finished = _stage(tmp_path / "run", batch_of)
    checkpoints = tmp_path / "run" / "fit" / "checkpoints"
    assert sorted(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit()) == [2, 4, 6]
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    # Damage every file of the newest checkpoint's state: the rerun restores step 4 and recomputes
    # steps 5 and 6, which give the finished run's state again (batches are named by step).
    for root, _, files in os.walk(checkpoints / "6" / "state"):
        for name in files:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"garbage")
    with pytest.warns(RuntimeWarning, match=r"checkpoints/6: checkpoint cannot be restored"):
        again = _stage(tmp_path / "run", batch_of)
    chex.assert_trees_all_close(finished.params, again.params, rtol=1e-6, atol=1e-7)
    # Every checkpoint damaged: a warning per checkpoint and a fresh, equal run.
    for step in ("2", "4", "6"):
        shutil.rmtree(tmp_path / "copy" / "fit" / "checkpoints" / step / "state")
    with pytest.warns(RuntimeWarning, match=r"checkpoints/2: checkpoint cannot be restored"):
        fresh = _stage(tmp_path / "copy", batch_of)
    chex.assert_trees_all_close(finished.params, fresh.params, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("execution", ["loop", "vmap"])
def test_a_seed_trains_the_same_wherever_it_sits_in_the_stack(tmp_path, execution):
    # Dropout draws from the member's key: it is the seed's, not its place in the stack.
    model = MLP(hidden=(8,), out=2, dropout=0.5)
    step = make_train_step(regression(model.apply), jit=False)
    data = sp.dataset()

    def init(key):
        return create_train_state(model, key, jnp.zeros((1, sp.D)), optax.adam(1e-2))

    def batch_of(rng, m):
        idx = rng.choice(sp.N, 8, replace=False)
        return {k: v[idx] for k, v in data.items()}

    def trained(seeds, where):
        stages = SeedStages(str(tmp_path / where), seeds, {}, execution=execution)
        return stages.stage("fit", init, step, batch_of, OPTIONS, {})

    a, b = trained((11, 12), "ab"), trained((12, 11, 13), "ba")
    chex.assert_trees_all_close(
        jax.tree.map(lambda x: x[1], a.params), jax.tree.map(lambda x: x[0], b.params), rtol=1e-5
    )
    assert not np.allclose(
        jax.tree.leaves(a.params)[0][0], jax.tree.leaves(a.params)[0][1]
    )  # two seeds, two trajectories
