"""XLA's compiled programs kept on disk between runs (JAX's persistent compilation cache).

`jaxfp run` calls `use_compilation_cache()` before anything compiles (JAX reads the setting at its
first compilation): a run killed and started again, or the next run of the same programs, loads
them instead of compiling anew. The folder is `xla/<host>/` under jaxfp's cache folder
(`jaxfp.data.cache.cache_dir`: `$JAXFP_CACHE_DIR`, else `$XDG_CACHE_HOME/jaxfp`, else
`~/.cache/jaxfp`), one per kind of CPU: JAX keys an entry by the program, backend, jaxlib and XLA
flags but not by the host's instruction set, and a home folder may be shared by unlike machines.
JAX keeps it under `MAX_BYTES` (least recently used entries go first). `JAXFP_CACHE=0` turns it
off; a `JAX_COMPILATION_CACHE_DIR` the user set is left as it is.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import warnings

import jax

from jaxfp.data.cache import cache_dir

USER_ENV = "JAX_COMPILATION_CACHE_DIR"
MAX_BYTES = 4 * 1024**3
# Below this a program is cheaper to compile than to look up: JAX's size-bounded cache reads the
# folder's entries on every write, so thousands of tiny ones would slow each write
MIN_COMPILE_SECONDS = 0.1


def host_tag() -> str:
    """The machine architecture and a short hash of its CPU model and flags (Linux
    /proc/cpuinfo; the architecture alone elsewhere)."""
    described = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            lines = [line for line in f if line.startswith(("model name", "flags", "Features"))]
        described += "".join(sorted(set(lines)))
    except OSError:
        pass
    digest = hashlib.sha256(described.encode()).hexdigest()[:12]
    return f"{platform.machine() or 'unknown'}-{digest}"


def use_compilation_cache() -> str | None:
    """Point JAX's persistent compilation cache at jaxfp's cache folder; returns the folder in
    use (the user's own if set), or None when the cache is off or its folder cannot be made."""
    if os.environ.get(USER_ENV):
        return os.environ[USER_ENV]
    root = cache_dir()
    if root is None:
        return None
    folder = os.fspath(root / "xla" / host_tag())
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        warnings.warn(
            f"compiled programs are not kept: cannot make {folder} ({err}); "
            "set JAXFP_CACHE_DIR to a writable folder, or JAXFP_CACHE=0",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    jax.config.update("jax_compilation_cache_dir", folder)
    if importlib.util.find_spec("filelock") is not None:  # JAX evicts with it; else unbounded
        jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return folder
