"""Benchmark: WkNN on UJIIndoorLoc (19,861 references x 520 APs, 1,111 queries).

    python experiments/bench/wknn_uji.py --data /path/to/UJI1.mat [--out runs/bench/wknn_uji.json]

Prints queries per second for several query-chunk sizes, XLA's scratch memory per chunk (from the
compiled program's memory analysis) and the process's peak resident memory; saves the same as JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import jax.numpy as jnp
import numpy as np

from jaxfp.common.atomic_files import write_json
from jaxfp.data.registry import load
from jaxfp.eval.bench import machine_info, peak_rss_mib
from jaxfp.eval.metrics import position_errors
from jaxfp.eval.results import format_table
from jaxfp.methods.baselines import knn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="UJI1.mat or a UJIIndoorLoc folder/zip")
    parser.add_argument("--chunks", default="32,128,512")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="runs/bench/wknn_uji.json")
    args = parser.parse_args()

    parts = load(args.data)
    reference, queries = parts["train"], parts["test"]
    rss_after_load = peak_rss_mib()
    index = knn.build_index(reference, "positive")
    rows = {}
    for chunk in (int(c) for c in args.chunks.split(",")):
        out = knn.predict(index, queries, k=args.k, chunk=chunk)  # compile
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = knn.predict(index, queries, k=args.k, chunk=chunk)
            times.append(time.perf_counter() - start)
        compiled = knn.query_chunk.lower(
            (index.refs, index.xy, index.floor, index.building),
            jnp.zeros((min(chunk, queries.n), reference.n_aps), jnp.float32),
            k=args.k,
            weighted=True,
            metric="euclidean",
            n_floors=len(index.floor_values),
            n_buildings=len(index.building_values),
        ).compile()
        memory = compiled.memory_analysis()
        rows[f"chunk {chunk}"] = {
            "queries_per_s": queries.n / float(np.median(times)),
            "seconds_median": float(np.median(times)),
            "xla_temp_mib": memory.temp_size_in_bytes / 2**20 if memory else None,
            "peak_rss_mib": peak_rss_mib(),
            "mean_error_m": float(position_errors(out["xy"], queries.xy).mean()),
        }
    result = {
        "benchmark": f"WkNN (k={args.k}, positive, euclidean) on {args.data}",
        "references": reference.n,
        "queries": queries.n,
        "aps": reference.n_aps,
        "reference_matrix_mib": reference.n * reference.n_aps * 4 / 2**20,
        "peak_rss_after_load_mib": rss_after_load,
        "machine": machine_info(),
        "results": rows,
    }
    write_json(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "results"}, indent=1))
    print(format_table(rows))


if __name__ == "__main__":
    main()
