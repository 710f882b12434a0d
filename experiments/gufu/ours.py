"""Our GUFU variants beside the paper's `gufu` and the baselines, at every size of longterm.py.

    jaxfp run experiments/gufu/ours.py --workdir runs/gufu_ours \
        --config.data.path=/path/to/uji-lib-longterm-months01-15.zip
    jaxfp run experiments/gufu/ours.py:synthetic --workdir runs/gufu_ours_synthetic
    python experiments/bench/gufu_update.py --variant gufu_linked   # reads ours.py:synthetic_large

`gufu_linked` and the variants built on it replace readings of the paper (docs/methods/gufu.md,
"Our variants"): old and new samples linked apart on the codes (3 records a sample, one per
point), edges from the linked samples' readings (any AP; confirmed edges blended halfway), the
residual rewrite from the GNN's embeddings, eq. 10 as alignment; for speed eq. 5-9 on 1,024
records and pairs a step and 20 GNN steps an update. Any variant may be named in
`--config.run_variants`.
"""

import ml_collections

from jaxfp.config import sibling
from jaxfp.methods.gufu.variants import BASELINES

LONGTERM = sibling(__file__, "longterm.py")
SIZES = LONGTERM.SIZES

LINKED = dict(
    rewrite="residual",
    update_rounds=2,
    initial_location="code_knn",
    rewrite_from="embeddings",
    autoencoder_retrain="align",
    virtual_features="code",
    old_new_per_new=3,
    virtual_one_per_point=True,
    edge_weights="neighbour_readings",
    readings_blend=0.5,
    readings_any_ap=True,
    # For speed (0.02 dB on the 10,000-record site): eq. 5-9 on 1,024 records and pairs a step,
    # and the GNN fine-tuned 20 steps an update (0 steps measured the same on the synthetic
    # site: the update reaches the records without retraining it)
    update_batch=1024,
    retrain_gnn_steps=20,
)
FORGETS = dict(readings_forget_min_links=10)  # an AP no linked batch sample hears is forgotten

OURS = dict(
    gufu_residual=dict(rewrite="residual", update_rounds=2, initial_location="code_knn"),
    gufu_linked=LINKED,
    gufu_linked_no_rewrite={**LINKED, "rewrite": "none"},  # values change only by §6's edges
    gufu_linked_points={**LINKED, "readings_per_point": True},  # a point's map as one
    gufu_linked_forgets={**LINKED, **FORGETS},
    gufu_linked_points_forgets={**LINKED, "readings_per_point": True, **FORGETS},
    # §7.3's ablations of ours: raw RSS as features / no edge prediction
    gufu_linked_forgets_no_feature_extractor={**LINKED, **FORGETS, "feature_extractor": False},
    gufu_linked_forgets_no_edge_prediction={**LINKED, **FORGETS, "edge_prediction": False},
)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = LONGTERM.get_config(arg)
    c.variants.update(OURS)
    c.run_variants = ("gufu", "gufu_residual", "gufu_linked", *BASELINES)
    return c
