"""A run's working directory: the config it belongs to, checked on every restart."""

from __future__ import annotations

import json
import os
from typing import Any

import ml_collections

from jaxfp.eval.report import write_json


class ConfigMismatchError(RuntimeError):
    """A workdir holds a run of a different config."""


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def config_as_json(config: ml_collections.ConfigDict | dict) -> dict[str, Any]:
    """The config as plain JSON values (tuples become lists), as it is saved."""
    plain = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config)
    return json.loads(json.dumps(plain, default=str))


def prepare_workdir(workdir: str, config: ml_collections.ConfigDict | dict) -> str:
    """Create `workdir` and save config.json, or refuse if it already holds another config."""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "config.json")
    current = config_as_json(config)
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        if saved != current:
            old, new = _flatten(saved), _flatten(current)
            diffs = [
                f"{key}: {old.get(key, '<absent>')!r} -> {new.get(key, '<absent>')!r}"
                for key in sorted(set(old) | set(new))
                if old.get(key, "<absent>") != new.get(key, "<absent>")
            ]
            raise ConfigMismatchError(
                f"{workdir} holds a run with a different config ({'; '.join(diffs[:8])}); "
                "resume with the same config or use a new --workdir"
            )
        return path
    return write_json(path, current)
