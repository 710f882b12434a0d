"""Every experiment config names its sizes; each loads, and an unknown one is refused."""

import pathlib

import pytest

from jaxfp.config import ConfigError, load_config, repo_path, sibling

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = sorted(
    str(p)
    for p in [*(REPO / "experiments").rglob("*.py"), REPO / "datagen" / "config.py"]
    if "bench" not in p.parts and "def get_config" in p.read_text()
)


def test_every_experiment_config_is_found():
    assert len(CONFIGS) >= 13


@pytest.mark.parametrize("path", CONFIGS)
def test_every_size_loads_and_an_unknown_one_is_refused(path):
    sizes = sibling(path, pathlib.Path(path).name).SIZES
    assert "" in sizes and "test" in sizes
    for size in sizes:
        assert load_config(f"{path}:{size}" if size else path) is not None
    with pytest.raises(ConfigError, match=r"unknown size 'synthetc'; sizes are .*'test'"):
        load_config(f"{path}:synthetc")


def test_a_config_without_sizes_is_refused(tmp_path):
    (tmp_path / "c.py").write_text(
        "import ml_collections\ndef get_config(arg=''):\n    return ml_collections.ConfigDict()\n"
    )
    with pytest.raises(ConfigError, match="expected SIZES"):
        load_config(str(tmp_path / "c.py"))


def test_repo_path_is_the_folder_above_experiments():
    assert repo_path(str(REPO / "experiments" / "fpn" / "drift.py"), "data") == str(REPO / "data")
    with pytest.raises(ConfigError, match="not under an experiments/ folder"):
        repo_path("/tmp/x.py")
