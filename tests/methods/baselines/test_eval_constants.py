"""The configs state the ISO/IEC 18305 and IPIN constants in `eval`; stating or changing them
rescores a finished MLP run without retraining it."""

import numpy as np
import pytest

from jaxfp.config import apply_overrides, load_config
from jaxfp.data.registry import load_parts
from jaxfp.eval.iso18305 import StandardConstants
from jaxfp.methods.baselines import mlp

from ...conftest import REPO

FOUR = ["--config.eval.floor_penalty_m=4"]
CONFIGS = (
    "baselines/knn_uji1.py",
    "baselines/knn_longterm.py",
    "baselines/mlp_dsi1.py",
    "demo.py",
    "fpn/synthetic.py",
    "fpn/drift.py",
    "fpn/variants.py:drift",
    "gufu/longterm.py",
    "gufu/ours.py",
    "gufu/ablations.py",
    "comgan/completion.py:uji",
    "comgan/averaging.py:dsi",
)


@pytest.mark.parametrize("spec", CONFIGS)
def test_every_config_on_floors_states_the_constants(spec):
    config = load_config(str(REPO / "experiments" / spec))
    assert StandardConstants.from_config(config.eval) == StandardConstants()
    assert {"floor_height_m", "floor_penalty_m", "building_penalty_m"} <= set(config.eval)
    changed = apply_overrides(load_config(str(REPO / "experiments" / spec)), FOUR)
    assert StandardConstants.from_config(changed.eval).floor_penalty_m == 4.0


def test_the_demos_constants_reach_both_parts():
    config = apply_overrides(load_config(str(REPO / "experiments" / "demo.py:test")), FOUR)
    assert config.knn.eval.floor_penalty_m == config.mlp.eval.floor_penalty_m == 4.0
    assert config.to_dict()["mlp"]["eval"]["floor_penalty_m"] == 4.0


def test_new_constants_rescore_a_finished_mlp_run_without_retraining(tmp_path, uji_folder, capsys):
    spec = str(REPO / "experiments" / "baselines" / "mlp_dsi1.py:test")
    path = [f"--config.data.path={uji_folder}"]
    bare = apply_overrides(load_config(spec), path)
    with bare.unlocked():  # a config from before the constants were stated
        del bare["eval"]
    first = mlp.train_and_evaluate(bare, str(tmp_path))
    capsys.readouterr()
    again = mlp.train_and_evaluate(apply_overrides(load_config(spec), path + FOUR), str(tmp_path))
    assert "recomputing" not in capsys.readouterr().out
    row, new = first["seed 0"], again["seed 0"]
    assert new["mean"] == row["mean"]  # the same trained seeds
    # The majority floor's misses cost 4 m per floor of difference instead of 15.
    reference = load_parts(str(uji_folder), "train")
    floors, counts = np.unique(reference.floor, return_counts=True)
    queries = load_parts(str(uji_folder), "test")
    per_query = np.abs(queries.floor - floors[np.argmax(counts)]).mean()
    assert per_query > 0
    assert row["ipin_mean"] - new["ipin_mean"] == pytest.approx(11.0 * per_query)
