"""Training budgets of the few-label rows: how many gradient steps each reported row takes, from
the config alone, so that compared rows are equal by construction (a test checks every claim).

One gradient step = one optimiser update on one batch (`train.batch_size` labelled rows, plus
`train.unlabelled_batch_size` unlabelled rows for the methods that draw them). The budget B is the
iterative consistency framework's total: stage 1 (`train.num_steps`) + per round two fine-tunes
(models A and B, `consistency.finetune_steps` each) + stage 3 (`consistency.stage3_steps`). Then
(choices, one line each):

- `supervised` is stage 1 itself (the paper's pre-trained model) and is not budget-matched;
  `supervised_budget` is the labelled-only control trained for B steps.
- `consistency` (one round) fills B with a longer stage 3: B - stage 1 - 2 fine-tunes, so that
  one round and the iterative version are compared at the same steps.
- Mean Teacher (both), FixMatch (both rules) and the sector heads train B steps.
- The ensemble's groups share B: each trains B / groups steps (an error when that is not whole).
"""

from __future__ import annotations

import ml_collections

from jaxfp.config import ConfigError

# Rows that train no network.
UNTRAINED = ("signature_wknn",)


def budget_steps(config: ml_collections.ConfigDict) -> int:
    """B: the iterative consistency framework's gradient steps, the budget of every compared row."""
    k = config.consistency
    for field in ("finetune_steps", "stage3_steps", "rounds"):
        if int(k[field]) < 1:
            raise ConfigError(f"consistency.{field}: expected a positive integer, got {k[field]}")
    if int(config.train.num_steps) < 1:
        raise ConfigError(
            f"train.num_steps: expected a positive integer, got {config.train.num_steps}"
        )
    per_round = 2 * int(k.finetune_steps) + int(k.stage3_steps)
    return int(config.train.num_steps) + int(k.rounds) * per_round


def one_round_stage3_steps(config: ml_collections.ConfigDict) -> int:
    """Stage 3 of the one-round row: what B leaves after stage 1 and one round's two fine-tunes."""
    k = config.consistency
    return budget_steps(config) - int(config.train.num_steps) - 2 * int(k.finetune_steps)


def ensemble_group_steps(config: ml_collections.ConfigDict) -> int:
    """Each ensemble group's steps: B shared evenly among `ensemble.groups`."""
    groups = len(config.ensemble.groups)
    total = budget_steps(config)
    if groups < 1 or total % groups:
        raise ConfigError(
            f"ensemble.groups: the budget of {total} steps must split evenly among the "
            f"{groups} groups; change consistency.stage3_steps, train.num_steps or the groups"
        )
    return total // groups


def row_steps(config: ml_collections.ConfigDict) -> dict[str, int]:
    """Gradient steps of every reported few-label row (all its networks and stages together); the
    ensemble's are short of B where B does not split evenly (training it is then an error)."""
    total = budget_steps(config)
    k = config.consistency
    one_round = (
        int(config.train.num_steps) + 2 * int(k.finetune_steps) + one_round_stage3_steps(config)
    )
    groups = len(config.ensemble.groups)
    ensemble = groups * (total // groups) if groups else 0  # B where it splits evenly
    return {
        "signature_wknn": 0,
        "supervised": int(config.train.num_steps),
        "supervised_budget": total,
        "mean_teacher": total,
        "mean_teacher_aug": total,
        "fixmatch": total,
        "fixmatch_distance": total,
        "consistency": one_round,
        "consistency_iterative": total,
        "ensemble": ensemble,
        "ensemble_consensus": ensemble,
        "sector_heads": total,
    }
