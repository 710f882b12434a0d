"""Flax linen modules only: no losses, no optimizers, no data."""

from jaxfp.nets.mlp import MLP

__all__ = ["MLP"]
