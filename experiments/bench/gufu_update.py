"""Benchmark: GUFU's offline stage and seconds per online update on a synthetic site of ~10,000
sample nodes and ~400 AP nodes (the target: 5 s or less per update on 2 CPU cores).

    python experiments/bench/gufu_update.py [--aps 400] [--rps-side 50] [--samples-per-rp 4]
        [--variant gufu|gufu_linked|...] [--set retrain_steps=20 ...]

The site is `jaxfp.data.synthetic` (ComGAN's propagation model, shadowing, fading); the batch is
one scan at 1,000 random points after a period of AP churn at GUFU's Table 5 rates. The first
update includes compilation; later ones are the steady state (a step recompiles when a graph
budget or the autoencoder's padded AP width changes). Site and settings are those of
`experiments/gufu/longterm.py:synthetic_large` (its offline autoencoder trains 4,000 steps: the
experiments' 1,000 leave this site's decoder on its plateau); `--set` overrides a setting.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import os

import jax
import numpy as np

from jaxfp.config import load_config, variant_settings
from jaxfp.data.synthetic import WorldParams, evolve, make_world, measure, survey
from jaxfp.eval.bench import machine_info, peak_rss_mib
from jaxfp.methods.gufu.study import Gufu
from jaxfp.train.keys import named_int

HERE = os.path.abspath(__file__)


def main() -> None:
    # The site and its settings are the protocol's `:synthetic_large`, which measures what the
    # levers timed here cost in accuracy (docs/performance.md, GUFU)
    config = load_config(HERE.replace("bench/gufu_update.py", "gufu/ours.py:synthetic_large"))
    site, spacing = config.synthetic, WorldParams().rp_spacing_m
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--aps", type=int, default=site.n_aps)
    parser.add_argument("--rps-side", type=int, default=round(site.width_m / spacing))
    parser.add_argument("--samples-per-rp", type=int, default=site.samples_per_rp)
    parser.add_argument("--batch", type=int, default=site.batch)
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--variant", default="gufu")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a gufu setting after the variant's, e.g. --set retrain_steps=20",
    )
    args = parser.parse_args()
    settings = variant_settings(config, "gufu", args.variant)  # 4,000 offline autoencoder steps
    for assignment in args.set:
        field, _, value = assignment.partition("=")
        if field not in settings:
            parser.error(f"--set {assignment}: no gufu setting {field!r}")
        try:
            settings[field] = ast.literal_eval(value)  # numbers, True/False, quoted strings
        except (ValueError, SyntaxError):
            settings[field] = value  # a bare word: a choice such as rewrite=residual
    side = spacing * args.rps_side
    params = dataclasses.replace(
        WorldParams(),
        width_m=side,
        height_m=side,
        n_aps=args.aps,
        path_loss_exponent=site.path_loss_exponent,
        sensitivity_dbm=site.sensitivity_dbm,
    )
    world = make_world(params, seed=named_int(0, "world"))
    db = survey(world, args.samples_per_rp, seed=named_int(0, "survey"))
    db = db.select_aps(db.ap_ids[db.detected.any(0)].tolist())
    print(machine_info())
    print(f"variant {args.variant}: {dict(settings)}")
    print(
        f"site: {len(db.rss)} sample nodes, {len(db.ap_ids)} AP nodes, "
        f"{int(db.detected.sum())} sample-AP edges"
    )
    model = Gufu(settings, db.ap_ids, db.rss.copy(), db.xy, jax.random.key(0))
    offline = model.offline()
    print(f"offline stage: {offline['seconds']:.1f} s")
    if "ae_error_db" in offline:
        print(
            f"  autoencoder: {offline['ae_error_db']:.1f} dB error on the detected values, "
            f"{offline['ae_below_floor']:.0%} of them decoded below the floor"
        )
    later = world
    for update in range(args.updates):
        later = evolve(later, seed=named_int(0, "churn", update))
        xy = np.random.default_rng(update).uniform(0, side, (args.batch, 2))
        batch = measure(later, xy, np.zeros(args.batch, int), seed=named_int(0, "batch", update))
        result = model.update(batch.rss, batch.ap_ids)
        error = np.linalg.norm(result["xy"] - xy, axis=1).mean()
        print(
            f"update {update + 1}: {result['seconds']:.1f} s, batch location error {error:.2f} m, "
            f"APs +{result['aps_added']} -{result['aps_removed']}, now {len(model.ap_ids)}; "
            f"update module {result['seconds_update_module']:.1f} s, edge prediction "
            f"{result['seconds_edge_prediction']:.1f} s, retraining "
            f"{result['seconds_retraining']:.1f} s, decoding {result['seconds_rewrite']:.1f} s"
        )
        print(
            f"  diagnostics: {result['old_new_pairs']} old-new pairs, "
            f"{result['new_samples_linked']:.0%} of the batch linked, "
            f"{result['detections_ended']} detections ended by the rewrite, "
            f"{result.get('aps_losing_edges', 0)} APs losing edges to edge prediction"
        )
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
