"""Benchmark: datagen receivers per second by max depth and batch size, with path statistics.

    python experiments/bench/datagen_speed.py [--receivers 400] [--depths 1,2,3] [--batches 25,100,200]

Traces the first --receivers outdoor receivers of sector 0 of the default (paper) configuration, once
untimed to compile, then timed; reports receivers/s, mean paths, LoS share and the largest share of
the solver's candidate cap a call used. The time and size of the full set come from
`python -m datagen generate` (its summary_shard*.json).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import datagen  # first: points Dr.Jit at LLVM 19
from datagen.grid import receivers
from jaxfp.common.atomic_files import write_json
from jaxfp.config import apply_overrides, load_config
from jaxfp.eval.results import format_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--receivers", type=int, default=400)
    parser.add_argument("--depths", default="1,2,3")
    parser.add_argument("--batches", default="25,100,200")
    parser.add_argument("--out", default="runs/bench/datagen_speed.json")
    args = parser.parse_args()
    from datagen.tracer import Tracer
    from jaxfp.eval.bench import machine_info

    rows = {}
    for depth in (int(d) for d in args.depths.split(",")):
        config = apply_overrides(
            load_config(datagen.__path__[0] + "/config.py"), [f"--config.max_depth={depth}"]
        )
        tracer = Tracer(config)
        xy, sector = receivers(
            config.region, config.grid_spacing, config.bs_position[:2],
            config.sector_azimuths_deg, tracer.is_outdoor,
        )  # fmt: skip
        xy = xy[sector == 0][: args.receivers]
        for batch in (int(b) for b in args.batches.split(",")):
            tracer.trace(xy[:batch], 0)  # compile this batch shape
            tracer.max_path_share = 0.0
            start = time.perf_counter()
            out = [tracer.trace(xy[i : i + batch], 0) for i in range(0, len(xy), batch)]
            seconds = time.perf_counter() - start
            paths = np.concatenate([o["num_paths"] for o in out])
            los = np.concatenate([o["los"] for o in out])
            rows[f"depth {depth}, batch {batch}"] = {
                "receivers_per_s": len(xy) / seconds,
                "mean_paths": float(paths.mean()),
                "max_paths": int(paths.max()),
                "no_path_share": float((paths == 0).mean()),
                "los_share": float(los.mean()),
                "cap_share_max": tracer.max_path_share,
            }
    result = {"receivers": args.receivers, "machine": machine_info(), "results": rows}
    write_json(args.out, result)
    print(f"{args.receivers} receivers of sector 0, 10,000 rays", result["machine"])
    print(format_table(rows))


if __name__ == "__main__":
    main()
