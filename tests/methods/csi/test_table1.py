import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxfp.nets import BACKBONES

from ...conftest import REPO, run_experiment, write_synthetic_csi_store

# Table I of the paper, parameters in millions (2-output head, 4 input channels).
TABLE_I_PARAMS = {
    "shufflenet_v2": 1.26,
    "mobilenet_v2": 2.23,
    "resnet18": 11.18,
    "resnet34": 21.29,
    "resnet50": 23.52,
    "resnet101": 42.51,
    "resnet_tiny": 0.31,  # ours, for the small sizes
}


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_backbone_shapes_and_parameter_counts(name):
    model = BACKBONES[name]()
    x = jnp.zeros((3, 4, 32, 16))
    variables = jax.eval_shape(
        lambda: model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, x)
    )
    count = sum(p.size for p in jax.tree.leaves(variables["params"])) / 1e6
    assert round(count, 2) == TABLE_I_PARAMS[name]
    out = jax.eval_shape(lambda v: model.apply(v, x), variables)
    assert out.shape == (3, 2)
    features = jax.eval_shape(lambda v: model.clone(outputs=None).apply(v, x), variables)
    assert features.ndim == 2 and features.shape[0] == 3


@pytest.mark.slow
def test_table1_test_config_runs_end_to_end(tmp_path, capsys):
    store = write_synthetic_csi_store(str(tmp_path / "csi"))
    spec = str(REPO / "experiments" / "csi" / "table1.py:test")
    run_experiment(spec, tmp_path / "run", f"--config.data.path={store}")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    rows = results["results"]
    assert set(rows) == {"resnet18", "shufflenet_v2"}
    for row in rows.values():
        assert np.isfinite(row["mean"]) and row["gflops"] > 0 and row["params_m"] > 1
        assert row["n_seeds"] == 2  # each seed its own split and initialisation
        np.testing.assert_allclose(row["mean"], np.mean(list(row["per_seed_mean"].values())))
    np.testing.assert_allclose(rows["resnet18"]["params_m"], TABLE_I_PARAMS["resnet18"], atol=0.01)
    assert results["split_sizes"] == {"labelled": 6, "unlabelled": 48, "test": 6}
    metrics = [
        json.loads(line)
        for line in (tmp_path / "run" / "resnet18" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [m["step"] for m in metrics] == [1, 2, 3] and all(m["finite"] == 1.0 for m in metrics)
    assert "resnet18" in capsys.readouterr().out
    assert (tmp_path / "run" / "cdf.png").exists() and (
        tmp_path / "run" / "percentiles.png"
    ).exists()
