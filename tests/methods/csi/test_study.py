"""The few-label CSI study end to end (test size, synthetic CSI): every method, per-seed splits,
resume, 4 devices."""

import json
import shutil

import jax
import numpy as np
import pytest

from jaxfp.config import ConfigError, load_config
from jaxfp.eval.stats import t_interval
from jaxfp.methods.csi import consistency, ensemble, pseudo_labels, report, run, supervised
from jaxfp.methods.csi.data import seed_splits
from jaxfp.methods.csi.study import Study

from ...conftest import REPO, run_experiment, write_synthetic_csi_store

SPEC = str(REPO / "experiments" / "csi" / "few_labels.py:test")


@pytest.mark.slow
def test_every_method_runs_logs_and_resumes_to_the_same_table(tmp_path, capsys):
    store = write_synthetic_csi_store(str(tmp_path / "csi"))
    run_dir = tmp_path / "run"
    run_experiment(SPEC, run_dir, f"--config.data.path={store}")
    results = json.loads((run_dir / "results.json").read_text())
    rows = results["results"]
    assert list(rows) == list(run.REPORTED)
    for row in rows.values():
        assert all(np.isfinite(row[k]) for k in ("mean", "p50", "p67", "p80", "p90"))
        per_seed = [row["per_seed_mean"][s] for s in ("0", "1")]
        np.testing.assert_allclose(row["mean"], np.mean(per_seed))
        np.testing.assert_allclose((row["mean_ci_low"], row["mean_ci_high"]), t_interval(per_seed))
    assert results["split_sizes"] == {"labelled": 6, "unlabelled": 48, "test": 6}
    assert [r["round"] for r in results["pseudo_labels"]] == [1, 2]
    assert results["pseudo_labels"][0]["pseudo_labelled"] == 1.0  # radius 1e6 keeps all
    assert [row["radius_m"] for row in results["pseudo_labels"][0]["by_radius"]] == [1, 2, 3, 5]
    assert results["pseudo_labels"][1]["kept_this_round"] == 0.0  # nothing left to label
    tables = results["tables"]
    transductive = tables["transductive: the unlabelled pool"]["rows"]
    assert list(transductive) == list(run.REPORTED)
    assert all(np.isfinite(row["mean"]) for row in transductive.values())
    # Every claim's paired difference: the per-seed means' difference, n = 2, no verdict.
    paired = tables[report.PAIRED_TITLE]["rows"]
    assert list(paired) == [f"{a} - {b}" for a, b in report.FEW_LABEL_CLAIMS]
    for name, row in paired.items():
        a, b = (rows[x]["per_seed_mean"] for x in name.split(" - "))
        np.testing.assert_allclose(row["mean_diff_m"], np.mean([a[s] - b[s] for s in a]))
        assert row["n_seeds"] == 2 and row["verdict"] == "no verdict (n < 5)"
    # The budget's 16 steps x 4 unlabelled rows over a seed's pool of 48.
    assert results["unlabelled_pool_passes"]["mean_teacher"] == 16 * 4 / 48

    # Every row's stated steps are the steps its stages took (the last step each logged).
    def took(*stages):
        return sum(
            json.loads((run_dir / st / "metrics.jsonl").read_text().splitlines()[-1])["step"]
            for st in stages
        )

    rounds = [f"consistency/round{r}_{x}" for r in (1, 2) for x in ("model_a", "model_b", "stage3")]
    one_round = ["consistency/round1_model_a", "consistency/round1_model_b"]
    trained = {
        "supervised": took("supervised"),
        "consistency": took("supervised", *one_round, "consistency/one_round_stage3"),
        "consistency_iterative": took("supervised", *rounds),
        "ensemble": took("ensemble/tiny", "ensemble/tiny_wide"),
        "ensemble_consensus": took("ensemble/tiny", "ensemble/tiny_wide"),
        **{
            name: took(name)
            for name in (
                "supervised_budget",
                "mean_teacher",
                "mean_teacher_aug",
                "fixmatch",
                "fixmatch_distance",
                "sector_heads",
            )
        },
    }
    for name, steps in trained.items():
        assert rows[name]["steps"] == steps, name
    assert {trained[name] for claim in report.FEW_LABEL_CLAIMS for name in claim} == {16}
    assert trained["supervised"] == 4
    curves = results["learning_curves"]
    assert set(curves) == set(trained) - {"ensemble_consensus"}
    for name, curve in curves.items():  # one point per logged step, the row's stages chained
        assert curve["step"] == list(range(1, trained[name] + 1)), name
    assert (run_dir / "learning_curves.png").exists()
    assert len(results["ensemble"]["out_of_bag_error_m"]) == 2  # seeds x groups
    selection = results["fixmatch_selection"]
    assert set(selection) == {"fixmatch", "fixmatch_distance"}
    for row in selection.values():  # kept and rejected rows make up the whole pool, per seed
        s = row["per_seed"]
        for share, kept, rejected, every in zip(
            s["kept_share"], s["kept_error_m"], s["rejected_error_m"], s["all_error_m"], strict=True
        ):
            parts = [(share, kept), (1 - share, rejected)]
            np.testing.assert_allclose(sum(w * e for w, e in parts if w > 0), every, rtol=1e-6)
    for stage in ("supervised", "mean_teacher", "consistency/round2_stage3", "ensemble/tiny"):
        lines = (run_dir / stage / "metrics.jsonl").read_text().splitlines()
        assert json.loads(lines[-1])["finite"] == 1.0
        assert (run_dir / stage / "checkpoints").is_dir()
    assert "consistency_iterative" in capsys.readouterr().out
    assert (run_dir / "cdf.png").exists() and (run_dir / "percentiles.png").exists()

    # A run killed before its last stages resumes: finished stages restore, the rest retrain;
    # a changed Mean Teacher setting recomputes the two stages that read it (the paper's Mean
    # Teacher and its augmented variant share the section) and nothing else.
    resumed = tmp_path / "resumed"
    shutil.copytree(run_dir, resumed)
    for lost in ("sector_heads", "consistency/round2_stage3", "results.json"):
        path = resumed / lost
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    capsys.readouterr()
    run_experiment(SPEC, resumed, f"--config.data.path={store}", "--config.mean_teacher.weight=0.5")
    again = json.loads((resumed / "results.json").read_text())
    changed = ("mean_teacher", "mean_teacher_aug")
    for name, row in rows.items():
        if name not in changed:
            np.testing.assert_allclose(
                again["results"][name]["mean"], row["mean"], rtol=1e-5, err_msg=name
            )
    for name in changed:
        assert again["results"][name]["mean"] != rows[name]["mean"], name
    out = capsys.readouterr().out
    for name in changed:
        assert f"{name}: made with another config (mean_teacher.weight: 1.0 -> 0.5)" in out
    assert out.count("recomputing") == 2


def test_each_seed_draws_its_own_split_and_trains_on_its_own_rows(tmp_path, monkeypatch):
    config = load_config(SPEC)
    config.data.path = write_synthetic_csi_store(str(tmp_path / "csi"))
    config.seeds = (0, 1, 2)
    study = Study(config, str(tmp_path / "run"))
    parts = study.parts
    rows = study.table.rows
    for m in range(3):
        together = np.concatenate([parts[p][m] for p in ("labelled", "unlabelled", "test")])
        assert len(np.unique(together)) == len(together) == 60  # a partition of the table
    for part in ("labelled", "test"):  # different seeds draw different receivers
        assert len({tuple(rows[parts[part][m]]) for m in range(3)}) == 3
    # The same seed draws the same split, whatever other seeds run beside it.
    alone = seed_splits(study.table.xy, rows, (2,), config.data)
    np.testing.assert_array_equal(alone["labelled"][0], rows[parts["labelled"][2]])

    captured = {}

    def capture(name, init, step_fn, batch_of, options, shaping):
        captured.update(batch_of=batch_of, shaping=shaping, options=options)
        return init

    monkeypatch.setattr(study.stages, "stage", capture)
    study.train("probe", None, None, 5, *study.labelled_targets(), unlabelled=True)
    assert captured["shaping"]["num_steps"] == 5 and captured["options"].num_steps == 5
    csi = study.table.csi
    for m in range(3):
        batch = captured["batch_of"](np.random.default_rng(0), m)
        labelled_xy = study.truth("labelled")[m]
        for xy in batch["xy"]:  # targets only from seed m's labelled rows
            assert np.isclose(labelled_xy, xy, atol=1e-4).all(-1).any()
        own = csi[parts["unlabelled"][m]]
        for row in batch["ucsi"]:  # unlabelled rows only from seed m's unlabelled part
            assert (own == row).all(axis=(1, 2, 3)).any()
    config.data.labelled_sampling = "clustered"
    with pytest.raises(ConfigError, match="labelled_sampling"):
        Study(config, str(tmp_path / "bad"))


@pytest.mark.slow
def test_ensemble_members_sharded_over_four_devices(tmp_path):
    assert jax.device_count() == 4
    config = load_config(SPEC)
    config.data.path = write_synthetic_csi_store(str(tmp_path / "csi"))
    config.seeds = (0, 1, 2, 3)
    config.methods = ("ensemble",)
    config.seed_execution = "vmap"  # the one sharded program (the test size loops over seeds)
    study = Study(config, str(tmp_path / "run"))
    model = study.model("resnet_tiny")
    state = study.stages.init("probe", study.initial(model, study.optimizer(1e-3, 3)))
    leaf = jax.tree.leaves(state.params)[0]
    assert leaf.shape[0] == 4 and len(leaf.sharding.device_set) == 4
    scored, info = ensemble.run_ensemble(study)
    positions = scored["test"]
    assert positions["ensemble"].shape == (4, study.sizes["test"], 2)
    assert scored["unlabelled"]["ensemble"].shape == (4, study.sizes["unlabelled"], 2)
    assert np.isfinite(positions["ensemble_consensus"]).all()
    assert np.asarray(info["out_of_bag_error_m"]).shape == (4, 2)
    # Different seeds give different members, hence different ensembles.
    assert not np.allclose(positions["ensemble"][0], positions["ensemble"][1])


@pytest.mark.slow
def test_cross_fitting_never_scores_a_fitted_row(tmp_path, monkeypatch):
    """Round 1 keeps every other unlabelled row; in round 2 both interpolations' anchors are the
    seed's labelled + kept rows, and only the other rows are labelled."""
    config = load_config(SPEC)
    config.data.path = write_synthetic_csi_store(str(tmp_path / "csi"))
    config.consistency.rounds = 2
    study = Study(config, str(tmp_path / "run"))
    labelled, unlabelled = study.parts["labelled"], study.parts["unlabelled"]
    calls = []
    checked = pseudo_labels.assert_cross_fitted

    def spy(fitted, scored, what):
        calls.append((what, np.sort(fitted), np.sort(scored)))
        checked(fitted, scored, what)

    def every_other(a, b, radius_m):
        return np.broadcast_to(np.arange(a.shape[-2]) % 2 == 0, a.shape[:-1]).copy(), 0.5 * (a + b)

    monkeypatch.setattr(pseudo_labels, "assert_cross_fitted", spy)
    monkeypatch.setattr(pseudo_labels, "agreeing_labels", every_other)
    model, state = supervised.run_supervised(study)
    _, stats = consistency.run_consistency(study, model, state)
    assert len(calls) == 2 * 2 * study.n  # rounds x seeds x interpolations
    for what, fitted, scored in calls:
        m = study.seeds.index(int(what.split("seed ")[1].split(",")[0]))
        even, odd = unlabelled[m][0::2], unlabelled[m][1::2]
        if "round 1" in what:
            np.testing.assert_array_equal(fitted, np.sort(labelled[m]))
            np.testing.assert_array_equal(scored, np.sort(unlabelled[m]))
        else:
            assert "round 2" in what
            np.testing.assert_array_equal(fitted, np.sort(np.concatenate([labelled[m], even])))
            np.testing.assert_array_equal(scored, np.sort(odd))
    assert stats[0]["pseudo_labelled"] == pytest.approx(0.5)
    with pytest.raises(RuntimeError, match="1 rows are both fitted on and scored"):
        checked(np.arange(5), np.array([4, 9]), "constructed")


def test_seed_execution_loop_trains_and_predicts_as_vmap(tmp_path):
    """`seed_execution="loop"` (a jitted step per seed) gives the vmapped program's numbers."""
    path = write_synthetic_csi_store(str(tmp_path / "csi"))
    out = {}
    for execution in ("vmap", "loop"):
        config = load_config(SPEC)
        config.data.path, config.seed_execution = path, execution
        study = Study(config, str(tmp_path / execution))
        out[execution] = study.scored_positions(*supervised.run_supervised(study))["test"]
        assert out[execution].shape == (len(config.seeds), study.sizes["test"], 2)
    # Same keys and arithmetic; only the float order inside vmapped convolutions differs, which
    # Adam's first steps amplify to a few cm on this ~100 m site.
    np.testing.assert_allclose(out["loop"], out["vmap"], atol=0.1)
    config.seed_execution = "vmapp"
    with pytest.raises(ConfigError, match="seed_execution"):
        Study(config, str(tmp_path / "bad"))


def test_paired_rows_judge_each_claim_on_the_per_seed_differences():
    means = {"a": [1.0, 2.0, 3.0, 4.0, 5.0], "b": [2.0, 3.0, 4.0, 5.0, 7.0], "c": [0.0] * 5}
    rows = report.paired_rows(means, (("a", "b"), ("a", "missing")))
    assert list(rows) == ["a - b"]  # a claim whose rows did not run has no row
    row = rows["a - b"]
    # Differences -1, -1, -1, -1, -2: mean -1.2, sd 0.447, t(0.975, 4) = 2.776.
    np.testing.assert_allclose(row["mean_diff_m"], -1.2)
    half = 2.7764451 * np.sqrt(0.2) / np.sqrt(5)
    np.testing.assert_allclose(
        (row["mean_diff_m_ci_low"], row["mean_diff_m_ci_high"]), (-1.2 - half, -1.2 + half)
    )
    assert row["verdict"] == "A better" and row["n_seeds"] == 5
    assert report.paired_rows(means, (("b", "a"),))["b - a"]["verdict"] == "B better"
