"""Optimisers and learning-rate schedules built by name: the one place a method's optimiser comes from.

A method's config holds an `optimizer` section, e.g.
    dict(name="adam", learning_rate=1e-4, b1=0.0, b2=0.9)
    dict(name="sgd", learning_rate=0.1, momentum=0.9, weight_decay=1e-4, plateau_patience=5, ...)
    dict(name="adamw", learning_rate=1e-3, weight_decay=1e-4, schedule="cosine", steps=2000)
and `optimizer_from_config(section)` builds it; an unknown name or field is a `ConfigError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optax

from jaxfp.config import ConfigError

SCHEDULES = ("constant", "cosine")
OPTIMIZERS = ("adam", "adamw", "sgd")

# The fields each optimiser takes beyond `name`, `learning_rate`, `schedule`, `steps` and the
# plateau fields, with their defaults (optax's, except where a method's paper sets its own).
_FIELDS: dict[str, dict[str, Any]] = {
    "adam": dict(b1=0.9, b2=0.999, eps=1e-8),
    "adamw": dict(b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4),
    # SGD's weight decay is coupled (added to the gradient before momentum), as torch.optim.SGD's
    "sgd": dict(momentum=0.0, nesterov=False, weight_decay=0.0),
}
_COMMON = dict(
    schedule="constant", steps=0, plateau_patience=0, plateau_steps=1, plateau_factor=0.1
)


def schedule(name: str, learning_rate: float, steps: int = 0) -> optax.Schedule | float:
    """`constant` (the rate itself) or `cosine` (decay to 0 over `steps`)."""
    if name == "constant":
        return float(learning_rate)
    if name == "cosine":
        if steps <= 0:
            raise ConfigError(f"schedule 'cosine': steps must be > 0, got {steps}")
        return optax.cosine_decay_schedule(float(learning_rate), int(steps))
    raise ConfigError(f"schedule: expected one of {SCHEDULES}, got {name!r}")


def optimizer(name: str, learning_rate: float, **settings: Any) -> optax.GradientTransformation:
    """The optimiser `name` at `learning_rate`; `settings` as in the module docstring. A positive
    `plateau_patience` divides the rate by 1/`plateau_factor` after that many windows of
    `plateau_steps` steps without a lower loss (optax's reduce_on_plateau)."""
    if name not in _FIELDS:
        raise ConfigError(f"optimizer.name: expected one of {OPTIMIZERS}, got {name!r}")
    allowed = {**_COMMON, **_FIELDS[name]}
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise ConfigError(
            f"optimizer {name!r}: unknown fields {unknown}; it takes {sorted(allowed)}"
        )
    s = {**allowed, **settings}
    if not learning_rate > 0:
        raise ConfigError(f"optimizer.learning_rate: expected > 0, got {learning_rate}")
    rate = schedule(s["schedule"], learning_rate, s["steps"])
    if name == "adam":
        tx = optax.adam(rate, b1=s["b1"], b2=s["b2"], eps=s["eps"])
    elif name == "adamw":
        tx = optax.adamw(rate, b1=s["b1"], b2=s["b2"], eps=s["eps"], weight_decay=s["weight_decay"])
    else:
        sgd = optax.sgd(rate, momentum=s["momentum"] or None, nesterov=s["nesterov"])
        tx = (
            optax.chain(optax.add_decayed_weights(s["weight_decay"]), sgd)
            if s["weight_decay"]
            else sgd
        )
    if s["plateau_patience"] > 0:
        tx = optax.chain(
            tx,
            optax.contrib.reduce_on_plateau(
                factor=s["plateau_factor"],
                patience=s["plateau_patience"],
                accumulation_size=s["plateau_steps"],
            ),
        )
    return tx


def optimizer_from_config(
    section: Mapping[str, Any], **overrides: Any
) -> optax.GradientTransformation:
    """`optimizer(**section)` with `overrides` (e.g. a stage's own `steps` for its schedule)."""
    values = {**dict(section), **overrides}
    if "name" not in values or "learning_rate" not in values:
        raise ConfigError(
            f"optimizer: expected fields 'name' and 'learning_rate', got {sorted(values)}"
        )
    name, rate = values.pop("name"), values.pop("learning_rate")
    return optimizer(str(name), float(rate), **values)
