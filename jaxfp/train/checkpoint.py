"""orbax checkpoints of (state, run key, step): periodic, final, atomic, resumable.

orbax writes each step to a temporary directory and renames it when complete; a run killed during
a save leaves `N.orbax-checkpoint-tmp*`, which the next manager ignores, so restore always finds the
last complete step.
"""

from __future__ import annotations

import os
import warnings
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
        """(state, run key, step) of the newest checkpoint that restores, or None where none does
        (a fresh workdir). A checkpoint that cannot be restored (damaged files, another state's
        shapes) is never fatal: a warning names it, it is removed, and the one before it is tried,
        down to a fresh start; the caller recomputes the steps after the restored one."""
        for step in sorted(self._manager.all_steps(), reverse=True):
            try:
                restored = self._manager.restore(
                    step,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardRestore(template), run=ocp.args.JsonRestore()
                    ),
                )
                rng = jax.random.wrap_key_data(np.asarray(restored.run["rng"], np.uint32))
                restored_step = int(restored.run["step"])
                _check_shapes(template, restored.state)
            except Exception as err:  # orbax, tensorstore and json raise many types here
                warnings.warn(
                    f"{os.path.join(self.directory, str(step))}: checkpoint cannot be restored "
                    f"({type(err).__name__}: {str(err)[:200]}); removed, trying the one before "
                    "it (the steps after that one are recomputed)",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self._manager.delete(step)  # its step is saved again when recomputed
                continue
            return restored.state, rng, restored_step
        return None

    def close(self) -> None:
        self._manager.close()


def _check_shapes(template: Any, restored: Any) -> None:
    """Raise if the restored state's leaves differ in structure or shape from the template's."""
    want, want_def = jax.tree.flatten(template)
    got, got_def = jax.tree.flatten(restored)
    if want_def != got_def or [np.shape(x) for x in want] != [np.shape(x) for x in got]:
        raise ValueError("restored state differs in structure or shapes from the template")
