"""`jaxfp run`'s on-disk cache of compiled programs: where it goes, and when it is off."""

import platform

import jax
import pytest

from jaxfp.train import compile_cache

KEYS = (
    "jax_compilation_cache_dir",
    "jax_compilation_cache_max_size",
    "jax_persistent_cache_min_compile_time_secs",
)


def test_the_cache_goes_under_jaxfps_cache_folder_unless_off_or_set_by_the_user(
    tmp_path, monkeypatch
):
    saved = {key: jax.config.values[key] for key in KEYS}
    try:
        monkeypatch.delenv(compile_cache.USER_ENV, raising=False)
        monkeypatch.setenv("JAXFP_CACHE_DIR", str(tmp_path))
        monkeypatch.delenv("JAXFP_CACHE", raising=False)
        folder = str(tmp_path / "xla" / compile_cache.host_tag())
        assert compile_cache.use_compilation_cache() == folder
        assert jax.config.values["jax_compilation_cache_dir"] == folder
        assert jax.config.values["jax_compilation_cache_max_size"] == compile_cache.MAX_BYTES
        min_seconds = jax.config.values["jax_persistent_cache_min_compile_time_secs"]
        assert min_seconds == compile_cache.MIN_COMPILE_SECONDS
        for key, value in saved.items():
            jax.config.update(key, value)
        monkeypatch.setenv("JAXFP_CACHE", "0")  # off: JAX's settings untouched
        assert compile_cache.use_compilation_cache() is None
        assert jax.config.values["jax_compilation_cache_dir"] == saved[KEYS[0]]
        monkeypatch.delenv("JAXFP_CACHE")
        (tmp_path / "file").write_text("")  # a folder that cannot be made: a warning, no cache
        monkeypatch.setenv("JAXFP_CACHE_DIR", str(tmp_path / "file"))
        with pytest.warns(RuntimeWarning, match="cannot make"):
            assert compile_cache.use_compilation_cache() is None
        assert jax.config.values["jax_compilation_cache_dir"] == saved[KEYS[0]]
        monkeypatch.setenv(compile_cache.USER_ENV, "/somewhere/else")  # the user's own wins
        assert compile_cache.use_compilation_cache() == "/somewhere/else"
        assert jax.config.values["jax_compilation_cache_dir"] == saved[KEYS[0]]
        # One folder per kind of CPU: the tag names the architecture and is stable
        assert compile_cache.host_tag() == compile_cache.host_tag()
        assert compile_cache.host_tag().startswith(platform.machine())
    finally:
        for key, value in saved.items():
            jax.config.update(key, value)
