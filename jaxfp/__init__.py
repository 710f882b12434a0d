"""jaxfp: JAX/Flax framework for wireless fingerprint positioning research."""

from jaxfp import xla_flags  # noqa: F401  (sets XLA_FLAGS before JAX's backend starts)

__version__ = "0.1.0"
