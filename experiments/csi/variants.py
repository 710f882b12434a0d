"""Our variants of the few-label protocol, run beside the paper's reading (few_labels.py).

- The oracle gate (`consistency.gate="oracle"`): each round's stage 3 runs only where the kept
  labels beat the stage-1 model on those rows *measured against the true positions*. A method
  cannot read those in a deployment, so this is a diagnostic bound, never a reported method row.

Same sizes as few_labels.py; the supervised stage (stage 1) is the same stage as there:
    jaxfp run experiments/csi/variants.py:small --workdir runs/csi_variants_small
"""

import ml_collections

from jaxfp.config import sibling

SIZES = ("", "small", "full_cpu", "test")  # checked by load_config: an unknown size is an error


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = sibling(__file__, "few_labels.py").get_config(arg)
    c.methods = ("supervised", "consistency")
    c.consistency.gate = "oracle"
    return c
