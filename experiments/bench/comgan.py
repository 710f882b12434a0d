"""ComGAN throughput: completions per second (batch 4096) and latency (batch 1), one WGAN-GP
iteration (n_critic critic steps + 1 generator step) at batch 64, and seeds trained vmapped vs one
by one. Prints a table and writes JSON with the machine it ran on.

    python experiments/bench/comgan.py [--repeats 20] [--out bench_comgan.json]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

from jaxfp.common.atomic_files import write_json
from jaxfp.eval.bench import machine_info, median_seconds
from jaxfp.eval.results import format_table
from jaxfp.methods.comgan import completion, training
from jaxfp.methods.comgan.nets import Critic, Generator, RpEstimator

RUS, RP_DIMS = 6, 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--out", default="bench_comgan.json")
    args = parser.parse_args()
    s = training.GanSettings(Generator(), Critic(), RpEstimator(), 5, 1, 10.0, 1.0, 100.0)
    state = training.init_state(s, jax.random.key(0), RUS, RP_DIMS, 1e-4)
    params = state["generator"].params

    @jax.jit
    def complete(x, rp, measured):
        def generate(xm, m, c):
            return s.generator.apply({"params": params}, xm, m, c)

        return completion.subset_completion(generate, x, rp, measured)

    rows = {}
    for batch in (4096, 1):
        x = jax.random.normal(jax.random.key(1), (batch, RUS))
        rp = jax.random.normal(jax.random.key(2), (batch, RP_DIMS))
        measured = jnp.asarray(completion.measured_rus(batch, RUS, 2, seed=0))
        seconds = median_seconds(lambda x=x, rp=rp, m=measured: complete(x, rp, m), args.repeats)
        rows[f"completion, batch {batch} (K=2)"] = {
            "seconds": seconds,
            "per_second": batch / seconds,
        }
    iteration = jax.jit(training.make_iteration(s))
    batch = {
        "rss": jax.random.normal(jax.random.key(3), (s.n_critic + 1, 64, RUS)),
        "rp": jax.random.normal(jax.random.key(4), (s.n_critic + 1, 64, RP_DIMS)),
    }
    seconds = median_seconds(
        lambda: iteration(state, batch, jax.random.key(5))[1]["loss"], args.repeats
    )
    rows["WGAN-GP iteration, batch 64 (5 critic + 1 generator)"] = {
        "seconds": seconds,
        "per_second": 1.0 / seconds,
    }
    n = args.seeds
    keys = jax.random.split(jax.random.key(6), n)
    stacked = jax.vmap(lambda k: training.init_state(s, k, RUS, RP_DIMS, 1e-4))(keys)
    stacked_batch = jax.tree.map(lambda a: jnp.broadcast_to(a, (n, *a.shape)), batch)
    vmapped = jax.jit(jax.vmap(training.make_iteration(s)))
    seconds = median_seconds(lambda: vmapped(stacked, stacked_batch, keys)[1]["loss"], args.repeats)
    rows[f"{n} seeds, one vmapped iteration"] = {"seconds": seconds, "per_second": n / seconds}
    one_by_one = rows["WGAN-GP iteration, batch 64 (5 critic + 1 generator)"]["seconds"] * n
    rows[f"{n} seeds, one by one"] = {"seconds": one_by_one, "per_second": n / one_by_one}
    result = {"machine": machine_info(), "rows": rows}
    write_json(args.out, result)
    print(result["machine"])
    print(format_table(rows, ["seconds", "per_second"]))


if __name__ == "__main__":
    main()
