"""The paper's ablations of GUFU (§7.3) and the readings of its open points, beside `gufu` and the
never-updated database, at every size of longterm.py.

    jaxfp run experiments/gufu/ablations.py:synthetic_validation --workdir runs/gufu_ablations

- Fig. 15: no feature extractor, no virtual edges, no edge prediction.
- Fig. 16: PCA's components as the features (`gufu_pca`); t-SNE, UMAP, MLP and CNN not built
  (`autoencoder` says why).
- Fig. 19: `--config.data.removed_ap_share=S` takes that share of the database's APs out of it
  (the batches still hear them), with `gufu`, `no_edge_prediction` and `static`; Fig. 20:
  `--config.synthetic.install_rate=R` or `removal_rate=R` sets the weekly churn.
- Fig. 17: virtual edges to each sample's 10 most similar samples (top-k) instead of the
  threshold; Fig. 18: the threshold swept (`gufu_threshold_090`: 0.9, ...).
- Table 8: an AP node's starting features zero, one or uniform on [0, 1) instead of its samples'
  weighted mean (`gufu_ap_init_*`); the size `:table8` runs them beside `gufu` on the reported
  synthetic worlds with 1,000 offline GNN steps for every row, so each loss curve can settle,
  and reports each offline GNN's settling step and seconds (`Gufu.gnn_training_time`).
- the GNN's last layer linear before its L2 norm (`gufu_linear_last`, GraphSAGE's reference
  implementation) instead of ReLU there (Algorithm 1's σ at every layer).
- controls: an offline GNN that never trains (`gufu_untrained_gnn`); eq. 2 as written (plain
  norm, input dropout 0.5, no gate: `gufu_plain_autoencoder`); the autoencoder without the
  paper's dropout (`gufu_no_dropout`).
- MLP1's location input (`location_input`): the record's own, copyable location
  (`gufu_own_location`) and records drawn as the batch's are (`gufu_batch_like`).
- our variants (`ours.py`) may be named here too, so one run compares them with the ablations.
- other readings: `gufu_keeps` (a decoded value below the floor keeps the old one),
  `gufu_embeddings` (§6.2: MLP2 learns the GNN's output embeddings), `gufu_aligned` (eq. 10 as
  alignment).
"""

import ml_collections

from jaxfp.config import sibling

LONGTERM = sibling(__file__, "longterm.py")
OURS = sibling(__file__, "ours.py").OURS
SIZES = (*LONGTERM.SIZES, "table8", "table8_test")
TABLE8 = ("gufu", "gufu_ap_init_zero", "gufu_ap_init_one", "gufu_ap_init_uniform")

THRESHOLDS = (0.8, 0.9, 0.98)  # Fig. 18, beside `gufu`'s 0.95

ABLATIONS = dict(
    no_feature_extractor=dict(feature_extractor=False),  # node features = (RSS + 120) / 120
    gufu_pca=dict(feature_method="pca"),  # Fig. 16: PCA's 32 components as the features
    gufu_linear_last=dict(gnn_last_relu=False),  # GraphSAGE's reference: a linear last layer
    no_virtual_edges=dict(virtual_edges=False),
    no_edge_prediction=dict(edge_prediction=False),
    gufu_top_k=dict(virtual_threshold=-1.0, max_virtual_per_node=10),  # Fig. 17: k = 10
    **{f"gufu_threshold_{round(100 * t):03d}": dict(virtual_threshold=t) for t in THRESHOLDS},
    gufu_untrained_gnn=dict(gnn_steps=0, retrain_gnn_steps=0),
    gufu_plain_autoencoder=dict(
        ae_dropout=0.5, ae_dropout_at="input", ae_detected_weight=1.0, ae_gate=False
    ),
    gufu_no_dropout=dict(ae_dropout=0.0),  # ours: the autoencoder without the paper's dropout
    gufu_own_location=dict(location_input="own"),
    gufu_batch_like=dict(location_input="batch_like"),
    gufu_keeps=dict(below_floor="keeps"),
    gufu_embeddings=dict(rewrite_from="embeddings"),
    gufu_aligned=dict(autoencoder_retrain="align"),
    **{f"gufu_ap_init_{init}": dict(ap_init=init) for init in ("zero", "one", "uniform")},
)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    table8 = {"table8": "synthetic", "table8_test": "synthetic_test"}
    c = LONGTERM.get_config(table8.get(arg, arg))
    c.variants.update({**OURS, **ABLATIONS})
    c.run_variants = ("gufu", "no_feature_extractor", "no_virtual_edges", "no_edge_prediction")
    c.run_variants += ("gufu_untrained_gnn", "gufu_own_location", "gufu_batch_like", "static")
    if arg in table8:  # training time, so every row trains the same, longer offline GNN
        c.run_variants = TABLE8
        c.gufu.gnn_steps = 1000 if arg == "table8" else 60
    return c
