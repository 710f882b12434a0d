"""datagen refuses a bad output folder, shard or config before it traces anything."""

import pytest

from datagen.cli import main
from datagen.config import check, get_config
from jaxfp.config import ConfigError

from ..conftest import REPO

CONFIG = str(REPO / "datagen" / "config.py")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--config.grid_spacing=0.0"], "config.grid_spacing: expected > 0, got 0.0"),
        (["--config.region=(10.0, 0.0, 0.0, 5.0)"], "config.region: expected"),
        (["--config.cap_fraction=1.5"], "config.cap_fraction: expected in (0, 1]"),
        (["--shard", "3/2"], "--shard: expected 0 <= i < N"),
    ],
)
def test_generate_refuses_bad_settings_before_tracing(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert main(["generate", "--out", str(out), "--config", f"{CONFIG}:test", *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # nothing written


def test_generate_refuses_an_out_that_is_a_file_or_an_unknown_size(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["generate", "--out", str(a_file), "--config", f"{CONFIG}:test"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["generate", "--out", str(tmp_path / "o"), "--config", f"{CONFIG}:tset"]) == 2
    assert "unknown size 'tset'" in capsys.readouterr().err
    assert main(["combine", "--out", str(a_file / "x"), str(tmp_path)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_every_size_passes_its_own_check():
    for size in ("", "small", "test"):
        check(get_config(size))
    bad = get_config("test")
    bad.sector_azimuths_deg = ()
    with pytest.raises(ConfigError, match="at least one sector"):
        check(bad)
