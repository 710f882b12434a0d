"""iToLoc: eq. 11, gradient reversal, the image transform, the co-training rules, each seed's data
draw, a short run, protocols."""

import json
import shutil

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxfp.config import ConfigError, load_config
from jaxfp.data.types import FingerprintSet
from jaxfp.eval.iso18305 import StandardConstants
from jaxfp.methods.itoloc import cotraining, image
from jaxfp.methods.itoloc.data import Domains, Site, device_draws, device_sets, split_target
from jaxfp.methods.itoloc.losses import LossSettings, make_loss
from jaxfp.methods.itoloc.nets import ItoLocNet
from jaxfp.methods.itoloc.study import Study, score_estimates, spatial_weights
from jaxfp.nets.gradient_reversal import reverse_gradient, warmup_scale
from jaxfp.train.state import TrainState
from jaxfp.train.steps import make_train_step

from ...conftest import REPO, run_experiment

DEVICES = str(REPO / "experiments" / "itoloc" / "devices.py")
DRIFT = str(REPO / "experiments" / "itoloc" / "drift.py")
ABLATIONS = str(REPO / "experiments" / "itoloc" / "ablations.py")

# Eq. 11's tiny case: 2 rows whose feature is z = w_e · mean(image) = (1, 2); 3 heads over C = 2
# locations with logits z · W_L[k]; a discriminator over 2 domains with logits z · W_D.
W_L = np.array([[1.0, -1.0], [0.5, 0.0], [0.0, 2.0]])
W_D = np.array([1.0, -1.0])
LOCATION, DOMAIN = np.array([0, 1]), np.array([0, 1])
WEIGHT = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])  # head 3 trains on row 0 only
DISTANCES = np.array([[0.0, 3.0], [3.0, 0.0]])


class TinyItoLoc(nn.Module):
    """ItoLocNet's interface on scalar parts: extractor w_e, heads W_L, discriminator W_D."""

    @nn.compact
    def __call__(self, image, train=False, reversal=0.0, dropout=None):
        self.variable("batch_stats", "unused", lambda: jnp.zeros(()))
        w_e = self.param("extractor", nn.initializers.ones, ())
        w_l = self.param("heads", lambda _: jnp.asarray(W_L, jnp.float32))
        w_d = self.param("discriminator", lambda _: jnp.asarray(W_D, jnp.float32))
        z = w_e * image.mean((1, 2))
        locations = z[None, :, None] * w_l[:, None, :]
        domains = reverse_gradient(z, jnp.asarray(reversal, z.dtype))[:, None] * w_d[None]
        return {"locations": locations, "domains": domains}


def _tiny_case(gamma: float, lam: float, warmup: int = 10):
    net = TinyItoLoc()
    images = jnp.stack([jnp.ones((2, 2)), 2 * jnp.ones((2, 2))])
    variables = net.init(jax.random.key(0), images)
    state = TrainState.create(
        apply_fn=net.apply,
        params=variables["params"],
        tx=optax.sgd(0.1),
        batch_stats=variables["batch_stats"],
    ).replace(step=jnp.asarray(warmup))  # past the warm-up: the reversal is λ · tanh(5)
    batch = {
        "image": images,
        "target": jnp.broadcast_to(jax.nn.one_hot(LOCATION, 2), (3, 2, 2)),
        "weight": jnp.asarray(WEIGHT),
        "rp": jnp.broadcast_to(jnp.asarray(LOCATION), (3, 2)),
        "domain": jnp.asarray(DOMAIN),
    }
    loss_fn = make_loss(LossSettings(net, gamma, lam, warmup), jnp.asarray(DISTANCES))
    return loss_fn, state, batch


def test_eq11_loss_on_a_hand_computed_case():
    loss_fn, state, batch = _tiny_case(gamma=0.5, lam=2.0)
    loss, (metrics, _) = loss_fn(state.params, state, batch, jax.random.key(0))
    # La (eq. 5), per head the mean over its rows of -log softmax(z · W_L[k])[label], summed:
    #   head 1: (log(1 + e^-2) + log(1 + e^4)) / 2, head 2: (log(1 + e^-0.5) + log(1 + e)) / 2,
    #   head 3 (row 0 only): log(1 + e^2)  -> 5.093136
    # Ls (eq. 10), per head the mean of 3 m · p(the other location), summed  -> 5.957115
    # Ld (eq. 8), the domains' cross-entropy over both rows: (log(1 + e^-2) + log(1 + e^4)) / 2
    #   -> 2.072539; the value is La + γ Ls + Ld, the reversal turning +Ld into -λ Ld for the
    #   extractor's gradient only (tested below).
    np.testing.assert_allclose(metrics["location_ce"], 5.093136, rtol=1e-5)
    np.testing.assert_allclose(metrics["spatial"], 5.957115, rtol=1e-5)
    np.testing.assert_allclose(metrics["domain_ce"], 2.072539, rtol=1e-5)
    np.testing.assert_allclose(loss, 5.093136 + 0.5 * 5.957115 + 2.072539, rtol=1e-5)
    np.testing.assert_allclose(metrics["reversal"], 2.0 * np.tanh(5.0), rtol=1e-5)


def test_eq11_gradients_play_the_minimax():
    """The extractor descends La + γ Ls - λ Ld, the heads La + γ Ls, the discriminator Ld."""
    gamma, lam = 0.5, 2.0
    loss_fn, state, batch = _tiny_case(gamma, lam)
    grads = jax.grad(lambda p: loss_fn(p, state, batch, jax.random.key(0))[0])(state.params)
    x = np.array([1.0, 2.0])  # each row's mean pixel

    def terms(w_e, w_l, w_d):  # eq. 5, 10 and 8 written out, no reversal layer
        z = w_e * x
        log_p = jax.nn.log_softmax(z[None, :, None] * w_l[:, None, :])
        ce = -jnp.take_along_axis(log_p, jnp.asarray(LOCATION)[None, :, None], -1)[..., 0]
        spatial = jnp.sum(DISTANCES[LOCATION] * jnp.exp(log_p), -1)
        per_head = jnp.sum(WEIGHT, -1)
        la = jnp.sum(jnp.sum(ce * WEIGHT, -1) / per_head)
        ls = jnp.sum(jnp.sum(spatial * WEIGHT, -1) / per_head)
        log_d = jax.nn.log_softmax(z[:, None] * w_d[None])
        ld = -jnp.mean(log_d[jnp.arange(2), DOMAIN])
        return la, ls, ld

    def location(*w):
        la, ls, _ = terms(*w)
        return la + gamma * ls

    def domain(*w):
        return terms(*w)[2]

    w = (1.0, jnp.asarray(W_L), jnp.asarray(W_D))
    g_loc = jax.grad(location, argnums=(0, 1))(*w)
    g_dom = jax.grad(domain, argnums=(0, 2))(*w)
    reversal = lam * np.tanh(5.0)
    np.testing.assert_allclose(grads["extractor"], g_loc[0] - reversal * g_dom[0], rtol=1e-5)
    np.testing.assert_allclose(grads["heads"], g_loc[1], rtol=1e-5)
    np.testing.assert_allclose(grads["discriminator"], g_dom[1], rtol=1e-5)
    # The adversarial pull is there and large enough to matter in this case.
    assert abs(float(reversal * g_dom[0])) > 0.1
    # The discriminator's gradient in closed form: mean_i (softmax(z_i W_D) - d_i) z_i.
    p = np.exp(x[:, None] * W_D) / np.exp(x[:, None] * W_D).sum(-1, keepdims=True)
    closed = ((p - np.eye(2)[DOMAIN]) * x[:, None]).mean(0)
    np.testing.assert_allclose(grads["discriminator"], closed, rtol=1e-5)


def test_gradient_reversal_flips_the_extractor_gradient_and_not_the_discriminator():
    w_extract, w_disc = jnp.array([0.5, -1.0]), jnp.array([2.0, 3.0])
    x = jnp.array([1.0, 2.0])

    def loss(we, wd, scale):
        z = jnp.tanh(we * x)  # the "extractor"
        return jnp.sum(wd * reverse_gradient(z, scale) ** 2)  # the "discriminator"

    def plain(we, wd):
        return jnp.sum(wd * jnp.tanh(we * x) ** 2)

    g_e, g_d = jax.grad(loss, argnums=(0, 1))(w_extract, w_disc, 0.3)
    p_e, p_d = jax.grad(plain, argnums=(0, 1))(w_extract, w_disc)
    np.testing.assert_allclose(g_e, -0.3 * p_e, rtol=1e-6)
    np.testing.assert_allclose(g_d, p_d, rtol=1e-6)
    np.testing.assert_allclose(loss(w_extract, w_disc, 0.3), plain(w_extract, w_disc))
    assert float(warmup_scale(0.0, 1.0)) == 0.0 and 0.99 < float(warmup_scale(1.0, 1.0)) < 1.0


def test_fingerprint_image_on_a_hand_vector():
    f = image.positive_rss(np.array([[-70.0, np.nan, -100.0]]), missing_dbm=-110.0)
    np.testing.assert_allclose(f, [[50.0, 10.0, 20.0]])
    x = image.fingerprint_image(f)[0]
    expected = [[0.0, 4.0, 1.5], [-0.8, 0.0, -0.5], [-0.6, 1.0, 0.0]]  # (f_j - f_k) / f_k
    np.testing.assert_allclose(x, expected, rtol=1e-6)
    # The vector is recoverable (the paper's point): f_j = f_k (x[j, k] + 1).
    np.testing.assert_allclose(f[0, 2] * (x[:, 2] + 1), f[0], rtol=1e-6)
    # The ablation's vector: (f + 120) / 120 on the smallest square, zero padded.
    vector = image.vector_image(np.array([[-70.0, np.nan, -100.0]]), -110.0)
    np.testing.assert_allclose(vector, [[[50 / 120, 10 / 120], [20 / 120, 0.0]]], rtol=1e-6)
    rss = np.array([[-50, np.nan, -60], [-55, np.nan, np.nan], [-40, -80, np.nan]], np.float32)
    np.testing.assert_array_equal(image.select_aps(rss, 2), [0, 2])
    with pytest.raises(ValueError, match="missing_dbm"):
        image.positive_rss(rss, -130.0)
    with pytest.raises(ValueError, match="image.values"):
        image.image_values(rss, "linear", -110.0)


def test_eq1_on_dbm_is_invariant_to_a_device_gain():
    rss = np.array([[-50.0, -70.0, np.nan]])
    f = image.image_values(rss, "dbm", -110.0)
    np.testing.assert_allclose(f, [[-50.0, -70.0, -110.0]])  # a miss reads -110 dBm
    x = image.fingerprint_image(f)[0]
    # x[j, k] = (f_j - f_k) / f_k by hand: (-50 + 70) / -70, (-110 + 50) / -50, ...
    np.testing.assert_allclose(x[0, 1], -20 / 70, rtol=1e-6)
    np.testing.assert_allclose(x[2, 0], 60 / 50, rtol=1e-6)
    np.testing.assert_allclose(x[1, 2], -40 / 110, rtol=1e-6)
    # A device reading every AP a times as strong in dBm (RSS · a) gives the same image ...
    heard = np.array([[-50.0, -70.0, -90.0]])
    images = {
        values: [
            image.fingerprint_image(image.image_values(a * heard, values, -110.0))[0]
            for a in (1.0, 1.2)
        ]
        for values in image.VALUES
    }
    np.testing.assert_allclose(images["dbm"][1], images["dbm"][0], rtol=1e-5)
    # ... while on RSS + 120 the same gain changes it: x[0, 2] = (70 - 30) / 30 becomes
    # (60 - 12) / 12.
    np.testing.assert_allclose(images["positive"][0][0, 2], 40 / 30, rtol=1e-6)
    np.testing.assert_allclose(images["positive"][1][0, 2], 48 / 12, rtol=1e-6)


def test_cotraining_selection_rules():
    assert [cotraining.pool_size(t, 500) for t in range(5)] == [60, 120, 240, 480, 500]
    # Heads 1 and 2 label for head 0. Row 0: agree, confident, stable -> kept.
    # Row 1: agree but not confident. Row 2: disagree. Row 3: agree, confident, unstable.
    p = np.zeros((3, 4, 3))
    p[1] = [[0.98, 0.01, 0.01], [0.6, 0.3, 0.1], [0.99, 0.0, 0.01], [0.0, 0.99, 0.01]]
    p[2] = [[0.97, 0.02, 0.01], [0.7, 0.2, 0.1], [0.0, 0.99, 0.01], [0.01, 0.98, 0.01]]
    dropout = np.repeat(p[None], 6, axis=0)
    dropout[:3, :, 3] = [0.0, 0.0, 1.0]  # 3 of 6 passes say class 2 for row 3: > 6/3
    s = cotraining.select_for_head(0, p, dropout, sigma=0.95)
    np.testing.assert_array_equal(s.keep, [True, False, False, False])
    assert s.label[0] == 0
    dropout[:2, :, 3] = [0.0, 0.0, 1.0]  # now 2 of 6 (exactly K/3) differ: still stable
    dropout[2, :, 3] = p[:, 3]
    assert cotraining.select_for_head(0, p, dropout, sigma=0.95).keep[3]
    smeared = cotraining.smear(np.eye(3, dtype=np.float32), 0.2, np.random.default_rng(0))
    # Eq. 12-13 with the same normal draws: y' = y + ReLU(0.2 z), then each row normalised.
    z = np.random.default_rng(0).standard_normal((3, 3))
    noisy = np.eye(3) + np.maximum(0.2 * z, 0.0)
    np.testing.assert_allclose(smeared, noisy / noisy.sum(-1, keepdims=True), rtol=1e-6)
    assert (smeared.max(-1) < 1).any() and (smeared.argmax(-1) == [0, 1, 2]).all()


def test_the_update_runs_until_the_pool_holds_u_then_smears_every_third_round():
    # |U| = 10, pools 4, 8, 10: full from round 2; then 6 more rounds (two smearing fine-tunes).
    assert cotraining.rounds_needed(10, 4, 6) == 9
    assert cotraining.rounds_needed(480, 60, 0) == 4  # 60, 120, 240, 480
    settings = dict(sigma0=0.98, sigma_step=0.05, pool_base=4, smear_every=3, smear_std=0.1)
    u = ml_collections.ConfigDict(settings)
    base = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    schedule = cotraining.Schedule(0, "update", 10, base, u)
    targets, sigmas, pools, smeared_at = [base] * 3, [], [], []
    for t in range(9):
        pool, new = schedule.round(t, 3, targets)
        if not all(np.array_equal(n, base) for n in new):
            smeared_at.append(t)
            assert all(not np.array_equal(n, base) for n in new)  # D1, D2, D3 drawn ...
            assert not np.array_equal(new[0], new[1])  # ... each with its own noise
        targets = new
        sigmas.append(schedule.sigma)
        pools.append(len(pool))
    assert pools == [4, 8, 10, 10, 10, 10, 10, 10, 10]
    assert smeared_at == [5, 8]
    np.testing.assert_allclose(sigmas, [0.98] * 5 + [0.93] * 3 + [0.88])
    # A round's steps: one pass over the largest head's rows, at least one step.
    assert cotraining.round_steps(100, 32, 1.0, 7) == 4
    assert cotraining.round_steps(100, 32, 0.0, 7) == 7
    assert cotraining.round_steps(1, 32, 1.0, 7) == 1


def test_target_scans_share_one_unknown_domain_unless_known():
    config = load_config(DEVICES + ":test")
    draw = device_draws(config)[0]
    unknown = Domains(("device",))
    source = unknown.of(draw.train)
    target = unknown.of_target(draw.target)
    assert sorted(set(source.tolist())) == [0, 1]  # device0, device1
    assert set(target.tolist()) == {2}  # one id for every unlabelled scan, whatever its device
    known = Domains(("device",), "known")
    known.of(draw.train)
    assert set(known.of_target(draw.target).tolist()) == {2, 3}  # device2, device3
    with pytest.raises(ConfigError, match="domain_target"):
        Domains(("device",), "guessed")


def _hand_set(xy: list, floor: list) -> FingerprintSet:
    n = len(xy)
    return FingerprintSet(
        rss=np.full((n, 1), -60.0, np.float32),
        detected=np.ones((n, 1), bool),
        ap_ids=np.array(["a"]),
        xy=np.asarray(xy, np.float64),
        rp_id=np.arange(n),
        floor=np.asarray(floor, np.int64),
        source="hand",
    )


def test_scans_taken_anywhere_are_grouped_into_grid_cells():
    fs = _hand_set([[1.0, 1.0], [3.0, 2.0], [9.0, 1.0], [1.0, 1.0]], [0, 0, 0, 1])
    site = Site.of(fs, floor_height_m=4.0, cell_m=4.0)
    # Cells (floor, ix, iy): (0, 0, 0) holds rows 0 and 1; (0, 2, 0) row 2; (1, 0, 0) row 3.
    np.testing.assert_allclose(site.xy, [[2.0, 1.5], [9.0, 1.0], [1.0, 1.0]])
    np.testing.assert_array_equal(site.floor, [0, 0, 1])
    np.testing.assert_array_equal(site.locate(fs), [0, 0, 1, 2])
    np.testing.assert_allclose(site.distances[0, 2], np.hypot(np.hypot(1.0, 0.5), 4.0), rtol=1e-6)
    # A scan in a cell no training scan falls in has no class; without cells, places are classes.
    assert site.locate(_hand_set([[20.0, 20.0], [2.5, 3.9]], [0, 0])).tolist() == [-1, 0]
    assert Site.of(fs, 4.0).locate(fs).tolist() == [0, 2, 3, 1]  # sorted places
    with pytest.raises(ConfigError, match="location_grid_m"):
        Site.of(fs, 4.0, -1.0)


def test_eq10_weights_in_units_of_the_sites_mean_distance():
    d = np.array([[0.0, 3.0, 6.0], [3.0, 0.0, 3.0], [6.0, 3.0, 0.0]])
    # The six off-diagonal distances average (3 + 6 + 3) · 2 / 6 = 4 m.
    np.testing.assert_allclose(spatial_weights(d, "site_mean"), d / 4.0, rtol=1e-6)
    np.testing.assert_allclose(spatial_weights(d, "metre"), d)
    with pytest.raises(ConfigError, match="spatial_unit"):
        spatial_weights(d, "feet")


def test_the_heads_keep_where_on_the_image_a_feature_is():
    """A class given only by which of four interior pixels is lit: the same pattern anywhere
    else. Local pooling and the FC over the map learn it."""
    side, positions = 8, [(2, 2), (2, 5), (5, 2), (5, 5)]
    images = np.zeros((4, side, side), np.float32)
    for c, (i, j) in enumerate(positions):
        images[c, i, j] = 1.0
    net = ItoLocNet(locations=4, domains=1, heads=("conv3",), dropout=0.0)
    variables = net.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, images)
    state = TrainState.create(
        apply_fn=net.apply,
        params=variables["params"],
        tx=optax.adam(3e-3),
        batch_stats=variables["batch_stats"],
    )
    step = make_train_step(
        make_loss(LossSettings(net, 0.0, 0.0, 1), jnp.zeros((4, 4))), donate=False
    )
    labels = jnp.arange(4)
    batch = {
        "image": jnp.asarray(images),
        "target": jax.nn.one_hot(labels, 4)[None],
        "weight": jnp.ones((1, 4)),
        "rp": labels[None],
        "domain": jnp.zeros(4, jnp.int32),
    }
    for i in range(60):
        state, metrics = step(state, batch, jax.random.key(i))
    out = net.apply({"params": state.params, "batch_stats": state.batch_stats}, batch["image"])
    np.testing.assert_array_equal(np.asarray(out["locations"][0].argmax(-1)), [0, 1, 2, 3])
    assert float(metrics["location_ce"]) < 0.1


def test_a_short_adversarial_run_is_finite_and_moves_every_part():
    net = ItoLocNet(locations=5, domains=3)
    images = jax.random.normal(jax.random.key(0), (8, 6, 6))
    variables = net.init({"params": jax.random.key(1), "dropout": jax.random.key(2)}, images)
    state = TrainState.create(
        apply_fn=net.apply,
        params=variables["params"],
        tx=optax.sgd(0.01, momentum=0.9),
        batch_stats=variables["batch_stats"],
    )
    distances = jnp.abs(jnp.arange(5.0)[:, None] - jnp.arange(5.0)[None])
    step = make_train_step(make_loss(LossSettings(net, 0.1, 1.0, 10), distances), donate=False)
    location = jnp.arange(8) % 5
    batch = {
        "image": images,
        "target": jnp.broadcast_to(jax.nn.one_hot(location, 5), (3, 8, 5)),
        "weight": jnp.ones((3, 8)),
        "rp": jnp.broadcast_to(location, (3, 8)),
        "domain": jnp.arange(8) % 3,
    }
    before = state.params
    for i in range(5):
        state, metrics = step(state, batch, jax.random.key(i))
        assert float(metrics["finite"]) == 1.0
    assert float(metrics["reversal"]) > 0
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), before, state.params)
    assert all(jax.tree.leaves(moved))


def _check_rows(rows: dict, paired: dict) -> None:
    """Each row's mean is the mean of its seeds' means; each paired row is A - B seed by seed."""
    for row in rows.values():
        per_seed = list(row["per_seed_mean_m"].values())
        assert len(per_seed) == row["n_seeds"]
        assert row["mean_m"] == pytest.approx(np.mean(per_seed))
    for name, row in paired.items():
        a_name, _, b_name = name.partition(" - ")
        b_name, _, where = b_name.partition(" @ ")
        a = rows[f"{a_name} @ {where}"]["per_seed_mean_m"]
        b = rows[f"{b_name} @ {where}"]["per_seed_mean_m"]
        assert row["diff_m"] == pytest.approx(np.mean([a[s] - b[s] for s in a]))
        assert row["verdict"] == "no verdict (n < 5)"  # two seeds at the test size


@pytest.mark.slow
def test_device_protocol_end_to_end_and_resume(tmp_path):
    run = tmp_path / "run"
    out = run_experiment(DEVICES + ":test", run)
    rows, paired = out["rows"], out["paired"]
    names = ["itoloc", "itoloc, updated", "plain_cnn", "wknn", "wknn, image APs", "wknn, 4 APs"]
    assert set(rows) == {f"{n} @ {d}" for n in names for d in ("device2", "device3")}
    comparisons = ["itoloc - plain_cnn", "itoloc - wknn", "itoloc, updated - itoloc"]
    comparisons.append("itoloc - wknn, image APs")
    comparisons.append("itoloc, updated - wknn")
    assert set(paired) == {f"{c} @ {d}" for c in comparisons for d in ("device2", "device3")}
    _check_rows(rows, paired)
    # Each seed is its own data draw: WkNN, fixed given the data, scores the two seeds apart.
    wknn = rows["wknn @ device2"]["per_seed_mean_m"]
    assert wknn["0"] != pytest.approx(wknn["1"])
    # §IV to the end: the pool grows 4, 8, 16, 24 (all 24 target scans from round 3), then two
    # more rounds, each smearing (smear_every 1 at this size) and lowering σ by σ_os.
    seed0 = [x for x in out["update_log"] if x["seed"] == 0 and x["head"] == 0]
    assert [x["pool"] for x in seed0] == [4, 8, 16, 24, 24, 24]
    np.testing.assert_allclose([x["sigma"] for x in seed0], [0, 0, 0, 0, -0.05, -0.1])
    lines = [json.loads(x) for x in (run / "offline" / "itoloc" / "metrics.jsonl").open()]
    assert [x["finite"] for x in lines if "finite" in x][-1] == 1.0
    # The validation part's loss is the offline stage's learning curve, every eval_every steps.
    curve = [x["eval/val_ce"] for x in lines if "eval/val_ce" in x]
    assert len(curve) == 2 and all(np.isfinite(curve))
    shutil.rmtree(run / "offline" / "plain_cnn")
    (run / "results.json").unlink()
    assert run_experiment(DEVICES + ":test", run) == out


@pytest.mark.slow
def test_ablations_run_beside_itoloc(tmp_path):
    out = run_experiment(ABLATIONS + ":test", tmp_path / "run")
    names = ["itoloc", "itoloc, updated", "no_image", "no_image, updated", "wknn"]
    names += ["wknn, image APs", "wknn, 4 APs"]
    assert set(out["rows"]) == {f"{n} @ {d}" for n in names for d in ("device2", "device3")}
    assert {"itoloc - no_image @ device2", "no_image, updated - no_image @ device3"} <= set(
        out["paired"]
    )
    # Without the image the input is the 6 APs' vector on a 3 x 3 square: other numbers.
    a, b = (out["rows"][f"{n} @ device2"]["per_seed_mean_m"] for n in ("itoloc", "no_image"))
    assert a != b


@pytest.mark.slow
def test_real_phone_protocol_scores_each_held_out_phone(tmp_path):
    out = run_experiment(DEVICES + ":phones_test", tmp_path / "run")
    phones = ("phone1", "phone17", "phone12")
    names = ["itoloc", "itoloc, updated", "plain_cnn", "wknn", "wknn, image APs", "wknn, 4 APs"]
    assert set(out["rows"]) == {f"{n} @ {p}" for n in names for p in phones}
    _check_rows(out["rows"], out["paired"])
    # The phones' scans lie anywhere: the classes are grid cells, which the update log's pools
    # and the rows' errors (finite, metres) are built on.
    assert all(np.isfinite(r["mean_m"]) for r in out["rows"].values())
    assert {line["stage"] for line in out["update_log"]} == {"update/itoloc"}
    # The standard fields ride in every row and their table: one building, so no building misses.
    row = out["rows"]["wknn @ phone1"]
    assert row["3d_mean"] >= row["2d_mean"] and row["building_hit_rate"] == 1.0
    assert row["ipin_mean"] >= row["2d_mean"]


def test_scores_carry_the_standard_fields_on_a_hand_case():
    """Two scans in building 1: one exact, one 3 m east on the wrong floor; then the second also
    in building 2. Floor codes fold the building in (building · 100 + floor)."""
    truth_xy = np.array([[0.0, 0.0], [10.0, 0.0]])
    truth_code = np.array([101, 101])
    xy = np.array([[0.0, 0.0], [13.0, 0.0]])
    constants = StandardConstants(floor_height_m=4.0, floor_penalty_m=15.0, building_penalty_m=50.0)

    def scores(code):
        return score_estimates([xy], [code], [(truth_xy, truth_code)], 4.0, constants, True, True)

    s = scores(np.array([101, 102]))
    np.testing.assert_allclose(s["mean_m"], [1.5])
    np.testing.assert_allclose(s["2d_mean"], [1.5])
    np.testing.assert_allclose(s["3d_mean"], [2.5])  # (0 + sqrt(3² + 4²)) / 2
    np.testing.assert_allclose(s["ipin_mean"], [9.0])  # (0 + 3 + 15) / 2
    np.testing.assert_allclose(s["floor_hit_rate"], [0.5])
    np.testing.assert_allclose(s["building_hit_rate"], [1.0])
    np.testing.assert_allclose(s["region_success"], [0.5])
    s = scores(np.array([101, 202]))  # building 2, floor 2: one floor off and a building miss
    np.testing.assert_allclose(s["ipin_mean"], [34.0])  # (0 + 3 + 15 + 50) / 2
    np.testing.assert_allclose(s["building_hit_rate"], [0.5])
    # A set without floors: the 2-D fields only.
    flat = score_estimates(
        [xy], [np.zeros(2)], [(truth_xy, np.zeros(2))], 4.0, constants, False, False
    )
    assert "2d_mean" in flat and "ipin_mean" not in flat


@pytest.mark.slow
def test_drift_protocol_with_the_update_end_to_end(tmp_path):
    out = run_experiment(DRIFT + ":test", tmp_path / "run")
    assert {"month 02 itoloc, no update", "month 02 itoloc, updated", "month 02 wknn"} <= set(
        out["rows"]
    )
    assert {"month 02: itoloc - wknn", "month 03: itoloc, updated - no update"} <= set(
        out["paired"]
    )
    log = out["update_log"]
    # Each month's update runs until the pool holds its 96 scans, then two smearing rounds in
    # which σ drops by the mall's σ_os = 0.1.
    seed0 = [line for line in log if line["seed"] == 0 and line["head"] == 0]
    assert [line["pool"] for line in seed0] == [4, 8, 16, 32, 64, 96, 96, 96] * 2
    np.testing.assert_allclose([line["sigma"] for line in seed0], ([0.0] * 6 + [-0.1, -0.2]) * 2)
    # Month 3's no-update row is scored after month 2's update, whose steps donate the states
    # they are given: the no-update rows are scored on their own copy.
    assert {"month 03 itoloc, no update", "month 03 itoloc, updated"} <= set(out["rows"])
    kept = [line for line in log if line["kept"]]
    assert kept and all(np.isfinite(line["pseudo_label_error_m"]) for line in kept)
    assert all(line["pseudo_label_error_m"] is None for line in log if not line["kept"])
    # The month files are fixed: WkNN scores every seed alike; the networks' seeds differ.
    rows = out["rows"]
    assert len(set(rows["month 02 wknn"]["per_seed_mean_m"].values())) == 1
    assert len(set(rows["month 02 itoloc, no update"]["per_seed_mean_m"].values())) == 2


def test_configs_and_bad_held_out_devices(tmp_path):
    with pytest.raises(ConfigError, match="held_out"):
        run_experiment(DEVICES + ":test", tmp_path / "run", "--config.data.held_out=('device9',)")
    with pytest.raises(ConfigError, match="update_variants"):
        run_experiment(DEVICES + ":test", tmp_path / "run", "--config.update_variants=('itolc',)")
    with pytest.raises(ConfigError, match="drft"):
        load_config(DRIFT + ":drft")
    uji = load_config(DEVICES + ":uji_test")
    assert uji.data.source == "real" and uji.data.held_out == ("phone13", "phone14")
    # The default configs hold the paper's method and its baselines; the ablations their own.
    for spec in (DEVICES, DRIFT):
        config = load_config(spec)
        assert config.run_variants == ("itoloc", "plain_cnn") and len(config.seeds) >= 5
        assert set(config.variants) == {"itoloc", "plain_cnn"}
    ablations = load_config(ABLATIONS)
    assert {"no_image", "no_spatial", "no_adversary"} <= set(ablations.run_variants)
    assert ablations.run_variants[0] == "itoloc"


def test_the_validation_protocol_never_sees_the_reported_devices():
    config = load_config(DEVICES + ":test")
    config.data.held_out, config.data.excluded = ("device3",), ("device2",)
    train, test = device_sets(config, 0)
    assert set(np.unique(train.device)) == {"device0", "device1"}
    assert set(np.unique(test.device)) == {"device3"}
    config.data.excluded = ("device3",)
    with pytest.raises(ConfigError, match="share"):
        device_sets(config, 0)
    phones = load_config(DEVICES + ":phones_validation")
    reported = load_config(DEVICES + ":phones")
    assert set(phones.data.excluded) == set(reported.data.held_out)
    assert not set(phones.data.held_out) & set(reported.data.held_out)
    # Synthetic and drift validation: other worlds, other months than the reported ones.
    worlds = load_config(DEVICES + ":validation")
    assert not set(worlds.seeds) & set(load_config(DEVICES).seeds)
    months = load_config(DRIFT + ":validation")
    assert not set(months.data.months) & set(load_config(DRIFT).data.months)
    assert max(months.data.months) < min(load_config(DRIFT).data.months)


def test_the_held_out_devices_are_split_into_unlabelled_target_and_scored_scans():
    config = load_config(DEVICES + ":test")
    _, test = device_sets(config, 0)
    unlabelled, scored = split_target(config, test, 0)
    for device in config.data.held_out:
        n = int(np.sum(test.device == device))
        assert np.sum(unlabelled.device == device) == n // 2
        assert np.sum(scored.device == device) == n - n // 2

    def rows(fs):
        return {
            (tuple(x), np.nan_to_num(r, nan=-999).tobytes())
            for x, r in zip(fs.xy, fs.rss, strict=True)
        }

    # Disjoint and complete: every test scan is in exactly one of the two.
    assert not rows(unlabelled) & rows(scored) and rows(unlabelled) | rows(scored) == rows(test)
    again, _ = split_target(config, test, 0)
    np.testing.assert_array_equal(again.rss, unlabelled.rss)
    other, _ = split_target(config, test, 1)  # another seed draws another split
    assert rows(other) != rows(unlabelled)
    config.data.unlabelled_target_fraction = 0.0
    assert split_target(config, test, 0) == (None, test)
    config.data.unlabelled_target_fraction = 1.0
    with pytest.raises(ConfigError, match="unlabelled_target_fraction"):
        split_target(config, test, 0)


def _affine_residual_db(a: np.ndarray, b: np.ndarray) -> float:
    """The spread of b's readings around the best line through a's (where both are heard)."""
    ok = np.isfinite(a) & np.isfinite(b)
    x, y = a[ok], b[ok]
    design = np.c_[x, np.ones_like(x)]
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    return float((y - design @ coef).std())


def test_each_seed_draws_its_own_world_and_each_device_its_own_fading():
    config = load_config(DEVICES + ":test")
    train, test = device_sets(config, 0)
    again, _ = device_sets(config, 0)
    np.testing.assert_array_equal(train.rss, again.rss)  # a seed's draw is reproducible
    other, _ = device_sets(config, 1)
    assert train.rss.shape == other.rss.shape
    assert not np.array_equal(np.nan_to_num(train.rss), np.nan_to_num(other.rss))
    # Two devices at the same places: with shared fading device1 would be an affine function of
    # device0 (rounding aside, ~0.4 dB); with its own fading it spreads by several dB.
    dev0, dev1 = (train.rss[train.device == d] for d in ("device0", "device1"))
    assert _affine_residual_db(dev0, dev1) > 2.0
    # The same for the held-out devices' test survey.
    t2, t3 = (test.rss[test.device == d] for d in ("device2", "device3"))
    assert _affine_residual_db(t2, t3) > 2.0


def test_seed_m_trains_on_its_own_draw(tmp_path):
    config = load_config(DEVICES + ":test")
    draws = device_draws(config)
    domains = Domains(config.domain_keys)
    for d in draws:
        domains.of(d.train)
        domains.of_target(d.target)
    study = Study(config, str(tmp_path), [d.train for d in draws], domains, {})
    variant = study.variant("itoloc")
    labelled = study.scans([d.train for d in draws], variant)
    target = study.scans([d.target for d in draws], variant, True)
    captured = {}

    def stage(name, init, step_fn, batch_of, options, shaping, *evaluation, **stopping):
        captured["batch_of"] = batch_of
        return init  # the (tracked) states it was given, untrained

    study.stages.stage = stage
    study.offline(variant, labelled, target)
    size = config.train.batch_size
    for m in range(len(draws)):
        batch = captured["batch_of"](np.random.default_rng(0), m)
        own = {x.tobytes() for x in labelled[m].image} | {x.tobytes() for x in target[m].image}
        other = {x.tobytes() for x in labelled[1 - m].image}
        assert all(x.tobytes() in own for x in batch["image"])
        assert not any(x.tobytes() in other for x in batch["image"][:size])


def test_each_seed_is_scored_on_its_own_scans_alike_in_loop_and_vmap(tmp_path):
    config = load_config(DEVICES + ":test")
    draws = device_draws(config)
    domains = Domains(config.domain_keys)
    for d in draws:
        domains.of(d.train)
    study = Study(config, str(tmp_path), [d.train for d in draws], domains, {})
    variant = study.variant("itoloc")
    images = [s.image for s in study.scans([d.train for d in draws], variant)]
    tx = study.optimizer(config.train)

    def init(key):
        variables = variant.net.init({"params": key, "dropout": key}, images[0][:1])
        return TrainState.create(
            apply_fn=variant.net.apply,
            params=variables["params"],
            tx=tx,
            batch_stats=variables["batch_stats"],
        )

    states = study.stages.init("init", init)
    keys = [jax.random.key(5), jax.random.key(6)]
    config.eval_batch = 7  # several chunks, the last one padded
    out = {}
    for execution in ("loop", "vmap"):
        config.seed_execution = execution
        out[execution] = [study.probabilities(states, variant, images, k) for k in (None, keys)]
    for loop, vmapped in zip(out["loop"], out["vmap"], strict=True):
        for a, b in zip(loop, vmapped, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-6)
    # Seed m runs its own parameters: seed 1's on seed 0's images are not seed 0's answer.
    config.seed_execution = "loop"
    swapped = study.probabilities(states, variant, images[::-1])
    assert not np.allclose(swapped[1], out["loop"][0][0])


def test_the_optimiser_from_config_is_the_papers_sgd_with_plateau_decay():
    train = load_config(DEVICES).train
    section = train.optimizer
    built = Study.optimizer(train)
    by_hand = optax.chain(
        optax.add_decayed_weights(1e-4),
        optax.sgd(0.1, momentum=0.9),
        optax.contrib.reduce_on_plateau(factor=0.1, patience=5, accumulation_size=100),
    )
    assert (section.learning_rate, section.plateau_steps) == (0.1, 100)
    params = {"w": jnp.array([1.0, -2.0])}
    out = []
    for tx in (built, by_hand):

        def step(i, carry, tx=tx):
            p, s = carry
            grads = {"w": jnp.array([0.3, -0.1]) * (1 + i % 3)}
            update, s = tx.update(grads, s, p, value=jnp.asarray(1.0))  # a loss that stalls
            return optax.apply_updates(p, update), s

        out.append(
            jax.jit(lambda p, tx=tx, step=step: jax.lax.fori_loop(0, 700, step, (p, tx.init(p))))(
                params
            )
        )
    np.testing.assert_allclose(out[0][0]["w"], out[1][0]["w"], rtol=1e-6)
    states = [o[1] for o in out]
    assert float(states[1][2].scale) == pytest.approx(0.1)  # the plateau decay did happen


def test_the_smearing_std_is_chosen_by_the_validation_phones_updated_error():
    from jaxfp.config import config_module

    chooser = config_module(str(REPO / "experiments" / "itoloc" / "choose_smear_std.py"))

    def results(updated: dict[str, list[float]], before: dict[str, list[float]]) -> dict:
        rows = {}
        for prefix, phones in (("itoloc, updated @ ", updated), ("itoloc @ ", before)):
            for phone, values in phones.items():
                rows[prefix + phone] = {
                    "per_seed_mean_m": {str(s): v for s, v in enumerate(values)}
                }
        return {"results": rows}

    before = {"a": [10.0, 12.0, 14.0, 10.0, 12.0], "b": [12.0, 12.0, 12.0, 12.0, 12.0]}
    runs = {
        "smear_std=0.1": results({"a": [30.0] * 5, "b": [40.0] * 5}, before),
        "smear_std=0.01": results({"a": [11.0, 13.0, 15.0, 11.0, 13.0], "b": [13.0] * 5}, before),
    }
    out = chooser.choose(runs, {})
    assert out["chosen"] == "smear_std=0.01"
    np.testing.assert_allclose(out["rows"]["smear_std=0.1"]["mean_m"], 35.0)
    np.testing.assert_allclose(out["rows"]["no update"]["mean_m"], (11.6 + 12.0) / 2)
    # Each seed's mean over the two phones, paired with no update's: +1 m on every seed.
    paired = out["paired"]["smear_std=0.01 - no update"]
    np.testing.assert_allclose(paired["diff_m"], 1.0)
    assert paired["verdict"] == "B better" and paired["n_seeds"] == 5


def test_the_smearing_std_is_chosen_on_validation_months_alike():
    from jaxfp.config import config_module

    chooser = config_module(str(REPO / "experiments" / "itoloc" / "choose_smear_std.py"))

    def results(updated: dict[int, float], before: dict[int, float]) -> dict:
        rows = {}
        for template, months in (
            ("month {:02d} itoloc, updated", updated),
            ("month {:02d} itoloc, no update", before),
        ):
            for month, value in months.items():
                rows[template.format(month)] = {"per_seed_mean_m": {"0": value, "1": value + 2.0}}
        rows["month 02 wknn"] = {"per_seed_mean_m": {"0": 0.0, "1": 0.0}}  # not a candidate's row
        return {"results": rows}

    before = {2: 4.0, 3: 6.0}
    runs = {
        "smear_std=0.1": results({2: 9.0, 3: 11.0}, before),
        "smear_std=0.0001": results({2: 4.0, 3: 5.0}, before),
    }
    out = chooser.choose(runs, {})
    assert out["chosen"] == "smear_std=0.0001"
    np.testing.assert_allclose(out["rows"]["smear_std=0.1"]["mean_m"], 11.0)  # (10 + 12) / 2
    np.testing.assert_allclose(out["rows"]["no update"]["mean_m"], 6.0)
    np.testing.assert_allclose(out["paired"]["smear_std=0.0001 - no update"]["diff_m"], -0.5)
    assert sorted(chooser.parts(runs["smear_std=0.1"], chooser.UPDATED)) == ["month 02", "month 03"]
    assert chooser.part_kind(["month 02", "month 03"]) == "months"
    assert chooser.part_kind(["phone4", "phone21"]) == "phones"
    assert chooser.part_kind(["device2", "device3"]) == "devices"
    with pytest.raises(ValueError, match="expected all months, phones or devices"):
        chooser.part_kind(["device2", "phone4"])
