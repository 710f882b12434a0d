"""The few-label protocol on the paper's inputs, beside ours (few_labels.py): no sector frame and no
log-power channel (`sector_frame=False`, `preprocess.log_power=False`), for stage 1, the
labelled-only control and the consistency framework at the same budget.

Same sizes as few_labels.py:
    jaxfp run experiments/csi/variants.py:small --workdir runs/csi_variants_small
"""

import ml_collections

from jaxfp.config import sibling

SIZES = ("", "small", "full_cpu", "test")  # checked by load_config: an unknown size is an error


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = sibling(__file__, "few_labels.py").get_config(arg)
    c.methods = ("supervised", "supervised_budget", "consistency")
    c.sector_frame = False
    c.preprocess.log_power = False
    return c
