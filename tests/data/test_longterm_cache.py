"""The long-term loader's cache: a hit gives the arrays a parse gives, a changed file misses, a
corrupt entry is rebuilt with a warning, and bad files fail as they do without a cache."""

from __future__ import annotations

import pathlib
import shutil

import numpy as np
import pytest

from jaxfp.data import cache, longterm
from jaxfp.data.types import DataFormatError

FIELDS = ("rss", "detected", "ap_ids", "xy", "rp_id", "floor", "timestamp", "device")


@pytest.fixture
def cache_root(tmp_path, monkeypatch) -> pathlib.Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(root))
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    return root


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """The names of the sets parsed from their files (not restored from the cache)."""
    parsed: list[str] = []
    parse = longterm._parse_one

    def counting(tree, key, files):
        parsed.append(f"{key[0]:02d}/{key[1]}{key[2]:02d}")
        return parse(tree, key, files)

    monkeypatch.setattr(longterm, "_parse_one", counting)
    return parsed


def assert_same_sets(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for name in want:
        a, b = got[name], want[name]
        for field in FIELDS:
            x, y = getattr(a, field), getattr(b, field)
            assert x.dtype == y.dtype, (name, field)
            np.testing.assert_array_equal(x, y, err_msg=f"{name} {field}")
        assert list(a.domain) == list(b.domain)
        for key in b.domain:
            assert a.domain[key].dtype == b.domain[key].dtype
            np.testing.assert_array_equal(a.domain[key], b.domain[key])
        assert a.source == b.source


def entries(root: pathlib.Path) -> list[pathlib.Path]:
    return sorted((root / "longterm").glob("*.npz"))


def test_a_hit_returns_the_arrays_a_parse_gives(longterm_zip, cache_root, parses) -> None:
    reference = longterm.load_longterm(longterm_zip, cache=False)
    assert len(parses) == 6 and not cache_root.exists()
    first = longterm.load_longterm(longterm_zip)
    assert len(parses) == 12 and len(entries(cache_root)) == 6
    second = longterm.load_longterm(longterm_zip)
    assert len(parses) == 12  # every set from the cache
    assert_same_sets(first, reference)
    assert_same_sets(second, reference)
    np.testing.assert_array_equal(
        second["02/tst01"].rss[0, :3], reference["02/tst01"].rss[0, :3]
    )  # NaN where not detected survives the round trip
    month = longterm.load_longterm(longterm_zip, months=[3], kinds=["tst"])
    assert len(parses) == 12 and list(month) == ["03/tst01"]


def test_a_changed_file_misses_and_only_its_set_is_parsed(
    longterm_zip, cache_root, parses, tmp_path
) -> None:
    shutil.unpack_archive(longterm_zip, tmp_path / "db")
    root = tmp_path / "db"
    longterm.load_longterm(root)
    assert len(parses) == 6
    rss_file = next(root.rglob("db/02/tst01rss.csv"))
    lines = rss_file.read_text().splitlines()
    cells = lines[0].split(",")
    cells[0] = "-61" if cells[0] != "-61" else "-62"
    rss_file.write_text("\n".join([",".join(cells), *lines[1:]]) + "\n")
    changed = longterm.load_longterm(root)
    assert parses[6:] == ["02/tst01"]
    assert changed["02/tst01"].rss[0, 0] == float(cells[0])
    assert_same_sets(changed, longterm.load_longterm(root, cache=False))


def test_a_changed_zip_misses(longterm_zip, cache_root, parses, tmp_path) -> None:
    longterm.load_longterm(longterm_zip, months=[1])
    copy = tmp_path / "copy.zip"
    shutil.copy(longterm_zip, copy)
    longterm.load_longterm(copy, months=[1])
    assert len(parses) == 2  # the same bytes elsewhere: a hit, with this path's sources
    with open(copy, "ab") as f:
        f.write(b"\0")  # still a readable zip, but other bytes
    longterm.load_longterm(copy, months=[1])
    assert len(parses) == 4


def test_a_bad_file_fails_with_the_message_it_gives_without_a_cache(
    longterm_zip, cache_root, tmp_path
) -> None:
    shutil.unpack_archive(longterm_zip, tmp_path / "db")
    root = tmp_path / "db"
    longterm.load_longterm(root)  # every set cached
    tms = next(root.rglob("db/01/trn01tms.csv"))
    lines = tms.read_text().splitlines()
    lines[3] = lines[3][:4] + "13" + lines[3][6:]  # month 13
    tms.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError) as uncached:
        longterm.load_longterm(root, cache=False)
    with pytest.raises(DataFormatError) as with_cache:
        longterm.load_longterm(root)
    assert str(with_cache.value) == str(uncached.value)
    assert "trn01tms.csv, row 4: expected a valid date and time" in str(uncached.value)


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b"not an npz"),
        lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
        lambda p: np.savez(p, rss=np.zeros((3, 4), np.float32)),  # arrays missing
        lambda p: np.savez(  # every array there, but RSS out of range
            p, **{k: v for k, v in np.load(p).items()} | {"rss": np.full((96, 620), 5, np.float32)}
        ),
    ],
    ids=["garbage", "truncated", "missing arrays", "invalid values"],
)
def test_a_corrupt_entry_is_rebuilt_with_a_warning(
    longterm_zip, cache_root, parses, damage
) -> None:
    reference = longterm.load_longterm(longterm_zip, months=[2], kinds=["trn"])
    (entry,) = entries(cache_root)
    damage(entry)
    with pytest.warns(UserWarning, match="ignoring an unreadable cache entry"):
        rebuilt = longterm.load_longterm(longterm_zip, months=[2], kinds=["trn"])
    assert len(parses) == 2
    assert_same_sets(rebuilt, reference)
    again = longterm.load_longterm(longterm_zip, months=[2], kinds=["trn"])  # no warning now
    assert len(parses) == 2
    assert_same_sets(again, reference)


def test_turned_off_it_writes_nothing(longterm_zip, cache_root, monkeypatch, parses) -> None:
    monkeypatch.setenv(cache.CACHE_ENV, "0")
    assert cache.cache_dir() is None
    longterm.load_longterm(longterm_zip)
    longterm.load_longterm(longterm_zip)
    assert len(parses) == 12 and not cache_root.exists()


def test_cache_folder_defaults(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    monkeypatch.delenv(cache.CACHE_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "jaxfp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "jaxfp"
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "mine"))
    assert cache.cache_dir() == tmp_path / "mine"


def test_an_unwritable_cache_warns_and_loads(longterm_zip, tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(blocker))
    with pytest.warns(UserWarning, match="could not write the cache entry"):
        sets = longterm.load_longterm(longterm_zip, months=[1], kinds=["trn"])
    assert sets["01/trn01"].n == 96
