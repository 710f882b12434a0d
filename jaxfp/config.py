"""Experiment configs: load `get_config()` from a file and apply `--config.key=value` overrides.

A config path may carry an argument after a colon (big_vision style): `experiments/knn_dsi1.py:test`.
"""

from __future__ import annotations

import ast
import importlib.util
import os
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import ml_collections


class ConfigError(ValueError):
    """A config the user wrote or asked for is wrong (bad file, unknown key, unparsable value)."""


def choice(
    config: ml_collections.ConfigDict, key: str, allowed: Sequence[Any], default: Any = None
) -> Any:
    """`config[key]` (or `default` where the config has none), checked against `allowed`."""
    value = config.get(key, default)
    if value not in allowed:
        raise ConfigError(f"config.{key}: expected one of {tuple(allowed)}, got {value!r}")
    return value


def config_module(path: str) -> ModuleType:
    """The config file at `path` as a module (a config builds on a sibling's shared parts)."""
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: no such config file")
    module_spec = importlib.util.spec_from_file_location(f"jaxfp_config_{abs(hash(path))}", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def sibling(config_file: str, name: str) -> ModuleType:
    """The config file `name` beside `config_file` (pass `__file__`) as a module: the one way a
    config builds on another (call its `get_config(size)` or its shared builders)."""
    return config_module(os.path.join(os.path.dirname(os.path.abspath(config_file)), name))


def repo_path(config_file: str, *parts: str) -> str:
    """A path under the repository that holds the config file `config_file` (pass `__file__`;
    configs live in <repo>/experiments/<paper>/)."""
    here = os.path.dirname(os.path.abspath(config_file))
    while os.path.basename(here) != "experiments":
        parent = os.path.dirname(here)
        if parent == here:
            raise ConfigError(f"{config_file}: not under an experiments/ folder")
        here = parent
    return os.path.join(os.path.dirname(here), *parts)


def load_config(spec: str) -> ml_collections.ConfigDict:
    """`get_config(size)` of the config file in `spec` ("path" or "path:size"); the size must be
    one of the module's `SIZES` ("" is the default size)."""
    path, _, arg = spec.partition(":")
    module = config_module(path)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"{path}: expected a function get_config()")
    sizes = getattr(module, "SIZES", None)
    if not isinstance(sizes, tuple) or not all(isinstance(x, str) for x in sizes):
        raise ConfigError(f"{path}: expected SIZES, a tuple of the size names get_config takes")
    if arg not in sizes:
        named = ", ".join(repr(x) if x else "'' (default)" for x in sizes)
        raise ConfigError(f"{path}: unknown size {arg!r}; sizes are {named}")
    config = module.get_config(arg) if arg else module.get_config()
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"{path}: get_config() must return an ml_collections.ConfigDict")
    return config


def _parse_value(text: str, current: object, key: str) -> object:
    if isinstance(current, str):
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if current is None:
            return text
        raise ConfigError(
            f"--config.{key}: could not parse {text!r} as {type(current).__name__}"
        ) from None
    if isinstance(current, bool) and not isinstance(value, bool):
        raise ConfigError(f"--config.{key}: expected True or False, got {text!r}")
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(current, tuple) and isinstance(value, list):
        value = tuple(value)
    return value


def apply_overrides(
    config: ml_collections.ConfigDict, overrides: Sequence[str]
) -> ml_collections.ConfigDict:
    """Apply `config.a.b=value` strings (the leading `--` already stripped or not); the keys given
    are recorded in `config.command_line`."""
    given: list[str] = []
    for item in overrides:
        body = item.removeprefix("--")
        if not body.startswith("config.") or "=" not in body:
            raise ConfigError(f"{item!r}: expected --config.key=value")
        key, _, text = body[len("config.") :].partition("=")
        parent = config
        *path, leaf = key.split(".")
        for part in path:
            if part not in parent:
                raise ConfigError(f"--config.{key}: no field {part!r}")
            parent = parent[part]
        if leaf not in parent:
            raise ConfigError(
                f"--config.{key}: no field {leaf!r}; fields are {sorted(parent.keys())}"
            )
        try:
            parent[leaf] = _parse_value(text, parent[leaf], key)
        except TypeError as err:  # ml_collections refuses a value of another type
            raise ConfigError(f"--config.{key}: {err}") from None
        given.append(key)
    if given:  # kept so variants never override what the command line set
        config.command_line = tuple(dict.fromkeys((*config.get("command_line", ()), *given)))
    config.lock()
    return config


def variant_settings(
    config: ml_collections.ConfigDict, section: str, variant: str
) -> ml_collections.ConfigDict:
    """`config[section]` with `config.variants[variant]`'s settings applied, except those the
    command line set as `--config.<section>.<key>`: the command line always wins."""
    settings = config[section].copy_and_resolve_references()
    if variant not in config.variants:
        raise ConfigError(f"config.variants: no variant {variant!r}; have {list(config.variants)}")
    given = {
        k.split(".", 1)[1] for k in config.get("command_line", ()) if k.startswith(f"{section}.")
    }
    with settings.unlocked():
        for key, value in config.variants[variant].items():
            if key not in settings:
                raise ConfigError(
                    f"config.variants.{variant}.{key}: not a field of config.{section}"
                )
            if key not in given:
                settings[key] = value
    return settings


def split_data(path: str, train: tuple[str, ...] = ("train",), test: tuple[str, ...] = ("test",)):
    """`config.data` for a train/test protocol over the named parts of one data set."""
    return ml_collections.ConfigDict(
        dict(protocol="split", path=path, format="auto", train=train, test=test)
    )


def check_output_folder(path: str, option: str) -> None:
    """`path` (given as `option`, e.g. "--workdir") must be a folder that exists or can be made,
    and can be written: a file, or a place that cannot be written, is refused before work starts."""
    full = os.path.abspath(path)
    if os.path.exists(full) and not os.path.isdir(full):
        raise ConfigError(f"{option} {path}: exists and is not a folder")
    existing = full
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ConfigError(f"{option} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: {existing} cannot be written")


def check_seeds(seeds: Any, name: str = "seeds") -> None:
    """`config.<name>` must be a non-empty tuple of distinct non-negative integers (replicates)."""
    if not isinstance(seeds, tuple | list) or not seeds:
        raise ConfigError(f"config.{name}: expected a non-empty tuple of seeds, got {seeds!r}")
    if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in seeds):
        raise ConfigError(f"config.{name}: expected non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"config.{name}: expected distinct seeds, got {seeds!r}")
