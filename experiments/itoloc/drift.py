"""iToLoc over months: trained on month 1 of the UJI long-term library set, then updated month by
month by co-training on that month's unlabelled test scans, and scored on them; iToLoc against its
baselines (a plain CNN and WkNN). The ablations are in ablations.py (size `drift`).

The default size reports months 9-15 (the month-1 model updated with each in turn); `:validation`
runs months 2-4, where eq. 12's smearing std is chosen (`choose_smear_std.py`), so the reported
months never shape a setting.

    jaxfp run experiments/itoloc/drift.py --workdir runs/itoloc_drift \\
        --config.data.path=/path/to/uji-lib-longterm-months01-15.zip
Test size: experiments/itoloc/drift.py:test (the shipped fixture).
"""

import ml_collections

from jaxfp.config import repo_path, sibling

SIZES = ("", "validation", "test")
REPORTED_MONTHS = tuple(range(9, 16))
# Three of the months before the reported ones: each candidate setting is a whole chain of updates
VALIDATION_MONTHS = (2, 3, 4)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    devices = sibling(__file__, "devices.py")
    c = devices.base_config("itoloc.drift")
    c.domain_keys = ("month", "set_kind", "set_number")  # one device: domains are collections
    c.update_variants = ("itoloc",)  # updated month by month; the others only scored
    # §V-A's shopping-mall values: a library floor over 15 months (shelves moved, visitors
    # coming and going) is closer to the mall's changing layout than to the stable office.
    c.cotrain.update(dict(sigma0=0.96, sigma_step=0.1))
    c.data = ml_collections.ConfigDict(
        dict(
            path=repo_path(__file__, "data", "uji-lib-longterm-months01-15.zip"),
            format="auto",
            train_parts=("01/trn*",),
            month_parts=("{month:02d}/tst*",),
            months=REPORTED_MONTHS,
            floor_height_m=4.0,
            location_grid_m=0.0,
        )
    )
    if arg == "validation":
        c.data.months = VALIDATION_MONTHS
        c.run_variants = ("itoloc",)
        c.wknn_ap_counts = ()
    if arg == "test":
        devices.shrink_for_tests(c)
        c.data.path = repo_path(__file__, "tests", "fixtures", "longterm_mini.zip")
        c.data.months = (2, 3)
        c.run_variants = ("itoloc",)
    return c
