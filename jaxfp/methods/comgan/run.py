"""`comgan.completion`: the completion and localization study of the ComGAN paper (§IV).

Each seed is one replicate: its own data draw (`jaxfp.methods.comgan.data`: on the synthetic room
its own world, survey noise and RP split; on a real set, whose survey is fixed, its own RP split) and
its own measured RUs per test sample and initialisation.

1. Split whole RPs 15 / 15 / 10 (RSS training / RSS testing / localization testing); standardise.
2. Train each GAN variant in `config.run_variants` (ComGAN, Lite-ComGAN, cGAN, GPR-GAN) and, with
   `config.run_unet`, the U-Net denoiser on the RSS-training samples, all seeds stacked.
3. Complete the RSS-testing samples from K measured RUs each (eq. 6), for every K in `config.ks`, the
   same measured RUs for every method; with `config.one_subset`, "K=k one subset" keeps the K measured
   entries but completes from the first subset alone. IDW and Gaussian-process interpolation of the
   training RPs' mean fingerprints are the floor a learned method must beat; "oracle RP mean" (each
   test RP's own mean, from the truth) is the error no RP-only predictor can go below.
4. Element-wise RMSE and NRMSE (RMSE / RMS of the truth) over the unmeasured entries, in dBm: the mean
   over seeds with its t-interval, and the paper's 1,000-resample bootstrap interval of the first
   seed's run (resampling its entries).
5. The CNN localizer, trained on the RSS-testing RPs' samples — incomplete (unmeasured entries at the
   training mean), fully measured, or hybrid (completed by each method) — and tested on the
   localization-testing RPs' fully measured samples; mean and RMS error (m) over the RP
   coordinates, and on a real set with floor labels the ISO/IEC 18305 and IPIN fields
   (`localizer_standard`; constants from `config.eval`) in a table of their own.
6. Paired differences over seeds (ComGAN minus each other row a claim compares it with).
7. Learning curves of every GAN variant and the U-Net (the logged metrics, each the mean over
   seeds, averaged over `config.curve_windows` equal windows of steps), and the cross-RU
   predictability of each seed's data (`jaxfp.methods.comgan.data:cross_ru_predictability`).

Validation: no setting is chosen inside the protocol; the Gaussian process picks its kernel by the
marginal likelihood of the training RPs' means, and every other setting is config.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np

from jaxfp.config import ConfigError, check_seeds, variant_settings
from jaxfp.eval.iso18305 import (
    StandardConstants,
    estimated_floors,
    standard_report,
    standard_table,
)
from jaxfp.eval.metrics import bootstrap_ci
from jaxfp.eval.results import over_seeds, table, write_results
from jaxfp.eval.stats import paired_rows
from jaxfp.methods import program
from jaxfp.methods.comgan import completion
from jaxfp.methods.comgan.data import PARTS, Draw, cross_ru_predictability
from jaxfp.methods.comgan.losses import ADVERSARIAL
from jaxfp.methods.comgan.study import Study
from jaxfp.methods.comgan.training import GENERATOR_INPUTS
from jaxfp.train.keys import named_int
from jaxfp.train.logging import read_metrics
from jaxfp.train.optimisers import optimizer_from_config

INTERPOLATIONS = ("idw", "gpr")
PRIORS = ("none", "gpr")
PAPER = "comgan"  # the row every paired difference starts from


def check_config(config: ml_collections.ConfigDict) -> None:
    """Every value the protocol reads that could be wrong, before any work starts."""
    known = list(config.variants.keys())
    unknown = set(config.run_variants) - set(known)
    if unknown:
        raise ConfigError(
            f"config.run_variants: unknown {sorted(unknown)}; expected some of {known}"
        )
    for variant in config.run_variants:
        g = variant_settings(config, "gan", variant)
        if g.adversarial not in ADVERSARIAL:
            raise ConfigError(
                f"gan.adversarial for {variant}: expected one of {ADVERSARIAL}, "
                f"got {g.adversarial!r}"
            )
        if g.generator_input not in GENERATOR_INPUTS:
            raise ConfigError(
                f"gan.generator_input for {variant}: expected one of {GENERATOR_INPUTS}, "
                f"got {g.generator_input!r}"
            )
        if g.prior not in PRIORS:
            raise ConfigError(f"gan.prior for {variant}: expected one of {PRIORS}, got {g.prior!r}")
        optimizer_from_config(g.optimizer.to_dict())
    optimizer_from_config(config.unet.optimizer.to_dict())
    optimizer_from_config(config.localizer.optimizer.to_dict())
    if config.localizer_k not in config.ks:
        raise ConfigError(f"config.localizer_k: expected one of config.ks {tuple(config.ks)}")
    if int(config.curve_windows) < 1:
        raise ConfigError(f"config.curve_windows: expected >= 1, got {config.curve_windows}")
    check_seeds(tuple(config.seeds))


CURVE_COLUMNS = (
    "wasserstein",
    "gradient_penalty",
    "discriminator_bce",
    "adversarial",
    "l1",
    "rp_consistency",
    "estimator_mse",
    "mse",
)


def learning_curve(records: Sequence[dict[str, Any]], windows: int) -> dict[str, dict[str, float]]:
    """Logged metrics (one record per logged step, each the mean over seeds) averaged over
    `windows` equal windows of the steps: {"steps a-b": {metric: mean}}."""
    records = [r for r in records if "step" in r]
    if not records:
        return {}
    last = max(int(r["step"]) for r in records)
    edges = np.linspace(0, last, windows + 1)
    out: dict[str, dict[str, float]] = {}
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = [r for r in records if low < int(r["step"]) <= high]
        if not inside:
            continue
        row = {}
        for name in CURVE_COLUMNS:
            values = [float(r[name]) for r in inside if name in r]
            if values:
                row[name] = float(np.mean(values))
        out[f"steps {int(low) + 1}-{int(high)}"] = row
    return out


def predictability_rows(s: Study) -> dict[str, dict[str, Any]]:
    """The cross-RU predictability of each seed's data (all its samples), and over seeds."""
    rows: dict[str, dict[str, Any]] = {}
    per_seed = []
    for seed, d in zip(s.seeds, s.draws, strict=True):
        p = cross_ru_predictability(d.ru.rss, d.ru.rp)
        per_seed.append(p.mean_r2)
        rows[f"seed {seed}"] = {
            "mean_r2": p.mean_r2,
            "max_abs_corr": p.max_abs_corr,
            "per_ru_r2": " ".join(f"{v:.2f}" for v in p.per_ru),
        }
    rows["over seeds"] = over_seeds(per_seed, "mean_r2")
    return rows


def element_errors(
    s: Study, completed: Sequence[np.ndarray], measured: Sequence[np.ndarray]
) -> dict[str, Any]:
    """Each seed's (n_test, L) standardised completions -> the RMSE/NRMSE row over the unmeasured
    entries (t-interval over seeds; bootstrap interval of the first seed's run)."""
    rmse, nrmse, first = [], [], None
    for d, c, k in zip(s.draws, completed, measured, strict=True):
        truth = d.ru.rss[d.rows["rss_test"]].astype(np.float64)
        unmeasured = completion.mask_of(k, s.rus) == 0
        squared = ((d.scale.rss_out(c) - truth)[unmeasured]) ** 2
        rmse.append(float(np.sqrt(squared.mean())))
        nrmse.append(rmse[-1] / float(np.sqrt(np.mean(truth[unmeasured] ** 2))))
        first = squared if first is None else first
    row = over_seeds(rmse, "rmse_db")
    row["nrmse"] = float(np.mean(nrmse))
    row["rmse_boot_low"], row["rmse_boot_high"] = bootstrap_ci(
        first,
        lambda v: float(np.sqrt(np.mean(v))),
        n_resamples=int(s.config.eval.bootstrap_resamples),
        seed=named_int(s.config.seed, "bootstrap"),
    )
    row["per_seed_rmse_db"] = rmse
    return row


def localizer_standard(
    d: Draw, estimate: np.ndarray, floor_height_m: float, constants: StandardConstants
) -> dict[str, float]:
    """One seed's ISO/IEC 18305 and IPIN fields of the localizer's estimates (m) of its
    localization-testing samples; {} on a set without floor labels (the synthetic room).

    The localizer regresses RP coordinates rather than naming an RP: its floor is the set's floor
    nearest the estimated height (`floor_height_m` apart; a one-floor set: that floor), its
    building that of the nearest (x, y) sample it trained on (the RSS-testing part)."""
    ru, rows = d.ru, d.rows["loc_test"]
    if ru.floor is None:
        return {}
    truth = d.scale.xy_out(d.p[rows])[:, :2]
    floor = estimated_floors(estimate, floor_height_m, np.unique(ru.floor))
    if floor is None:  # several floors pooled into 2-D RPs: no floor estimate to score
        return standard_report(estimate[:, :2], truth, constants=constants)
    building = true_building = None
    if ru.building is not None:
        trained = d.rows["rss_test"]
        trained_xy = d.scale.xy_out(d.p[trained])[:, :2]
        nearest = np.linalg.norm(estimate[:, None, :2] - trained_xy[None], axis=-1).argmin(1)
        building, true_building = ru.building[trained][nearest], ru.building[rows]
    return standard_report(
        estimate[:, :2], truth, floor, ru.floor[rows], building, true_building, constants
    )


def localization_row(
    draws: Sequence[Draw],
    estimates: Sequence[np.ndarray],
    floor_height_m: float,
    constants: StandardConstants,
) -> dict[str, Any]:
    """A localization row from each seed's estimates: the mean and RMS error over the RP
    coordinates (t-intervals over seeds, each seed's values), and each standard field's mean over
    seeds where the set has floor labels."""
    errors = [
        np.linalg.norm(e - d.scale.xy_out(d.p[d.rows["loc_test"]]), axis=-1)
        for d, e in zip(draws, estimates, strict=True)
    ]
    rmse = [float(np.sqrt(np.mean(e**2))) for e in errors]
    row = over_seeds([float(e.mean()) for e in errors], "mean_m")
    row.update(over_seeds(rmse, "rmse_m"))
    row["per_seed_mean_m"] = [float(e.mean()) for e in errors]
    row["per_seed_rmse_m"] = rmse
    standard = [
        localizer_standard(d, e, floor_height_m, constants)
        for d, e in zip(draws, estimates, strict=True)
    ]
    for field in standard[0]:
        row[field] = float(np.mean([seed[field] for seed in standard]))
    return row


def run_completion(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    check_config(config)
    os.makedirs(workdir, exist_ok=True)
    s = Study(config, workdir)
    measured_all = s.measured_rus(max(config.ks))
    ks, lk = tuple(config.ks), int(config.localizer_k)
    rows: dict[str, dict[str, Any]] = {}
    hybrids: dict[str, list[np.ndarray]] = {}
    seconds: dict[str, float] = {}
    learned: dict[str, tuple[Any, Any, list[np.ndarray] | None]] = {}  # params, net, priors
    for variant in config.run_variants:
        print(f"[comgan] {variant}: training {s.n} seeds", flush=True)
        start = time.perf_counter()
        generator, model = s.train_gan(variant)
        seconds[variant] = time.perf_counter() - start
        uses_prior = variant_settings(config, "gan", variant).prior == "gpr"
        priors = [s.gpr_prior(m, False) for m in range(s.n)] if uses_prior else None
        learned[variant] = (generator.params, model, priors)
    if config.run_unet:
        print(f"[comgan] unet: training {s.n} seeds", flush=True)
        start = time.perf_counter()
        states, model = s.train_unet()
        seconds["unet"] = time.perf_counter() - start
        learned["unet"] = (states.params, model, None)
    for name, (params, model, priors) in learned.items():
        for k in ks:
            measured = [m[:, :k] for m in measured_all]
            completed = s.complete(params, model, measured, priors)
            rows[f"{name} K={k}"] = element_errors(s, completed, measured)
            hybrids[f"{name} K={k}"] = completed
        if config.one_subset and lk > 1:
            # Eq. 6's averaging apart from its extra measured entries: the K measured entries
            # kept, the rest completed from the first subset alone.
            measured = [m[:, :lk] for m in measured_all]
            single = s.complete(params, model, [m[:, :1] for m in measured_all], priors)
            kept = [
                completion.keep_measured(d.x[d.rows["rss_test"]], completion.mask_of(k, s.rus), c)
                for d, k, c in zip(s.draws, measured, single, strict=True)
            ]
            rows[f"{name} K={lk} one subset"] = element_errors(s, kept, measured)
            hybrids[f"{name} K={lk} one subset"] = kept
    for k in ks:
        measured = [m[:, :k] for m in measured_all]
        oracle = [s.rp_mean_oracle(m, measured[m]) for m in range(s.n)]
        rows[f"oracle RP mean K={k}"] = element_errors(s, oracle, measured)
        for method in INTERPOLATIONS:
            done = [s.interpolate(method, m, measured[m]) for m in range(s.n)]
            rows[f"{method} K={k}"] = element_errors(s, done, measured)
            hybrids[f"{method} K={k}"] = done

    full = [d.x[d.rows["rss_test"]] for d in s.draws]
    masks = [completion.mask_of(m[:, :lk], s.rus) for m in measured_all]
    versions = {"incomplete": [x * m for x, m in zip(full, masks, strict=True)], "full": full}
    for name, completed in hybrids.items():  # every method at localizer_k, the learned at every K
        method, k = name.split(" K=")
        if int(k.split()[0]) == lk or method in learned:
            versions[f"hybrid {name}"] = completed
    localization: dict[str, dict[str, Any]] = {}
    loc_rmse: dict[str, list[float]] = {}
    constants = StandardConstants.from_config(config.eval)
    for version, inputs in versions.items():
        print(f"[comgan] localizer on {version}", flush=True)
        estimates = s.train_localizer(version.replace(" ", "_").replace("=", ""), inputs)
        row = localization_row(s.draws, estimates, float(config.data.floor_height_m), constants)
        loc_rmse[version] = row["per_seed_rmse_m"]
        localization[version] = row

    others = [v for v in learned if v != PAPER] + list(INTERPOLATIONS)
    element_pairs = [(f"{PAPER} K={lk}", f"{b} K={lk}") for b in others]
    element_pairs.append((f"{PAPER} K={lk}", f"oracle RP mean K={lk}"))
    if 1 in ks and lk != 1:  # eq. 6's subsets against one
        element_pairs.append((f"{PAPER} K={lk}", f"{PAPER} K=1"))
    per_seed_db = {r: v["per_seed_rmse_db"] for r, v in rows.items()}
    hybrid = f"hybrid {PAPER} K={lk}"
    loc_pairs = [(hybrid, "full"), (hybrid, "incomplete")]
    loc_pairs += [(hybrid, f"hybrid {b} K={lk}") for b in others]
    for variant in (PAPER, "lite_comgan"):  # Table II: with against without eq. 6 (K = 1)
        loc_pairs.append((f"hybrid {variant} K={lk}", f"hybrid {variant} K=1"))
    loc_pairs += [(f"hybrid {PAPER} K={k}", f"hybrid {PAPER} K={lk}") for k in ks if k > lk]
    loc_pairs.append((hybrid, f"{hybrid} one subset"))
    pair_columns = ["diff", "diff_ci_low", "diff_ci_high", "verdict"]

    curves: dict[str, dict[str, float]] = {}
    stages = [f"gan/{v}" for v in config.run_variants] + (["unet"] if config.run_unet else [])
    for stage in stages:
        records = read_metrics(os.path.join(workdir, stage))
        for window, row in learning_curve(records, int(config.curve_windows)).items():
            curves[f"{stage.split('/')[-1]} {window}"] = row
    predictability = predictability_rows(s)

    draw = s.draws[0]
    varies = "world, survey and RP split" if config.data.source == "synthetic" else "RP split"
    title = (
        f"{draw.ru.source}: {len(draw.ru.rp_xy)} RPs "
        f"({', '.join(f'{p} {len(draw.rps[p])}' for p in PARTS)}), {len(draw.ru.rss)} samples, "
        f"RUs {draw.ru.ru_ids.tolist()}; seeds {list(s.seeds)}, "
    )
    if config.data.per_seed_draw:
        title += f"each its own {varies}, measured RUs and initialisation"
    else:
        title += f"each the data draw of seed {config.seed} (the initialisation varies)"
    columns = ["rmse_db", "rmse_db_ci_low", "rmse_db_ci_high", "nrmse"]
    columns += ["rmse_boot_low", "rmse_boot_high"]
    loc_columns = ["mean_m", "mean_m_ci_low", "mean_m_ci_high", "rmse_m"]
    loc_columns += ["rmse_m_ci_low", "rmse_m_ci_high"]
    tables = {
        "cross-RU predictability: R² of one RU's deviation from its RP mean on the other RUs' "
        "(mean over RUs), each seed's data": table(
            predictability, ["mean_r2", "mean_r2_ci_low", "mean_r2_ci_high", "max_abs_corr"]
        ),
        "localization error (m): the CNN localizer trained on the RSS-testing RPs' samples": table(
            localization, loc_columns
        ),
        f"paired differences of the element RMSE (dB) at K={lk}, A - B over seeds": table(
            paired_rows(per_seed_db, element_pairs, "diff"), pair_columns
        ),
        "paired differences of the localization RMS error (m), A - B over seeds": table(
            paired_rows(loc_rmse, loc_pairs, "diff"), pair_columns
        ),
        "learning curves: logged training metrics (mean over seeds) per window of steps": table(
            curves, [c for c in CURVE_COLUMNS if any(c in r for r in curves.values())]
        ),
    }
    for caption, standard in standard_table(localization, constants).items():
        tables[f"localization, {caption} (mean over seeds)"] = standard
    write_results(
        workdir,
        title,
        config,
        rows,
        columns,
        tables,
        localization=localization,
        train_seconds=seconds,
        split={
            str(seed): {p: d.rps[p].tolist() for p in PARTS}
            for seed, d in zip(s.seeds, s.draws, strict=True)
        },
        rus=draw.ru.ru_ids.tolist(),
        standard_metrics=dataclasses.asdict(constants),
    )
    return {
        "completion": rows,
        "localization": localization,
        "curves": curves,
        "predictability": predictability,
    }


PROGRAMS = {"completion": run_completion}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    return program(config.method, PROGRAMS)(config, workdir)
