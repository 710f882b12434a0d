import json

import ml_collections
import numpy as np
import pytest

from jaxfp import cli
from jaxfp.config import ConfigError, apply_overrides, choice, load_config

from .conftest import REPO


def test_data_info_counts(dsi1_path, capsys):
    assert cli.main(["data", "info", str(dsi1_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "mat"
    assert info["parts"]["train"]["samples"] == 1369 and info["parts"]["test"]["samples"] == 348
    assert cli.main(["data", "info", str(dsi1_path)]) == 0
    assert "total samples: 1717" in capsys.readouterr().out


@pytest.mark.parametrize(
    "spec", ["experiments/baselines/knn_uji1.py:test", "experiments/baselines/knn_longterm.py:test"]
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


def test_demo_trains_seeds_beside_wknn_and_takes_overrides(tmp_path, capsys):
    spec = str(REPO / "experiments" / "demo.py:test")
    code = cli.main(
        ["run", spec, "--workdir", str(tmp_path), "--config.knn.variants.wknn3_positive.k=5"]
    )
    assert code == 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["config"]["knn"]["variants"]["wknn3_positive"]["k"] == 5
    rows = saved["results"]
    assert rows["nn1_dbm"]["mean"] < 10.0  # DSI1 1-NN is about 5 m
    # k=5 changes WkNN's estimate: the override reached the run.
    assert rows["wknn3_positive"]["mean"] != rows["knn3_positive"]["mean"]
    assert {"mlp seed 0", "mlp seed 1", "mlp over seeds"} <= set(rows)
    per_seed = [rows["mlp seed 0"]["mean"], rows["mlp seed 1"]["mean"]]
    half = 12.706205 * np.std(per_seed, ddof=1) / np.sqrt(2)  # t(0.975, 1)
    over = rows["mlp over seeds"]
    assert over["n_seeds"] == 2 and over["interval"] == "t95"
    np.testing.assert_allclose(
        [over["mean_ci_low"], over["mean_ci_high"]],
        [np.mean(per_seed) - half, np.mean(per_seed) + half],
        rtol=1e-6,
    )
    lines = [json.loads(line) for line in (tmp_path / "mlp" / "metrics.jsonl").open()]
    losses = [line["loss/mean"] for line in lines if "loss/mean" in line]
    assert losses and np.isfinite(losses).all()
    assert any((tmp_path / "mlp" / "tensorboard").iterdir())
    out = capsys.readouterr().out
    assert "wknn3_exponential" in out and "mlp over seeds" in out
    # `jaxfp report` prints the finished run's table again, as text or markdown.
    assert cli.main(["report", str(tmp_path), "--markdown"]) == 0
    assert "| mlp over seeds |" in capsys.readouterr().out


def test_overrides_are_typed_and_checked():
    config = load_config(str(REPO / "experiments" / "demo.py"))
    with pytest.raises(ConfigError, match="no field 'kk'"):
        apply_overrides(
            load_config(str(REPO / "experiments" / "demo.py")),
            ["--config.knn.variants.nn1_dbm.kk=2"],
        )
    with pytest.raises(ConfigError, match="expected True or False"):
        apply_overrides(
            load_config(str(REPO / "experiments" / "demo.py")),
            ["--config.knn.variants.nn1_dbm.weighted=3"],
        )
    with pytest.raises(ConfigError, match="--config.mlp.seeds"):
        apply_overrides(
            load_config(str(REPO / "experiments" / "demo.py")), ["--config.mlp.seeds=3"]
        )
    apply_overrides(
        config, ["--config.knn.eval.success_radius_m=2", "--config.knn.data.train=('train',)"]
    )
    assert config.knn.eval.success_radius_m == 2.0
    assert isinstance(config.knn.eval.success_radius_m, float)
    assert config.command_line == ("knn.eval.success_radius_m", "knn.data.train")


def test_a_choice_is_read_defaulted_and_checked():
    config = ml_collections.ConfigDict(dict(mode="loop"))
    assert choice(config, "mode", ("vmap", "loop")) == "loop"
    assert choice(config, "other", ("vmap", "loop"), "vmap") == "vmap"
    with pytest.raises(ConfigError, match=r"config.mode: expected one of \('vmap',\), got 'loop'"):
        choice(config, "mode", ("vmap",))


def test_missing_data_path_is_a_clear_error(tmp_path, capsys):
    code = cli.main(
        [
            "run",
            str(REPO / "experiments" / "baselines" / "knn_uji1.py"),
            "--workdir",
            str(tmp_path),
            "--config.data.path=/nope/UJI1.mat",
        ]
    )
    assert code == 2 and "/nope/UJI1.mat" in capsys.readouterr().err


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    """Only user errors become one line and exit 2; anything else propagates."""
    from jaxfp.methods.baselines import knn_protocols

    def broken(*args, **kwargs):
        raise KeyError("a bug deep in a run")

    monkeypatch.setattr(knn_protocols, "run_variant", broken)
    spec = str(REPO / "experiments" / "baselines" / "knn_uji1.py:test")
    with pytest.raises(KeyError, match="a bug deep in a run"):
        cli.main(["run", spec, "--workdir", str(tmp_path)])


def test_run_keeps_compiled_programs_set_up_before_anything_runs(tmp_path, monkeypatch):
    from jaxfp import methods
    from jaxfp.train import compile_cache

    calls = []
    monkeypatch.setattr(compile_cache, "use_compilation_cache", lambda: calls.append("cache"))
    monkeypatch.setattr(methods, "get_method", lambda name: lambda c, w: calls.append(name))
    spec = str(REPO / "experiments" / "baselines" / "knn_uji1.py:test")
    assert cli.main(["run", spec, "--workdir", str(tmp_path)]) == 0
    assert calls == ["cache", load_config(spec).method]


def test_unknown_method_is_a_user_error(tmp_path, capsys):
    spec = str(REPO / "experiments" / "baselines" / "knn_uji1.py:test")
    code = cli.main(["run", spec, "--workdir", str(tmp_path), "--config.method=nope"])
    assert code == 2 and "expected one of" in capsys.readouterr().err


def test_mlp_seeds_run_resume_and_a_changed_config_recomputes(tmp_path, capsys):
    spec = str(REPO / "experiments" / "baselines" / "mlp_dsi1.py:test")
    assert cli.main(["run", spec, "--workdir", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert set(results) == {"seed 0", "seed 1", "averaged output", "over seeds"}
    from jaxfp.eval.stats import t_interval

    per_seed = [results["seed 0"]["mean"], results["seed 1"]["mean"]]
    low, high = t_interval(per_seed)
    assert (results["over seeds"]["mean_ci_low"], results["over seeds"]["mean_ci_high"]) == (
        pytest.approx(low),
        pytest.approx(high),
    )
    # The same command again resumes from the final checkpoint and reproduces the table.
    assert cli.main(["run", spec, "--workdir", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "results.json").read_text())["results"]
    assert again == results
    capsys.readouterr()
    code = cli.main(["run", spec, "--workdir", str(tmp_path), "--config.train.learning_rate=0.1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "train.learning_rate: 0.001 -> 0.1" in out and "recomputing" in out
    changed = json.loads((tmp_path / "results.json").read_text())["results"]
    assert changed["seed 0"]["mean"] != results["seed 0"]["mean"]


def test_data_info_on_a_csi_set(tmp_path, capsys):
    from .conftest import write_synthetic_csi_store

    store = write_synthetic_csi_store(str(tmp_path / "csi"), n=30)
    assert cli.main(["data", "info", store]) == 0
    out = capsys.readouterr().out
    assert "jaxfp-csi" in out and "30 on disk" in out and "(2, 32, 16)" in out


def test_run_refuses_a_bad_workdir_or_config_before_work(tmp_path, capsys, monkeypatch):
    spec = str(REPO / "experiments" / "demo.py:test")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert cli.main(["run", spec, "--workdir", str(a_file)]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert cli.main(["run", spec, "--workdir", str(a_file / "sub")]) == 2
    assert f"{a_file} is a file, not a folder" in capsys.readouterr().err
    monkeypatch.setattr(cli.os, "access", lambda *a: False)
    assert cli.main(["run", spec, "--workdir", str(tmp_path / "new")]) == 2
    assert f"{tmp_path} cannot be written" in capsys.readouterr().err
    monkeypatch.undo()
    for override, message in [
        ("--config.mlp.seeds=()", "config.mlp.seeds: expected a non-empty tuple"),
        ("--config.mlp.train.learning_rate=0.0", "mlp.train.learning_rate: expected > 0, got 0.0"),
    ]:
        code = cli.main(["run", spec, "--workdir", str(tmp_path / "w"), override])
        err = capsys.readouterr().err
        assert code == 2 and message in err, err
    assert not (tmp_path / "w").exists()  # refused before anything was written


def test_check_run_config_by_value():
    good = ml_collections.ConfigDict({"seeds": (0, 1), "train": {"batch_size": 4}})
    cli.check_run_config(good)
    for seeds, message in [((), "non-empty"), ((0, 0), "distinct"), ((-1,), "non-negative")]:
        with pytest.raises(ConfigError, match=message):
            cli.check_run_config(ml_collections.ConfigDict({"seeds": seeds}))
    with pytest.raises(ConfigError, match=r"config.train.batch_size: expected > 0, got 0"):
        cli.check_run_config(ml_collections.ConfigDict({"train": {"batch_size": 0}}))


def test_report_names_a_damaged_results_file(tmp_path, capsys):
    bad = tmp_path / "results.json"
    bad.write_text("{not json")
    assert cli.main(["report", str(tmp_path)]) == 2
    assert f"{bad}: expected a JSON results file" in capsys.readouterr().err
    bad.write_text(json.dumps({"results": {"a": 1.0}}))
    assert cli.main(["report", str(bad)]) == 2
    assert "field 'results': expected an object of rows" in capsys.readouterr().err
    bad.write_text(json.dumps({"results": {}, "tables": {"t": {"rows": {}}}}))
    assert cli.main(["report", str(bad)]) == 2
    assert "field 'tables.t'" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path / "none")]) == 2
    assert "no such workdir or results file" in capsys.readouterr().err
    assert cli.main(["report"]) == 2


def test_report_rewrites_the_docs_results_blocks(tmp_path, capsys):
    from jaxfp.eval import docs_tables
    from jaxfp.eval.results import over_seeds, write_results

    (tmp_path / "results").mkdir()
    (tmp_path / "methods").mkdir()
    write_results(str(tmp_path / "results"), "t", {}, {"a": over_seeds([1.0, 2.0])}, ["mean"])
    (tmp_path / "results" / "results.json").rename(tmp_path / "results" / "x.json")
    doc = tmp_path / "methods" / "m.md"
    doc.write_text("# m\n<!-- results: ../results/x.json -->\nold\n<!-- /results -->\nend\n")
    assert docs_tables.stale([str(doc)]) == [f"{doc}: ../results/x.json"]
    assert cli.main(["report", "--docs", str(tmp_path)]) == 0
    text = doc.read_text()
    assert (
        "| a | 1.500 | 3 |" not in text and "| a | 1.500 | 2 |" in text and text.endswith("end\n")
    )
    assert docs_tables.stale([str(doc)]) == []


def test_a_docs_block_can_keep_some_of_a_files_tables(tmp_path):
    from jaxfp.eval import docs_tables
    from jaxfp.eval.results import over_seeds, table, write_results

    (tmp_path / "results").mkdir()
    extra = {
        "paired differences, x": table({"a - b": {"d": 1.25}}, ["d"]),
        "by week": table({"a": {"1": 7.5}}, ["1"]),
    }
    write_results(
        str(tmp_path / "results"), "t", {}, {"a": over_seeds([1.0, 2.0])}, ["mean"], extra
    )
    doc = tmp_path / "m.md"
    doc.write_text(
        "<!-- results: results/results.json tables: paired differences -->\n<!-- /results -->\n"
        "<!-- results: results/results.json tables: main; by week -->\n<!-- /results -->\n"
    )
    assert docs_tables.update([str(doc)]) == [str(doc)]
    first, second = doc.read_text().split("<!-- /results -->")[:2]
    assert "| a - b | 1.250 |" in first and "by week" not in first and "| a | 1.500" not in first
    assert "| a | 1.500 | 2 |" in second and "| a | 7.500 |" in second
    assert "paired differences" not in second.split("-->", 1)[1]
    assert docs_tables.stale([str(doc)]) == []
    doc.write_text(doc.read_text().replace("| a - b | 1.250 |", "| a - b | 9.000 |"))
    assert docs_tables.stale([str(doc)]) == [f"{doc}: results/results.json"]
