"""The CSI store's integrity checks on small synthetic stores written here (no ray tracing)."""

import json
import os
import shutil

import numpy as np
import pytest

from jaxfp.data.csi_store import (
    CsiDataset,
    chunk_name,
    combine,
    create_dataset,
    read_header,
    remove_stale_temporaries,
    write_chunk,
)
from jaxfp.data.types import DataFormatError

N, CHUNK, SHAPE = 25, 10, (2, 4, 8)


def arrays(rows: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(int(rows[0]))
    return {
        "csi": (rng.normal(size=(len(rows), *SHAPE)) + 1j * rows[:, None, None, None]).astype(
            np.complex64
        ),
        "xy": np.column_stack([rows, -rows]).astype(float),
        "los": rows % 2 == 0,
        "sector": rows % 3,
        "num_paths": np.full(len(rows), 3),
        "rx_index": rows,
    }


def write_store(root, chunks=range(3), config=None) -> dict:
    header = create_dataset(str(root), config or {"tiny": 1}, N, CHUNK, SHAPE)
    for chunk in chunks:
        write_chunk(
            str(root),
            chunk,
            arrays(np.arange(chunk * CHUNK, min(N, chunk * CHUNK + CHUNK))),
            header,
        )
    return header


def chunk_dir(root, chunk: int):
    return root / "chunks" / chunk_name(chunk)


def test_a_complete_store_reads_back_and_verifies(tmp_path):
    write_store(tmp_path)
    data = CsiDataset(str(tmp_path))
    assert len(data) == N and data.csi_shape == SHAPE
    np.testing.assert_array_equal(data.rx_index, np.arange(N))
    np.testing.assert_array_equal(data.csi([3, 24])[:, 0, 0, 0].imag, [3, 24])
    data.verify()
    # Writing a finished chunk again keeps it as it is.
    before = (chunk_dir(tmp_path, 1) / "chunk.json").read_text()
    write_chunk(str(tmp_path), 1, arrays(np.arange(10, 20) + 100), read_header(str(tmp_path)))
    assert (chunk_dir(tmp_path, 1) / "chunk.json").read_text() == before


def test_a_flipped_byte_is_named_by_verify(tmp_path):
    write_store(tmp_path)
    target = chunk_dir(tmp_path, 1) / "xy.npy"
    raw = bytearray(target.read_bytes())
    raw[-1] ^= 0xFF
    target.write_bytes(bytes(raw))
    data = CsiDataset(str(tmp_path))  # shapes and dtypes still agree: opening passes
    with pytest.raises(DataFormatError, match=r"chunk_000001/xy.npy: corrupt"):
        data.verify()


def test_missing_chunks_and_killed_writers(tmp_path):
    write_store(tmp_path, chunks=(0, 1))
    with pytest.raises(DataFormatError, match=r"incomplete data set, 1 of 3 chunks missing"):
        CsiDataset(str(tmp_path))
    assert len(CsiDataset(str(tmp_path), require_complete=False)) == 20
    # A killed writer's temporary is ignored by readers and removed for its own chunk only.
    stale = tmp_path / "chunks" / f".{chunk_name(2)}.tmp-dead"
    stale.mkdir()
    (stale / "csi.npy").write_bytes(b"half")
    assert len(CsiDataset(str(tmp_path), require_complete=False)) == 20
    assert remove_stale_temporaries(str(tmp_path), [0, 1]) == 0 and stale.exists()
    assert remove_stale_temporaries(str(tmp_path), [2]) == 1 and not stale.exists()


def test_foreign_and_misdescribed_chunks_are_named(tmp_path):
    write_store(tmp_path / "other", config={"tiny": 2})
    write_store(tmp_path / "store")
    store = tmp_path / "store"
    shutil.rmtree(chunk_dir(store, 2))
    shutil.copytree(chunk_dir(tmp_path / "other", 2), chunk_dir(store, 2))
    with pytest.raises(DataFormatError, match=r"chunk_000002: foreign chunk"):
        CsiDataset(str(store))

    def rewrite(chunk: int, edit) -> None:
        path = chunk_dir(store, chunk) / "chunk.json"
        meta = json.loads(path.read_text())
        edit(meta)
        path.write_text(json.dumps(meta))

    shutil.rmtree(chunk_dir(store, 2))
    write_chunk(str(store), 2, arrays(np.arange(20, 25)), read_header(str(store)))
    rewrite(1, lambda meta: meta.update(chunk_id=7))
    with pytest.raises(DataFormatError, match=r"chunk_000001/chunk.json: expected chunk 1"):
        CsiDataset(str(store))
    rewrite(1, lambda meta: meta.update(chunk_id=1))
    rewrite(1, lambda meta: meta["files"]["csi"].update(shape=[10, 2, 4, 9]))
    with pytest.raises(DataFormatError, match=r"csi.npy: expected shape \[10, 2, 4, 8\]"):
        CsiDataset(str(store))
    rewrite(1, lambda meta: meta["files"]["csi"].update(shape=[10, 2, 4, 8]))
    np.save(chunk_dir(store, 1) / "xy.npy", np.zeros((9, 2)))  # file and description disagree
    with pytest.raises(
        DataFormatError, match=r"xy.npy: expected <f8 \[10, 2\], found <f8 \[9, 2\]"
    ):
        CsiDataset(str(store))


def test_duplicated_receivers_are_refused(tmp_path):
    header = create_dataset(str(tmp_path), {"tiny": 1}, 20, CHUNK, SHAPE)
    write_chunk(str(tmp_path), 0, arrays(np.arange(10)), header)
    write_chunk(str(tmp_path), 1, arrays(np.arange(5, 15)), header)
    with pytest.raises(DataFormatError, match="duplicated receiver indices"):
        CsiDataset(str(tmp_path))


def test_parts_combine_and_mismatched_parts_are_refused(tmp_path):
    write_store(tmp_path / "a", chunks=(0, 1))
    write_store(tmp_path / "b", chunks=(2,))
    combine(str(tmp_path / "all"), [str(tmp_path / "a"), str(tmp_path / "b")])
    combined = CsiDataset(str(tmp_path / "all"))
    write_store(tmp_path / "whole")
    whole = CsiDataset(str(tmp_path / "whole"))
    np.testing.assert_array_equal(combined.csi(np.arange(N)), whole.csi(np.arange(N)))
    assert not (tmp_path / "all" / "chunks").exists()  # nothing copied
    with pytest.raises(DataFormatError, match="chunk 0 appears twice"):
        combine(str(tmp_path / "dup"), [str(tmp_path / "a"), str(tmp_path / "a")])
    assert not (tmp_path / "dup" / "dataset.json").exists()
    write_store(tmp_path / "foreign", chunks=(2,), config={"tiny": 2})
    with pytest.raises(DataFormatError, match="part of another data set"):
        combine(str(tmp_path / "mixed"), [str(tmp_path / "a"), str(tmp_path / "foreign")])
    # A chunk id beyond the header's count (a part of a larger generation run).
    os.rename(chunk_dir(tmp_path / "b", 2), chunk_dir(tmp_path / "b", 5))
    with pytest.raises(DataFormatError, match="chunk 5 lies outside this data set's 3 chunks"):
        CsiDataset(str(tmp_path / "b"), require_complete=False)


def test_headers_and_writers_refuse_what_is_not_theirs(tmp_path):
    with pytest.raises(DataFormatError, match="expected a dataset.json"):
        read_header(str(tmp_path))
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(DataFormatError, match="expected JSON"):
        read_header(str(tmp_path))
    (tmp_path / "dataset.json").write_text(json.dumps({"format": "other", "version": 1}))
    with pytest.raises(DataFormatError, match="expected format 'jaxfp-csi' version 1"):
        CsiDataset(str(tmp_path))
    store = tmp_path / "store"
    header = write_store(store, chunks=())
    with pytest.raises(DataFormatError, match="holds a data set of another config"):
        create_dataset(str(store), {"tiny": 2}, N, CHUNK, SHAPE)
    missing = arrays(np.arange(10))
    del missing["los"]
    with pytest.raises(ValueError, match=r"chunk 0: missing fields \['los'\]"):
        write_chunk(str(store), 0, missing, header)
    short = arrays(np.arange(10))
    short["xy"] = short["xy"][:9]
    with pytest.raises(ValueError, match="field xy has 9 rows, expected 10"):
        write_chunk(str(store), 0, short, header)


SITE = {
    "bs_position": [100.0, -100.0, 30.0],
    "sector_azimuths_deg": [30.0, 150.0, 270.0],
    "subcarrier_spacing_hz": 30e3,
    "srs_comb": 8,
    "ue_height": 1.5,
}


@pytest.mark.parametrize("key", ["subcarrier_spacing_hz", "srs_comb", "bs_position"])
def test_a_site_key_the_store_lacks_is_named_with_its_file(key, tmp_path):
    write_store(tmp_path, config={k: v for k, v in SITE.items() if k != key})
    store = CsiDataset(str(tmp_path))  # opening needs no site key
    header = str(tmp_path / "dataset.json")
    with pytest.raises(
        DataFormatError, match=rf"dataset.json, field 'config.{key}': expected"
    ) as e:
        store.config[key]
    assert header in str(e.value) and not isinstance(e.value, KeyError)
    with pytest.raises(DataFormatError, match=rf"expected the site keys \['{key}'\]"):
        store.config.require()
    assert store.config.get(key) is None and key not in store.config
    assert store.config["ue_height"] == 1.5


def test_a_full_site_reads_and_a_wrong_site_value_is_refused_on_open(tmp_path):
    write_store(tmp_path / "ok", config=SITE)
    config = CsiDataset(str(tmp_path / "ok")).config
    config.require()
    assert config["subcarrier_spacing_hz"] * config["srs_comb"] == 240e3
    for key, bad in (("srs_comb", 8.5), ("bs_position", [1.0, 2.0]), ("ue_height", "tall")):
        root = tmp_path / key
        write_store(root, config={**SITE, key: bad})
        with pytest.raises(DataFormatError, match=rf"dataset.json, field 'config.{key}': expected"):
            CsiDataset(str(root))


def test_a_header_key_the_store_lacks_is_named(tmp_path):
    write_store(tmp_path)
    path = tmp_path / "dataset.json"
    header = json.loads(path.read_text())
    del header["num_chunks"]
    path.write_text(json.dumps(header))
    with pytest.raises(
        DataFormatError, match=r"dataset.json: expected the header keys \['num_chunks'\]"
    ):
        CsiDataset(str(tmp_path))
