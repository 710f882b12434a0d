"""One subpackage per paper (and `baselines`); each has `run.py` with
`train_and_evaluate(config, workdir)`, the only thing the CLI knows of a method.

`config.method` names the subpackage, optionally with the program inside it after a dot
(`baselines.knn`, `csi.table1`, `gufu`); the subpackage's `run.py` dispatches on the rest.
Adding a method = adding a subpackage: nothing here changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from jaxfp.config import ConfigError


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg)


def get_method(name: str) -> Callable:
    package = name.split(".")[0]
    if package not in available():
        raise ConfigError(
            f"config.method: expected one of {available()} (a subpackage), got {name!r}"
        )
    return importlib.import_module(f"jaxfp.methods.{package}.run").train_and_evaluate


def program(config_method: str, programs: dict[str, Callable]) -> Callable:
    """The program named after the dot in `config.method` (a subpackage's run.py dispatch)."""
    package, _, name = config_method.partition(".")
    if name not in programs:
        expected = [f"{package}.{p}" for p in programs]
        raise ConfigError(f"config.method: expected one of {expected}, got {config_method!r}")
    return programs[name]
