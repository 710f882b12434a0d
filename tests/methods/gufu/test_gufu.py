"""GUFU: a batch update keeps the graph size, APs appear and disappear; the protocol end to end."""

import json

import jax
import numpy as np
import pytest

from jaxfp.common.rss_scale import from_unit
from jaxfp.config import ConfigError, apply_overrides, load_config, variant_settings
from jaxfp.data.types import FingerprintSet, rp_ids_from_positions
from jaxfp.eval.iso18305 import nearest_floor
from jaxfp.methods.gufu import data as gufu_data
from jaxfp.methods.gufu import scoring, simple_updates, variants
from jaxfp.methods.gufu.study import Gufu

from ...conftest import REPO, run_experiment

SPEC = str(REPO / "experiments" / "gufu" / "longterm.py:test")
OURS = SPEC.replace("longterm.py", "ours.py")
NAN = np.nan


def small_site(seed=0):
    """12 records at 3 points over APs a, b (strong) and c (barely heard)."""
    rng = np.random.default_rng(seed)
    xy = np.repeat(np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]]), 4, axis=0)
    a = -40 - 3 * np.linalg.norm(xy - [0, 0], axis=1)
    b = -40 - 3 * np.linalg.norm(xy - [5, 5], axis=1)
    c = np.full(12, -116.0)
    rss = np.column_stack([a, b, c]) + rng.normal(0, 1, (12, 3))
    return rss.astype(np.float32), xy


def test_an_update_keeps_the_graph_size_adds_a_new_ap_and_forgets_a_gone_one():
    config = load_config(SPEC)
    config.gufu.virtual_threshold = 0.5
    config.gufu.update(dict(ae_steps=300, gnn_steps=20, update_steps=300, retrain_steps=20))
    rss, xy = small_site()
    model = Gufu(config.gufu, np.array(["a", "b", "c"]), rss, xy, jax.random.key(0))
    model.offline()
    # The batch hears a and b as before, c no longer, and a new AP d loudly.
    batch_rss, batch_xy = small_site(1)
    batch = np.column_stack([batch_rss[:, :2], np.full(12, -45.0)]).astype(np.float32)
    result = model.update(batch, np.array(["a", "b", "d"]))
    assert result["xy"].shape == (12, 2) and np.isfinite(result["xy"]).all()
    assert model.rss.shape[0] == 12  # the database does not grow
    assert list(model.ap_ids) == ["a", "b", "d"]
    assert result["aps_added"] == 1 and result["aps_removed"] == 1
    # §6.2's order: the new AP's edges came first, then the retraining, then its values were
    # decoded from the records' updated features by the retrained decoder (not the edge weights)
    d = model.rss[:, 2]
    decoded = from_unit(model.features.decode_normalised(model.updated_codes), -np.inf)
    heard = np.isfinite(d)
    assert heard.any()
    np.testing.assert_allclose(d[heard], decoded[heard, 2], rtol=1e-6)
    assert (decoded[~heard, 2] <= config.gufu.detect_floor_dbm).all()  # the rest ended
    np.testing.assert_allclose(model.rss[:, :2], decoded[:, :2], rtol=1e-6)


@pytest.mark.parametrize("update_batch", [0, 4])
def test_residual_rewrite_moves_records_only_where_the_batch_says_so(update_batch):
    config = load_config(SPEC)
    config.gufu.update(dict(ae_steps=400, gnn_steps=5, update_steps=100, retrain_steps=2))
    # update_batch = 4 of 12 records: the fits with and without the batch draw the same rows, so
    # where the batch says nothing they agree exactly (independent draws would move records)
    config.gufu.update_batch = update_batch
    config.gufu.update(dict(edge_prediction=False, virtual_threshold=0.999999))
    rss, xy = small_site()
    batch = np.column_stack([rss[:, :2] + 5.0, rss[:, 2]]).astype(np.float32)
    ids = np.array(["a", "b", "c"])
    # No virtual pair between the batch and the records (threshold ~1): eq. 7-8 carry nothing,
    # so the residual rewrite leaves every record as it was; the paper's rewrite does not.
    residual = Gufu(
        config.gufu.copy_and_resolve_references(), ids, rss.copy(), xy, jax.random.key(0)
    )
    residual.g.rewrite = "residual"
    residual.offline()
    residual.update(batch, ids)
    np.testing.assert_allclose(residual.rss, rss, atol=1e-4)
    replace = Gufu(config.gufu, ids, rss.copy(), xy, jax.random.key(0))
    replace.offline()
    replace.update(batch, ids)
    assert np.nanmax(np.abs(replace.rss - rss)) > 0.5
    config.gufu.rewrite = "average"
    with pytest.raises(ConfigError, match="gufu.rewrite: expected one of"):
        Gufu(config.gufu, ids, rss.copy(), xy, jax.random.key(0))
    config.gufu.rewrite, config.gufu.update_rounds = "residual", 0
    with pytest.raises(ConfigError, match="gufu.update_rounds: expected at least one pass"):
        Gufu(config.gufu, ids, rss.copy(), xy, jax.random.key(0))


def test_rss_error_counts_points_and_missing_aps():
    rss, xy = small_site()
    measured = rss.copy()
    measured[:, 2] = np.nan  # c unheard this month: not scored
    fs = FingerprintSet(
        rss=measured + 2.0,
        detected=np.isfinite(measured),
        ap_ids=np.array(["a", "b", "c"]),
        xy=xy,
        rp_id=rp_ids_from_positions(xy),
    )
    np.testing.assert_allclose(scoring.rss_error(rss, fs.ap_ids, xy, fs, -100.0), 2.0, rtol=1e-5)
    # A database without AP b: b's readings are compared with the -100 dBm fill.
    only_a = scoring.rss_error(rss[:, :1], fs.ap_ids[:1], xy, fs, -100.0)
    b_means = scoring.point_means(rss[:, 1:2] + 2, xy)[1][:, 0]  # one per point
    expected = np.mean([2.0, 2.0, 2.0, *np.abs(-100.0 - b_means)])
    np.testing.assert_allclose(only_a, expected, rtol=1e-5)


def test_rss_error_keeps_floors_that_share_positions_apart():
    xy = np.zeros((2, 2))
    floor = np.array([3, 5])
    db = np.array([[-50.0], [-70.0]], np.float32)
    measured = FingerprintSet(
        rss=np.array([[-70.0], [-50.0]], np.float32),  # the floors swapped: 20 dB off on each
        detected=np.ones((2, 1), bool),
        ap_ids=np.array(["a"]),
        xy=xy,
        rp_id=np.array([0, 1]),
        floor=floor,
    )
    assert scoring.rss_error(db, measured.ap_ids, xy, measured, -100.0, floor) == 20.0
    # Pooled over floors (no database floors), both means are -60 dBm and the error vanishes.
    assert scoring.rss_error(db, measured.ap_ids, xy, measured, -100.0) == 0.0


def two_floor_site(floor_of_rows, seed=0):
    """small_site on floors 3 and 5 at the same positions; floor 5 hears AP a 20 dB weaker."""
    rss, xy = small_site(seed)
    rss = np.concatenate([rss, rss - np.array([20.0, 0.0, 0.0], np.float32)])
    xy, floor = np.concatenate([xy, xy]), np.repeat([3, 5], len(xy))
    rows = np.flatnonzero(np.isin(floor, floor_of_rows))
    return FingerprintSet(
        rss=rss[rows],
        detected=np.isfinite(rss[rows]),
        ap_ids=np.array(["a", "b", "c"]),
        xy=xy[rows],
        rp_id=rp_ids_from_positions(xy[rows], floor[rows]),
        floor=floor[rows],
    )


def test_places_keep_floors_that_share_positions_apart():
    db = two_floor_site([3, 5])
    floors = np.unique(db.floor)
    place = scoring.places(db, 4.0, floors)
    np.testing.assert_array_equal(place[:, 2], 4.0 * db.floor)
    assert scoring.places(db, 0.0, floors).shape == (24, 2)  # 0 m pools the floors
    assert scoring.places(db, 4.0, floors[:1]).shape == (24, 2)  # one floor: plain positions
    located = np.array([[0.0, 0.0, 13.0], [0.0, 0.0, 17.0], [0.0, 0.0, 50.0]])
    np.testing.assert_array_equal(nearest_floor(located, 4.0, floors), [3, 5, 5])
    # Location-then-average on places: a sample on floor 5 moves no record of floor 3.
    sample = db.rss[db.floor == 5][:1] + 10.0
    out = simple_updates.location_then_average(db.rss, place, sample, place[12:13], 2.0, 0.5)
    np.testing.assert_array_equal(out[:12], db.rss[:12])
    assert not np.array_equal(out[12:], db.rss[12:])


def test_a_two_floor_site_is_located_floor_by_floor():
    config = load_config(SPEC)
    db, batch = two_floor_site([3, 5]), two_floor_site([5], seed=1)
    rows = variants.run_variant(config, "wknn_average", 0, db, [gufu_data.Period(2, batch, batch)])
    # Scored in 3-D places; AP a tells the floors apart by 20 dB, so WkNN finds every row's floor
    assert rows[-1]["floor_accuracy"] == 1.0
    assert 0.0 < rows[-1]["location_error_m"] < 5.0  # the site is 5 m across


def test_gufus_places_are_scored_floor_by_floor(monkeypatch):
    config = load_config(SPEC)
    db, batch = two_floor_site([3, 5]), two_floor_site([5], seed=1)
    real_update = Gufu.update

    def placed(self, *args, **kwargs):  # the real update, its places replaced by known ones
        result = real_update(self, *args, **kwargs)
        shifted = batch.xy + [3.0, 4.0]  # 5 m from every row's truth
        heights = np.where(np.arange(12) < 8, 4.0 * 5, 4.0 * 3 + 1.0)  # floor 5, then 3
        result["xy"] = np.c_[shifted, heights]
        return result

    monkeypatch.setattr(Gufu, "update", placed)
    rows = variants.run_variant(config, "gufu", 0, db, [gufu_data.Period(2, batch, batch)])
    assert rows[-1]["floor_accuracy"] == pytest.approx(8 / 12)
    assert rows[-1]["location_error_m"] == pytest.approx(5.0, rel=1e-6)
    # The standard fields: every row 5 m off; the last 4 on floor 3, two floors from the truth's 5
    row = rows[-1]
    assert row["2d_mean"] == pytest.approx(row["location_error_m"], rel=1e-12)
    assert row["floor_hit_rate"] == row["floor_accuracy"]
    assert row["ipin_mean"] == pytest.approx((8 * 5.0 + 4 * (5.0 + 2 * 15.0)) / 12, rel=1e-6)
    assert row["3d_mean"] == pytest.approx((8 * 5.0 + 4 * np.hypot(5.0, 2 * 3.7)) / 12, rel=1e-6)
    assert "building_hit_rate" not in row
    config = apply_overrides(load_config(SPEC), ["--config.eval.floor_penalty_m=4"])
    four = variants.run_variant(config, "gufu", 0, db, [gufu_data.Period(2, batch, batch)])
    assert four[-1]["ipin_mean"] == pytest.approx((8 * 5.0 + 4 * 13.0) / 12, rel=1e-6)


def test_standard_fields_shape_the_runs_only_when_changed_and_sum_over_periods():
    from jaxfp.methods.gufu import run, tables

    config = load_config(SPEC)
    bare = load_config(SPEC)
    with bare.eval.unlocked():  # a config from before the constants were stated
        for key in ("floor_height_m", "floor_penalty_m", "building_penalty_m"):
            del bare.eval[key]
    assert run.shaping(config, "gufu", 0) == run.shaping(bare, "gufu", 0)
    changed = apply_overrides(load_config(SPEC), ["--config.eval.floor_penalty_m=4"])
    assert run.shaping(changed, "gufu", 0)["standard_metrics"]["floor_penalty_m"] == 4.0
    # Seed 0: months at 10 and 20 m, seed 1: 30 and 40 m -> mean over seeds of each seed's mean.
    by_seed = {
        0: [{"period": 0}, {"period": 2, "ipin_mean": 10.0}, {"period": 3, "ipin_mean": 20.0}],
        1: [{"period": 0}, {"period": 2, "ipin_mean": 30.0}, {"period": 3, "ipin_mean": 40.0}],
    }
    assert tables.standard_summary(by_seed) == {"ipin_mean": 25.0}
    del by_seed[1][2]["ipin_mean"]  # a run made before the fields were scored
    assert tables.standard_summary(by_seed) == {}


def test_neighbour_average_rewrites_the_located_record_from_its_neighbours_and_the_sample():
    # Records 0 and 1 read the same (cosine 1), record 2 differs; the sample lands at record 0.
    db = np.array([[-60.0, -60.0, NAN], [-60.0, -60.0, NAN], [-30.0, -110.0, -50.0]], np.float32)
    places = np.array([[0.0, 0.0], [5.0, 0.0], [9.0, 0.0]], np.float32)
    sample = np.array([[-40.0, -80.0, -50.0]], np.float32)
    out = simple_updates.neighbour_average(db, places, sample, np.zeros((1, 2)), 0.99, 10)
    r, x = (db[0, :2] + 120) / 120, (sample[0] + 120) / 120
    c = r @ x[:2] / (np.linalg.norm(r) * np.linalg.norm(x))  # the sample's weight
    np.testing.assert_allclose(out[0, :2], (2 * db[0, :2] + c * sample[0, :2]) / (2 + c), rtol=1e-5)
    assert np.isnan(out[0, 2])  # no AP is added to the record
    np.testing.assert_array_equal(out[1:], db[1:])  # only the located record changes
    # At record 2, with no similar record, it averages with the sample alone (weight = cosine).
    at_2 = simple_updates.neighbour_average(db, places, sample, np.array([[9.0, 0.0]]), 0.99, 10)
    r2 = (db[2] + 120) / 120
    c2 = r2 @ x / (np.linalg.norm(r2) * np.linalg.norm(x))
    np.testing.assert_allclose(at_2[2], (db[2] + c2 * sample[0]) / (1 + c2), rtol=1e-5)


def test_location_then_average_blends_near_records_in_sample_order():
    db = np.array([[-60.0, np.nan], [-70.0, -80.0], [-50.0, np.nan]], np.float32)
    db_xy = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]], np.float32)
    samples = np.array([[-40.0, -60.0], [-20.0, np.nan]], np.float32)
    located = np.array([[0.0, 0.0], [0.0, 0.0]], np.float32)
    out = simple_updates.location_then_average(db, db_xy, samples, located, radius_m=2.0, blend=0.5)
    # Sample 1: record 0 (d 0, w 0.5) -> -50 and copies AP 2; record 1 (d 1, w 0.25).
    # Sample 2 then moves record 0 again from -50 (w 0.5) and record 1 from -62.5 (w 0.25).
    expected = [[-35.0, -60.0], [-51.875, -75.0], [-50.0, np.nan]]
    np.testing.assert_allclose(out, np.array(expected, np.float32), rtol=1e-6)
    assert np.isnan(db[0, 1])  # the input is not modified


@pytest.mark.slow
def test_longterm_protocol_end_to_end_and_resume(tmp_path, capsys):
    run = tmp_path / "run"
    run_experiment(OURS, run)
    results = json.loads((run / "results.json").read_text())
    assert results["periods"] == [2, 3] and results["unit"] == "month"
    assert set(results["results"]) == set(load_config(OURS).run_variants)
    for variant, row in results["results"].items():
        assert np.isfinite(row["rss_error_db"]) and np.isfinite(row["location_error_m"]), variant
        assert row["n_seeds"] == 2 and row["interval"] == "t95"
        # The cut has one floor: the standard fields are the 2-D ones, every floor hit.
        assert row["2d_mean"] == pytest.approx(row["location_error_m"]), variant
        assert row["ipin_mean"] == pytest.approx(row["2d_mean"]) and row["floor_hit_rate"] == 1.0
    standard = [name for name in results["tables"] if "per floor of difference" in name]
    assert standard and results["standard_metrics"]["floor_penalty_m"] == 15.0
    # The paired differences are the seeds' differences of each run's mean over the months.
    paired = results["tables"][
        "paired differences over seeds, rss_error_db (A - B, lower is better)"
    ]["rows"]
    assert {"gufu - static", "gufu_linked - wknn_average", "gufu - gufu_linked"} <= set(paired)
    runs = results["runs"]

    def seed_means(variant):  # period 0 (the offline stage) has no RSS error
        rows = runs[variant]
        return [np.mean([r["rss_error_db"] for r in rows[s] if r["period"]]) for s in ("0", "1")]

    expected = np.mean(np.subtract(seed_means("gufu"), seed_means("static")))
    assert paired["gufu - static"]["difference"] == pytest.approx(expected, rel=1e-9)
    assert paired["gufu - static"]["verdict"] == "no verdict (n < 5)"
    # The records per point are drawn by the seed: the never-updated database differs by seed.
    assert seed_means("static")[0] != seed_means("static")[1]
    gufu_rows = runs["gufu"]["0"]
    assert "offline_seconds" in gufu_rows[0] and [r["period"] for r in gufu_rows[1:]] == [2, 3]
    assert "wknn_average" in capsys.readouterr().out
    steps = [json.loads(line) for line in (run / "gufu" / "seed0" / "metrics.jsonl").open()]
    assert {"autoencoder/loss", "gnn/loss", "update_module/loss"} <= {k for s in steps for k in s}
    # A rerun reuses finished (variant, seed) runs and redoes a lost one to the same numbers.
    lost = run / "gufu_residual" / "seed1.json"
    before = json.loads(lost.read_text())["rows"]
    lost.unlink()
    run_experiment(OURS, run)
    again = json.loads(lost.read_text())["rows"]
    assert again[1]["rss_error_db"] == pytest.approx(before[1]["rss_error_db"], abs=1e-4)
    out = capsys.readouterr().out
    assert "gufu, seed 0: finished earlier, reused" in out
    assert "gufu_residual, seed 1: months [2, 3]" in out and "period 2: RSS error" in out
    # A changed setting recomputes exactly the runs it shapes, and says so.
    changed = "--config.variants.gufu_residual.update_rounds=1"
    chosen = ["--config.run_variants=('gufu','gufu_residual')", "--config.seeds=(0,)"]
    run_experiment(OURS, run, changed, *chosen)
    out = capsys.readouterr().out
    assert "gufu_residual, seed 0: settings changed (gufu.update_rounds: 2 -> 1)" in out
    assert "gufu, seed 0: finished earlier, reused" in out


@pytest.mark.slow
def test_synthetic_weekly_churn_protocol(tmp_path, capsys):
    spec = OURS.replace(":test", ":synthetic_test")
    # The rest: the test above; here the §7.1 baselines, iToLoc trained and co-trained in the run,
    # and a variant without the feature extractor (no autoencoder error to report).
    picked = (
        "gufu_residual",
        "gufu_linked_forgets_no_feature_extractor",
        "wknn_average",
        "wknn_neighbour_average",
        "itoloc_average",
    )
    run_experiment(spec, tmp_path, f"--config.run_variants={picked!r}")
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["unit"] == "week" and results["periods"] == [1, 2]
    assert set(results["results"]) == set(picked)
    assert (tmp_path / "itoloc_average" / "seed0" / "itoloc").is_dir()  # its stages, resumable
    for variant, row in results["results"].items():
        assert np.isfinite(row["rss_error_db"]) and np.isfinite(row["location_error_m"]), variant
    # The data's churn table counts what the world did: APs only appear or vanish with churn.
    assert sum(c["new_aps"] + c["gone_aps"] for c in results["ap_churn"].values()) > 0
    out = capsys.readouterr().out
    assert "AP changes by week" in out and "rss_error_db by week" in out


def test_synthetic_periods_churn_like_the_world():
    config = load_config(SPEC.replace(":test", ":synthetic_test"))
    config.synthetic.update(dict(n_aps=40, weeks=3))
    db, periods = gufu_data.load_periods(config, 0)
    assert [p.number for p in periods] == [1, 2, 3]
    assert db.detected.any(0).all()  # the database's AP set is what it detects
    for p in periods:
        # Batches are random places; the measurement revisits the database's survey points.
        assert len(p.batch.rss) == config.synthetic.batch
        np.testing.assert_array_equal(np.unique(p.measured.xy, axis=0), np.unique(db.xy, axis=0))
    churn = gufu_data.ap_churn(db, periods)
    heard = [set(p.batch.ap_ids[p.batch.detected.any(0)]) for p in periods]
    assert churn[2]["gone_aps"] == len(heard[0] - heard[1])
    # Fig. 19: a share of the database's APs taken out of it alone, drawn by the seed; the
    # batches still hear them, so they come back as new APs
    config.data.removed_ap_share = 0.5
    cut, cut_periods = gufu_data.load_periods(config, 0)
    assert cut.n_aps == db.n_aps - round(0.5 * db.n_aps)
    assert set(cut.ap_ids) < set(db.ap_ids)
    assert list(cut.ap_ids) == [a for a in db.ap_ids if a in set(cut.ap_ids)]  # order kept
    np.testing.assert_array_equal(cut.rss, db.select_aps(cut.ap_ids.tolist()).rss)
    assert gufu_data.ap_churn(cut, cut_periods)[1]["new_aps"] > churn[1]["new_aps"]
    assert set(gufu_data.load_periods(config, 1)[0].ap_ids) != set(cut.ap_ids)  # the seed draws
    config.data.removed_ap_share = 1.0
    with pytest.raises(ConfigError, match=r"removed_ap_share: expected a share in \[0, 1\)"):
        gufu_data.load_periods(config, 0)


def test_autoencoder_keeps_what_it_learned_for_the_aps_that_stay():
    from jaxfp.methods.gufu.autoencoder import carry_over_aps
    from jaxfp.methods.gufu.nets import Autoencoder

    old_model, new_model = Autoencoder(inputs=3, code=4), Autoencoder(inputs=2, code=4)
    old = old_model.init(jax.random.key(0), np.zeros((1, 3), np.float32))
    fresh = new_model.init(jax.random.key(1), np.zeros((1, 2), np.float32))
    params = carry_over_aps(old, np.array(["a", "b", "c"]), fresh, np.array(["b", "d"]))
    x_old = np.array([[0.2, 0.7, 0.4]], np.float32)  # b = 0.7, a and c leave
    x_new = np.array([[0.7, 0.0]], np.float32)  # b = 0.7, d new and unheard here
    # b's input row and output column moved with it; d's are fresh.
    old_b = old_model.apply(old, x_old * [0, 1, 0], method="encode")
    np.testing.assert_allclose(new_model.apply(params, x_new, method="encode"), old_b, rtol=1e-5)
    code = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(
        new_model.apply(params, code, method="decode")[:, 0],
        old_model.apply(old, code, method="decode")[:, 1],
        rtol=1e-5,
    )
    np.testing.assert_array_equal(
        params["params"]["enc0"]["kernel"][1], fresh["params"]["enc0"]["kernel"][1]
    )


def test_the_command_line_wins_over_a_variants_own_settings():
    config = apply_overrides(load_config(OURS), ["--config.gufu.update_rounds=3"])
    assert variant_settings(config, "gufu", "gufu_residual").update_rounds == 3
    assert variant_settings(config, "gufu", "gufu_residual").rewrite == "residual"
    config = apply_overrides(load_config(OURS), ["--config.variants.gufu_residual.update_rounds=4"])
    assert variant_settings(config, "gufu", "gufu_residual").update_rounds == 4
    assert variant_settings(config, "gufu", "gufu").update_rounds == 5
    with pytest.raises(ConfigError, match="not a field of config.gufu"):
        config = load_config(SPEC)
        config.variants.gufu.nope = 1
        variant_settings(config, "gufu", "gufu")


def test_autoencoder_padding_changes_no_loss_and_an_ap_swap_reuses_the_compiled_step():
    from jaxfp.methods.gufu.losses import AutoencoderStatic, alignment_loss, autoencoder_loss
    from jaxfp.methods.gufu.nets import Autoencoder
    from jaxfp.train.optimise import _steps

    # The same weights on 3 APs, unpadded and with 2 padding columns (random weights there).
    x = np.random.default_rng(0).uniform(0.2, 0.8, (6, 3)).astype(np.float32)
    plain, padded = Autoencoder(inputs=3, code=4, dropout=0.0), Autoencoder(5, 4, dropout=0.0)
    params = plain.init(jax.random.key(0), x[:1])
    wide = jax.tree.map(np.array, padded.init(jax.random.key(1), np.zeros((1, 5), np.float32)))
    for name in ("enc0", "dec0", "code"):
        for leaf in ("kernel", "bias"):
            target, source = wide["params"][name][leaf], np.asarray(params["params"][name][leaf])
            target[tuple(slice(0, n) for n in source.shape)] = source
    wide["params"]["out"]["kernel"][:, :3] = params["params"]["out"]["kernel"]
    wide["params"]["out"]["bias"][:3] = params["params"]["out"]["bias"]
    codes = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    key = jax.random.key(2)
    for loss, extra in ((autoencoder_loss, {}), (alignment_loss, {"codes": codes})):
        unpadded = loss(
            AutoencoderStatic(plain, 0), params, {"x": x, "real_columns": 3, **extra}, key
        )
        with_padding = {"x": np.pad(x, ((0, 0), (0, 2))), "real_columns": 3, **extra}
        got = loss(AutoencoderStatic(padded, 0), wide, with_padding, key)
        np.testing.assert_allclose(got, unpadded, rtol=1e-6)

    # An update that swaps an AP (c leaves, d comes) keeps the padded width and the compiled step.
    config = load_config(SPEC)
    rss, xy = small_site()
    model = Gufu(config.gufu, np.array(["a", "b", "c"]), rss, xy, jax.random.key(0))
    model.train_autoencoder(5)
    width, compiled = model.features.width, _steps._cache_size()
    assert width > 3
    model.ap_ids, model.rss = np.array(["a", "b", "d"]), np.column_stack([rss[:, :2], rss[:, 0]])
    model.train_autoencoder(5)
    assert model.features.width == width and _steps._cache_size() == compiled
    assert model.decode(model.encode(model.rss)).shape == (12, 3)
    with pytest.raises(ValueError, match="RSS over 2 APs"):
        model.encode(model.rss[:, :2])


def test_locations_far_from_the_origin_keep_their_spread_after_scaling():
    from jaxfp.methods.gufu.site_graph import LocationScale

    xy = np.array([[-7300.0, 4.86e6], [-7290.0, 4.86e6], [-7300.0, 4.86e6 + 10.0]])
    scale = LocationScale.of(xy)
    np.testing.assert_allclose(scale.spread, (xy - xy.mean(0)).std())
    scaled = scale.scaled(xy)
    assert np.linalg.norm(scaled[0] - scaled[1]) > 0.5  # 10 m stays about one unit apart
    np.testing.assert_allclose(scale.places(scaled), xy, rtol=0, atol=1e-3)
    values = LocationScale.of(xy, "values")
    assert np.linalg.norm(values.scaled(xy)[0] - values.scaled(xy)[1]) < 1e-4  # collapsed


@pytest.mark.parametrize("init", ["weighted_average", "zero", "one", "uniform"])
def test_ap_nodes_start_as_table_8_says(init):
    config = load_config(SPEC)
    config.gufu.update(dict(ap_init=init, gnn_steps=60))
    rss, xy = small_site()
    model = Gufu(config.gufu, np.array(["a", "b", "c"]), rss, xy, jax.random.key(0))
    offline = model.offline()
    graph = model._database_graph
    nodes = np.asarray(model._padded(graph).graph.nodes)
    aps = nodes[graph.num_samples : graph.num_samples + graph.num_aps]
    np.testing.assert_array_equal(nodes[: graph.num_samples], graph.sample_features)
    if init == "weighted_average":  # each AP's samples' features weighted by RSS + 120
        w = np.where(np.isfinite(rss), rss + 120.0, 0.0)
        want = (w.T @ graph.sample_features) / w.sum(0)[:, None]
        np.testing.assert_allclose(aps, want, rtol=1e-5)
    elif init == "uniform":  # one draw per AP for the run: an added AP leaves the others' rows
        assert ((aps >= 0) & (aps < 1)).all() and len(np.unique(aps)) == aps.size
        more = graph._replace(ap_ids=np.array(["a", "b", "c", "d"]))
        np.testing.assert_array_equal(model._ap_features(more)[:3], aps)
    else:
        np.testing.assert_array_equal(aps, np.full_like(aps, {"zero": 0.0, "one": 1.0}[init]))
    # Table 8's training time: the GNN's settling step within its steps, its seconds
    assert 50 <= offline["gnn_settled_step"] <= 60 and offline["gnn_seconds"] > 0
    z = model.embed(graph)
    dead = (np.abs(z).max(1) < 1e-6).mean()
    assert offline["gnn_zero_embeddings"] == dead  # the records' all-zero embeddings


def test_table_8_compares_the_settling_steps_paired_over_seeds():
    from jaxfp.methods.gufu.tables import offline_tables

    def rows(step, per_step=0.002):
        return [
            {
                "period": 0,
                "gnn_settled_step": step,
                "gnn_seconds": 1.0,
                "gnn_seconds_per_step": per_step,
                "gnn_loss": 1.0,
                "offline_seconds": 2.0,
            }
        ]

    runs = {
        "gufu": {s: rows(100 + s) for s in range(5)},
        "gufu_ap_init_zero": {s: rows(300 + 2 * s, 0.001) for s in range(5)},
        "static": {s: [{"period": 1}] for s in range(5)},  # no offline GNN: not in the table
    }
    tables = offline_tables(runs)
    (table_name, paired_name) = tables
    assert "1.00 ms a step" in table_name  # the fastest fit's rate
    table = tables[table_name]["rows"]
    assert set(table) == {"gufu", "gufu_ap_init_zero"}
    assert table["gufu"]["gnn_settled_step"] == 102.0
    assert table["gufu"]["gnn_settled_seconds"] == pytest.approx(0.102)
    diff = tables[paired_name]["rows"]["gufu - gufu_ap_init_zero"]
    assert diff["difference"] == pytest.approx(-202.0) and diff["verdict"] == "A better"
    assert offline_tables({"static": runs["static"]}) == {}


@pytest.mark.slow
def test_table_8_protocol_reports_the_offline_gnns_training_time(tmp_path):
    spec = str(REPO / "experiments" / "gufu" / "ablations.py:table8_test")
    run_experiment(spec, tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["results"]) == {
        "gufu",
        "gufu_ap_init_zero",
        "gufu_ap_init_one",
        "gufu_ap_init_uniform",
    }
    (caption,) = [name for name in results["tables"] if name.startswith("offline GNN training")]
    rows = results["tables"][caption]["rows"]
    assert set(rows) == set(results["results"])
    for row in rows.values():  # 60 offline GNN steps: settled by the first window or after
        assert 50 <= row["gnn_settled_step"] <= 60 and 0 <= row["gnn_zero_embeddings"] <= 1
    paired = results["tables"][
        "paired differences over seeds, gnn_settled_step (A - B, lower is better)"
    ]
    assert set(paired["rows"]) == {f"gufu - {v}" for v in rows if v != "gufu"}
