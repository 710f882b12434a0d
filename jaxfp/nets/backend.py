"""Which paths the nets take: the ones measured fast on XLA:CPU (patch-matrix and depthwise
convolutions in `conv`, shifted-view max pooling in `pooling`) where JAX runs on a CPU, and XLA's
own convolution, grouped convolution and `reduce_window` on a GPU or TPU, whose compilers have fast
kernels for them and which the CPU paths were never measured against.

`JAXFP_PATHS` forces one side for measurement: `cpu` (the CPU paths on any backend), `xla` (XLA's
own operations on any backend) or `auto` (the default: by `jax.default_backend()`). It is read
when a function is traced, so it must be set before a jitted function's first call.
"""

from __future__ import annotations

import os

import jax

PATHS_ENV = "JAXFP_PATHS"
MODES = ("auto", "cpu", "xla")


def paths_mode() -> str:
    """`JAXFP_PATHS`, checked: 'auto', 'cpu' or 'xla'."""
    mode = os.environ.get(PATHS_ENV, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"{PATHS_ENV}={mode!r}: expected one of {', '.join(MODES)}")
    return mode


def cpu_paths() -> bool:
    """Whether the nets take their CPU paths in the function being traced now."""
    mode = paths_mode()
    if mode == "auto":
        return jax.default_backend() == "cpu"
    return mode == "cpu"
