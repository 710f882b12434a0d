"""XLA flags jaxfp starts JAX with on CPU, measured side by side in
`experiments/bench/versus_pytorch.py` (docs/performance.md).

Imported by `jaxfp/__init__.py`, so any entry point that imports jaxfp before its first JAX
computation gets them. A flag the user already set in XLA_FLAGS is left as the user set it;
JAXFP_XLA_DEFAULTS=0 adds none. Only for the jaxlib series they were measured on: XLA aborts on a
flag it does not know, and experimental flags come and go between releases.
"""

from __future__ import annotations

import os
from importlib import metadata

# YNNPACK's fusion of lone convolutions is slower than XLA's own convolution on this CPU: ResNets and
# iToLoc's nets train 10-45% faster without it; the other nets measured are unchanged.
DEFAULT_FLAGS = {"--xla_cpu_experimental_ynn_fusion_type": "-individual_convolution"}
MEASURED_ON = "0.10."  # jaxlib series


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


def apply() -> None:
    """Set XLA_FLAGS for this process (no effect once JAX's CPU backend has started)."""
    if os.environ.get("JAXFP_XLA_DEFAULTS", "1") == "0":
        return
    if jaxlib_version().startswith(MEASURED_ON):
        os.environ["XLA_FLAGS"] = with_defaults(os.environ.get("XLA_FLAGS", ""))


apply()
