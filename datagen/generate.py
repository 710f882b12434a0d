"""Generate (a shard of) the CSI data set: chunked, atomic, resumable, with a summary at the end."""

from __future__ import annotations

import json
import os
import time

import numpy as np
from tqdm.auto import tqdm

from datagen.grid import receivers
from jaxfp.data.csi_store import (
    create_dataset,
    finished_chunks,
    remove_stale_temporaries,
    write_chunk,
)


def parse_shard(text: str) -> tuple[int, int]:
    """'i/N' -> (i, N) with 0 <= i < N."""
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard: expected i/N such as 0/4, got {text!r}") from None
    if not 0 <= index < count:
        raise ValueError(f"--shard: expected 0 <= i < N, got {text!r}")
    return index, count


def config_json(config) -> dict:
    return json.loads(json.dumps(config.to_dict()))


def generate(config, out: str, shard: tuple[int, int] = (0, 1), progress: bool = True) -> dict:
    """Trace every chunk of shard `i/N` not yet on disk under `out`; returns the summary."""
    from datagen.tracer import Tracer

    started = time.perf_counter()
    tracer = Tracer(config)
    xy, sector = receivers(
        config.region,
        config.grid_spacing,
        config.bs_position[:2],
        config.sector_azimuths_deg,
        tracer.is_outdoor,
    )
    header = create_dataset(out, config_json(config), len(xy), config.chunk_size, tracer.csi_shape)
    index, count = shard
    mine = [c for c in range(header["num_chunks"]) if c % count == index]
    remove_stale_temporaries(out, mine)
    done = finished_chunks(out)
    todo = [c for c in mine if c not in done]
    stats = {"receivers": 0, "los": 0, "no_path": 0, "paths": 0, "bytes": 0}
    total = sum(min(config.chunk_size, len(xy) - c * config.chunk_size) for c in todo)
    bar = tqdm(total=total, desc=f"datagen shard {index}/{count}", unit="rx", disable=not progress)
    trace_start = time.perf_counter()
    batches_done = 0
    for chunk_id in todo:
        rows = np.arange(
            chunk_id * config.chunk_size, min((chunk_id + 1) * config.chunk_size, len(xy))
        )
        parts = []
        for start in range(0, len(rows), config.batch_size):
            batch = rows[start : start + config.batch_size]
            for s in np.unique(sector[batch]):
                sel = batch[sector[batch] == s]
                check = config.spot_check_every > 0 and batches_done % config.spot_check_every == 0
                parts.append((sel, tracer.trace(xy[sel], int(s), spot_check=check)))
                batches_done += 1
                bar.update(len(sel))
        order = np.concatenate([sel for sel, _ in parts])
        arrays = {k: np.concatenate([p[k] for _, p in parts]) for k in ("csi", "los", "num_paths")}
        arrays.update(xy=xy[order], sector=sector[order], rx_index=order)
        folder = write_chunk(out, chunk_id, arrays, header)
        stats["receivers"] += len(order)
        stats["los"] += int(arrays["los"].sum())
        stats["no_path"] += int((arrays["num_paths"] == 0).sum())
        stats["paths"] += int(arrays["num_paths"].sum())
        stats["bytes"] += sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        elapsed = time.perf_counter() - trace_start
        bar.set_postfix(rx_per_s=f"{stats['receivers'] / elapsed:.1f}")
    bar.close()
    traced_s = time.perf_counter() - trace_start
    summary = {
        "out": out,
        "shard": f"{index}/{count}",
        "receivers_in_data_set": len(xy),
        "receivers_per_sector": np.bincount(
            sector, minlength=len(config.sector_azimuths_deg)
        ).tolist(),
        "chunks_of_shard": len(mine),
        "chunks_skipped_as_done": len(mine) - len(todo),
        "receivers_traced": stats["receivers"],
        "los_share": stats["los"] / max(stats["receivers"], 1),
        "receivers_without_path": stats["no_path"],
        "mean_paths": stats["paths"] / max(stats["receivers"], 1),
        "bytes_written": stats["bytes"],
        "trace_seconds": traced_s,
        "receivers_per_second": stats["receivers"] / traced_s if stats["receivers"] else None,
        "total_seconds": time.perf_counter() - started,
        "largest_share_of_path_cap": tracer.max_path_share,
        "batches_split": tracer.splits,
        "spot_checks": tracer.spot_checks,
        "spot_checks_with_dropped_paths": tracer.spot_check_mismatches,
    }
    with open(os.path.join(out, f"summary_shard{index}of{count}.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary
