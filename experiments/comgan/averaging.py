"""Our diagnostic of eq. 6 beside the paper's study: "K=k one subset" rows keep the K measured
entries but complete from the first subset alone, which separates the subsets' averaging from the
extra measured entries it brings (every size of completion.py, with the rows added).

    jaxfp run experiments/comgan/averaging.py --workdir runs/comgan_averaging
    jaxfp run experiments/comgan/averaging.py:uji --workdir runs/comgan_averaging_uji
Test size: experiments/comgan/averaging.py:test
"""

import ml_collections

from jaxfp.config import sibling

SIZES = sibling(__file__, "completion.py").SIZES


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = sibling(__file__, "completion.py").get_config(arg)
    c.one_subset = True
    return c
