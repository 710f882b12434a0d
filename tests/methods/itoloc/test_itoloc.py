"""iToLoc: gradient reversal, the image transform, the co-training rules, a short run, protocols."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxfp.config import ConfigError, load_config
from jaxfp.methods.itoloc import cotraining, image
from jaxfp.methods.itoloc.losses import LossSettings, make_loss
from jaxfp.methods.itoloc.nets import ItoLocNet
from jaxfp.methods.itoloc.run import device_sets, split_target
from jaxfp.nets.gradient_reversal import reverse_gradient, warmup_scale
from jaxfp.train.state import TrainState
from jaxfp.train.steps import make_train_step

from ...conftest import REPO, run_experiment

DEVICES = str(REPO / "experiments" / "itoloc" / "devices.py")
DRIFT = str(REPO / "experiments" / "itoloc" / "drift.py")


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
    assert image.vector_image(f).shape == (1, 2, 2)
    rss = np.array([[-50, np.nan, -60], [-55, np.nan, np.nan], [-40, -80, np.nan]], np.float32)
    np.testing.assert_array_equal(image.select_aps(rss, 2), [0, 2])
    with pytest.raises(ValueError, match="missing_dbm"):
        image.positive_rss(rss, -130.0)


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
    np.testing.assert_allclose(smeared.sum(-1), 1.0, rtol=1e-6)
    assert (smeared >= 0).all() and (smeared.argmax(-1) == [0, 1, 2]).all()
    assert (smeared.max(-1) < 1).any()


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


@pytest.mark.slow
def test_device_protocol_end_to_end_and_resume(tmp_path):
    run = tmp_path / "run"
    out = run_experiment(DEVICES + ":test", run)
    rows = out["rows"]
    assert {
        "itoloc @ device2",
        "plain_cnn @ device3",
        "no_image @ device2",
        "wknn @ device3",
    } <= set(rows)
    for row in rows.values():
        assert 0 <= row["region_success"] <= 1 and np.isfinite(row["mean_m"])
    # iToLoc is co-trained on the held-out devices' unlabelled scans and scored again.
    assert {"itoloc, updated @ device2", "itoloc, updated @ device3"} <= set(rows)
    assert "plain_cnn, updated @ device2" not in rows
    assert {line["round"] for line in out["update_log"]} == {0, 1, 2}
    lines = (run / "offline" / "itoloc" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["finite"] == 1.0
    shutil.rmtree(run / "offline" / "plain_cnn")
    (run / "results.json").unlink()
    assert run_experiment(DEVICES + ":test", run) == out


@pytest.mark.slow
def test_drift_protocol_with_the_update_end_to_end(tmp_path):
    out = run_experiment(DRIFT + ":test", tmp_path / "run")
    assert {"month 02 itoloc, no update", "month 02 itoloc, updated", "month 02 wknn"} <= set(
        out["rows"]
    )
    log = out["update_log"]
    assert {line["round"] for line in log} == {0, 1, 2}
    assert [line["pool"] for line in log if line["seed"] == 0 and line["head"] == 0] == [
        4,
        8,
        16,
    ] * 2
    # Month 3's no-update row is scored after month 2's update donated its states (a bug once).
    assert {"month 03 itoloc, no update", "month 03 itoloc, updated"} <= set(out["rows"])
    kept = [line for line in log if line["kept"]]
    assert kept and all(line["pseudo_label_error_m"] >= 0 for line in kept)


def test_configs_and_bad_held_out_devices(tmp_path):
    with pytest.raises(ConfigError, match="held_out"):
        run_experiment(DEVICES + ":test", tmp_path / "run", "--config.data.held_out=('device9',)")
    with pytest.raises(ConfigError, match="update_variants"):
        run_experiment(DEVICES + ":test", tmp_path / "run", "--config.update_variants=('itolc',)")
    with pytest.raises(ConfigError, match="drft"):
        load_config(DRIFT + ":drft")
    uji = load_config(DEVICES + ":uji_test")
    assert uji.data.source == "real" and uji.data.held_out == ("phone13", "phone14")


def test_the_held_out_devices_are_split_into_unlabelled_target_and_scored_scans():
    config = load_config(DEVICES + ":test")
    _, test = device_sets(config)
    unlabelled, scored = split_target(config, test)
    for device in config.data.held_out:
        n = int(np.sum(test.device == device))
        assert np.sum(unlabelled.device == device) == n // 2
        assert np.sum(scored.device == device) == n - n // 2

    def rows(fs):
        return {(tuple(x), tuple(r)) for x, r in zip(fs.xy, fs.rss, strict=True)}

    # Disjoint and complete: every test scan is in exactly one of the two.
    assert not rows(unlabelled) & rows(scored) and rows(unlabelled) | rows(scored) == rows(test)
    again, _ = split_target(config, test)
    np.testing.assert_array_equal(again.rss, unlabelled.rss)
    config.data.unlabelled_target_fraction = 0.0
    assert split_target(config, test) == (None, test)
    config.data.unlabelled_target_fraction = 1.0
    with pytest.raises(ConfigError, match="unlabelled_target_fraction"):
        split_target(config, test)
