"""The paper's ablations of GUFU (§7.3, Fig. 15: no feature extractor, no virtual edges, no edge
prediction) and its open points read the other way, beside `gufu` and the never-updated database,
at every size of longterm.py.

    jaxfp run experiments/gufu/ablations.py:synthetic --workdir runs/gufu_ablations

Readings of the open points (docs/methods/gufu.md, "Components"): `gufu_keeps` (a decoded value
below the floor keeps the old one: no detection ends), `gufu_embeddings` (§6.2: MLP2 learns the
GNN's output embeddings), `gufu_aligned` (eq. 10 as alignment).
"""

import ml_collections

from jaxfp.config import sibling

LONGTERM = sibling(__file__, "longterm.py")
SIZES = LONGTERM.SIZES

ABLATIONS = dict(
    no_feature_extractor=dict(feature_extractor=False),  # node features = (RSS + 120) / 120
    no_virtual_edges=dict(virtual_edges=False),
    no_edge_prediction=dict(edge_prediction=False),
    gufu_keeps=dict(below_floor="keeps"),
    gufu_embeddings=dict(rewrite_from="embeddings"),
    gufu_aligned=dict(autoencoder_retrain="align"),
)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = LONGTERM.get_config(arg)
    c.variants.update(ABLATIONS)
    c.run_variants = ("gufu", "no_feature_extractor", "no_virtual_edges", "no_edge_prediction")
    c.run_variants += ("static",)
    return c
