import shutil
import zipfile

import numpy as np
import pytest

from jaxfp import data
from jaxfp.data import longterm, synthetic, tabular


def test_mat_counts_match_the_file(dsi1_path):
    parts = data.load(dsi1_path)
    assert set(parts) == {"train", "test"}
    train, test = parts["train"], parts["test"]
    assert (train.n, test.n, train.n_aps) == (1369, 348, 157)
    assert train.rss.dtype == np.float32 and train.detected.dtype == bool
    # The marker 100 is gone: every detected value is physical, every other one is NaN.
    assert np.nanmax(train.rss) <= 0 and np.isnan(train.rss[~train.detected]).all()
    assert train.height is not None and train.floor is not None and train.building is not None


def test_ujiindoorloc_folder(uji_folder):
    parts = data.load(uji_folder)
    assert data.detect_format(uji_folder) == "ujiindoorloc"
    train, test = parts["train"], parts["test"]
    assert (train.n, test.n, train.n_aps) == (300, 60, 520)
    assert train.ap_ids[0] == "WAP001" and train.ap_ids[-1] == "WAP520"
    assert set(np.unique(train.building)) <= {0, 1, 2}
    assert train.xy[:, 1].min() > 4.86e6  # EPSG:3857 northing kept in float64
    assert set(train.domain) == {"space", "relative_position", "user", "phone"}
    single = data.load(uji_folder / "validationData.csv")
    assert list(single) == ["validationData"] and single["validationData"].n == 60


def test_ujiindoorloc_zip_equals_folder(uji_folder, tmp_path):
    archive = tmp_path / "UJIndoorLoc.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in uji_folder.iterdir():
            z.write(f, f"UJIndoorLoc/{f.name}")
    a, b = data.load(archive)["test"], data.load(uji_folder)["test"]
    np.testing.assert_array_equal(a.detected, b.detected)
    np.testing.assert_array_equal(a.xy, b.xy)


def test_longterm_zip_selection(longterm_zip):
    sets = data.load_longterm(longterm_zip)
    assert sorted(sets) == [f"{m:02d}/{k}01" for m in (1, 2, 3) for k in ("trn", "tst")]
    fs = sets["02/tst01"]
    assert (fs.n, fs.n_aps) == (96, 620)
    assert set(fs.domain["month"]) == {2} and set(fs.domain["set_kind"]) == {1}
    assert set(fs.floor) <= {3, 5}
    assert fs.device[0] == "Samsung Galaxy S3"
    # 2016-06-02 15:52:17.232 is the first stamp of month 01, trn01.
    first = data.load_longterm(longterm_zip, months=[1], kinds=["trn"])["01/trn01"]
    assert first.timestamp[0] == pytest.approx(
        np.datetime64("2016-06-02T15:52:17.232").astype("datetime64[ms]").astype(np.int64) / 1000
    )
    month = data.load_longterm_month(longterm_zip, 3, "tst")
    assert month.n == 96 and set(month.domain["month"]) == {3}


def test_longterm_loads_months_beyond_the_shared_copy(longterm_zip, tmp_path):
    """A month 25 in the same layout loads, with the Readme's device note for its A5 sets."""
    root = tmp_path / "UJI_LIB_DB_v2" / "db"
    with zipfile.ZipFile(longterm_zip) as z:
        for kind_src, kind_dst in (("trn01", "trn02"), ("tst01", "tst07"), ("tst01", "tst01")):
            for what in ("rss", "crd", "tms", "ids"):
                dst = root / "25" / f"{kind_dst}{what}.csv"
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(z.read(f"UJI_LIB_DB_v2/db/01/{kind_src}{what}.csv"))
    sets = data.load(tmp_path)
    assert sorted(sets) == ["25/trn02", "25/tst01", "25/tst07"]
    assert sets["25/trn02"].device[0] == longterm.OTHER_DEVICE
    assert sets["25/tst07"].device[0] == longterm.OTHER_DEVICE
    assert sets["25/tst01"].device[0] == longterm.DEFAULT_DEVICE


def test_sodindoorloc_roundtrip(tmp_path):
    world = synthetic.make_world(synthetic.WorldParams(n_aps=6, width_m=10, height_m=6), seed=1)
    fs = synthetic.survey(world, samples_per_rp=2, seed=2)
    raw = np.where(fs.detected, fs.rss, 100).astype(int)
    header = [f"MAC{i:03d}" for i in range(1, 7)] + list(tabular.SOD_LABELS)
    rows = [
        [*raw[i], f"{fs.xy[i, 0]:.3f}", f"{fs.xy[i, 1]:.3f}", 1, 1, 2, 3, 4, i % 30 + 1]
        for i in range(fs.n)
    ]
    path = tmp_path / "Training_TEST.csv"
    path.write_text("\n".join(",".join(map(str, r)) for r in [header, *rows]) + "\n")
    assert data.detect_format(path) == "sodindoorloc"
    loaded = data.load(path)["Training_TEST"]
    np.testing.assert_array_equal(loaded.detected, fs.detected)
    np.testing.assert_allclose(loaded.xy, fs.xy, atol=1e-3)
    assert set(loaded.domain["scene"]) == {2}


def test_load_parts_patterns(longterm_zip):
    fs = data.load_parts(longterm_zip, "01/*")
    assert fs.n == 192 and set(fs.domain["set_kind"]) == {0, 1}
    with pytest.raises(data.DataFormatError, match="part '09/trn01' not found"):
        data.load_parts(longterm_zip, "09/trn01")


def test_zip_and_folder_of_longterm_agree(longterm_zip, tmp_path):
    shutil.unpack_archive(longterm_zip, tmp_path)
    a = data.load_longterm(tmp_path, months=[2])
    b = data.load_longterm(longterm_zip, months=[2])
    for key in a:
        np.testing.assert_array_equal(a[key].detected, b[key].detected)
        np.testing.assert_array_equal(a[key].timestamp, b[key].timestamp)
