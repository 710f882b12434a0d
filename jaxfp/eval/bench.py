"""What every benchmark figure is reported with (the machine, the JAX version, the devices) and how
a compiled call is timed."""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def cpu_identity(cpuinfo: str) -> dict[str, object]:
    """The first processor of a `/proc/cpuinfo` text: model name, vendor, family and model numbers
    and the widest vector extension. "AMD EPYC" names both AMD's Zen 3 (family 25, model 1) and
    Zen 4 (model 17, with AVX-512); XLA's and PyTorch's kernels differ between them."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    vector = next((v for v in ("avx512f", "avx2", "avx", "sse4_2") if v in flags), None)
    return {
        "cpu": fields.get("model name"),
        "cpu_vendor": fields.get("vendor_id"),
        "cpu_family": int(fields["cpu family"]) if "cpu family" in fields else None,
        "cpu_model": int(fields["model"]) if fields.get("model", "").isdigit() else None,
        "cpu_vector": vector,
    }


def machine_info() -> dict[str, object]:
    cpu: dict[str, object] = {"cpu": platform.processor() or platform.machine()}
    try:
        with open("/proc/cpuinfo") as f:
            found = cpu_identity(f.read())
        cpu.update({k: v for k, v in found.items() if v is not None})
    except OSError:
        pass
    return {
        **cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    """Median seconds of `fn()` over `repeats` calls, after one warm-up call (compilation);
    each call is waited for with `jax.block_until_ready`."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def matmul_flops_per_s(n: int = 2048, repeats: int = 10) -> float:
    """This machine's FLOP/s on a jitted n×n float32 matmul: what a step's FLOP share is taken of."""
    a = jax.random.normal(jax.random.key(0), (n, n))
    product = jax.jit(lambda x: x @ x)
    product(a).block_until_ready()
    start = time.perf_counter()
    for _ in range(repeats):
        out = product(a)
    out.block_until_ready()
    return 2 * n**3 * repeats / (time.perf_counter() - start)
