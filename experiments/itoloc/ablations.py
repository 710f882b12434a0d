"""iToLoc's ablations: each core component removed in turn (§V-C), and our own variant λ = 1.

On the synthetic devices (devices.py's protocol and sizes) and on the real phones:
    jaxfp run experiments/itoloc/ablations.py --workdir runs/itoloc_ablations
    jaxfp run experiments/itoloc/ablations.py:phones --workdir runs/itoloc_ablations_phones \\
        --config.data.path=/path/to/ujiindoorloc-validation/validationData.csv
Over the long-term months (drift.py's protocol; the ablations are scored without the update):
    jaxfp run experiments/itoloc/ablations.py:drift --workdir runs/itoloc_ablations_drift \\
        --config.data.path=/path/to/uji-lib-longterm-months01-15.zip
Test size: experiments/itoloc/ablations.py:test (synthetic).
"""

import ml_collections

from jaxfp.config import sibling

SIZES = ("", "phones", "test", "drift")


def ablation_variants() -> ml_collections.ConfigDict:
    """Overrides of `config.model`, beside devices.py's iToLoc and plain CNN."""
    return ml_collections.ConfigDict(
        dict(
            no_image=dict(image="vector"),  # §V-C2: the RSS vector laid out on a square
            no_spatial=dict(spatial_weight=0.0),  # §V-C3: without eq. 10
            no_adversary=dict(adversary_weight=0.0),  # §V-C1: without the discriminator's pull
            global_pooling=dict(pooling="global"),  # the whole map averaged before the FC
            positive_values=dict(image_values="positive"),  # eq. 1 on RSS + 120, not on dBm
            # Ours: λ = 1 (DANN's own setting) beside the default 0.1.
            adversary_1=dict(adversary_weight=1.0),
        )
    )


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    if arg == "drift":
        c = sibling(__file__, "drift.py").get_config()
    else:
        c = sibling(__file__, "devices.py").get_config(arg)
    c.variants.update(ablation_variants())
    c.run_variants = (
        "itoloc",
        "no_image",
        "no_spatial",
        "no_adversary",
        "global_pooling",
        "positive_values",
        "adversary_1",
    )
    c.update_variants = ("itoloc",) if arg == "drift" else ("itoloc", "no_image")
    if arg == "test":
        c.run_variants = ("itoloc", "no_image")
    return c
