"""XLA's compiled programs kept on disk between runs (JAX's persistent compilation cache).

`jaxfp run` calls `use_compilation_cache()`: a run killed and started again, or the next seed or
stage with the same program, loads what was compiled instead of compiling it anew. The folder is
`xla/` under jaxfp's cache folder (`jaxfp.data.cache.cache_dir`: `$JAXFP_CACHE_DIR`, else
`$XDG_CACHE_HOME/jaxfp`, else `~/.cache/jaxfp`), kept under `MAX_BYTES` by JAX (least recently
used entries go first). `JAXFP_CACHE=0` turns it off; a `JAX_COMPILATION_CACHE_DIR` the user set
is left as it is. JAX keys an entry by the program, the backend, jaxlib and the XLA flags, so a
changed program or flag compiles anew.
"""

from __future__ import annotations

import importlib.util
import os

import jax

from jaxfp.data.cache import cache_dir

USER_ENV = "JAX_COMPILATION_CACHE_DIR"
MAX_BYTES = 4 * 1024**3
# Programs that compile faster than this are not worth a file
MIN_COMPILE_SECONDS = 0.0


def use_compilation_cache() -> str | None:
    """Point JAX's persistent compilation cache at jaxfp's cache folder; returns the folder in
    use (the user's own if set), or None when the cache is off."""
    if os.environ.get(USER_ENV):
        return os.environ[USER_ENV]
    root = cache_dir()
    if root is None:
        return None
    folder = os.fspath(root / "xla")
    jax.config.update("jax_compilation_cache_dir", folder)
    if importlib.util.find_spec("filelock") is not None:  # JAX evicts with it; else unbounded
        jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return folder
