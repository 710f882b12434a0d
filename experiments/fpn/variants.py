"""Our comparator, its ablation and our own baselines beside the paper's rows: `fpn_compare` (the
scan compared with every encoded map row, not the paper's network), `fpn_raw_map` (that
comparison with the raw map, no encoder), WkNN (k = 3, per scan) and the walk filter (the exact
Bayes filter of a neighbour walk on the point graph, a diagnostic). Sizes: the
synthetic experiment ("", "test") or the long-term drift protocol ("drift", "drift_test").

    jaxfp run experiments/fpn/variants.py --workdir runs/fpn_variants
    jaxfp run experiments/fpn/variants.py:drift --workdir runs/fpn_drift_variants \\
        --config.data.path=/path/to/uji-lib-longterm-months01-15.zip
Test sizes: experiments/fpn/variants.py:test and experiments/fpn/variants.py:drift_test
"""

import ml_collections

from jaxfp.config import sibling

SIZES = ("", "test", "drift", "drift_test")  # checked by jaxfp.config.load_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    protocol = "drift.py" if arg.startswith("drift") else "synthetic.py"
    c = sibling(__file__, protocol).get_config("test" if arg.endswith("test") else "")
    c.variants.fpn_raw_map = dict(network="compare", use_encoder=False)
    c.run_variants = ("fpn", "fpn_compare", "fpn_raw_map", "plain_lstm")
    c.baselines.run = ("nearest RP", "Kalman", "walk filter", "WkNN")
    return c
