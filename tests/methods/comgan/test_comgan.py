"""ComGAN: the losses by hand, masks, eq. 6, the RP split, RU choice, each seed's data draw, one
training iteration, the study."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxfp.config import ConfigError
from jaxfp.data.types import FingerprintSet
from jaxfp.methods.comgan import completion, data, losses, training
from jaxfp.methods.comgan.nets import Critic, Generator, RpEstimator, UNet1D
from jaxfp.train.state import TrainState
from jaxfp.train.steps import make_train_step

from ...conftest import REPO, run_experiment

SPEC = str(REPO / "experiments" / "comgan" / "completion.py:test")
AVERAGING = str(REPO / "experiments" / "comgan" / "averaging.py:test")


def settings(aux_weight=1.0, gp_weight=10.0):
    return training.GanSettings(
        Generator(), Critic(), RpEstimator(), 5, 1, gp_weight, aux_weight, 100.0
    )


def test_vmapped_gradient_penalty_equals_a_per_sample_loop():
    critic = Critic()
    rss, rp = (
        jax.random.normal(jax.random.key(0), (5, 6)),
        jax.random.normal(jax.random.key(1), (5, 2)),
    )
    params = critic.init(jax.random.key(2), rss, rp)["params"]

    def apply(x, c):
        return critic.apply({"params": params}, x, c)

    got = losses.gradient_penalty(apply, rss, rp)
    for i in range(5):
        g = jax.grad(lambda x, i=i: apply(x[None], rp[i : i + 1])[0])(rss[i])
        np.testing.assert_allclose(got[i], (np.linalg.norm(g) - 1.0) ** 2, rtol=1e-5)


# A linear critic C(x, c) = w·x + v·c has ∇_x C = w everywhere: the penalty is (‖w‖ - 1)² = 4 at
# every interpolate. A linear RP estimator E(x) = A x. Two samples, L = 3 RUs, D = 1.
W, V, A = jnp.array([1.0, 2.0, 2.0]), jnp.array([1.0]), jnp.array([[1.0], [0.0], [-1.0]])
REAL = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
FAKE = jnp.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
RP = jnp.array([[0.5], [-0.5]])
EPS = jnp.array([[0.3], [0.9]])


def linear_critic(x, c):
    return x @ W + c @ V  # real: 1.5, 3.5 (mean 2.5); fake: 2.5, 0.5 (mean 1.5)


def linear_estimator(x):
    return x @ A  # real: 1, -1; fake: -1, 1


def test_gradient_penalty_of_a_linear_and_a_quadratic_critic_by_hand():
    np.testing.assert_allclose(losses.gradient_penalty(linear_critic, REAL, RP), [4.0, 4.0])
    # C(x) = ½‖x‖²: ∇ = x, so each sample's own norm: (5 - 1)², (0.5 - 1)².
    inter = jnp.array([[3.0, 4.0], [0.0, 0.5]])
    quadratic = losses.gradient_penalty(lambda x, c: 0.5 * jnp.sum(x**2, -1), inter, RP)
    np.testing.assert_allclose(quadratic, [16.0, 0.25], rtol=1e-6)


def test_critic_loss_by_hand():
    # mean C(fake) - mean C(real) = 1.5 - 2.5 = -1; + λ1 · 4; + mean (E(real) - c)² = 0.25.
    loss, metrics = losses.critic_loss(linear_critic, REAL, FAKE, RP, EPS, 10.0)
    np.testing.assert_allclose(loss, -1.0 + 40.0, rtol=1e-6)
    np.testing.assert_allclose(metrics["wasserstein"], 1.0)
    np.testing.assert_allclose(metrics["gradient_penalty"], 4.0, rtol=1e-6)
    loss, _ = losses.critic_loss(
        linear_critic, REAL, FAKE, RP, EPS, 2.0, estimator=linear_estimator
    )
    np.testing.assert_allclose(loss, -1.0 + 8.0 + 0.25, rtol=1e-6)
    loss, metrics = losses.critic_loss(linear_critic, REAL, FAKE, RP, EPS, 0.0, "bce")
    softplus = lambda z: np.log1p(np.exp(z))  # noqa: E731
    expected = np.mean([softplus(-1.5) + softplus(2.5), softplus(-3.5) + softplus(0.5)])
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    assert "gradient_penalty" not in metrics


def test_generator_loss_by_hand():
    # -mean C(fake) = -1.5; L1 = (2 + 3) / 6; MSE(ĉ1, ĉ2) = mean((1 - -1)², (-1 - 1)²) = 4.
    loss, metrics = losses.generator_loss(
        linear_critic, REAL, FAKE, RP, 100.0, 1.0, estimator=linear_estimator
    )
    np.testing.assert_allclose(loss, -1.5 + 100.0 * 5.0 / 6.0 + 1.0 * 4.0, rtol=1e-6)
    np.testing.assert_allclose(metrics["rp_consistency"], 4.0)
    loss, _ = losses.generator_loss(
        linear_critic, REAL, FAKE, RP, 3.0, 0.5, estimator=linear_estimator
    )
    np.testing.assert_allclose(loss, -1.5 + 3.0 * 5.0 / 6.0 + 0.5 * 4.0, rtol=1e-6)
    loss, metrics = losses.generator_loss(linear_critic, REAL, FAKE, RP, 100.0)  # Lite-ComGAN
    np.testing.assert_allclose(loss, -1.5 + 100.0 * 5.0 / 6.0, rtol=1e-6)
    assert "rp_consistency" not in metrics
    loss, _ = losses.generator_loss(linear_critic, REAL, FAKE, RP, 0.0, adversarial="bce")
    np.testing.assert_allclose(loss, np.mean(np.log1p(np.exp([-2.5, -0.5]))), rtol=1e-6)
    with pytest.raises(ValueError, match="estimator"):
        losses.generator_loss(linear_critic, REAL, FAKE, RP, 100.0, 1.0)


def test_incomplete_masks_keep_the_asked_number_of_rus():
    mask = completion.incomplete_mask(jax.random.key(0), 200, 6, 2)
    np.testing.assert_array_equal(np.asarray(mask).sum(1), 2)
    assert (np.asarray(mask).sum(0) > 40).all()  # every RU is kept about a third of the time


def test_eq6_keeps_measured_entries_and_averages_the_subsets():
    rss = jnp.array([[1.0, 2.0, 3.0, 4.0]])

    def generate(x, mask, rp):  # a "generator" that predicts the measured value everywhere
        return jnp.broadcast_to(jnp.sum(x * mask, -1, keepdims=True), x.shape) + rp

    out = completion.subset_completion(generate, rss, jnp.zeros((1, 1)), jnp.array([[0, 2]]))
    # RU 0 and 2 measured (1 and 3, kept); the others are the mean of 1 and 3.
    np.testing.assert_allclose(out, [[1.0, 2.0, 3.0, 2.0]])
    measured = completion.measured_rus(50, 6, 3, seed=0)
    mask = completion.mask_of(measured, 6)
    np.testing.assert_array_equal(mask.sum(1), 3)
    kept = completion.keep_measured(np.ones((50, 6)), mask, np.zeros((50, 6)))
    np.testing.assert_array_equal(kept, mask)


def test_rp_split_and_the_most_consistent_rus():
    parts = data.split_rps(40, (15, 15, 10), seed=0)
    assert [len(parts[p]) for p in data.PARTS] == [15, 15, 10]
    assert len(np.unique(np.concatenate(list(parts.values())))) == 40
    # AP 'c' is heard at every RP, 'a' at two of three, 'b' once: with 2 RUs, c and a.
    rss = np.array([[-50, -60, -40], [-55, np.nan, -45], [np.nan, np.nan, -42]], np.float32)
    fs = FingerprintSet(
        rss=rss,
        detected=np.isfinite(rss),
        ap_ids=np.array(["a", "b", "c"]),
        xy=np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]]),
        rp_id=np.arange(3),
    )
    ru = data.real_set(fs, 2, -100.0, 4.0)
    assert ru.ru_ids.tolist() == ["a", "c"] and ru.rss[2, 0] == -100.0
    assert ru.rp_xy.shape == (3, 2)


@pytest.mark.parametrize("aux_weight,adversarial", [(0.5, "wasserstein"), (0.0, "bce")])
def test_one_jitted_iteration_is_finite_and_trains_both_players(aux_weight, adversarial):
    s = settings(aux_weight, gp_weight=3.0)._replace(adversarial=adversarial, l1_weight=7.0)
    state = training.init_state(s, jax.random.key(0), 6, 2, 1e-3)
    assert ("estimator" in state["critic"].params) == bool(aux_weight)
    batch = {
        "rss": jax.random.normal(jax.random.key(1), (6, 8, 6)),
        "rp": jax.random.normal(jax.random.key(2), (6, 8, 2)),
    }
    step = jax.jit(training.make_iteration(s))
    new, metrics = step(state, batch, jax.random.key(3))
    assert float(metrics["finite"]) == 1.0 and np.isfinite(float(metrics["loss"]))
    assert int(new["critic"].step) == 5 and int(new["generator"].step) == 1
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state, new)
    assert all(jax.tree.leaves(changed["generator"].params))
    assert ("rp_consistency" in metrics) == bool(aux_weight)
    # The settings reach the losses in their own slots: λ3 on the L1 term, λ2 on the branch's,
    # λ1 on the penalty (the metrics are the last critic step's and the generator step's terms).
    expected = metrics["adversarial"] + 7.0 * metrics["l1"]
    if aux_weight:
        expected += 0.5 * metrics["rp_consistency"]
    np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-5)
    if adversarial == "wasserstein":
        critic = -metrics["wasserstein"] + 3.0 * metrics["gradient_penalty"]
        critic += metrics["estimator_mse"] if aux_weight else 0.0
        np.testing.assert_allclose(metrics["critic_loss"], critic, rtol=1e-5)


@pytest.mark.slow
def test_the_study_end_to_end_and_a_resume_reproduces_it(tmp_path, capsys):
    run = tmp_path / "run"
    out = run_experiment(AVERAGING, run)
    rows = out["completion"]
    expected = {"comgan K=1", "lite_comgan K=2", "cgan K=1", "gpr_gan K=2", "unet K=1", "gpr K=2"}
    assert expected | {"comgan K=2 one subset"} <= set(rows)
    for name, row in rows.items():  # each seed's own RP means: no RP-only fill errs less
        oracle = rows[f"oracle RP mean K={name.split(' K=')[1].split()[0]}"]["per_seed_rmse_db"]
        assert np.all(np.less_equal(oracle, row["per_seed_rmse_db"])), name
    for row in rows.values():
        assert row["rmse_db"] == pytest.approx(np.mean(row["per_seed_rmse_db"]))
        assert row["rmse_boot_low"] < row["per_seed_rmse_db"][0] < row["rmse_boot_high"]
        assert row["n_seeds"] == 2 and len(row["per_seed_rmse_db"]) == 2
        # two data draws: the seeds' errors differ even for the untrained interpolations
        assert row["per_seed_rmse_db"][0] != row["per_seed_rmse_db"][1]
    loc = out["localization"]
    assert {"incomplete", "full", "hybrid comgan K=2", "hybrid unet K=2", "hybrid gpr K=2"} <= set(
        loc
    )
    saved = json.loads((run / "results.json").read_text())
    assert saved["rus"] and saved["split"]["0"]["rss_train"] != saved["split"]["1"]["rss_train"]
    # The synthetic room has no floor labels: no standard fields, the constants recorded.
    assert not any("ipin_mean" in row or "2d_mean" in row for row in loc.values())
    assert not any("per floor of difference" in name for name in saved["tables"])
    assert saved["standard_metrics"]["floor_penalty_m"] == 15.0
    assert len(saved["split"]["0"]["rss_train"]) == 15
    paired = [t for name, t in saved["tables"].items() if name.startswith("paired")]
    assert len(paired) == 2
    assert "comgan K=2 - gpr K=2" in paired[0]["rows"]
    assert "hybrid comgan K=2 - hybrid comgan K=2 one subset" in paired[1]["rows"]
    diff = paired[0]["rows"]["comgan K=2 - lite_comgan K=2"]
    a, b = rows["comgan K=2"]["per_seed_rmse_db"], rows["lite_comgan K=2"]["per_seed_rmse_db"]
    np.testing.assert_allclose(diff["diff"], np.mean(np.subtract(a, b)))
    assert diff["verdict"] == "no verdict (n < 5)"
    lines = (run / "gan" / "comgan" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["finite"] == 1.0
    # Lose a localizer stage and the results: the rerun restores the rest and ends the same.
    shutil.rmtree(run / "localizer" / "full")
    (run / "results.json").unlink()
    again = run_experiment(AVERAGING, run)
    assert again == out


def test_patch_conv_equals_flax_conv():
    import flax.linen as nn

    from jaxfp.methods.comgan.nets import PatchConv1D

    x = jax.random.normal(jax.random.key(0), (4, 6, 5))
    for kernel in (1, 3, 4):
        patch = PatchConv1D(7, kernel)
        params = patch.init(jax.random.key(1), x)
        reference = nn.Conv(7, (kernel,), padding="SAME").apply(params, x)
        np.testing.assert_allclose(patch.apply(params, x), reference, rtol=1e-5, atol=1e-5)


def test_a_real_set_loads_through_the_config():
    from jaxfp.config import load_config

    ru = data.load_ru_set(load_config(SPEC.replace(":test", ":uji_test")))
    assert ru.rss.shape == (96, 6) and np.isfinite(ru.rss).all() and ru.rss.max() < 0
    assert len(ru.rp_xy) == 16 and np.bincount(ru.rp).min() >= 1
    assert ru.rss.min() == -100.0  # readings the AP missed


def test_gpr_gan_fills_unmeasured_entries_with_the_prior_and_trains():
    s = settings(aux_weight=0.0)._replace(prior=True)
    state = training.init_state(s, jax.random.key(0), 6, 2, 1e-3)
    params = state["generator"].params
    rss, rp = jnp.ones((2, 6)), jnp.zeros((2, 2))
    mask = jnp.array([[1.0, 0, 0, 0, 0, 0]] * 2)
    prior = jnp.stack([jnp.zeros(6), jnp.full(6, 3.0)])
    out = s.generator.apply({"params": params}, rss, mask, rp, prior)
    assert not np.allclose(out[0], out[1])  # the prior reaches the output
    changed_measured = prior.at[:, 0].set(-5.0)  # a prior under a measured entry is ignored
    np.testing.assert_allclose(
        s.generator.apply({"params": params}, rss, mask, rp, changed_measured), out, rtol=1e-6
    )
    batch = {
        "rss": jax.random.normal(jax.random.key(1), (6, 8, 6)),
        "rp": jax.random.normal(jax.random.key(2), (6, 8, 2)),
        "prior": jax.random.normal(jax.random.key(3), (6, 8, 6)),
    }
    _, metrics = jax.jit(training.make_iteration(s))(state, batch, jax.random.key(4))
    assert float(metrics["finite"]) == 1.0 and "gradient_penalty" in metrics


@pytest.mark.parametrize("rus", [5, 6])
def test_unet_denoiser_learns_to_fill_a_constant_vector(rus):
    unet = UNet1D()
    x = jnp.zeros((1, rus))
    params = unet.init(jax.random.key(0), x, x, jnp.zeros((1, 2)))["params"]
    assert unet.apply({"params": params}, x, x, jnp.zeros((1, 2))).shape == (1, rus)
    state = TrainState.create(apply_fn=unet.apply, params=params, tx=optax.adam(1e-2))
    step = make_train_step(losses.denoiser_loss(unet, 1))
    # Samples whose RUs all carry the same value: one measured RU says what the others are.
    values = jax.random.normal(jax.random.key(1), (64, 1))
    batch = {"rss": jnp.repeat(values, rus, 1), "rp": jnp.zeros((64, 2))}
    first = None
    for i in range(150):
        state, metrics = step(state, batch, jax.random.key(i))
        first = float(metrics["mse"]) if first is None else first
    assert float(metrics["mse"]) < 0.1 * first


def test_gaussian_process_maps_interpolate_and_leave_one_out_is_coarser():
    xy = np.stack([np.arange(15.0), np.zeros(15)], 1)
    values = np.stack([np.sin(xy[:, 0] / 3), np.cos(xy[:, 0] / 4)], 1)
    lengths, noises = (1.0, 3.0, 6.0), (1e-4, 1e-2)
    middle = xy[:-1] + [0.5, 0.0]
    predicted = completion.gp_map(xy, values, middle, lengths, noises)
    truth = np.stack([np.sin(middle[:, 0] / 3), np.cos(middle[:, 0] / 4)], 1)
    assert np.abs(predicted - truth).max() < 0.05
    in_sample = completion.gp_map(xy, values, xy, lengths, noises)
    left_out = completion.gp_map_left_out(xy, values, lengths, noises)
    assert np.abs(in_sample - values).mean() < np.abs(left_out - values).mean() < 0.1
    np.testing.assert_allclose(
        left_out[3],
        completion.gp_map(np.delete(xy, 3, 0), np.delete(values, 3, 0), xy[3:4], lengths, noises)[
            0
        ],
    )


def test_config_variants_and_a_wrong_one():
    from jaxfp.config import ConfigError, load_config

    dsi = load_config(SPEC.replace(":test", ":dsi"))
    assert dsi.data.source == "real" and dsi.data.path.endswith("DSI1.mat")
    with pytest.raises(ConfigError, match="dsl"):
        load_config(SPEC.replace(":test", ":dsl"))


def test_each_seed_draws_its_own_world_split_and_measured_rus(tmp_path):
    from jaxfp.config import load_config
    from jaxfp.methods.comgan.study import Study

    config = load_config(SPEC)
    first, second = data.draws_for(config, (0, 1))
    assert not np.array_equal(first.ru.rss, second.ru.rss)  # its own world and survey
    assert not np.array_equal(first.rps["rss_train"], second.rps["rss_train"])
    again = data.draws_for(config, (1,))[0]
    np.testing.assert_array_equal(again.x, second.x)  # a seed's draw is a function of the seed
    with config.unlocked():
        config.data.per_seed_draw = False
    fixed = data.draws_for(config, (0, 1))
    np.testing.assert_array_equal(fixed[0].x, fixed[1].x)

    uji = data.draws_for(load_config(SPEC.replace(":test", ":uji_test")), (0, 1))
    np.testing.assert_array_equal(uji[0].ru.rss, uji[1].ru.rss)  # one survey, two splits
    assert not np.array_equal(uji[0].rps["rss_test"], uji[1].rps["rss_test"])

    s = Study(load_config(SPEC), str(tmp_path))
    measured = s.measured_rus(2)
    assert not np.array_equal(measured[0], measured[1])
    batch_of = s.training_batches((3, 16))
    for m, d in enumerate(s.draws):
        batch = batch_of(np.random.default_rng(0), m)
        assert batch["rss"].shape == (3, 16, s.rus)
        own = {r.tobytes() for r in d.x[d.rows["rss_train"]]}
        assert all(r.tobytes() in own for r in batch["rss"].reshape(-1, s.rus))
        held_out = {r.tobytes() for r in d.x[d.rows["rss_test"]]}
        assert not any(r.tobytes() in held_out for r in batch["rss"].reshape(-1, s.rus))


def test_the_averaging_config_adds_one_subset_rows_to_every_size():
    from jaxfp.config import load_config

    for size in ("", "uji", "test"):
        spec = AVERAGING.replace(":test", f":{size}" if size else "")
        base = load_config(SPEC.replace(":test", f":{size}" if size else ""))
        config = load_config(spec)
        assert config.one_subset and not base.one_subset
        assert config.seeds == base.seeds and config.data.path == base.data.path


def test_the_cgan_baseline_is_noise_and_rp_in_with_the_adversarial_loss_alone():
    from jaxfp.config import load_config, variant_settings
    from jaxfp.methods.comgan.nets import NoiseGenerator

    config = load_config(SPEC)
    g = variant_settings(config, "gan", "cgan")
    s = training.gan_settings(g, 1)
    assert isinstance(s.generator, NoiseGenerator) and s.l1_weight == 0.0 and s.aux_weight == 0.0
    # The generator's loss is -log σ(C(fake)) alone: 2.5 and 0.5 are the linear critic's scores
    # of FAKE; the complete samples (REAL) do not enter it, as an L1 term would.
    expected = np.mean(np.log1p(np.exp([-2.5, -0.5])))
    for real in (REAL, REAL + 5.0):
        loss, metrics = losses.generator_loss(
            linear_critic, real, FAKE, RP, s.l1_weight, s.aux_weight, s.adversarial
        )
        np.testing.assert_allclose(loss, expected, rtol=1e-6)
        np.testing.assert_allclose(metrics["adversarial"], expected, rtol=1e-6)
    # The net reads noise and the RP: not the sample, not its mask.
    params = s.generator.init(
        {"params": jax.random.key(0), "noise": jax.random.key(1)},
        jnp.zeros((1, 6)),
        jnp.zeros((1, 6)),
        jnp.zeros((1, 1)),
    )["params"]
    rp = jnp.array([[0.3], [-0.2]])

    def out(rss, mask, key):
        return s.generator.apply({"params": params}, rss, mask, rp, rngs={"noise": key})

    base = out(jnp.zeros((2, 6)), jnp.zeros((2, 6)), jax.random.key(2))
    np.testing.assert_array_equal(out(jnp.ones((2, 6)), jnp.ones((2, 6)), jax.random.key(2)), base)
    assert not np.allclose(out(jnp.zeros((2, 6)), jnp.zeros((2, 6)), jax.random.key(3)), base)
    # One training iteration: its generator loss is the adversarial term, nothing added.
    state = training.init_state(
        s._replace(estimator=RpEstimator(outputs=2)), jax.random.key(4), 6, 2, 1e-3
    )
    batch = {
        "rss": jax.random.normal(jax.random.key(5), (6, 8, 6)),
        "rp": jax.random.normal(jax.random.key(6), (6, 8, 2)),
    }
    _, metrics = jax.jit(training.make_iteration(s))(state, batch, jax.random.key(7))
    np.testing.assert_allclose(metrics["loss"], metrics["adversarial"], rtol=1e-6)
    assert float(metrics["l1"]) > 0.1  # far from the complete samples, and not penalised for it


def test_every_gan_variant_trains_with_wgan_gp_adam_settings():
    from jaxfp.config import load_config, variant_settings

    config = load_config(SPEC.replace(":test", ""))
    for variant in config.run_variants:
        opt = variant_settings(config, "gan", variant).optimizer
        assert (opt.name, opt.learning_rate, opt.b1, opt.b2) == ("adam", 1e-4, 0.0, 0.9), variant


def test_eq6_gives_each_subset_its_own_noise_key():
    rss = jnp.array([[1.0, 2.0, 3.0]])

    def generate(x, mask, rp, key):  # the subset's own noise, whatever it measured
        return jnp.broadcast_to(jax.random.uniform(key, (1, 1)), x.shape)

    key = jax.random.key(0)
    out = completion.subset_completion(generate, rss, jnp.zeros((1, 1)), jnp.array([[0, 2]]), key)
    draws = [float(jax.random.uniform(k, (1, 1))[0, 0]) for k in jax.random.split(key, 2)]
    np.testing.assert_allclose(out, [[1.0, np.mean(draws), 3.0]], rtol=1e-6)
    assert draws[0] != draws[1]


def test_learning_curve_averages_windows_of_steps_by_hand():
    from jaxfp.methods.comgan.run import learning_curve

    records = [{"step": s, "l1": float(s), "wasserstein": 1.0} for s in (20, 40, 60, 80)]
    records.append({"step": 80, "eval/x": 3.0})
    curve = learning_curve(records, 2)
    assert list(curve) == ["steps 1-40", "steps 41-80"]
    assert curve["steps 1-40"] == {"wasserstein": 1.0, "l1": 30.0}
    assert curve["steps 41-80"]["l1"] == 70.0
    assert learning_curve([], 3) == {}


def test_one_building_and_floor_of_a_real_set():
    from jaxfp.config import ConfigError
    from jaxfp.data.registry import load_parts

    fs = load_parts(REPO / "data" / "DSI1.mat", ["train"])
    floors = np.unique(fs.floor)
    assert data.place_subset(fs, -1, -1) is fs
    one = data.place_subset(fs, -1, int(floors[0]))
    assert (one.floor == floors[0]).all() and 0 < one.n <= fs.n
    with pytest.raises(ConfigError, match="config.data.floor"):
        data.place_subset(fs, -1, 99)


def test_coordinates_far_from_the_origin_keep_their_spread_after_scaling():
    # UTM-like RPs: x near -7,300 m, y near 4.86e6 m, 10 m apart.
    xy = np.array([[-7300.0, 4.86e6], [-7290.0, 4.86e6], [-7300.0, 4.86e6 + 10.0]])
    rss = np.zeros((3, 2))
    centred = data.Scale.fit(rss, xy)
    np.testing.assert_allclose(centred.xy_std, (xy - xy.mean(0)).std())
    scaled = centred.xy_in(xy)
    assert np.linalg.norm(scaled[0] - scaled[1]) > 0.5  # 10 m stays about one unit apart
    np.testing.assert_allclose(centred.xy_out(scaled), xy, rtol=0, atol=1e-3)
    values = data.Scale.fit(rss, xy, "values")
    assert np.linalg.norm(values.xy_in(xy)[0] - values.xy_in(xy)[1]) < 1e-4  # collapsed
    with pytest.raises(ConfigError, match="xy_scale"):
        data.Scale.fit(rss, xy, "raw")
