"""jaxfp: JAX/Flax framework for wireless fingerprint positioning research."""

__version__ = "0.1.0"
