"""FPN month by month on the UJI long-term library set: trained with month 1's map and walks,
then each month the map is rebuilt from that month's training scans, the networks scored
untrained, briefly fine-tuned, scored again; test walks over each month's test scans; nearest RP
and Kalman on the same month. The scans are fixed: a seed varies each point's validation split,
the walks and the initialisation.

    jaxfp run experiments/fpn/drift.py --workdir runs/fpn_drift \\
        --config.data.path=/path/to/uji-lib-longterm-months01-15.zip
Test size: experiments/fpn/drift.py:test (the shipped fixture).
"""

import ml_collections

from jaxfp.config import repo_path, sibling

SIZES = ("", "test")  # checked by jaxfp.config.load_config: an unknown size is an error


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = sibling(__file__, "synthetic.py").base_config("fpn.drift")
    c.data = ml_collections.ConfigDict(
        dict(
            path=repo_path(__file__, "data", "uji-lib-longterm-months01-15.zip"),
            format="auto",
            parts="{month:02d}/{kind}*",  # kind: trn (the map survey) or tst (the test scans)
            first_month=1,
            months=tuple(range(2, 16)),
            # Every choice (the Kalman stds, which map and weights to deploy) is made on these
            # months; the others are reported.
            validation_months=tuple(range(2, 9)),
            # Scans of a floor-outlier place (`jaxfp data info` lists them: month 01 trn14's 6
            # scans labelled floor 0 at (12.91, 16.70)) are dropped; "keep" loads them.
            floor_outliers="drop",
        )
    )
    # Ours (variants.py:drift), beside the paper's most probable point: the expected position
    # over the k most probable points, k chosen per seed on the validation months from these
    c.readout_k = ()
    c.walk.radius_m = 2.0  # the library's reference points are ~1.8 m apart along shelves
    c.baselines.walk_filter_signal_std_db = 5.0  # month 1: RMS scan - map row 5.2 dB (active APs)
    if arg == "test":
        c.seeds = (0, 1)
        c.data.path = repo_path(__file__, "tests", "fixtures", "longterm_mini.zip")
        c.data.months = (2, 3)
        c.data.validation_months = (2,)
        c.model.update(dict(features=8, encoder_hidden=(16,)))
        c.walk.update(dict(length=4, validation_walks=8, test_walks=12, radius_m=10.0))
        c.train.update(dict(num_steps=6, batch_size=4, eval_every=2, log_every=2))
        c.train.update(dict(checkpoint_every=2))
        c.adapt.update(dict(num_steps=4, batch_size=4, eval_every=2, checkpoint_every=2))
        c.eval_batch = 8
    return c
