"""docs/quickstart.md runs as written (its python blocks, in order, in a fresh folder)."""

import re

import pytest

from .conftest import REPO

DOC = REPO / "docs" / "quickstart.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def test_quickstart_code_runs(tmp_path, monkeypatch, capsys):
    blocks = BLOCK.findall(DOC.read_text())
    assert blocks, "docs/quickstart.md: expected a ```python block"
    # The doc runs from the repository root; outputs land in tmp_path.
    for name in ("data", "experiments"):
        (tmp_path / name).symlink_to(REPO / name)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "quickstart"}
    exec(compile("\n".join(blocks), str(DOC), "exec"), namespace)

    rows = namespace["rows"]
    wknn = rows["WkNN"]
    # The demo's wknn3_positive row (DSI1, k=3, weighted, positive): mean 5.125 m.
    assert wknn["2d_mean"] == pytest.approx(5.125, abs=5e-4)
    # One floor, one building: every estimate is on it, so 3-D and IPIN errors are the 2-D error.
    assert wknn["floor_hit_rate"] == 1.0 and wknn["building_hit_rate"] == 1.0
    for stat in ("mean", "median", "rmse", "p75", "p95"):
        assert wknn[f"ipin_{stat}"] == wknn[f"2d_{stat}"] == wknn[f"3d_{stat}"]
    assert namespace["mlp_xy"].shape == (2, 348, 2)
    assert rows["MLP, seeds averaged"]["2d_mean"] < 8.0  # about 5.1 m after 20 epochs
    with open(tmp_path / "quickstart_cdf.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "runs" / "quickstart" / "mlp").is_dir()
    out = capsys.readouterr().out
    assert "15 m per floor of difference" in out and "ipin_p75" in out and "WkNN" in out
