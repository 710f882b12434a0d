"""scripts/device_check.sh as a CPU dry run: every kind of step runs once, tiny, and one JSON
reports them; PyTorch's CUDA side is skipped where there is no CUDA."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

from .conftest import REPO

SCRIPT = REPO / "scripts" / "device_check.sh"


def test_the_dry_run_writes_one_report_of_every_step(tmp_path) -> None:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHON": sys.executable}
    env.pop("OUT", None)
    done = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", "--out", str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "out" / "device_check.json").read_text())
    assert report["dry_run"] is True and report["failed"] == []
    steps = report["steps"]
    for name in ("info", "csi_store", "configs_load", "baselines/knn_uji1:test"):
        assert steps[name]["status"] == "ok", (name, steps[name])
    assert report["machine"]["backend"] == "cpu"
    errors = steps["baselines/knn_uji1:test"]["mean_error"]
    assert set(errors) >= {"nn1_positive", "wknn3_positive"}
    assert all(0 < e < 100 for e in errors.values())  # metres on the UJIIndoorLoc cut
    ensemble = steps["ensemble_sharded"]["result"]
    assert ensemble["members_per_s"] > 0 and ensemble["devices"] >= 1
    assert len(report["skipped_in_dry_run"]) == 7
    row = report["versus_pytorch"]["ensemble"]
    assert row["jax_ms"] > 0 and math.isfinite(row["jax_ms"])
    if not report["machine"]["torch_cuda"]:
        assert steps["versus_ensemble_torch"] == {"status": "skipped", "why": "no CUDA"}
        assert row["torch_ms"] is None and row["time_vs_best_torch"] is None


def test_missing_packages_without_wheels_stop_it_with_a_hint(tmp_path) -> None:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 1\n")  # an interpreter where no import succeeds
    fake.chmod(0o755)
    env = {**os.environ, "PYTHON": str(fake), "JAXFP_DEVICE_WHEELS": str(tmp_path / "none")}
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert "no wheels in" in done.stderr and "fetch_device_wheels.sh" in done.stderr
    bad = subprocess.run(["bash", str(SCRIPT), "--fast"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown argument --fast" in bad.stderr
