"""The few-label CSI suite end to end (test size, synthetic CSI): every method, resume, 4 devices."""

import json
import shutil

import jax
import numpy as np
import pytest

from jaxfp.config import ConfigError, load_config
from jaxfp.methods.csi import few_labels, programs, pseudo_labels
from jaxfp.methods.csi.suite import Suite

from ...conftest import REPO, run_experiment, write_synthetic_csi_store

SPEC = str(REPO / "experiments" / "csi" / "few_labels.py:test")


@pytest.mark.slow
def test_every_method_runs_logs_and_resumes_to_the_same_table(tmp_path, capsys):
    store = write_synthetic_csi_store(str(tmp_path / "csi"))
    run = tmp_path / "run"
    run_experiment(SPEC, run, f"--config.data.path={store}")
    results = json.loads((run / "results.json").read_text())
    rows = results["results"]
    assert list(rows) == list(few_labels.REPORTED)
    for row in rows.values():
        assert all(np.isfinite(row[k]) for k in ("mean", "p50", "p67", "p80", "p90"))
        assert row["mean_ci_low"] <= row["mean"] <= row["mean_ci_high"]
        assert set(row["per_seed_mean"]) == {"0", "1"}
    assert results["split_sizes"] == {"labelled": 6, "unlabelled": 48, "test": 6}
    assert [r["round"] for r in results["pseudo_labels"]] == [1, 2]
    assert results["pseudo_labels"][0]["pseudo_labelled"] == 1.0  # radius 1e6 keeps all
    assert [row["radius_m"] for row in results["pseudo_labels"][0]["by_radius"]] == [1, 2, 3, 5]
    assert results["pseudo_labels"][1]["kept_this_round"] == 0.0  # nothing left to label
    transductive = results["tables"]["transductive: the unlabelled pool"]["rows"]
    assert list(transductive) == list(few_labels.REPORTED)
    assert all(np.isfinite(row["mean"]) for row in transductive.values())
    # 3 steps x 4 unlabelled rows over a pool of 48.
    assert results["unlabelled_pool_passes"]["mean_teacher"] == 3 * 4 / 48
    assert len(results["ensemble"]["out_of_bag_error_m"]) == 2  # seeds x groups
    selection = results["fixmatch_selection"]
    assert set(selection) == {"fixmatch", "fixmatch_distance"}
    assert all(0 <= row["kept_share"] <= 1 for row in selection.values())
    for stage in ("supervised", "mean_teacher", "consistency/round2_stage3", "ensemble/tiny"):
        lines = (run / stage / "metrics.jsonl").read_text().splitlines()
        assert json.loads(lines[-1])["finite"] == 1.0
        assert (run / stage / "checkpoints").is_dir()
    assert "consistency_iterative" in capsys.readouterr().out
    assert (run / "cdf.png").exists() and (run / "percentiles.png").exists()

    # A run killed before its last stages resumes: finished stages restore, the rest retrain;
    # a changed Mean Teacher setting recomputes that stage only.
    resumed = tmp_path / "resumed"
    shutil.copytree(run, resumed)
    for lost in ("sector_heads", "consistency/round2_stage3", "results.json"):
        path = resumed / lost
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    capsys.readouterr()
    run_experiment(SPEC, resumed, f"--config.data.path={store}", "--config.mean_teacher.weight=0.5")
    again = json.loads((resumed / "results.json").read_text())
    for name, row in rows.items():
        if name != "mean_teacher":
            np.testing.assert_allclose(again["results"][name]["mean"], row["mean"], rtol=1e-5)
    assert again["results"]["mean_teacher"]["mean"] != rows["mean_teacher"]["mean"]
    out = capsys.readouterr().out
    assert "made with another config (mean_teacher.weight: 1.0 -> 0.5); recomputing" in out
    assert out.count("recomputing") == 1


@pytest.mark.slow
def test_ensemble_members_sharded_over_four_devices(tmp_path):
    assert jax.device_count() == 4
    config = load_config(SPEC)
    config.data.path = write_synthetic_csi_store(str(tmp_path / "csi"))
    config.seeds = (0, 1, 2, 3)
    config.methods = ("ensemble",)
    config.seed_execution = "vmap"  # the one sharded program (the test size loops over seeds)
    suite = Suite(config, str(tmp_path / "run"))
    model = suite.model("resnet_tiny")
    state = suite.new_states(model, suite.optimizer(1e-3, 3), "probe")
    leaf = jax.tree.leaves(state.params)[0]
    assert leaf.shape[0] == 4 and len(leaf.sharding.device_set) == 4
    scored, info = programs.run_ensemble(suite)
    positions = scored["test"]
    assert positions["ensemble"].shape == (4, len(suite.test_xy), 2)
    assert scored["unlabelled"]["ensemble"].shape == (4, len(suite.unlabelled_xy), 2)
    assert np.isfinite(positions["ensemble_consensus"]).all()
    assert np.asarray(info["out_of_bag_error_m"]).shape == (4, 2)
    # Different seeds give different members, hence different ensembles.
    assert not np.allclose(positions["ensemble"][0], positions["ensemble"][1])


@pytest.mark.slow
def test_cross_fitting_never_scores_a_fitted_row(tmp_path, monkeypatch):
    """Round 1 keeps every other unlabelled row; in round 2 source A's anchors and network B's
    training rows are the labelled + kept rows, and only the other rows are labelled."""
    config = load_config(SPEC)
    config.data.path = write_synthetic_csi_store(str(tmp_path / "csi"))
    config.consistency.rounds = 2
    suite = Suite(config, str(tmp_path / "run"))
    n_l, n_u = suite.n_labelled, len(suite.unlabelled_xy)
    calls = []
    checked = pseudo_labels.assert_cross_fitted

    def spy(fitted, scored, what):
        calls.append((what, np.sort(fitted), np.sort(scored)))
        checked(fitted, scored, what)

    def every_other(a, b, radius_m):
        return np.broadcast_to(np.arange(a.shape[-2]) % 2 == 0, a.shape[:-1]).copy(), 0.5 * (a + b)

    monkeypatch.setattr(pseudo_labels, "assert_cross_fitted", spy)
    monkeypatch.setattr(pseudo_labels, "agreeing_labels", every_other)
    model, state = programs.run_supervised(suite)
    _, stats = programs.run_consistency(suite, model, state)
    assert len(calls) == 2 * 2 * suite.n  # rounds x members x sources
    even, odd = n_l + np.arange(0, n_u, 2), n_l + np.arange(1, n_u, 2)
    for what, fitted, scored in calls:
        assert "round 1" in what or "round 2" in what
        if "round 1" in what:
            np.testing.assert_array_equal(fitted, np.arange(n_l))
            np.testing.assert_array_equal(scored, n_l + np.arange(n_u))
        else:
            np.testing.assert_array_equal(fitted, np.concatenate([np.arange(n_l), even]))
            np.testing.assert_array_equal(scored, odd)
    assert stats[0]["pseudo_labelled"] == pytest.approx(len(even) / n_u)
    with pytest.raises(RuntimeError, match="1 rows are both fitted on and scored"):
        checked(np.arange(5), np.array([4, 9]), "constructed")


def test_seed_execution_loop_trains_and_predicts_as_vmap(tmp_path):
    """`seed_execution="loop"` (a jitted step per seed) gives the vmapped program's numbers."""
    path = write_synthetic_csi_store(str(tmp_path / "csi"))
    out = {}
    for execution in ("vmap", "loop"):
        config = load_config(SPEC)
        config.data.path, config.seed_execution = path, execution
        suite = Suite(config, str(tmp_path / execution))
        out[execution] = suite.test_positions(*programs.run_supervised(suite))
        assert out[execution].shape[0] == len(config.seeds)
    # Same keys and arithmetic; only the float order inside vmapped convolutions differs, which
    # Adam's first steps amplify to a few cm on this ~100 m site.
    np.testing.assert_allclose(out["loop"], out["vmap"], atol=0.1)
    config.seed_execution = "vmapp"
    with pytest.raises(ConfigError, match="seed_execution"):
        Suite(config, str(tmp_path / "bad"))
