"""Losses and pseudo labels of the few-label CSI methods, on hand-made cases."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxfp.common.geometry import Cells, SiteFrame
from jaxfp.methods.csi import losses, pseudo_labels
from jaxfp.methods.csi.nets import PositionHeads
from jaxfp.methods.csi.semi_supervised import fixmatch_selection
from jaxfp.nets import MLP
from jaxfp.train.state import TeacherState, TrainState

AZIMUTHS = jnp.asarray([0.0, 2 * math.pi / 3, 4 * math.pi / 3])


def test_labelled_loss_one_head_is_the_weighted_mean_squared_distance():
    xy = jnp.asarray([[[1.0, 0.0]], [[0.0, 2.0]]])
    target = jnp.zeros((2, 2))
    weight = jnp.asarray([1.0, 3.0])
    loss = losses.labelled_loss(xy, target, jnp.zeros(2, int), weight, AZIMUTHS, 0.5)
    np.testing.assert_allclose(loss, (1 * 1.0 + 3 * 4.0) / 4)


def test_sector_rotation_targets_every_head_with_the_rotated_position():
    # A sample of sector 0 at (1, 0): head 1 must learn (cos 120, sin 120), head 2 (cos 240, ...).
    target = jnp.asarray([[1.0, 0.0]])
    exact = jnp.asarray([[[1.0, 0.0], [-0.5, math.sqrt(3) / 2], [-0.5, -math.sqrt(3) / 2]]])
    args = (target, jnp.asarray([0]), jnp.ones(1), AZIMUTHS, 0.5)
    np.testing.assert_allclose(losses.labelled_loss(exact, *args), 0.0, atol=1e-12)
    # Only the own head wrong by 1: weight 1 of a total 1 + 2 * 0.5.
    wrong_own = exact.at[0, 0, 0].add(1.0)
    np.testing.assert_allclose(losses.labelled_loss(wrong_own, *args), 0.5, rtol=1e-6)
    # A sample of sector 2 trains head 0 on its position rotated by -240 degrees.
    sector2 = losses.rotation_to_heads(AZIMUTHS, jnp.asarray([2]))
    np.testing.assert_allclose(sector2[0], [-4 * math.pi / 3, -2 * math.pi / 3, 0.0], rtol=1e-6)
    # Rotation consistency is zero for heads that are exact rotations of the own head, from
    # whichever sector, and not for heads rotated the wrong way.
    assert float(losses.rotation_consistency(exact, jnp.asarray([0]), AZIMUTHS)) < 1e-12
    assert float(losses.rotation_consistency(exact, jnp.asarray([1]), AZIMUTHS)) < 1e-12
    swapped = exact[:, jnp.asarray([0, 2, 1])]
    assert float(losses.rotation_consistency(swapped, jnp.asarray([0]), AZIMUTHS)) > 1.0
    np.testing.assert_allclose(losses.own_head(exact, jnp.asarray([1])), exact[:, 1])


def test_cells_cover_the_labelled_area():
    xy = np.array([[0.0, 0.0], [25.0, 9.0]])
    cells = Cells.covering(xy, 10.0)
    assert cells.shape == (3, 1) and cells.count == 3
    np.testing.assert_array_equal(
        cells.index(jnp.asarray([[0.0, 0.0], [12.0, 5.0], [25.0, 9.0], [99.0, -5.0]])),
        [0, 1, 2, 2],
    )


def test_profile_labels_interpolate_within_the_sector_and_agreement():
    xy_anchor = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [50.0, 50.0]])
    signature_anchor = np.vstack([np.eye(3), [[0.0, 1.0, 0.0]]])
    sector_anchor = np.array([0, 0, 0, 1])
    # A query with anchor 1's signature (k=1) gets anchor 1's position; the sector-1 anchor with
    # the same signature is not a candidate for a sector-0 query, and is the only one for sector 1.
    query = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(
        pseudo_labels.profile_labels(
            query, np.array([0, 1]), signature_anchor, sector_anchor, xy_anchor, k=1
        ),
        [[10.0, 0.0], [50.0, 50.0]],
    )
    # Equal signature distances to the three sector-0 anchors: their centroid.
    np.testing.assert_allclose(
        pseudo_labels.profile_labels(
            np.ones((1, 3)) / np.sqrt(3),
            np.array([0]),
            signature_anchor,
            sector_anchor,
            xy_anchor,
            k=3,
        ),
        [[10 / 3, 10 / 3]],
        rtol=1e-5,
    )
    # A sector with no anchor falls back to every anchor.
    np.testing.assert_allclose(
        pseudo_labels.profile_labels(
            np.array([[0.0, 0.0, 1.0]]),
            np.array([2]),
            signature_anchor,
            sector_anchor,
            xy_anchor,
            k=1,
        ),
        [[0.0, 10.0]],
    )
    kept, mean = pseudo_labels.agreeing_labels(
        np.array([[0.0, 0.0], [0.0, 0.0]]), np.array([[3.0, 4.0], [6.0, 8.0]]), 6.0
    )
    np.testing.assert_array_equal(kept, [True, False])
    np.testing.assert_allclose(mean[0], [1.5, 2.0])


def test_kept_label_report_counts_and_true_errors_per_radius():
    truth = np.zeros((4, 2))
    a = np.array([[1.0, 0.0], [0.0, 0.0], [4.0, 0.0], [0.0, 0.0]])
    b = np.array([[1.0, 0.0], [1.5, 0.0], [0.0, 0.0], [10.0, 0.0]])  # gaps 0, 1.5, 4, 10
    model = np.array([[3.0, 0.0], [3.0, 0.0], [6.0, 0.0], [0.0, 8.0]])
    report = pseudo_labels.kept_label_report(a, b, truth, model, (1.0, 2.0, 5.0, 0.5, 0.0))
    by_r = {row["radius_m"]: row for row in report}
    assert [by_r[r]["kept"] for r in (1.0, 2.0, 5.0)] == [1, 2, 3]
    assert by_r[2.0]["kept_share"] == 0.5
    # r = 2: labels (1, 0) and (0.75, 0): mean error 0.875; the model's there (3 + 3) / 2.
    np.testing.assert_allclose(by_r[2.0]["label_error_m"], 0.875)
    np.testing.assert_allclose(by_r[2.0]["model_error_m"], 3.0)
    np.testing.assert_allclose(by_r[5.0]["label_error_m"], (1.0 + 0.75 + 2.0) / 3)
    assert by_r[0.0]["kept"] == 0 and np.isnan(by_r[0.0]["label_error_m"])


def test_sector_frame_round_trips_and_aligns_the_boresights():
    azimuths = (math.radians(30.0), math.radians(150.0), math.radians(270.0))
    frame = SiteFrame((100.0, -100.0), 10.0, azimuths, sector_frame=True)
    rng = np.random.default_rng(0)
    xy = jnp.asarray(rng.uniform(-200, 200, size=(12, 2)), jnp.float32)
    sector = jnp.asarray(rng.integers(0, 3, size=12))
    np.testing.assert_allclose(frame.positions(frame.targets(xy, sector), sector), xy, atol=1e-3)
    # A receiver on its sector's boresight, 50 m out, lands on +x at 5 units in every sector.
    on_boresight = jnp.stack(
        [jnp.asarray([100.0 + 50 * math.cos(a), -100.0 + 50 * math.sin(a)]) for a in azimuths]
    )
    np.testing.assert_allclose(
        frame.targets(on_boresight, jnp.arange(3)), [[5.0, 0.0]] * 3, atol=1e-5
    )
    # Heads (members, rows, heads, 2) rotate back with the sector broadcast over the heads.
    heads = jnp.broadcast_to(frame.targets(xy, sector)[None, :, None], (2, 12, 3, 2))
    np.testing.assert_allclose(
        frame.positions(heads, sector[:, None]),
        jnp.broadcast_to(xy[None, :, None], heads.shape),
        atol=1e-3,
    )
    np.testing.assert_array_equal(frame.head_azimuths(), [0.0, 0.0, 0.0])
    # Without the frame, targets are the plain normalised positions.
    plain = frame._replace(sector_frame=False)
    np.testing.assert_allclose(plain.targets(xy, sector), plain.normalise(xy))


def tiny_model():
    return PositionHeads(MLP(hidden=(8,), out=4, batch_norm=True), num_heads=1, num_cells=3)


def random_batch(seed):
    """4 labelled and 6 unlabelled rows of 5 features, one sector."""
    rng = np.random.default_rng(seed)
    return {
        "csi": jnp.asarray(rng.normal(size=(4, 5)), jnp.float32),
        "xy": jnp.asarray(rng.normal(size=(4, 2)), jnp.float32),
        "weight": jnp.ones(4),
        "sector": jnp.zeros(4, jnp.int32),
        "ucsi": jnp.asarray(rng.normal(size=(6, 5)), jnp.float32),
    }


def identity_prep(csi, key):
    return csi + 0.01 * jax.random.normal(key, csi.shape)


def test_mean_teacher_step_moves_the_teacher_by_ema():
    model = tiny_model()
    variables = model.init(jax.random.key(0), jnp.zeros((1, 5)))
    state = TeacherState.create(
        apply_fn=model.apply,
        params=variables["params"],
        tx=optax.sgd(0.1),
        batch_stats=variables["batch_stats"],
        teacher_params=variables["params"],
        teacher_batch_stats=variables["batch_stats"],
    )
    geometry = SiteFrame((0.0, 0.0), 1.0, (0.0,))
    loss = losses.make_mean_teacher_loss(model, identity_prep, geometry, 1.0, 10)
    step = jax.jit(losses.make_mean_teacher_step(loss, decay=0.9))
    batch = random_batch(0)
    new, metrics = step(state, batch, jax.random.key(1))
    assert np.isfinite(metrics["consistency"]) and metrics["finite"] == 1
    expected = jax.tree.map(lambda t, s: 0.9 * t + 0.1 * s, state.teacher_params, new.params)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), new.teacher_params, expected
    )


def test_fixmatch_rules_mask_and_train():
    geometry = SiteFrame((0.0, 0.0), 1.0, (0.0,))
    cells = Cells.covering(np.array([[-3.0, -3.0], [3.0, 3.0]]), 3.0)
    assert cells.count == 4
    model = PositionHeads(MLP(hidden=(8,), out=4, batch_norm=True), num_cells=cells.count)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 5)))
    batch = random_batch(1)
    state = TrainState.create(
        apply_fn=model.apply,
        params=variables["params"],
        tx=optax.sgd(0.1),
        batch_stats=variables["batch_stats"],
    )
    for rule, threshold, distance, expected_mask in (
        ("confidence", 0.0, 0.0, 1.0),  # every weak view is confident enough
        ("confidence", 1.01, 0.0, 0.0),  # none is
        ("distance", 0.0, 1e6, 1.0),  # every pair of weak views agrees
        ("distance", 0.0, 0.0, 0.0),  # none does
    ):
        loss = losses.make_fixmatch_loss(
            model, identity_prep, identity_prep, geometry, rule, 1.0, threshold, distance, cells
        )
        value, (metrics, _) = loss(state.params, state, batch, jax.random.key(2))
        assert np.isfinite(value) and float(metrics["mask_rate"]) == expected_mask
        if expected_mask == 0.0:
            assert float(metrics["unsupervised"]) == 0.0


class _FakeStudy:
    """Just what `fixmatch_selection` reads: one seed's four unlabelled rows with hand-made weak
    views."""

    def __init__(self, threshold: float, distance_m: float) -> None:
        self.config = ml_collections.ConfigDict(
            dict(fixmatch=dict(threshold=threshold, distance_threshold_m=distance_m))
        )
        self.parts = {"unlabelled": np.array([[1, 2, 3, 4]])}
        # View 1 is 1, 2, 3, 4 m east of the truth; view 2 agrees on rows 0-1, 10 m off on 2-3.
        self.views = {
            1: np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]]),
            2: np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 10.0], [4.0, 10.0]]),
        }

    def truth(self, part):
        assert part == "unlabelled"  # the diagnostic reads the unlabelled rows' truth only
        return np.zeros((1, 4, 2))

    def predict(self, model, state, rows, view=1):
        np.testing.assert_array_equal(rows, self.parts["unlabelled"])
        return {
            "xy": self.views[view][None, :, None],  # (seeds, rows, heads, 2)
            "cell_confidence": np.array([[0.99, 0.5, 0.97, 0.2]]),
        }


def test_fixmatch_selection_reports_the_true_error_of_what_each_rule_keeps():
    confident = fixmatch_selection(_FakeStudy(0.95, 5.0), None, None, "confidence")
    assert confident["kept_share"] == 0.5  # rows 0 and 2
    assert confident["kept_error_m"] == 2.0 and confident["rejected_error_m"] == 3.0
    assert confident["all_error_m"] == 2.5
    agreeing = fixmatch_selection(_FakeStudy(0.95, 5.0), None, None, "distance")
    assert agreeing["kept_share"] == 0.5  # rows 0 and 1; the pseudo-position is the views' mean
    assert agreeing["kept_error_m"] == 1.5
    np.testing.assert_allclose(agreeing["rejected_error_m"], np.mean(np.hypot([3, 4], 5)))
    assert agreeing["per_seed"]["kept_share"] == [0.5]


class _Identity(nn.Module):
    """Features = the input itself, with a batch-statistics slot as the losses expect."""

    @nn.compact
    def __call__(self, x, train=False):
        self.variable("batch_stats", "unused", lambda: jnp.zeros(()))
        return x


def _softmax_ce(logits, label):
    z = logits - logits.max()
    return float(np.log(np.exp(z).sum()) - z[label])


def test_fixmatch_terms_equal_their_hand_computed_values():
    """Positions = the input, cell logits = [2 x0, -2 x0]; the strong view is the input + 0.5 and
    the weak view the input itself, so every term has a closed form."""
    cells = Cells.covering(np.array([[0.0, 0.0], [2.0, 1.0]]), 1.0)  # 2 x 1 cells of 1 m
    model = PositionHeads(_Identity(), num_cells=cells.count)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 2)))
    w_cells = np.array([[2.0, -2.0], [0.0, 0.0]])
    params = {
        "xy_heads": {"kernel": jnp.eye(2), "bias": jnp.zeros(2)},
        "cell_head": {"kernel": jnp.asarray(w_cells), "bias": jnp.zeros(2)},
    }
    state = TrainState.create(
        apply_fn=model.apply,
        params=params,
        tx=optax.sgd(0.1),
        batch_stats=variables["batch_stats"],
    )
    x_l = np.array([[0.2, 0.3], [1.0, 0.0]])
    xy_l = np.array([[0.2, 0.3], [1.5, 0.5]])  # cells 0 and 1
    weight = np.array([1.0, 3.0])
    u = np.array([[3.0, 0.0], [0.1, 0.0], [-3.0, 0.0]])  # confident, not, confident
    batch = {
        "csi": jnp.asarray(x_l, jnp.float32),
        "xy": jnp.asarray(xy_l, jnp.float32),
        "weight": jnp.asarray(weight, jnp.float32),
        "sector": jnp.zeros(2, jnp.int32),
        "ucsi": jnp.asarray(u, jnp.float32),
    }
    geometry = SiteFrame((0.0, 0.0), 1.0, (0.0,))

    def weak(csi, key):
        return csi

    def strong(csi, key):
        return csi + 0.5

    # Supervised: weighted mean squared distance (1 * 0 + 3 * (0.5^2 + 0.5^2)) / 4.
    sup = (1 * 0.0 + 3 * 0.5) / 4
    # Labelled cell cross-entropy, weighted as the positions.
    cell_ce = [_softmax_ce(x @ w_cells, c) for x, c in zip(x_l, (0, 1), strict=True)]
    labelled_cells = (cell_ce[0] * 1 + cell_ce[1] * 3) / 4
    # Unlabelled, confidence rule (threshold 0.9): rows 0 and 2 are confident (p ~ 1 - 6e-6,
    # classes 0 and 1), row 1 is not (p = 0.6); each kept row pays its strong view's squared
    # distance to the weak one (2 * 0.5^2) plus the strong logits' cross-entropy on the weak class.
    kept = [0.5 + _softmax_ce((u[i] + 0.5) @ w_cells, label) for i, label in ((0, 0), (2, 1))]
    unsupervised = sum(kept) / 3
    loss = losses.make_fixmatch_loss(
        model, weak, strong, geometry, "confidence", 2.0, 0.9, 5.0, cells
    )
    value, (metrics, _) = loss(state.params, state, batch, jax.random.key(0))
    np.testing.assert_allclose(float(metrics["supervised"]), sup, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["mask_rate"]), 2 / 3, rtol=1e-6)
    np.testing.assert_allclose(float(metrics["unsupervised"]), unsupervised, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["cell_ce"]), np.mean(cell_ce), rtol=1e-5)
    np.testing.assert_allclose(float(value), sup + labelled_cells + 2.0 * unsupervised, rtol=1e-5)
    # Distance rule: the two weak views coincide (gap 0 < 1 m): every row keeps 2 * 0.5^2 and
    # no cell term; a zero threshold keeps none.
    for threshold, expected in ((1.0, 0.5), (0.0, 0.0)):
        loss = losses.make_fixmatch_loss(
            model, weak, strong, geometry, "distance", 2.0, 0.9, threshold, cells
        )
        value, (metrics, _) = loss(state.params, state, batch, jax.random.key(0))
        np.testing.assert_allclose(float(metrics["unsupervised"]), expected, rtol=1e-5)
        np.testing.assert_allclose(float(value), sup + 2.0 * expected, rtol=1e-5)


def _identity_heads_state(kernel_scale: float, teacher_scale: float):
    """Positions = kernel_scale * input (student) and teacher_scale * input (EMA teacher)."""
    model = PositionHeads(_Identity())
    variables = model.init(jax.random.key(0), jnp.zeros((1, 2)))

    def heads(scale):
        return {"xy_heads": {"kernel": scale * jnp.eye(2), "bias": jnp.zeros(2)}}

    state = TeacherState.create(
        apply_fn=model.apply,
        params=heads(kernel_scale),
        tx=optax.sgd(0.1),
        batch_stats=variables["batch_stats"],
        teacher_params=heads(teacher_scale),
        teacher_batch_stats=variables["batch_stats"],
    )
    return model, state


def test_mean_teacher_consistency_equals_its_hand_computed_value_in_both_readings():
    """Student 2x, teacher 1x the input; the prep adds a shift drawn from its key. The paper's
    reading gives the teacher the student's view (consistency = |view|^2); ours its own view."""
    model, state = _identity_heads_state(2.0, 1.0)

    def shifted(csi, key):
        return csi + jax.random.uniform(key, ())

    x_l = np.array([[1.0, 0.0]])
    u = np.array([[1.0, 2.0], [0.0, -1.0]])
    batch = {
        "csi": jnp.asarray(x_l, jnp.float32),
        "xy": jnp.asarray([[2.0, 1.0]], jnp.float32),
        "weight": jnp.ones(1),
        "sector": jnp.zeros(1, jnp.int32),
        "ucsi": jnp.asarray(u, jnp.float32),
    }
    geometry = SiteFrame((0.0, 0.0), 1.0, (0.0,))
    key = jax.random.key(3)
    label_key, student_key, teacher_key, _ = jax.random.split(key, 4)
    d_l, d_s, d_t = (
        float(jax.random.uniform(k, ())) for k in (label_key, student_key, teacher_key)
    )
    # Supervised: |2 (x_l + d_l) - (2, 1)|^2.
    sup = np.sum((2 * (x_l[0] + d_l) - [2.0, 1.0]) ** 2)
    ramp = math.exp(-5.0)  # step 0 of a 10-step ramp
    for independent, teacher_view in ((False, u + d_s), (True, u + d_t)):
        expected = np.mean(np.sum((2 * (u + d_s) - teacher_view) ** 2, -1))
        loss = losses.make_mean_teacher_loss(model, shifted, geometry, 3.0, 10, independent)
        value, (metrics, _) = loss(state.params, state, batch, key)
        np.testing.assert_allclose(float(metrics["consistency"]), expected, rtol=1e-5)
        np.testing.assert_allclose(float(value), sup + 3.0 * ramp * expected, rtol=1e-5)
    # The two readings differ here (the draws differ), so a swapped flag fails the test above.
    assert abs(d_s - d_t) > 1e-3


def test_fixmatch_position_terms_are_in_the_stated_unit():
    """Distance rule, weak view = input, strong = input + 0.5 (every row kept): in a 0.5 m unit
    each squared metre costs 4, the supervised and unsupervised terms alike."""
    model, state = _identity_heads_state(1.0, 1.0)
    x_l = np.array([[0.2, 0.3], [1.0, 0.0]])
    batch = {
        "csi": jnp.asarray(x_l, jnp.float32),
        "xy": jnp.asarray([[0.2, 0.3], [1.5, 0.5]], jnp.float32),
        "weight": jnp.asarray([1.0, 3.0]),
        "sector": jnp.zeros(2, jnp.int32),
        "ucsi": jnp.asarray([[3.0, 0.0], [0.1, 0.0]], jnp.float32),
    }
    geometry = SiteFrame((0.0, 0.0), 1.0, (0.0,))
    sup = (1 * 0.0 + 3 * 0.5) / 4  # squared metres, as in the hand-computed FixMatch test
    for unit_m, factor in ((None, 1.0), (1.0, 1.0), (0.5, 4.0), (2.0, 0.25)):
        loss = losses.make_fixmatch_loss(
            model,
            lambda csi, key: csi,
            lambda csi, key: csi + 0.5,
            geometry,
            "distance",
            2.0,
            distance_threshold_m=1.0,
            position_unit_m=unit_m,
        )
        value, (metrics, _) = loss(state.params, state, batch, jax.random.key(0))
        np.testing.assert_allclose(float(metrics["unsupervised"]), factor * 0.5, rtol=1e-5)
        np.testing.assert_allclose(float(value), factor * (sup + 2.0 * 0.5), rtol=1e-5)


def _plane_waves(paths, subcarriers=16):
    """(1, 2, 32, subcarriers) CSI of paths (amplitude, angle bin, delay tap): each a delta in the
    angle-delay map (`jaxfp.data.csi.angle_delay`)."""
    f, a = np.arange(subcarriers), np.arange(32)
    csi = np.zeros((32, subcarriers), complex)
    for amplitude, angle, delay in paths:
        csi += amplitude * np.exp(
            2j * np.pi * angle * a[:, None] / 32 - 2j * np.pi * delay * f[None, :] / subcarriers
        )
    return jnp.asarray(np.broadcast_to(csi, (1, 2, 32, subcarriers)), jnp.complex64)


def test_aligned_profile_keeps_relative_timing_from_the_strongest_tap():
    # Paths of amplitude 2 (angle bin 3, tap 5) and 1 (angle bin 7, tap 7): aligned to tap 5 with
    # one lead tap, bin 3 is at window position 1, bin 7 at 3; unit norm 2 / sqrt 5, 1 / sqrt 5.
    signature = np.asarray(
        pseudo_labels.aligned_profile(_plane_waves([(2, 3, 5), (1, 7, 7)]), 4, 1)
    )
    expected = np.zeros((32, 4))
    expected[3, 1], expected[7, 3] = 2 / math.sqrt(5), 1 / math.sqrt(5)
    np.testing.assert_allclose(signature[0], expected.ravel(), atol=1e-5)
    # A timing advance of 4 taps shifts both paths: the same signature.
    advanced = pseudo_labels.aligned_profile(_plane_waves([(2, 3, 9), (1, 7, 11)]), 4, 1)
    np.testing.assert_allclose(advanced, signature, atol=1e-5)
    # The relative timing counts: the weaker path 2 taps earlier instead of later differs.
    earlier = pseudo_labels.aligned_profile(_plane_waves([(2, 3, 5), (1, 7, 3)]), 4, 1)
    assert np.abs(np.asarray(earlier) - signature).max() > 0.1
    with pytest.raises(ValueError, match="lead < taps"):
        pseudo_labels.aligned_profile(_plane_waves([(1, 0, 0)]), 4, 4)
