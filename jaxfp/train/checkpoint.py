"""orbax checkpoints of (state, run key, step): periodic, final, atomic, resumable.

orbax writes each step to a temporary directory and renames it when complete; a run killed during
a save leaves `N.orbax-checkpoint-tmp*`, which the next manager ignores, so restore always finds the
last complete step.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


class Checkpointer:
    def __init__(self, directory: str, max_to_keep: int = 3) -> None:
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
        )
        self._manager = ocp.CheckpointManager(
            self.directory, options=options, item_names=("state", "run")
        )

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any, rng: jax.Array) -> None:
        run = {"step": int(step), "rng": np.asarray(jax.random.key_data(rng)).tolist()}
        self._manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), run=ocp.args.JsonSave(run)),
            force=True,
        )
        self._manager.wait_until_finished()

    def restore_latest(self, template: Any) -> tuple[Any, jax.Array, int] | None:
        """(state, run key, step) of the last complete checkpoint, or None in a fresh workdir."""
        step = self._manager.latest_step()
        if step is None:
            return None
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(template), run=ocp.args.JsonRestore()
            ),
        )
        rng = jax.random.wrap_key_data(np.asarray(restored.run["rng"], np.uint32))
        return restored.state, rng, int(restored.run["step"])

    def close(self) -> None:
        self._manager.close()
