"""Our comparator, its ablation and our own baselines beside the paper's rows: `fpn_compare` (the
scan compared with every encoded map row, not the paper's network), `fpn_raw_map` (that
comparison with the raw map, no encoder), WkNN (k = 3, per scan), the walk filter (the exact
Bayes filter of a neighbour walk on the point graph, a diagnostic) and, on the drift protocol,
the top-k readout (UJI's test scans lie off the reference grid: the expected position over the
k most probable points on the most probable one's floor, k chosen per seed on the validation
months from `readout_k`; k = 1 is the paper's most probable point). Sizes: the
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
    if protocol == "drift.py":
        c.readout_k = (1, 2) if arg.endswith("test") else (1, 2, 3, 4, 6, 8)
    return c
