"""FPN: the radio map, AP removal, walks, the LSTM over a walk, the loss and the Kalman filter by
value, each seed on its own data, a short run, the protocols."""

import json
import math
import shutil

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.stats

from jaxfp.config import ConfigError, load_config
from jaxfp.data.places import ReferencePoints
from jaxfp.data.synthetic import WorldParams, make_world, relocate_aps
from jaxfp.data.types import FingerprintSet
from jaxfp.methods.fpn import baselines, walks
from jaxfp.methods.fpn.data import common_points, synthetic_draw
from jaxfp.methods.fpn.losses import LossSettings, cross_entropy, make_loss
from jaxfp.methods.fpn.nets import MapEncoder, Positioner, Recurrent
from jaxfp.methods.fpn.predict import predict_points, stacked_cross_entropy
from jaxfp.methods.fpn.radio_map import radio_map, removal_mask, remove_aps, to_unit
from jaxfp.methods.fpn.report import Evaluation
from jaxfp.train.state import TrainState
from jaxfp.train.steps import make_train_step

from ...conftest import REPO, run_experiment

SYNTHETIC = str(REPO / "experiments" / "fpn" / "synthetic.py")
DRIFT = str(REPO / "experiments" / "fpn" / "drift.py")
VARIANTS = str(REPO / "experiments" / "fpn" / "variants.py")


def test_radio_map_on_a_hand_case():
    nan = np.nan
    rss = np.array(
        [[-60, -96, nan], [-70, -90, nan], [-50, nan, -94], [-80, -100, -95]], np.float32
    )
    fs = FingerprintSet(
        rss=rss,
        detected=~np.isnan(rss),
        ap_ids=np.array(["a", "b", "c"]),
        xy=np.array([[0.0, 0], [0, 0], [3, 0], [3, 0]]),
        rp_id=np.array([0, 0, 1, 1]),
    )
    points = ReferencePoints.of(fs)
    values, counts = radio_map(fs, points, threshold_dbm=-95.0, missing_dbm=-100.0)
    # -96 dBm is below -95: not received, -100. -95 itself is received. Undetected: -100.
    np.testing.assert_allclose(values, [[-65, -95, -100], [-65, -100, -94.5]])
    np.testing.assert_array_equal(counts, [2, 2])
    np.testing.assert_allclose(to_unit(values, -100.0)[0], [0.35, 0.05, 0.0])
    empty = ReferencePoints(np.array([[0.0, 0], [9, 9]]), np.array([0, 0]))
    values, counts = radio_map(fs, empty, -95.0, -100.0)
    np.testing.assert_array_equal(counts, [2, 0])
    np.testing.assert_allclose(values[1], -100.0)


def test_ap_removal_keeps_shapes_and_masks_the_same_aps():
    signals = jnp.full((4, 5, 30), 0.4)
    radio = jnp.full((7, 30), 0.3)
    kept = removal_mask(jax.random.key(0), 30, 0.3)
    assert kept.shape == (30,) and kept.dtype == jnp.bool_ and 0 < int(kept.sum()) < 30
    s, m = remove_aps(signals, kept), remove_aps(radio, kept)
    assert s.shape == signals.shape and m.shape == radio.shape
    np.testing.assert_array_equal(np.asarray(s[0, 0] > 0), np.asarray(kept))
    np.testing.assert_array_equal(np.asarray(m[3] > 0), np.asarray(kept))
    assert bool(removal_mask(jax.random.key(0), 30, 0.0).all())


def test_walks_only_step_between_neighbours_and_draw_scans_of_the_visited_point():
    xy = np.array([[0.0, 0], [3, 0], [6, 0], [0, 3], [0, 0], [20, 20]])
    floor = np.array([0, 0, 0, 0, 1, 0])
    neighbours = walks.neighbour_lists(xy, floor, 3.05)
    assert [n.tolist() for n in neighbours] == [[1, 3], [0, 2], [1], [0], [], []]
    path = walks.random_walks(neighbours, 50, 12, np.random.default_rng(0))
    assert path.shape == (50, 12)
    adjacent = {(a, b) for a, n in enumerate(neighbours) for b in n}
    assert all(
        (a, b) in adjacent for a, b in zip(path[:, :-1].ravel(), path[:, 1:].ravel(), strict=True)
    )
    assert not np.isin(path, [4, 5]).any()  # points without neighbours are never visited
    point_of_scan = np.array([0, 1, 2, 3, 0, 1, 2, 3, -1, 2])
    rows = walks.ScanPool(point_of_scan, 6).draw(path, np.random.default_rng(1))
    np.testing.assert_array_equal(point_of_scan[rows], path)
    with pytest.raises(ValueError, match="radius"):
        walks.random_walks([np.array([], int)] * 3, 2, 3, np.random.default_rng(0))


def test_lstm_over_a_walk_equals_step_by_step_cell_calls():
    net = Recurrent(features=6, layers=2)
    xs = jax.random.normal(jax.random.key(0), (3, 5, 4))
    params = net.init(jax.random.key(1), xs)["params"]
    ys, carry = net.apply({"params": params}, xs)
    cell = nn.OptimizedLSTMCell(6)
    carries = [cell.initialize_carry(jax.random.key(2), (3, 4)), None]
    carries[1] = cell.initialize_carry(jax.random.key(2), (3, 6))
    outputs = []
    for t in range(5):
        x = xs[:, t]
        for layer in range(2):
            cell_params = {"params": params[f"lstm{layer}"]}
            carries[layer], x = cell.apply(cell_params, carries[layer], x)
        outputs.append(x)
    np.testing.assert_allclose(ys, jnp.stack(outputs, 1), rtol=1e-5, atol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), carry, tuple(carries))

    # Streaming (one scan at a time, the carry passed on) equals the whole walk.
    fpn = Positioner(7, features=8, encoder_hidden=(16,))
    signals = jax.random.uniform(jax.random.key(3), (2, 5, 4))
    radio = jax.random.uniform(jax.random.key(4), (7, 4))
    variables = fpn.init(jax.random.key(5), signals, radio)
    whole, _ = fpn.apply(variables, signals, radio)
    state, steps = None, []
    for t in range(5):
        logits, state = fpn.apply(variables, signals[:, t : t + 1], radio, state)
        steps.append(logits)
    # float32 through 5 LSTM steps, fused differently as one scan and as 5 calls: a few 1e-5
    # apart on some CPUs (5.6e-5 seen on logits of ~3); a dropped carry would be off by O(1).
    np.testing.assert_allclose(whole, jnp.concatenate(steps, 1), rtol=1e-4, atol=1e-4)


def test_a_short_run_is_finite_moves_every_parameter_and_the_encoder_starts_as_the_map():
    net = Positioner(6, features=8, encoder_hidden=(16,))
    signals = jax.random.uniform(jax.random.key(0), (4, 5, 10))
    radio = jax.random.uniform(jax.random.key(1), (6, 10))
    params = net.init(jax.random.key(2), signals, radio)["params"]
    encoder = MapEncoder((16,))
    np.testing.assert_allclose(encoder.apply({"params": params["MapEncoder_0"]}, radio), radio)
    before = jax.tree.map(np.asarray, params)  # the steps donate the state
    state = TrainState.create(apply_fn=net.apply, params=params, tx=optax.adam(1e-2))
    step = make_train_step(make_loss(LossSettings(net, 0.2)))
    batch = {"signals": signals, "map": radio, "point": jnp.arange(20).reshape(4, 5) % 6}
    for i in range(5):
        state, metrics = step(state, batch, jax.random.key(i))
        assert float(metrics["finite"]) == 1.0 and np.isfinite(float(metrics["loss"]))
    moved = jax.tree.map(lambda a, b: bool(np.any(a != np.asarray(b))), before, state.params)
    assert all(jax.tree.leaves(moved))


def test_kalman_is_pinned_to_its_hand_computed_outputs():
    # q = r = 1, x0 = z0, P0 = r. t1: P = 2, K = 2/3, x = 0, P = 2/3. t2: P = 5/3, K = 5/8,
    # x = 5/8 * 4 = 2.5, P = 5/8. t3: P = 13/8, K = 13/21, x = 2.5 + 13/21 * 1.5 = 24/7.
    measured = np.zeros((1, 4, 2))
    measured[0, 2:, 0] = 4.0
    measured[0, :, 1] = 1.0
    track = baselines.kalman_track(measured, process_std_m=1.0, measurement_std_m=1.0)
    np.testing.assert_allclose(track[0, :, 0], [0.0, 0.0, 2.5, 24 / 7], rtol=1e-12)
    np.testing.assert_allclose(track[0, :, 1], 1.0, rtol=1e-12)


def test_kalman_equals_an_independent_matrix_recursion():
    rng = np.random.default_rng(0)
    measured = rng.normal(0, 3, (3, 7, 2))
    q, r = 0.7**2, 2.5**2
    expected = np.empty_like(measured)
    for w in range(3):  # the textbook predict / update with 2x2 covariances, one walk at a time
        x, cov = measured[w, 0], r * np.eye(2)
        expected[w, 0] = x
        for t in range(1, 7):
            cov = cov + q * np.eye(2)
            gain = cov @ np.linalg.inv(cov + r * np.eye(2))
            x = x + gain @ (measured[w, t] - x)
            cov = (np.eye(2) - gain) @ cov
            expected[w, t] = x
    track = baselines.kalman_track(measured, process_std_m=0.7, measurement_std_m=2.5)
    np.testing.assert_allclose(track, expected, rtol=1e-12, atol=1e-12)


def test_nearest_point_picks_the_closest_row():
    radio = np.array([[0.0, 0.0], [1.0, 1.0], [0.2, 0.9]])
    found = baselines.nearest_point(np.array([[[0.9, 0.9], [0.1, 0.0], [0.3, 0.8]]]), radio)
    np.testing.assert_array_equal(found, [[1, 0, 2]])


class _Dot(nn.Module):
    """Logits = signal . map row: a net whose output a hand can compute."""

    @nn.compact
    def __call__(self, signals, radio_map, carry=None):
        return jnp.einsum("btl,rl->btr", signals, radio_map), carry


def test_cross_entropy_over_points_on_a_hand_case():
    # Step 1: logits (0, 1, 0), point 1: -log(e / (2 + e)). Step 2: logits (2, 0, 0), point 2:
    # -log(1 / (e^2 + 2)). The loss is their mean; the first step is right, the second wrong.
    batch = {
        "signals": jnp.array([[[0.0, 1.0, 0.0], [2.0, 0.0, 0.0]]]),
        "map": jnp.eye(3),
        "point": jnp.array([[1, 2]]),
    }
    expected = ((math.log(2 + math.e) - 1) + math.log(math.e**2 + 2)) / 2
    assert expected == pytest.approx(1.395495, abs=1e-6)
    loss_fn = make_loss(LossSettings(_Dot(), 0.0))
    loss, (metrics, _) = loss_fn({}, None, batch, jax.random.key(0))
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(metrics["accuracy"]) == 0.5
    logits = batch["signals"] @ batch["map"]
    assert float(cross_entropy(logits, batch["point"])) == pytest.approx(expected, rel=1e-6)


def test_the_loss_removes_the_same_aps_from_map_and_signals():
    key = jax.random.key(3)
    signals = jax.random.uniform(jax.random.key(1), (2, 3, 8))
    radio = jax.random.uniform(jax.random.key(2), (5, 8))
    point = jnp.array([[0, 1, 2], [3, 4, 0]])
    kept = np.asarray(removal_mask(key, 8, 0.5))
    assert 0 < kept.sum() < 8  # this key removes some APs and keeps some
    logits = np.einsum("btl,rl->btr", np.asarray(signals) * kept, np.asarray(radio) * kept)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_p, np.asarray(point)[..., None], -1).mean()
    batch = {"signals": signals, "map": radio, "point": point}
    loss, _ = make_loss(LossSettings(_Dot(), 0.5))({}, None, batch, key)
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    unmasked, _ = make_loss(LossSettings(_Dot(), 0.0))({}, None, batch, key)
    assert abs(float(unmasked) - float(expected)) > 1e-3


def test_each_seed_is_scored_on_its_own_walks_and_map():
    net = Positioner(4, features=6, encoder_hidden=(8,))
    signals = jax.random.uniform(jax.random.key(0), (2, 3, 5, 6))  # (seeds, walks, steps, APs)
    maps = jax.random.uniform(jax.random.key(1), (2, 4, 6))
    point = jnp.arange(30).reshape(2, 3, 5) % 4
    params = [net.init(jax.random.key(s), signals[s], maps[s])["params"] for s in range(2)]
    stacked = jax.tree.map(lambda *p: jnp.stack(p), *params)
    found = predict_points(net, stacked, np.asarray(signals), np.asarray(maps), chunk=2)
    ce = stacked_cross_entropy(net, stacked, signals, maps, point)
    for s in range(2):
        logits, _ = net.apply({"params": params[s]}, signals[s], maps[s])
        np.testing.assert_array_equal(found[s], np.argmax(logits, -1))
        assert float(ce[s]) == pytest.approx(float(cross_entropy(logits, point[s])), rel=1e-5)
    swapped, _ = net.apply({"params": params[0]}, signals[0], maps[1])  # seed 1's map
    assert float(cross_entropy(swapped, point[0])) != pytest.approx(float(ce[0]), rel=1e-4)


def test_a_seed_draws_its_own_world_surveys_and_noise():
    s = load_config(SYNTHETIC + ":test").synthetic
    a, again, b = synthetic_draw(s, 12.0, 0), synthetic_draw(s, 12.0, 0), synthetic_draw(s, 12.0, 1)
    for period in ("before", "after"):
        for kind in ("map", "train", "test"):
            np.testing.assert_array_equal(a[period][kind].rss, again[period][kind].rss)
            assert not np.array_equal(
                np.nan_to_num(a[period][kind].rss), np.nan_to_num(b[period][kind].rss)
            )
    moved = np.nanmean(np.abs(a["after"]["map"].rss - a["before"]["map"].rss))
    assert moved > 1.0  # the moved APs change the map survey
    points = common_points([a["before"]["map"], b["before"]["map"], b["after"]["test"]])
    assert len(points) == 2 * (9 // 3) * (6 // 3)  # two floors of a 3 m grid over 9 x 6 m


def test_paired_rows_are_per_seed_differences_and_skip_missing_rows():
    out = Evaluation((0, 1, 2, 3, 4))
    a = np.array([1.0, 1.2, 0.9, 1.1, 1.0])
    b = a + np.array([0.5, 0.4, 0.6, 0.5, 0.5])
    scores = {"p95_m": np.ones(5), "floor_hit": np.ones(5)}
    out.add("A", {**scores, "mean_m": a})
    out.add("B", {**scores, "mean_m": b})
    rows = out.paired([("A - B", "A", "B"), ("A - C", "A", "C")])
    assert list(rows) == ["A - B"]
    d = a - b
    half = scipy.stats.t.ppf(0.975, 4) * d.std(ddof=1) / math.sqrt(5)
    assert rows["A - B"]["diff_m"] == pytest.approx(-0.5)
    assert rows["A - B"]["diff_m_ci_low"] == pytest.approx(-0.5 - half)
    assert rows["A - B"]["verdict"] == "A better"
    assert out.rows["B"]["per_seed_mean_m"]["3"] == pytest.approx(1.6)


def test_the_walk_filter_only_moves_to_neighbours_when_the_scans_say_nothing():
    xy = np.array([[0.0, 0], [3, 0], [6, 0], [9, 0]])
    neighbours = walks.neighbour_lists(xy, np.zeros(4, int), 3.05)
    radio = np.eye(4)
    signals = np.full((1, 3, 4), 0.25)
    signals[0, 0] = radio[0]  # a clear start at point 0, then scans equally far from every row
    found = baselines.walk_filter(signals, radio, neighbours, signal_std=0.3)
    np.testing.assert_array_equal(found[0, :2], [0, 1])  # point 1 is point 0's only neighbour
    assert found[0, 2] in (0, 2)


def test_relocated_aps_keep_their_ids_and_move():
    world = make_world(WorldParams(n_aps=10), 0)
    moved = relocate_aps(world, 4, 0)
    changed = np.any(moved.ap_xy != world.ap_xy, axis=1)
    assert changed.sum() == 4 and (moved.ap_ids == world.ap_ids).all()
    np.testing.assert_array_equal(moved.ap_power, world.ap_power)
    with pytest.raises(ValueError, match="count"):
        relocate_aps(world, 11, 0)


def _without_seconds(rows):
    return {k: {c: v for c, v in row.items() if c != "seconds"} for k, row in rows.items()}


def _check_over_seeds(row, n):
    """The row's mean and t-interval recomputed from its per-seed values."""
    values = np.array(list(row["per_seed_mean_m"].values()))
    assert row["n_seeds"] == len(values) == n and row["mean_m"] == pytest.approx(values.mean())
    half = scipy.stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n)
    assert row["mean_m_ci_high"] == pytest.approx(values.mean() + half)


@pytest.mark.slow
def test_synthetic_protocol_end_to_end_and_resume_after_a_kill(tmp_path):
    run = tmp_path / "run"
    args = ("--config.train.max_to_keep=5",)
    out = run_experiment(SYNTHETIC + ":test", run, *args)
    rows = out["rows"]
    assert set(rows) == {
        *(f"{p}: {m}" for p in ("original APs", "moved APs") for m in ("nearest RP", "Kalman")),
        *(f"original APs: {n}" for n in ("fpn", "plain_lstm")),
        "moved APs: fpn, old map",
        *(
            f"moved APs: {n}, new map {s}"
            for n in ("fpn", "plain_lstm")
            for s in ("untrained", "fine-tuned")
        ),
    }
    assert rows["moved APs: fpn, new map fine-tuned"]["seconds"] > 0
    for row in rows.values():
        _check_over_seeds(row, 2)
    # Seeds are replicates: the basic fingerprint, which trains nothing, differs between them.
    per_seed = rows["original APs: nearest RP"]["per_seed_mean_m"]
    assert per_seed["0"] != per_seed["1"]
    paired = out["paired"]
    assert "original APs: fpn - fpn_raw_map" not in paired  # not run by the default config
    for name, a, b in (
        ("original APs: fpn - plain_lstm", "original APs: fpn", "original APs: plain_lstm"),
        (
            "moved APs: fpn untrained - nearest RP",
            "moved APs: fpn, new map untrained",
            "moved APs: nearest RP",
        ),
    ):
        diff = [rows[a]["per_seed_mean_m"][s] - rows[b]["per_seed_mean_m"][s] for s in ("0", "1")]
        assert paired[name]["diff_m"] == pytest.approx(np.mean(diff))
        assert paired[name]["verdict"] == "no verdict (n < 5)"
    results = json.loads((run / "results.json").read_text())
    assert set(results["tables"]) == {
        "paired differences of the mean error over seeds (A - B, m; lower is better)"
    }
    assert (run / "plots" / "per_point_error_fpn.png").stat().st_size > 0
    lines = (run / "train" / "fpn" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r for r in records if "finite" in r][-1]["finite"] == 1.0
    assert any("eval/val_ce" in r for r in records)
    # A kill after the second-to-last checkpoint of a training stage: the rerun resumes there.
    checkpoints = run / "train" / "fpn" / "checkpoints"
    steps = sorted(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit())
    assert len(steps) >= 2
    shutil.rmtree(checkpoints / str(steps[-1]))
    shutil.rmtree(run / "adapt")
    (run / "results.json").unlink()
    again = run_experiment(SYNTHETIC + ":test", run, *args)
    assert _without_seconds(again["rows"]) == _without_seconds(rows)


@pytest.mark.slow
def test_drift_protocol_with_every_baseline_end_to_end(tmp_path):
    out = run_experiment(
        VARIANTS + ":drift_test", tmp_path / "run", "--config.run_variants=('fpn',)"
    )
    rows = out["rows"]
    assert {
        "month 01 fpn",
        "month 02 fpn, month-1 map and weights",
        "month 02 fpn, new map untrained",
        "month 03 fpn, fine-tuned",
        "month 03 WkNN",
        "month 03 walk filter",
        "month 03 nearest RP",
    } <= set(rows)
    for row in rows.values():
        _check_over_seeds(row, 2)
    # The scans are fixed; the seeds' test walks differ, so the basic fingerprint's error does.
    per_seed = rows["month 02 nearest RP"]["per_seed_mean_m"]
    assert per_seed["0"] != per_seed["1"]
    assert {"month 01: fpn - Kalman", "month 03: fpn fine-tuned - fpn untrained"} <= set(
        out["paired"]
    )


def test_configs_and_bad_variants(tmp_path):
    with pytest.raises(ConfigError, match="unknown"):
        run_experiment(SYNTHETIC + ":test", tmp_path / "run", "--config.run_variants=('fpm',)")
    with pytest.raises(ConfigError, match="baselines.run"):
        run_experiment(SYNTHETIC + ":test", tmp_path / "run", "--config.baselines.run=('kalman',)")
    with pytest.raises(ConfigError, match="tset"):
        load_config(DRIFT + ":tset")
    c = load_config(SYNTHETIC)
    assert c.train.validation_fraction == 0.2 and c.train.ap_removal_rate > 0
    assert c.model.layers == 2 and c.synthetic.rp_spacing_m == 3.0 and c.synthetic.n_floors == 3
    assert dict(c.train.optimizer) == {"name": "adam", "learning_rate": 1e-3}
    assert c.adapt.optimizer.learning_rate == 1e-3 and c.adapt.num_steps == 300
    for spec in (SYNTHETIC, DRIFT, VARIANTS, VARIANTS + ":drift"):
        assert len(load_config(spec).seeds) >= 5, spec
    # The default configs hold the paper's rows; the ablation and our baselines are variants.py's.
    for spec in (SYNTHETIC, DRIFT):
        c = load_config(spec)
        assert set(c.run_variants) == {"fpn", "plain_lstm"}
        assert set(c.baselines.run) == {"nearest RP", "Kalman"}
    assert "fpn_raw_map" in load_config(VARIANTS).run_variants
