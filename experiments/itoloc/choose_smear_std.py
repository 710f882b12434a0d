"""Eq. 12's smearing std chosen on a validation part (the paper gives none): one finished run per
candidate std, the reported part in none of them — `devices.py:phones_validation` (validation
phones; the reported phones are in no part), `devices.py:validation` (the synthetic devices of
validation worlds) or `drift.py:validation` (validation months; the reported months are not run). The choice is the std with the lowest mean error of the updated
iToLoc over the validation phones or months; the table also gives each candidate against no
update, paired over seeds, and any control run.

    for std in 0.1 0.01 0.001 0.0001; do jaxfp run experiments/itoloc/devices.py:phones_validation \\
        --workdir runs/itoloc_phones_val/std$std --config.cotrain.smear_std=$std \\
        --config.data.path=.../validationData.csv; done
    python experiments/itoloc/choose_smear_std.py --out runs/itoloc_phones_val \\
        runs/itoloc_phones_val/std0.1 runs/itoloc_phones_val/std0.01 runs/itoloc_phones_val/std0.001 \\
        runs/itoloc_phones_val/std0.0001 \\
        [--control "no pseudo labels=runs/itoloc_phones_val/no_labels"]
    python experiments/itoloc/choose_smear_std.py --out runs/itoloc_drift_val \
        runs/itoloc_drift_val/std0.1 runs/itoloc_drift_val/std0.0001     # drift.py:validation runs
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxfp.eval.results import read_results, table, write_results
from jaxfp.eval.stats import over_seeds, paired_rows

# The rows of the updated and the never-updated iToLoc: one per phone (devices) or month (drift)
UPDATED = re.compile(r"^itoloc, updated @ (?P<part>.+)$|^month (?P<month>\d+) itoloc, updated$")
BEFORE = re.compile(r"^itoloc @ (?P<part>.+)$|^month (?P<month>\d+) itoloc, no update$")


def parts(results: dict[str, Any], pattern: re.Pattern[str]) -> dict[str, dict[str, Any]]:
    """{phone or "month MM": row} of the rows `pattern` matches."""
    out = {}
    for name, row in results["results"].items():
        found = pattern.match(name)
        if found:
            out[found["part"] or f"month {found['month']}"] = row
    return out


KINDS = {"month": "months", "phone": "phones", "device": "devices"}


def part_kind(names: Sequence[str]) -> str:
    """What the validation parts are, from their names ("month 02", "phone4", "device2")."""
    kinds = {KINDS.get(re.match(r"[a-z]*", name)[0]) for name in names}
    if len(kinds) != 1 or None in kinds:
        raise ValueError(f"validation parts {list(names)}: expected all months, phones or devices")
    return kinds.pop()


def per_seed_over_parts(results: dict[str, Any], pattern: re.Pattern[str]) -> list[float]:
    """Each seed's mean error over the rows `pattern` matches (one per phone or month)."""
    rows = list(parts(results, pattern).values())
    if not rows:
        raise ValueError(f"no rows matching {pattern.pattern!r} in a results file")
    seeds = sorted(rows[0]["per_seed_mean_m"], key=int)
    return [float(np.mean([r["per_seed_mean_m"][s] for r in rows])) for s in seeds]


def choose(runs: dict[str, dict[str, Any]], controls: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """{"chosen": the candidate label with the lowest mean updated error, "rows", "paired"}."""
    per_seed = {label: per_seed_over_parts(r, UPDATED) for label, r in runs.items()}
    per_seed.update({label: per_seed_over_parts(r, UPDATED) for label, r in controls.items()})
    first = next(iter(runs.values()))
    per_seed["no update"] = per_seed_over_parts(first, BEFORE)
    rows = {label: over_seeds(v, "mean_m") for label, v in per_seed.items()}
    chosen = min(runs, key=lambda label: rows[label]["mean_m"])
    paired = paired_rows(per_seed, [(label, "no update") for label in [*runs, *controls]], "diff_m")
    return {"chosen": chosen, "rows": rows, "paired": paired}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workdirs", nargs="+", help="finished validation runs, one per std")
    parser.add_argument("--control", action="append", default=[], help="LABEL=WORKDIR")
    parser.add_argument("--out", required=True, help="where results.json goes")
    args = parser.parse_args(argv)
    runs = {}
    for workdir in args.workdirs:
        results = read_results(workdir)
        runs[f"smear_std={results['config']['cotrain']['smear_std']}"] = results
    controls = dict(c.rsplit("=", 1) for c in args.control)
    controls = {label: read_results(path) for label, path in controls.items()}
    out = choose(runs, controls)
    first = next(iter(runs.values()))
    validation = sorted(parts(first, UPDATED))
    what = part_kind(validation)
    write_results(
        args.out,
        f"iToLoc: eq. 12's smearing std chosen on the validation {what}",
        {"candidates": list(runs), "controls": list(controls), "chosen": out["chosen"]},
        out["rows"],
        ["mean_m", "mean_m_ci_low", "mean_m_ci_high", "n_seeds"],
        {
            f"updated iToLoc minus no update, mean over the validation {what} (m)": table(
                out["paired"], ["diff_m", "diff_m_ci_low", "diff_m_ci_high", "verdict", "n_seeds"]
            )
        },
        chosen=out["chosen"],
        validation=validation,
    )
    print(f"chosen: {out['chosen']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
