"""The consistency framework as §III-A writes it (two interpolations, models A and B fine-tuned
from stage 1), no truth in any decision, and equal budgets for every compared row."""

import json

import jax
import numpy as np
import pytest

from jaxfp.config import ConfigError, load_config
from jaxfp.methods.csi import budget, consistency, pseudo_labels, report, run, supervised
from jaxfp.methods.csi.semi_supervised import run_fixmatch
from jaxfp.methods.csi.study import Study

from ...conftest import REPO, write_synthetic_csi_store

SPEC = str(REPO / "experiments" / "csi" / "few_labels.py")


def spy_on_training(study: Study, monkeypatch) -> dict[str, dict]:
    """Record every stage `study.train` runs: its start, data, steps and the trained states."""
    seen: dict[str, dict] = {}
    train = study.train

    def spy(name, init, step_fn, num_steps, targets, weights, pools, **kw):
        start = None if callable(init) else jax.tree.map(np.array, init.params)  # a copy
        state = train(name, init, step_fn, num_steps, targets, weights, pools, **kw)
        seen[name] = dict(
            start=start,
            targets=np.array(targets),
            weights=np.array(weights),
            pools=[np.sort(p) for p in pools],
            steps=num_steps,
            state=state,
        )
        return state

    monkeypatch.setattr(study, "train", spy)
    return seen


def leaves_equal(a, b) -> bool:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return all(np.array_equal(x, y) for x, y in pairs)


@pytest.mark.slow
def test_models_a_and_b_are_stage1_fine_tuned_on_two_pseudo_datasets(tmp_path, monkeypatch):
    """Interpolation B is made to differ from A by 30 m east on every open row; both pseudo
    datasets cover the whole pool, both fine-tunes start from the stage-1 network, the two models
    differ, and the rows kept are those where the two models (not the interpolations) agree."""
    config = load_config(SPEC + ":test")
    config.data.path = write_synthetic_csi_store(str(tmp_path / "csi"))
    config.consistency.rounds = 1
    study = Study(config, str(tmp_path / "run"))
    labelled, unlabelled = study.parts["labelled"], study.parts["unlabelled"]
    model, stage1 = supervised.run_supervised(study)
    real = consistency.interpolated_labels

    def shifted(s, pseudo, kind, where):
        labels = real(s, pseudo, kind, where)
        return labels + [30.0, 0.0] if kind == "aligned" else labels

    agreed_on = {}
    real_agreeing = pseudo_labels.agreeing_labels

    def median_radius(a, b, radius_m):  # keeps about half of the rows, whatever the models
        if not agreed_on:  # the decision's call; the diagnostics call it again per seed
            agreed_on.update(a=a, b=b)
        return real_agreeing(a, b, float(np.median(np.linalg.norm(a - b, axis=-1))))

    monkeypatch.setattr(consistency, "interpolated_labels", shifted)
    monkeypatch.setattr(pseudo_labels, "agreeing_labels", median_radius)
    seen = spy_on_training(study, monkeypatch)
    consistency.run_consistency(study, model, stage1)

    a, b = seen["consistency/round1_model_a"], seen["consistency/round1_model_b"]
    nothing_kept = np.full((study.n, unlabelled.shape[1], 2), np.nan)
    labels_a = real(study, nothing_kept, "profile", "check")
    labels_b = real(study, nothing_kept, "aligned", "check")
    for m in range(study.n):
        u = unlabelled[m]
        np.testing.assert_allclose(a["targets"][m, u], labels_a[m], rtol=1e-6)
        np.testing.assert_allclose(b["targets"][m, u], labels_b[m] + [30.0, 0.0], atol=1e-3)
        for d in (a, b):  # the whole pool plus the labelled rows, with their true positions
            np.testing.assert_array_equal(d["pools"][m], np.sort(np.r_[labelled[m], u]))
            np.testing.assert_allclose(d["targets"][m, labelled[m]], study.table.xy[labelled[m]])
    # The two interpolations themselves differ (different signatures of the same CSI).
    assert not np.allclose(labels_a, labels_b)
    stage1_params = jax.tree.map(np.asarray, stage1.params)
    assert leaves_equal(a["start"], stage1_params) and leaves_equal(b["start"], stage1_params)
    assert a["steps"] == b["steps"] == config.consistency.finetune_steps
    assert not leaves_equal(a["state"].params, b["state"].params)
    # Agreement is judged on the fine-tuned models' positions; stage 3 starts from stage 1 and
    # trains on labelled + kept rows, each kept row labelled with the two models' mean.
    pos_a = study.positions(model, a["state"], unlabelled)
    pos_b = study.positions(model, b["state"], unlabelled)
    np.testing.assert_allclose(agreed_on["a"], pos_a)
    np.testing.assert_allclose(agreed_on["b"], pos_b)
    gap = np.linalg.norm(pos_a - pos_b, axis=-1)
    kept = gap < np.median(gap)
    assert 0 < kept.sum() < kept.size
    stage3 = seen["consistency/round1_stage3"]
    assert leaves_equal(stage3["start"], stage1_params)
    for m in range(study.n):
        rows = unlabelled[m][kept[m]]
        np.testing.assert_array_equal(stage3["pools"][m], np.sort(np.r_[labelled[m], rows]))
        np.testing.assert_allclose(
            stage3["targets"][m, rows], 0.5 * (pos_a[m] + pos_b[m])[kept[m]], rtol=1e-5
        )
        assert (stage3["weights"][m, unlabelled[m][~kept[m]]] == 0).all()


@pytest.mark.slow
def test_training_and_decisions_ignore_the_truth_of_unlabelled_rows(tmp_path, monkeypatch):
    """The same run twice, the second with the unlabelled rows' true positions permuted: every
    trained stage, kept row and position is the same; only the diagnostics change."""
    path = write_synthetic_csi_store(str(tmp_path / "csi"))
    out = {}
    for scrambled in (False, True):
        config = load_config(SPEC + ":test")
        config.data.path, config.seeds = (
            path,
            (0,),
        )  # one seed: its unlabelled rows are no one's labels
        config.consistency.agreement_radius_m = 5.0  # keeps some rows, not all
        study = Study(config, str(tmp_path / f"run_{scrambled}"))
        if scrambled:
            u = study.parts["unlabelled"][0]
            study.table.xy[u] = study.table.xy[np.roll(u, 1)]
        seen = spy_on_training(study, monkeypatch)
        model, stage1 = supervised.run_supervised(study)
        positions, stats = consistency.run_consistency(study, model, stage1)
        fixmatch, selection = run_fixmatch(study, "fixmatch_distance")
        out[scrambled] = dict(
            seen=seen,
            positions=positions,
            stats=stats,
            fixmatch=fixmatch,
            selection=selection,
            wknn=supervised.run_signature_wknn(study),
        )
    plain, scrambled = out[False], out[True]
    assert set(plain["seen"]) == set(scrambled["seen"])
    for name, stage in plain["seen"].items():
        other = scrambled["seen"][name]
        np.testing.assert_array_equal(stage["targets"], other["targets"])
        np.testing.assert_array_equal(stage["weights"], other["weights"])
        assert all(
            np.array_equal(p, q) for p, q in zip(stage["pools"], other["pools"], strict=True)
        )
        assert leaves_equal(stage["state"].params, other["state"].params), name
    for part in ("test", "unlabelled"):
        for name in ("consistency", "consistency_iterative"):
            np.testing.assert_array_equal(
                plain["positions"][part][name], scrambled["positions"][part][name]
            )
        np.testing.assert_array_equal(plain["fixmatch"][part], scrambled["fixmatch"][part])
        np.testing.assert_array_equal(plain["wknn"][part], scrambled["wknn"][part])
    kept = [[r["kept_this_round"] for r in x["stats"]] for x in (plain, scrambled)]
    assert kept[0] == kept[1] and 0 < kept[0][0] < 1
    # The diagnostics read the truth, so they move.
    for key in ("kept_label_error_m", "interpolation_a_error_m", "model_b_error_m"):
        assert plain["stats"][0][key] != scrambled["stats"][0][key]
    assert plain["selection"]["all_error_m"] != scrambled["selection"]["all_error_m"]


@pytest.mark.parametrize("size", ["", "small", "full_cpu", "test"])
def test_every_compared_row_is_configured_for_the_same_steps(size):
    config = load_config(SPEC + (f":{size}" if size else ""))
    steps = budget.row_steps(config)
    assert set(run.REPORTED) == set(steps)
    for a, b in report.FEW_LABEL_CLAIMS:
        assert steps[a] == steps[b], (size, a, b)
    k = config.consistency
    total = config.train.num_steps + k.rounds * (2 * k.finetune_steps + k.stage3_steps)
    assert steps["consistency_iterative"] == steps["mean_teacher"] == total
    assert steps["supervised"] == config.train.num_steps < total


def test_budget_arithmetic_on_the_test_size_and_its_errors():
    config = load_config(SPEC + ":test")
    # Stage 1 4 + 2 rounds x (2 fine-tunes of 2 + stage 3 of 2) = 16.
    assert budget.budget_steps(config) == 16
    # One round: 4 + 2 x 2 + a stage 3 of 16 - 4 - 4 = 8.
    assert budget.one_round_stage3_steps(config) == 8
    assert budget.ensemble_group_steps(config) == 8  # 2 groups share 16
    config.train.num_steps = 5  # 17 steps do not split between 2 groups
    with pytest.raises(ConfigError, match="ensemble.groups"):
        budget.ensemble_group_steps(config)
    config.consistency.stage3_steps = 0
    with pytest.raises(ConfigError, match="consistency.stage3_steps"):
        budget.budget_steps(config)


def test_learning_curves_chain_a_rows_stages_by_cumulative_step(tmp_path):
    for stage, values in (("s1", [9.0, 7.0, 6.0]), ("s2", [5.0, 4.0])):
        (tmp_path / stage).mkdir()
        lines = [json.dumps({"step": i + 1, "distance_m": v}) for i, v in enumerate(values)]
        (tmp_path / stage / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    curves = report.learning_curves(str(tmp_path), {"row": ["s1", "s2"], "lost": ["s1", "s3"]})
    assert list(curves) == ["row"]  # a row with a stage that never ran has no curve
    assert curves["row"] == {"step": [1, 2, 3, 4, 5], "distance_m": [9.0, 7.0, 6.0, 5.0, 4.0]}
    thinned = report.learning_curves(str(tmp_path), {"row": ["s1"]}, points=2)
    assert thinned["row"] == {"step": [1, 3], "distance_m": [9.0, 6.0]}
    report.learning_curve_plot(curves, str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").stat().st_size > 0
