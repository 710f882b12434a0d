"""FPN: the radio map, AP removal, walks, the LSTM over a walk, the loss and the Kalman filter by
value, each seed on its own data, a short run, the protocols."""

import json
import math
import shutil

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
import scipy.stats

from jaxfp.config import ConfigError, load_config, variant_settings
from jaxfp.data.places import ReferencePoints
from jaxfp.data.synthetic import WorldParams, make_world, relocate_aps, survey
from jaxfp.data.types import FingerprintSet
from jaxfp.eval.iso18305 import StandardConstants
from jaxfp.methods.fpn import baselines, walks
from jaxfp.methods.fpn.data import ScanNoise, common_points, synthetic_draw, with_noise
from jaxfp.methods.fpn.losses import LossSettings, cross_entropy, make_loss
from jaxfp.methods.fpn.nets import (
    MapEncoder,
    MapVectorEncoder,
    Positioner,
    PositioningNetwork,
    Recurrent,
)
from jaxfp.methods.fpn.predict import (
    expected_position,
    predict_points,
    predict_top,
    stacked_cross_entropy,
)
from jaxfp.methods.fpn.radio_map import radio_map, removal_mask, remove_aps, to_unit
from jaxfp.methods.fpn.report import Evaluation
from jaxfp.methods.fpn.study import Study
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

    # Streaming (one scan at a time, the carry passed on) equals the whole walk, for the paper's
    # network and our comparator.
    for network in ("paper", "compare"):
        fpn = Positioner(7, features=8, encoder_hidden=(16,), network=network)
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


@pytest.mark.parametrize("network", ["paper", "compare"])
def test_a_short_run_is_finite_and_moves_every_parameter(network):
    net = Positioner(6, features=8, encoder_hidden=(16,), network=network)
    signals = jax.random.uniform(jax.random.key(0), (4, 5, 10))
    radio = jax.random.uniform(jax.random.key(1), (6, 10))
    params = net.init(jax.random.key(2), signals, radio)["params"]
    if network == "compare":  # our comparator's encoder starts as the map
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


def test_the_papers_fpn_sees_the_map_only_through_v():
    net = Positioner(6, features=8, encoder_hidden=(16,))  # network="paper", the default
    signals = jax.random.uniform(jax.random.key(0), (3, 4, 10))
    map_a = jax.random.uniform(jax.random.key(1), (6, 10))
    map_b = jax.random.uniform(jax.random.key(2), (6, 10))
    variables = net.init(jax.random.key(3), signals, map_a)
    encoder = MapVectorEncoder((16,))
    v_b = encoder.apply({"params": variables["params"]["encoder"]}, map_b)
    assert v_b.shape == (10,)  # V has the signal's size (§3.2.1)
    out_a, _ = net.apply(variables, signals, map_a)
    out_b, _ = net.apply(variables, signals, map_b)
    assert float(jnp.abs(out_a - out_b).max()) > 1e-4  # a changed map changes the output

    def v_of_map_b(next_fun, args, kwargs, context):
        if isinstance(context.module, MapVectorEncoder):
            return v_b
        return next_fun(*args, **kwargs)

    # Map A with map B's V gives map B's output: nothing of the map reaches the positioning
    # network except V.
    with nn.intercept_methods(v_of_map_b):
        swapped, _ = net.apply(variables, signals, map_a)
    np.testing.assert_allclose(swapped, out_b, rtol=1e-6, atol=1e-6)
    # And the output's dependence on the map is V's: d out / d map = (d out / d V)(d V / d map).
    grad_map = jax.grad(lambda m: net.apply(variables, signals, m)[0].sum())(map_a)
    assert float(jnp.abs(grad_map).max()) > 0
    pos = {"params": variables["params"]["positioning"]}
    positioning = PositioningNetwork(6, 8, 2)
    grad_v = jax.grad(lambda v: positioning.apply(pos, signals, v)[0].sum())(
        encoder.apply({"params": variables["params"]["encoder"]}, map_a)
    )
    _, vjp = jax.vjp(lambda m: encoder.apply({"params": variables["params"]["encoder"]}, m), map_a)
    np.testing.assert_allclose(grad_map, vjp(grad_v)[0], rtol=1e-4, atol=1e-6)


def test_the_paper_network_joins_s_and_v_as_configured():
    signals = jnp.ones((1, 2, 3))
    radio = jnp.zeros((4, 3))
    with pytest.raises(ValueError, match="model.join"):
        Positioner(4, features=4, encoder_hidden=(8,), join="stack").init(
            jax.random.key(0), signals, radio
        )
    with pytest.raises(ValueError, match="model.network"):
        Positioner(4, features=4, network="papr").init(jax.random.key(0), signals, radio)
    added = Positioner(4, features=4, encoder_hidden=(8,), join="add")
    params = added.init(jax.random.key(0), signals, radio)["params"]
    # join="add" feeds L inputs to the first LSTM layer, "concat" 2 L.
    assert params["positioning"]["lstm"]["lstm0"]["ii"]["kernel"].shape == (3, 4)
    concat = Positioner(4, features=4, encoder_hidden=(8,))
    params = concat.init(jax.random.key(0), signals, radio)["params"]
    assert params["positioning"]["lstm"]["lstm0"]["ii"]["kernel"].shape == (6, 4)


def test_kalman_is_pinned_to_its_hand_computed_outputs():
    # q = r = 1, x0 = z0, P0 = r. t1: P = 2, K = 2/3, x = 0, P = 2/3. t2: P = 5/3, K = 5/8,
    # x = 5/8 * 4 = 2.5, P = 5/8. t3: P = 13/8, K = 13/21, x = 2.5 + 13/21 * 1.5 = 24/7.
    measured = np.zeros((1, 4, 2))
    measured[0, 2:, 0] = 4.0
    measured[0, :, 1] = 1.0
    track = baselines.kalman_track(measured, process_std_m=1.0, measurement_std_m=1.0)
    np.testing.assert_allclose(track[0, :, 0], [0.0, 0.0, 2.5, 24 / 7], rtol=1e-12)
    np.testing.assert_allclose(track[0, :, 1], 1.0, rtol=1e-12)


def test_constant_velocity_kalman_on_a_hand_case():
    # q = 0, r = 1, P0 = diag(1, 1), x0 = (z0, 0) = (0, 0). Predict: x = (0, 0),
    # P = F P0 F' = [[2, 1], [1, 1]]. Gain K = (2, 1) / 3. z1 = 2: x = (4/3, 2/3);
    # P = (I - K H) P = [[2/3, 1/3], [1/3, 2/3]]. Predict: x = (2, 2/3), P = [[2, 1], [1, 2/3]];
    # K = (2, 1) / 3, z2 = 4: x = (2 + 4/3, 2/3 + 2/3) = (10/3, 4/3).
    measured = np.zeros((1, 3, 2))
    measured[0, :, 0] = [0.0, 2.0, 4.0]
    track = baselines.kalman_cv_track(measured, 0.0, 1.0, 1.0)
    np.testing.assert_allclose(track[0, :, 0], [0.0, 4 / 3, 10 / 3], rtol=1e-12)
    np.testing.assert_allclose(track[0, :, 1], 0.0, atol=1e-12)
    # A walker at constant velocity with exact fixes is tracked ever closer; constant-position
    # filtering lags it by a constant amount.
    line = np.zeros((1, 30, 2))
    line[0, :, 0] = 1.5 * np.arange(30)
    cv = baselines.kalman_cv_track(line, 0.1, 2.0, 1.5)
    cp = baselines.kalman_track(line, 1.0, 2.0)
    assert abs(cv[0, -1, 0] - line[0, -1, 0]) < 0.05 < abs(cp[0, -1, 0] - line[0, -1, 0])


def test_constant_velocity_kalman_equals_an_independent_matrix_recursion():
    rng = np.random.default_rng(1)
    measured = rng.normal(0, 3, (3, 7, 2))
    q, r, v0 = 0.4**2, 2.5**2, 1.5**2
    f = np.array([[1.0, 1.0], [0.0, 1.0]])
    g = np.array([[0.5], [1.0]])
    h = np.array([[1.0, 0.0]])
    expected = np.empty_like(measured)
    for w in range(3):
        for axis in range(2):
            x, cov = np.array([measured[w, 0, axis], 0.0]), np.diag([r, v0])
            expected[w, 0, axis] = x[0]
            for t in range(1, 7):
                x, cov = f @ x, f @ cov @ f.T + q * g @ g.T
                gain = cov @ h.T / (h @ cov @ h.T + r)
                x = x + (gain * (measured[w, t, axis] - h @ x)).ravel()
                cov = (np.eye(2) - gain @ h) @ cov
                expected[w, t, axis] = x[0]
    track = baselines.kalman_cv_track(measured, 0.4, 2.5, 1.5)
    np.testing.assert_allclose(track, expected, rtol=1e-10, atol=1e-10)


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


def test_motion_walks_keep_their_heading_on_a_hand_case():
    # Points every 3 m on a 5 x 3 grid; a walker at (0, 3) heading east at 3 m per scan, no
    # turning: it visits x = 0, 3, ..., 12 along y = 3, reflects at the east edge, comes back.
    xs, ys = np.meshgrid(np.arange(5) * 3.0, np.arange(3) * 3.0, indexing="xy")
    xy = np.column_stack([xs.ravel(), ys.ravel()])
    motion = walks.Motion((3.0, 3.0), 1.0, 0.0)
    low, high = xy.min(0)[None], xy.max(0)[None]
    rng = np.random.default_rng(0)
    path = walks.motion_paths(xy[[5]], low, high, 8, motion, rng, heading=np.array([0.0]))
    np.testing.assert_allclose(path[0, :, 0], [0, 3, 6, 9, 12, 9, 6, 3], atol=1e-9)
    np.testing.assert_allclose(path[0, :, 1], 3.0, atol=1e-9)
    # Heading north-east at 45 degrees: both coordinates grow until a wall flips one of them.
    path = walks.motion_paths(
        np.array([[0.0, 0.0]]),
        low,
        high,
        4,
        walks.Motion((2**0.5, 2**0.5), 1.0, 0.0),
        rng,
        heading=np.array([np.pi / 4]),
    )
    np.testing.assert_allclose(path[0], [[0, 0], [1, 1], [2, 2], [3, 3]], atol=1e-9)
    # Random walkers with small turns keep their heading: consecutive steps point the same way,
    # and each walker keeps one speed.
    many = walks.motion_paths(
        np.full((200, 2), 500.0),
        np.zeros((200, 2)),
        np.full((200, 2), 1e3),
        6,
        walks.Motion((0.5, 1.5), 1.0, 0.1),
        rng,
    )
    steps = np.diff(many, axis=1)
    norm = np.linalg.norm(steps, axis=-1)
    cos = (steps[:, 1:] * steps[:, :-1]).sum(-1) / (norm[:, 1:] * norm[:, :-1])
    assert cos.min() > 0.5 and cos.mean() > 0.98
    speed = np.linalg.norm(steps, axis=-1)
    np.testing.assert_allclose(speed, speed[:, :1].repeat(5, 1), rtol=1e-9)
    assert speed.min() >= 0.5 and speed.max() <= 1.5 and speed.std() > 0.1
    # Snapped to points: the visited point is the one nearest the walker, on its floor.
    two_floors, floor = np.concatenate([xy, xy]), np.repeat([0, 1], len(xy))
    visited = walks.motion_walks(two_floors, floor, 50, 10, motion, np.random.default_rng(2))
    assert visited.shape == (50, 10)
    assert (floor[visited] == floor[visited[:, :1]]).all()  # a walker keeps to its floor
    hop = np.linalg.norm(two_floors[visited[:, 1:]] - two_floors[visited[:, :-1]], axis=-1)
    # 3 m per scan on a 3 m grid: the next point is the same one or one of its 8 neighbours.
    assert hop.max() <= 3 * 2**0.5 + 1e-9 and (hop > 0).mean() > 0.5


def test_walk_scan_dropout_loses_readings_and_keeps_the_rest():
    world = make_world(WorldParams(n_aps=20, n_floors=1, width_m=9.0, height_m=6.0), 0)
    fs = survey(world, 30, 0)
    lossy = with_noise(fs, ScanNoise(0.0, 0.4), 5)
    kept = lossy.detected.sum() / fs.detected.sum()
    assert 0.55 < kept < 0.65  # 60% of the readings stay
    assert not (lossy.detected & ~fs.detected).any()
    np.testing.assert_array_equal(lossy.rss[lossy.detected], fs.rss[lossy.detected])
    assert np.isnan(lossy.rss[~lossy.detected]).all()
    # The Gaussian part is the same draw with or without dropout: regimes differ only by it.
    noisy, both = with_noise(fs, ScanNoise(12.0), 5), with_noise(fs, ScanNoise(12.0, 0.4), 5)
    np.testing.assert_array_equal(both.rss[both.detected], noisy.rss[both.detected])
    with pytest.raises(ConfigError, match="regimes.x.dropout"):
        ScanNoise.from_config(ml_collections.ConfigDict(dict(noise_db=1, dropout=1)), "regimes.x")


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
    top = predict_top(net, stacked, np.asarray(signals), np.asarray(maps), chunk=2, k=3)
    np.testing.assert_array_equal(top["point"][..., 0], found)
    for s in range(2):
        logits, _ = net.apply({"params": params[s]}, signals[s], maps[s])
        prob = np.sort(np.asarray(jax.nn.softmax(logits, -1)), -1)[..., ::-1][..., :3]
        np.testing.assert_allclose(top["prob"][s], prob, rtol=1e-5)
    swapped, _ = net.apply({"params": params[0]}, signals[0], maps[1])  # seed 1's map
    own, _ = net.apply({"params": params[0]}, signals[0], maps[0])
    assert float(jnp.abs(swapped - own).max()) > 1e-3


def test_the_top_k_readout_on_a_hand_case():
    xy = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 2.0], [9.0, 9.0]])
    floor = np.array([0, 0, 0, 1])
    # one step: point 1 (p 0.5), point 3 on another floor (0.3), point 0 (0.2)
    top = {"point": np.array([[1, 3, 0]]), "prob": np.array([[0.5, 0.3, 0.2]])}
    position, on = expected_position(top, xy, floor, 1)
    np.testing.assert_array_equal(position, [[4.0, 0.0]])  # the most probable point, exactly
    position, on = expected_position(top, xy, floor, 3)
    # point 3 is on floor 1, left out: (0.5 * (4, 0) + 0.2 * (0, 0)) / 0.7
    np.testing.assert_allclose(position, [[2.0 / 0.7, 0.0]])
    np.testing.assert_array_equal(on, [0])
    position, _ = expected_position(
        {"point": np.array([[1, 2]]), "prob": np.array([[0.6, 0.4]])}, xy, floor, 2
    )
    np.testing.assert_allclose(position, [[2.4, 0.8]])
    with pytest.raises(ValueError, match="readout k"):
        expected_position(top, xy, floor, 4)


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
    """The row's mean and t-interval recomputed from its per-seed values; its standard fields
    beside them (the 2-D ones the same errors)."""
    values = np.array(list(row["per_seed_mean_m"].values()))
    assert row["n_seeds"] == len(values) == n and row["mean_m"] == pytest.approx(values.mean())
    half = scipy.stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n)
    assert row["mean_m_ci_high"] == pytest.approx(values.mean() + half)
    assert row["2d_mean"] == pytest.approx(row["mean_m"]) and row["2d_p95"] == pytest.approx(
        row["p95_m"]
    )
    assert row["ipin_mean"] >= row["2d_mean"]
    assert row["floor_hit_rate"] == pytest.approx(row["floor_hit"])


def _check_standard_table(results, rows):
    constants = StandardConstants()
    assert results["standard_metrics"]["floor_penalty_m"] == constants.floor_penalty_m
    standard = results["tables"][f"{constants.caption()} (mean over seeds)"]["rows"]
    assert set(standard) == set(rows)
    assert all(standard[k]["ipin_p75"] == rows[k]["ipin_p75"] for k in rows)


@pytest.mark.slow
def test_synthetic_protocol_end_to_end_and_resume_after_a_kill(tmp_path, monkeypatch):
    run = tmp_path / "run"
    args = ("--config.train.max_to_keep=5",)
    rates = set()  # (variant, removal rate) of every training and fine-tuning step built
    step = Study.step

    def spy(self, variant, removal_rate):
        rates.add((variant.name, removal_rate))
        return step(self, variant, removal_rate)

    monkeypatch.setattr(Study, "step", spy)
    out = run_experiment(SYNTHETIC + ":test", run, *args)
    assert rates == {("fpn", 0.2), ("plain_lstm", 0.2), ("fpn_no_removal", 0.0)}
    rows = out["rows"]
    per_regime = {
        *(f"{p}: {m}" for p in ("original APs", "moved APs") for m in ("nearest RP", "Kalman")),
        *(f"original APs: {n}" for n in ("fpn", "plain_lstm", "fpn_no_removal")),
        *(f"moved APs: {n}, old map" for n in ("fpn", "fpn_no_removal")),
        *(
            f"moved APs: {n}, new map {s}"
            for n in ("fpn", "plain_lstm", "fpn_no_removal")
            for s in ("untrained", "fine-tuned")
        ),
    }
    assert set(rows) == {f"{r}: {name}" for r in ("hard", "easy") for name in per_regime}
    assert rows["hard: moved APs: fpn, new map fine-tuned"]["seconds"] > 0
    # The hard regime's scans lose readings: the basic fingerprint errs more than in the easy one.
    assert (
        rows["hard: original APs: nearest RP"]["mean_m"]
        > rows["easy: original APs: nearest RP"]["mean_m"]
    )
    grid = load_config(SYNTHETIC + ":test").baselines.kalman_grid
    for chosen in out["kalman_chosen"].values():
        assert len(chosen) == 2
        assert all(a in grid.accel_std and m in grid.measurement_std_m for a, m in chosen)
    for row in rows.values():
        _check_over_seeds(row, 2)
    # Seeds are replicates: the basic fingerprint, which trains nothing, differs between them.
    per_seed = rows["hard: original APs: nearest RP"]["per_seed_mean_m"]
    assert per_seed["0"] != per_seed["1"]
    paired = out["paired"]
    assert "hard: original APs: fpn - fpn_compare" not in paired  # not run by the default config
    for name, a, b in (
        (
            "hard: original APs: fpn - plain_lstm",
            "hard: original APs: fpn",
            "hard: original APs: plain_lstm",
        ),
        (  # claim C6: the same network trained without AP removal
            "hard: moved APs: fpn untrained - fpn_no_removal untrained",
            "hard: moved APs: fpn, new map untrained",
            "hard: moved APs: fpn_no_removal, new map untrained",
        ),
        (
            "easy: moved APs: fpn untrained - nearest RP",
            "easy: moved APs: fpn, new map untrained",
            "easy: moved APs: nearest RP",
        ),
    ):
        diff = [rows[a]["per_seed_mean_m"][s] - rows[b]["per_seed_mean_m"][s] for s in ("0", "1")]
        assert paired[name]["diff_m"] == pytest.approx(np.mean(diff))
        assert paired[name]["verdict"] == "no verdict (n < 5)"
    results = json.loads((run / "results.json").read_text())
    assert set(results["tables"]) == {
        "paired differences of the mean error over seeds (A - B, m; lower is better)",
        f"{StandardConstants().caption()} (mean over seeds)",
    }
    _check_standard_table(results, rows)
    assert (run / "plots" / "per_point_error_hard_fpn.png").stat().st_size > 0
    assert (run / "plots" / "learning_curves.png").stat().st_size > 0
    curve = out["learning_curves"]["hard: fpn"]
    assert len(curve["step"]) == len(curve["val_ce"]) == len(curve["loss"]) > 0
    lines = (run / "hard" / "train" / "fpn" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r for r in records if "finite" in r][-1]["finite"] == 1.0
    assert any("eval/val_ce" in r for r in records)
    # A kill after the second-to-last checkpoint of a training stage: the rerun resumes there.
    checkpoints = run / "hard" / "train" / "fpn" / "checkpoints"
    steps = sorted(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit())
    assert len(steps) >= 2
    shutil.rmtree(checkpoints / str(steps[-1]))
    shutil.rmtree(run / "hard" / "adapt")
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
        "months 02-02 fpn, fine-tuned",  # the validation month
        "months 03-03 fpn, fine-tuned",  # the reported month
        "months 03-03 fpn, chosen policy",
    } <= set(rows)
    # The policy is chosen per seed on the validation month, then scored on the reported one.
    policies = out["policy_chosen"]["fpn"]
    assert len(policies) == 2
    for s, policy in zip(("0", "1"), policies, strict=True):
        val = {
            p: rows[f"months 02-02 fpn, {p}"]["per_seed_mean_m"][s]
            for p in ("month-1 map and weights", "new map untrained", "fine-tuned")
        }
        assert policy == min(val, key=val.get)
        chosen = rows["months 03-03 fpn, chosen policy"]["per_seed_mean_m"][s]
        assert chosen == pytest.approx(rows[f"months 03-03 fpn, {policy}"]["per_seed_mean_m"][s])
    for row in rows.values():
        _check_over_seeds(row, 2)
    # The scans are fixed; the seeds' test walks differ, so the basic fingerprint's error does.
    per_seed = rows["month 02 nearest RP"]["per_seed_mean_m"]
    assert per_seed["0"] != per_seed["1"]
    assert {"month 01: fpn - Kalman", "months 03-03: fpn fine-tuned - fpn untrained"} <= set(
        out["paired"]
    )
    # Our top-k readout: k chosen per seed on the validation month, scored on the reported one.
    readout = rows["months 03-03 fpn, fine-tuned, top-k readout"]
    for s, k in zip(("0", "1"), out["readout_k_chosen"]["fpn"], strict=True):
        val = {int(q): e[int(s)] for q, e in out["readout_validation_m"]["fpn"].items()}
        assert set(val) == {1, 2} and k == min(val, key=val.get)
        if k == 1:  # the paper's readout: the most probable point
            fine = rows["months 03-03 fpn, fine-tuned"]["per_seed_mean_m"][s]
            assert readout["per_seed_mean_m"][s] == pytest.approx(fine)
    assert "months 03-03: fpn fine-tuned, top-k readout - WkNN" in out["paired"]
    _check_standard_table(json.loads((tmp_path / "run" / "results.json").read_text()), rows)
    assert not any(name.startswith("months 02-02") for name in out["paired"])


def test_configs_and_bad_variants(tmp_path):
    with pytest.raises(ConfigError, match="unknown"):
        run_experiment(SYNTHETIC + ":test", tmp_path / "run", "--config.run_variants=('fpm',)")
    with pytest.raises(ConfigError, match="baselines.run"):
        run_experiment(SYNTHETIC + ":test", tmp_path / "run", "--config.baselines.run=('kalman',)")
    with pytest.raises(ConfigError, match="tset"):
        load_config(DRIFT + ":tset")
    c = load_config(SYNTHETIC)
    assert c.train.validation_fraction == 0.2 and c.model.ap_removal_rate > 0
    # §3.2.1's ablation differs from the paper's network by the removal rate alone
    ablation = variant_settings(c, "model", "fpn_no_removal")
    assert ablation.ap_removal_rate == 0.0
    assert {k: v for k, v in ablation.items() if k != "ap_removal_rate"} == {
        k: v for k, v in variant_settings(c, "model", "fpn").items() if k != "ap_removal_rate"
    }
    assert c.model.layers == 2 and c.synthetic.rp_spacing_m == 3.0 and c.synthetic.n_floors == 3
    assert dict(c.train.optimizer) == {"name": "adam", "learning_rate": 1e-4}  # §4.1
    assert c.adapt.optimizer.learning_rate == 1e-4 and c.adapt.num_steps == 300
    assert c.model.network == "paper" and c.walk.kind == "motion"
    assert set(c.run_regimes) == {"hard", "easy"}
    for spec in (SYNTHETIC, DRIFT, VARIANTS, VARIANTS + ":drift"):
        assert len(load_config(spec).seeds) >= 5, spec
    # The default configs hold the paper's rows; the ablation and our baselines are variants.py's.
    for spec, ablations in ((SYNTHETIC, {"fpn_no_removal"}), (DRIFT, set())):
        c = load_config(spec)
        assert set(c.run_variants) == {"fpn", "plain_lstm"} | ablations
        assert set(c.baselines.run) == {"nearest RP", "Kalman"}
    assert {"fpn_compare", "fpn_raw_map"} <= set(load_config(VARIANTS).run_variants)
    assert load_config(VARIANTS).variants.fpn_compare.network == "compare"
    with pytest.raises(ConfigError, match="run_regimes"):
        run_experiment(SYNTHETIC + ":test", tmp_path / "run", "--config.run_regimes=('hrad',)")
    with pytest.raises(ConfigError, match="validation_months"):
        run_experiment(DRIFT + ":test", tmp_path / "run", "--config.data.validation_months=(2, 3)")
