"""XLA flags jaxfp starts JAX with on CPU, measured side by side in
`experiments/bench/versus_pytorch.py` (docs/performance.md).

Imported by `jaxfp/__init__.py`, so any entry point that imports jaxfp before its first JAX
computation gets them. A flag the user already set in XLA_FLAGS is left as the user set it;
JAXFP_XLA_DEFAULTS=0 adds none. Only for the jaxlib series they were measured on: XLA aborts on a
flag it does not know, and experimental flags come and go between releases. Only where JAX will run
on a CPU, decided before JAX starts (`planned_platform`); `JAXFP_PATHS=cpu` adds them on any
platform and `JAXFP_PATHS=xla` never, the switch `jaxfp.nets.backend` reads for the nets' paths.
"""

from __future__ import annotations

import importlib.util
import os
from importlib import metadata

# YNNPACK's fusion of lone convolutions is slower than XLA's own convolution on this CPU: ResNets and
# iToLoc's nets train 10-45% faster without it; the other nets measured are unchanged.
DEFAULT_FLAGS = {"--xla_cpu_experimental_ynn_fusion_type": "-individual_convolution"}
MEASURED_ON = "0.10."  # jaxlib series
PATHS_ENV = "JAXFP_PATHS"  # read by jaxfp.nets.backend too (nets import nothing else of ours)
MODES = ("auto", "cpu", "xla")


def with_defaults(user_flags: str, defaults: dict[str, str] = DEFAULT_FLAGS) -> str:
    """`user_flags` plus each default flag the user did not set."""
    names = {flag.split("=", 1)[0] for flag in user_flags.split()}
    added = [f"{name}={value}" for name, value in defaults.items() if name not in names]
    return " ".join([*user_flags.split(), *added])


def jaxlib_version() -> str:
    try:
        return metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return ""


def accelerator_plugin() -> str | None:
    """'cuda', 'rocm' or 'tpu' when such a JAX plugin is installed, else None (found by module
    name, without importing JAX)."""
    if "+cuda" in jaxlib_version():  # jaxlib builds with CUDA inside
        return "cuda"
    spec = importlib.util.find_spec("jax_plugins")  # the namespace of the CUDA and ROCm plugins
    for folder in (spec.submodule_search_locations or []) if spec else []:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for kind in ("cuda", "rocm"):
            if any(kind in name for name in names):
                return kind
    if importlib.util.find_spec("libtpu") is not None:
        return "tpu"
    return None


def planned_platform() -> str:
    """The platform JAX will start on, as far as it can be told before it starts: the first of
    JAX_PLATFORMS, else an installed accelerator plugin's, else 'cpu'."""
    platforms = os.environ.get("JAX_PLATFORMS") or os.environ.get("JAX_PLATFORM_NAME") or ""
    first = platforms.split(",")[0].strip().lower()
    return first or accelerator_plugin() or "cpu"


def paths_mode() -> str:
    mode = os.environ.get(PATHS_ENV, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"{PATHS_ENV}={mode!r}: expected one of {', '.join(MODES)}")
    return mode


def wanted() -> bool:
    """Whether this process gets jaxfp's CPU flags (before the jaxlib series check)."""
    if os.environ.get("JAXFP_XLA_DEFAULTS", "1") == "0":
        return False
    mode = paths_mode()
    return mode == "cpu" or (mode == "auto" and planned_platform() == "cpu")


def apply() -> None:
    """Set XLA_FLAGS for this process (no effect once JAX's CPU backend has started)."""
    if wanted() and jaxlib_version().startswith(MEASURED_ON):
        os.environ["XLA_FLAGS"] = with_defaults(os.environ.get("XLA_FLAGS", ""))


apply()
