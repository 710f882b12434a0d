"""Row gathers whose indices are known to be in bounds.

`x[idx]` compiles to a gather that checks every index and fills out-of-range rows; on XLA:CPU
that costs ~3x an unchecked gather of the same rows (123k rows of 32 floats: 6.0 ms against
1.9 ms). Graph code indexes with senders, receivers and sampled ids that are in range by
construction (padding edges point at the padding node), so it skips the check. An out-of-range
index here is undefined, not an error.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def take_rows(x: jax.Array, index: jax.Array) -> jax.Array:
    """x[index] along the first axis, every index promised in [0, len(x))."""
    return jnp.asarray(x).at[index].get(mode="promise_in_bounds")
