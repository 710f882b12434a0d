"""FPN: the radio map, AP removal, walks, the LSTM over a walk, a short run, the protocols."""

import json
import shutil

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxfp.config import ConfigError, load_config
from jaxfp.data.places import ReferencePoints
from jaxfp.data.synthetic import WorldParams, make_world, relocate_aps
from jaxfp.data.types import FingerprintSet
from jaxfp.methods.fpn import baselines, walks
from jaxfp.methods.fpn.nets import MapEncoder, Positioner, Recurrent
from jaxfp.methods.fpn.radio_map import radio_map, removal_mask, remove_aps, to_unit
from jaxfp.methods.fpn.training import LossSettings, make_loss
from jaxfp.train.state import TrainState
from jaxfp.train.steps import make_train_step

from ...conftest import REPO, run_experiment

SYNTHETIC = str(REPO / "experiments" / "fpn" / "synthetic.py")
DRIFT = str(REPO / "experiments" / "fpn" / "drift.py")


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


def test_kalman_follows_a_jump_partly_and_nearest_point_picks_the_closest_row():
    measured = np.zeros((1, 4, 2))
    measured[0, 2:] = [4.0, 0.0]
    track = baselines.kalman_track(measured, process_std_m=1.0, measurement_std_m=1.0)
    np.testing.assert_allclose(track[0, :2], 0.0)
    assert 0 < track[0, 2, 0] < 4 and track[0, 2, 0] < track[0, 3, 0] < 4
    radio = np.array([[0.0, 0.0], [1.0, 1.0], [0.2, 0.9]])
    found = baselines.nearest_point(np.array([[[0.9, 0.9], [0.1, 0.0]]]), radio)
    np.testing.assert_array_equal(found, [[1, 0]])


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


@pytest.mark.slow
def test_synthetic_protocol_end_to_end_and_resume_after_a_kill(tmp_path):
    run = tmp_path / "run"
    args = ("--config.train.max_to_keep=5",)
    out = run_experiment(SYNTHETIC + ":test", run, *args)
    rows = out["rows"]
    assert {
        "original APs: fpn",
        "moved APs: fpn, old map",
        "moved APs: fpn, new map untrained",
        "moved APs: fpn, new map fine-tuned",
        "moved APs: plain_lstm, new map fine-tuned",
        "original APs: Kalman",
        "moved APs: WkNN",
    } <= set(rows)
    assert rows["moved APs: fpn, new map fine-tuned"]["seconds"] > 0
    for row in rows.values():
        assert np.isfinite(row["mean_m"]) and 0 <= row["floor_hit"] <= 1
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
def test_drift_protocol_end_to_end(tmp_path):
    out = run_experiment(DRIFT + ":test", tmp_path / "run", "--config.run_variants=('fpn',)")
    rows = out["rows"]
    assert {
        "month 01 fpn",
        "month 02 fpn, month-1 map and weights",
        "month 02 fpn, new map untrained",
        "month 03 fpn, fine-tuned",
        "month 03 WkNN",
        "month 03 nearest RP",
    } <= set(rows)
    assert all(np.isfinite(row["mean_m"]) for row in rows.values())


def test_configs_and_bad_variants(tmp_path):
    with pytest.raises(ConfigError, match="unknown"):
        run_experiment(SYNTHETIC + ":test", tmp_path / "run", "--config.run_variants=('fpm',)")
    with pytest.raises(ConfigError, match="tset"):
        load_config(DRIFT + ":tset")
    c = load_config(SYNTHETIC)
    assert c.train.validation_fraction == 0.2 and c.train.ap_removal_rate > 0
    assert c.model.layers == 2 and c.synthetic.rp_spacing_m == 3.0 and c.synthetic.n_floors == 3
