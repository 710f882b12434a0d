"""A run's working directory and the config that shaped what it holds.

A restart with the same config resumes; with a different one, what the directory holds was made
by another config, so it is cleared (checkpoints, logs) and recomputed, and the differing keys are
printed. Callers pass the part of the config that shapes this directory's result, so an unrelated
edit (another method's settings) does not throw a finished stage away.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from jaxfp.common.atomic_files import write_json

CONFIG_FILE = "config.json"
# What `fit` and `fit_members` keep in a workdir; cleared when the config changes.
RUN_OUTPUTS = ("checkpoints", "metrics.jsonl", "tensorboard")


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def config_as_json(config: Any) -> Any:
    """The config as plain JSON values (tuples become lists), as it is saved."""
    plain = config.to_dict() if hasattr(config, "to_dict") else config
    return json.loads(json.dumps(plain, default=str))


def config_differences(saved: Any, current: Any) -> list[str]:
    """'key: old -> new' for every flattened key that differs."""
    old, new = _flatten(saved), _flatten(current)
    return [
        f"{key}: {old.get(key, '<absent>')!r} -> {new.get(key, '<absent>')!r}"
        for key in sorted(set(old) | set(new))
        if old.get(key, "<absent>") != new.get(key, "<absent>")
    ]


def saved_config(workdir: str) -> Any | None:
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def prepare_workdir(workdir: str, config: Any, outputs: tuple[str, ...] = RUN_OUTPUTS) -> bool:
    """Create `workdir` for `config`; returns True when it held another config's `outputs`, which
    are then removed (the caller recomputes them)."""
    os.makedirs(workdir, exist_ok=True)
    current = config_as_json(config)
    saved = saved_config(workdir)
    changed = saved is not None and saved != current
    if changed:
        diffs = config_differences(saved, current)
        print(
            f"{workdir}: made with another config ({'; '.join(diffs[:6])}"
            f"{'; ...' if len(diffs) > 6 else ''}); recomputing it",
            flush=True,
        )
        for name in outputs:
            path = os.path.join(workdir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
    if saved is None or changed:
        write_json(os.path.join(workdir, CONFIG_FILE), current)
    return changed
