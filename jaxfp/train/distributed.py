"""Multi-host start-up: `jax.distributed.initialize` when the coordinator is named in the environment.

Set JAX_COORDINATOR_ADDRESS (host:port of process 0), JAX_NUM_PROCESSES and JAX_PROCESS_ID on every
host; a single-host run sets none of them and never initialises anything.
"""

from __future__ import annotations

import os

import jax

ENV_VARS = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def maybe_initialize_distributed() -> bool:
    """Initialise multi-host JAX if all three variables are set; True when it did."""
    present = [v for v in ENV_VARS if os.environ.get(v)]
    if not present:
        return False
    if len(present) != len(ENV_VARS):
        missing = sorted(set(ENV_VARS) - set(present))
        raise RuntimeError(f"multi-host run: {present} set but {missing} missing; set all three")
    jax.distributed.initialize(
        coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
        num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
        process_id=int(os.environ["JAX_PROCESS_ID"]),
    )
    return True
