import json

import pytest

from jaxfp import cli
from jaxfp.config import apply_overrides, load_config

from .conftest import REPO


def test_data_info_counts(dsi1_path, capsys):
    assert cli.main(["data", "info", str(dsi1_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "mat"
    assert info["parts"]["train"]["samples"] == 1369 and info["parts"]["test"]["samples"] == 348
    assert cli.main(["data", "info", str(dsi1_path)]) == 0
    assert "total samples: 1717" in capsys.readouterr().out


@pytest.mark.parametrize(
    "spec", ["experiments/knn_uji1.py:test", "experiments/knn_longterm.py:test"]
)
def test_experiment_test_configs_run(spec, tmp_path, capsys):
    assert cli.main(["run", str(REPO / spec), "--workdir", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert results and all(isinstance(r, dict) for r in results.values())
    if "uji1" in spec:
        assert results["wknn3_positive"]["building_hit_rate"] > 0.8
        assert (tmp_path / "cdf.png").exists() and (tmp_path / "radio_map.png").exists()
    else:
        assert sorted(results) == ["01", "02", "03"]


def test_demo_with_override(tmp_path, capsys):
    code = cli.main(["demo", "--workdir", str(tmp_path), "--config.variants.wknn3_positive.k=5"])
    assert code == 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["config"]["variants"]["wknn3_positive"]["k"] == 5
    assert saved["results"]["nn1_dbm"]["mean"] < 10.0  # DSI1 1-NN is about 5 m
    assert "wknn3_exponential" in capsys.readouterr().out


def test_overrides_are_typed_and_checked():
    config = load_config(str(REPO / "experiments" / "demo.py"))
    with pytest.raises(KeyError, match="no field 'kk'"):
        apply_overrides(
            load_config(str(REPO / "experiments" / "demo.py")), ["--config.variants.nn1_dbm.kk=2"]
        )
    with pytest.raises(ValueError, match="expected True or False"):
        apply_overrides(
            load_config(str(REPO / "experiments" / "demo.py")),
            ["--config.variants.nn1_dbm.weighted=3"],
        )
    apply_overrides(config, ["--config.eval.success_radius_m=2", "--config.data.train=('train',)"])
    assert config.eval.success_radius_m == 2.0 and isinstance(config.eval.success_radius_m, float)


def test_missing_data_path_is_a_clear_error(tmp_path, capsys):
    code = cli.main(
        [
            "run",
            str(REPO / "experiments" / "knn_uji1.py"),
            "--workdir",
            str(tmp_path),
            "--config.data.path=/nope/UJI1.mat",
        ]
    )
    assert code == 2 and "/nope/UJI1.mat" in capsys.readouterr().err


def test_mlp_seeds_run_and_a_changed_config_is_refused(tmp_path, capsys):
    spec = str(REPO / "experiments" / "mlp_dsi1.py:test")
    assert cli.main(["run", spec, "--workdir", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert set(results) == {"seed 0", "seed 1", "averaged output", "over seeds"}
    assert results["over seeds"]["mean_ci_low"] <= results["over seeds"]["mean"]
    # The same command again resumes from the final checkpoint and reproduces the table.
    assert cli.main(["run", spec, "--workdir", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "results.json").read_text())["results"]
    assert again == results
    code = cli.main(["run", spec, "--workdir", str(tmp_path), "--config.train.learning_rate=0.1"])
    assert code == 2 and "different config" in capsys.readouterr().err


def test_data_info_on_a_csi_set(tmp_path, capsys):
    from .conftest import write_synthetic_csi_store

    store = write_synthetic_csi_store(str(tmp_path / "csi"), n=30)
    assert cli.main(["data", "info", store]) == 0
    out = capsys.readouterr().out
    assert "jaxfp-csi" in out and "30 on disk" in out and "(2, 32, 16)" in out
