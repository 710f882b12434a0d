"""The one metrics writer: TensorBoard events plus metrics.jsonl, both in the workdir."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping

import numpy as np
from tensorboardX import SummaryWriter

from jaxfp.common.atomic_files import atomic_path


class MetricWriter:
    """Scalars per step to TensorBoard and to JSON lines `{"step": s, "name": value, ...}`."""

    def __init__(self, workdir: str) -> None:
        self.jsonl_path = os.path.join(workdir, "metrics.jsonl")
        self._tb = SummaryWriter(logdir=os.path.join(workdir, "tensorboard"))
        self._jsonl = open(self.jsonl_path, "a")  # noqa: SIM115 - held for the run

    def truncate_after(self, step: int) -> None:
        """Drop lines past `step` (written after the checkpoint a resumed run restarts from)."""
        self._jsonl.close()
        kept = []
        if os.path.exists(self.jsonl_path):
            with open(self.jsonl_path) as f:
                for line in f:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by a kill
                    if record.get("step", 0) <= step:
                        kept.append(line if line.endswith("\n") else line + "\n")
        with atomic_path(self.jsonl_path) as tmp, open(tmp, "w") as f:
            f.writelines(kept)
        self._jsonl = open(self.jsonl_path, "a")  # noqa: SIM115

    def write_scalars(self, step: int, scalars: Mapping[str, object]) -> None:
        record: dict[str, object] = {"step": int(step)}
        for name, value in scalars.items():
            value = float(np.asarray(value))
            record[name] = value if math.isfinite(value) else str(value)
            self._tb.add_scalar(name, value, int(step))
        self._jsonl.write(json.dumps(record) + "\n")

    def flush(self) -> None:
        self._jsonl.flush()
        self._tb.flush()

    def close(self) -> None:
        self.flush()
        self._jsonl.close()
        self._tb.close()


def read_metrics(workdir: str) -> list[dict[str, object]]:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]
