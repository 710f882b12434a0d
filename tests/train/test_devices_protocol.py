"""One small protocol gives the same table on one and on four (fake CPU) devices."""

import json
import os
import subprocess
import sys

import numpy as np

from ..conftest import REPO


def _run(workdir, devices):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    spec = str(REPO / "experiments" / "baselines" / "mlp_dsi1.py:test")
    proc = subprocess.run(
        [sys.executable, "-m", "jaxfp.cli", "run", spec, "--workdir", str(workdir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((workdir / "results.json").read_text())["results"]


def test_the_mlp_seeds_table_is_the_same_on_one_and_four_devices(tmp_path):
    one, four = _run(tmp_path / "one", 1), _run(tmp_path / "four", 4)
    assert set(one) == set(four) == {"seed 0", "seed 1", "averaged output", "over seeds"}
    for row in one:
        for column in ("mean", "p50", "p90"):
            if column in one[row]:
                np.testing.assert_allclose(one[row][column], four[row][column], rtol=1e-4)
    assert one["over seeds"]["n_seeds"] == four["over seeds"]["n_seeds"] == 2
