"""The kNN and MLP protocols carry the ISO/IEC 18305 and IPIN metrics where the set has floors,
beside the numbers they reported before, and `jaxfp report` shows them."""

import json

import numpy as np
import pytest

from jaxfp import cli
from jaxfp.config import apply_overrides, load_config
from jaxfp.data.registry import load_parts
from jaxfp.methods.baselines import knn, knn_protocols, mlp

from ...conftest import REPO


def test_knn_rows_carry_the_standard_metrics(tmp_path, uji_folder, capsys):
    config = load_config(str(REPO / "experiments" / "baselines" / "knn_uji1.py:test"))
    rows = knn_protocols.train_and_evaluate(config, str(tmp_path))
    reference = load_parts(str(uji_folder), "train")
    queries = load_parts(str(uji_folder), "test").aligned_to(reference)
    variant = config.variants.wknn3_positive
    out = knn.predict(knn.build_index(reference, variant.representation), queries, k=variant.k)
    # By hand: 2-D error + 15 m per floor of difference + 50 m per wrong building.
    horizontal = np.linalg.norm(out["xy"] - queries.xy, axis=1)
    floors = np.abs(out["floor"] - queries.floor)
    ipin = horizontal + 15.0 * floors + 50.0 * (out["building"] != queries.building)
    row = rows["wknn3_positive"]
    assert floors.max() >= 1 and (out["building"] != queries.building).any()  # both terms used
    assert row["ipin_mean"] == pytest.approx(ipin.mean())
    assert row["ipin_p75"] == pytest.approx(np.percentile(ipin, 75))
    assert row["3d_mean"] == pytest.approx(np.mean(np.hypot(horizontal, 3.7 * floors)))
    # The numbers the row had before are the same numbers.
    assert row["2d_mean"] == row["mean"] and row["2d_p95"] == row["p95"]
    assert row["floor_hit_rate"] == np.mean(out["floor"] == queries.floor)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["standard_metrics"]["floor_penalty_m"] == 15.0
    (caption,) = saved["tables"]
    assert "15 m per floor of difference + 50 m per wrong building" in caption
    assert saved["tables"][caption]["rows"]["wknn3_positive"]["ipin_mean"] == row["ipin_mean"]
    capsys.readouterr()
    assert cli.main(["report", str(tmp_path), "--markdown"]) == 0
    text = capsys.readouterr().out
    assert caption in text and "| 3d_p95 | ipin_mean | ipin_p75 |" in text


def test_mlp_rows_score_the_majority_floor(tmp_path, uji_folder):
    config = load_config(str(REPO / "experiments" / "baselines" / "mlp_dsi1.py:test"))
    config = apply_overrides(config, [f"--config.data.path={uji_folder}"])
    rows = mlp.train_and_evaluate(config, str(tmp_path))
    reference = load_parts(str(uji_folder), "train")
    queries = load_parts(str(uji_folder), "test")
    floors, counts = np.unique(reference.floor, return_counts=True)
    majority = floors[np.argmax(counts)]
    buildings, counts = np.unique(reference.building, return_counts=True)
    for name in ("seed 0", "seed 1", "averaged output"):
        assert rows[name]["floor_hit_rate"] == np.mean(queries.floor == majority)
        assert rows[name]["building_hit_rate"] == np.mean(
            queries.building == buildings[np.argmax(counts)]
        )
        assert rows[name]["2d_mean"] == rows[name]["mean"]
        assert rows[name]["ipin_mean"] > rows[name]["mean"]  # misses cost metres
    assert "ipin_mean" not in rows["over seeds"]
