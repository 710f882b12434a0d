"""GUFU month by month on the UJI long-term library set: the paper's method (`gufu`) and its
baselines (never updated, location-then-average, §7.1's neighbour averaging after WkNN or iToLoc).

    jaxfp run experiments/gufu/longterm.py --workdir runs/gufu \
        --config.data.path=/path/to/uji-lib-longterm-months01-15.zip
The default size reports months 9-15; `:validation` runs months 2-8, where settings, variants
and thresholds are chosen (`:small`: months 2-4, 40 records per reference point).
Test size (the shipped 3-month cut, 2 seeds): experiments/gufu/longterm.py:test
Synthetic weekly AP churn: experiments/gufu/longterm.py:synthetic (reported seeds 0-4;
:synthetic_validation: seeds 10-14, where choices are made; :synthetic_test); at the heaviest
weekly rates of GUFU's Table 5: :synthetic_heavy; on the speed benchmark's site (10,000 records,
400 APs, batches of 1,000; `experiments/bench/gufu_update.py`): :synthetic_large.

Each seed is one replicate: on the synthetic sites its own world, churn, batches and surveys; on
the UJI months (fixed by the data set) its own records-per-point subsample where
`data.records_per_rp` > 0 and its own initialisations and draws. Our variants are in
`experiments/gufu/ours.py`, the paper's ablations and readings of its open points in
`experiments/gufu/ablations.py`.
"""

import ml_collections

from jaxfp.config import repo_path, sibling
from jaxfp.eval.iso18305 import eval_section
from jaxfp.methods.gufu.variants import BASELINES

TINY_TRAINING = dict(
    ae_steps=3, gnn_steps=2, update_steps=3, retrain_steps=2, budget_multiple=64, ae_gate=False
)

# Choices are made on the validation months and synthetic seeds; the reported ones never see them
REPORTED_MONTHS = (9, 10, 11, 12, 13, 14, 15)
VALIDATION_MONTHS = (2, 3, 4, 5, 6, 7, 8)
VALIDATION_SEEDS = (10, 11, 12, 13, 14)

SIZES = (
    "",
    "validation",
    "small",
    "synthetic",
    "synthetic_validation",
    "synthetic_heavy",
    "synthetic_large",
    "synthetic_test",
    "test",
)  # checked by jaxfp.config.load_config: an unknown size is an error


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.method = "gufu.periods"
    c.seeds = (0, 1, 2, 3, 4)
    # GUFU's variants: the config.gufu settings each changes; here the paper as read.
    c.variants = ml_collections.ConfigDict(dict(gufu={}))
    # Which run (any of c.variants and the databases of variants.BASELINES may be named)
    c.run_variants = ("gufu", *BASELINES)
    c.data = ml_collections.ConfigDict(
        dict(
            source="longterm",  # or "synthetic" (c.synthetic)
            path=repo_path(__file__, "data", "uji-lib-longterm-months01-15.zip"),
            months=REPORTED_MONTHS,  # () = every month after the reference month
            reference_month=1,
            records_per_rp=0,  # 0 = every training record of the reference month
            floor_height_m=4.0,  # places are (x, y, height) on several floors; 0 = pool the floors
            removed_ap_share=0.0,  # Fig. 19: a share of the database's APs removed from it only
        )
    )
    c.gufu = ml_collections.ConfigDict(
        dict(
            code=32,
            # The paper's 0.5, after the hidden layer: it reconstructs the database less closely
            # (3.3 dB on UJI month 1 against 2.3 without) but writes better values on both
            # validation parts (`gufu_no_dropout`, docs/methods/gufu.md)
            ae_dropout=0.5,
            ae_dropout_at="hidden",  # or "input" (erases half the few detections of a record)
            ae_detected_weight=10.0,  # eq. 2's weight on a detected entry (1 = plain norm)
            ae_gate=True,  # a failed offline autoencoder stops the run (bounds below)
            ae_max_error_db=6.0,  # mean |error| on the database's detected values
            ae_max_below_floor=0.5,  # share of them decoded at or below the floor
            embedding=32,
            gnn_layers=2,
            gnn_dropout=0.1,
            gnn_weighted=True,  # weighted feature aggregation (the paper); False = plain mean
            gnn_last_relu=True,  # ReLU on the last layer too (Algorithm 1); False: linear
            hidden=64,
            optimizer="adam",  # every inner fit's, by name (jaxfp/train/optimisers.py)
            learning_rate=3e-3,
            ae_steps=3000,  # 1,000 leave the detected values at 3.4 dB (UJI month 1), 3.2 (synthetic)
            ae_batch=512,  # 0 = every record each step
            gnn_steps=100,
            update_steps=300,
            update_batch=0,  # eq. 5-9 on this many records and pairs a step; 0 = all of them
            retrain_steps=50,  # eq. 10's steps an update (and the GNN's, unless set below)
            retrain_gnn_steps=-1,  # the GNN's retraining steps an update; -1 = retrain_steps
            negatives=1,
            fanout=10,
            update_rounds=5,  # §5.2 "iteratively": at most this many passes ...
            settle_m=0.5,  # ... stopping when the batch's locations move less (mean, metres)
            location_input="none",  # a record's own location in what MLP1 reads: see study.py
            initial_location="random",
            # locations over the spread of the centred ones; "values": of the values as they
            # come (docs/results/gufu_synthetic.json)
            location_scale="centred",
            rewrite="replace",
            rewrite_from="codes",  # or "embeddings" (§6.2: the GNN's output embeddings)
            autoencoder_retrain="reconstruct",  # eq. 10; or "align" (updated RSS <-> codes)
            below_floor="ends",  # a decoded value below the floor ends a detection; or "keeps"
            consistency_weight=0.5,
            virtual_threshold=0.95,
            max_virtual_per_node=10,
            virtual_features="code_location",  # or "code" (ours: a new sample's place is a guess)
            old_new_per_new=0,  # k > 0: each new sample linked to its k most similar records
            virtual_one_per_point=False,  # at most one record per reference point in those k
            edge_weights="goodness_fairness",  # or "neighbour_readings" (ours, location-aware)
            readings_add_share=0.5,  # neighbour_readings: share of linked samples to add an edge
            readings_keep_share=0.0,  # ... at most this share hearing it removes an edge
            readings_blend=0.0,  # ... a confirmed edge moves towards the linked readings
            readings_forget_min_links=0,  # ... k > 0: an AP no batch sample hears though k are
            # linked to records hearing it is forgotten (0: only edges judged one by one go)
            readings_any_ap=False,  # ... edges to any AP may come, not only the batch's new APs
            readings_per_point=False,  # ... every record at a linked record's point judged alike
            detect_floor_dbm=-110.0,
            edge_floor_dbm=-100.0,
            budget_multiple=4096,
            feature_extractor=True,
            feature_method="autoencoder",  # or "pca" (Fig. 16)
            ap_init="weighted_average",  # an AP node's starting features (Table 8; study.py)
            virtual_edges=True,
            edge_prediction=True,
        )
    )
    # The synthetic site: weekly AP churn at GUFU's Table 5 rates (WorldParams' install/removal);
    # each seed draws its own world from it.
    c.synthetic = ml_collections.ConfigDict(
        dict(
            width_m=40.0,
            height_m=24.0,
            n_aps=60,
            path_loss_exponent=3.0,
            sensitivity_dbm=-90.0,
            samples_per_rp=4,
            batch=400,
            weeks=8,
            install_rate=0.06,  # per week: Campus GF's average in GUFU's Table 5 (204 / 8 / 391)
            removal_rate=0.04,  # (136 / 8 / 391)
            power_change_rate=0.05,
        )
    )
    # §7.1's iToLoc baseline: iToLoc's drift config (domains = the long-term set's collections),
    # trained on the database; `itoloc_first_batch` also co-trains it on the first batch.
    tiny = arg in ("test", "synthetic_test")
    itoloc = sibling(__file__, "../itoloc/drift.py")
    c.itoloc = itoloc.get_config("test" if tiny else "")
    if not tiny:
        c.itoloc.train.num_steps = 1000  # drift.py trains 3,000; 1,000 keeps five seeds affordable
    c.itoloc_first_batch = True
    # The ISO/IEC 18305 and IPIN constants of the standard fields (the 3-D error's floor
    # height, not data.floor_height_m's places); they shape the (variant, seed) runs
    # only where they differ from these defaults (gufu.run.shaping)
    c.eval = eval_section(missing_dbm=-100.0, average_radius_m=2.0, average_blend=0.5)
    if arg == "validation":
        c.data.months = VALIDATION_MONTHS
    if arg == "small":  # validation months
        c.data.months = (2, 3, 4)
        c.data.records_per_rp = 40
    if arg in ("synthetic", "synthetic_validation"):  # 8 weeks of churn, 40 m x 24 m, 960 records
        c.data.source = "synthetic"
    if arg == "synthetic_validation":  # worlds no reported number sees
        c.seeds = VALIDATION_SEEDS
    if arg == "synthetic_heavy":  # Campus GF's first week every week: 53 / 391 in, 46 / 391 out
        c.data.source = "synthetic"
        c.synthetic.update(dict(install_rate=0.135, removal_rate=0.12))
    if arg == "synthetic_large":  # the speed benchmark's site: 100 m x 100 m, 10,000 records
        c.data.source = "synthetic"
        c.synthetic.update(
            dict(
                width_m=100.0,
                height_m=100.0,
                n_aps=400,
                path_loss_exponent=4.0,  # ~69 APs heard per scan (692,344 edges / 10,000)
                sensitivity_dbm=-80.0,
                batch=1000,
                weeks=4,
            )
        )
        # Its autoencoder leaves the plateau where every value decodes below the floor (49 dB
        # error) only between 1,000 and 4,000 steps
        c.gufu.ae_steps = 4000
    if arg == "synthetic_test":
        c.data.source = "synthetic"
        c.seeds = (0,)
        c.synthetic.update(dict(width_m=12.0, height_m=8.0, n_aps=12, batch=30, weeks=2))
        c.gufu.update(TINY_TRAINING)
    if arg == "test":
        c.seeds = (0, 1)
        c.data.path = repo_path(__file__, "tests", "fixtures", "longterm_mini.zip")
        c.data.months = ()  # the cut's months 2 and 3
        c.data.records_per_rp = 3
        c.gufu.update(TINY_TRAINING)
    return c
