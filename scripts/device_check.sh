#!/usr/bin/env bash
# jaxfp on a GPU machine, in at most ~8 minutes: every method's :test config through `jaxfp run`,
# the ensemble's members over the real devices (experiments/bench/ensemble.py), and the main cases
# of experiments/bench/versus_pytorch.py with PyTorch on CUDA. Writes one JSON,
# OUT_DIR/device_check.json (OUT_DIR: --out, else $OUT, else runs/device_check). docs/performance.md.
#
#   bash scripts/device_check.sh [--out DIR] [--budget SECONDS]      # on the GPU machine
#   JAX_PLATFORMS=cpu bash scripts/device_check.sh --dry-run          # anywhere: tiny steps
#
# Packages the GPU image lacks (jraph, ml_collections, tensorboardX) install from the wheels in
# scripts/device_wheels/ (scripts/fetch_device_wheels.sh fetches them); jaxfp runs from this
# checkout. PYTHON picks the interpreter (default: .venv/bin/python if present, else python3).
set -uo pipefail
cd "$(dirname "$0")/.."

dry_run=0
out_dir="${OUT:-runs/device_check}"
budget=450 # seconds of steps; installing and writing the JSON come on top
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --out) out_dir="$2"; shift ;;
    --budget) budget="$2"; shift ;;
    *) echo "device_check.sh: unknown argument $1 (expected --dry-run, --out DIR, --budget S)" >&2; exit 2 ;;
  esac
  shift
done

if [ -n "${PYTHON:-}" ]; then py="$PYTHON"; elif [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
wheels="${JAXFP_DEVICE_WHEELS:-scripts/device_wheels}"
if ! "$py" -c "import jraph, ml_collections, tensorboardX" 2>/dev/null; then
  if ! ls "$wheels"/*.whl >/dev/null 2>&1; then
    echo "device_check.sh: jraph, ml_collections or tensorboardX missing and no wheels in $wheels" \
      "(run scripts/fetch_device_wheels.sh where pip reaches PyPI, and carry that folder)" >&2
    exit 2
  fi
  site="${TMPDIR:-/tmp}/jaxfp_device_site"
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" "$wheels"/*.whl || exit 2
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" # jaxfp from this checkout
export PYTHONUNBUFFERED=1

exec "$py" - "$out_dir" "$dry_run" "$budget" <<'PY'
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

out_dir, dry, budget = sys.argv[1], sys.argv[2] == "1", float(sys.argv[3])
py = sys.executable
start = time.monotonic()
work = tempfile.mkdtemp(prefix="jaxfp_device_check_")
report: dict = {"dry_run": dry, "budget_s": budget, "steps": {}}
# Share of the budget each phase may use; time an earlier phase leaves over goes to the later ones.
PHASES = {"info": 0.08, "methods": 0.45, "ensemble": 0.12, "versus_pytorch": 0.35}
SPECS = [  # one :test config per method (the CSI ones on a small synthetic CSI store)
    "experiments/baselines/knn_uji1.py:test",
    "experiments/baselines/mlp_dsi1.py:test",
    "experiments/comgan/completion.py:test",
    "experiments/csi/table1.py:test",
    "experiments/csi/few_labels.py:test",
    "experiments/fpn/drift.py:test",
    "experiments/gufu/longterm.py:test",
    "experiments/itoloc/devices.py:test",
]
VERSUS = [
    "resnet18", "resnet50", "mobilenet_v2", "shufflenet_v2", "itoloc", "fpn", "fpn_flax_lstm", "comgan"
]
VERSUS += ["ensemble"]
TORCH_WORKER = r"""
import json, statistics, sys, time
sys.path.insert(0, "experiments/bench")
import torch
torch.set_default_device("cuda")
torch.set_float32_matmul_precision("high")  # TF32, as XLA's default precision on such a GPU
from versus_pytorch import torch_case
case, side, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
step, samples = torch_case(case, side, torch.get_num_threads())
def timed():
    torch.cuda.synchronize(); t = time.perf_counter(); step(); torch.cuda.synchronize()
    return time.perf_counter() - t
for _ in range(2):
    timed()
print(json.dumps({"seconds": statistics.median(timed() for _ in range(steps)), "samples": samples}))
"""
INFO = r"""
import json, shutil, subprocess
from jaxfp.eval.bench import machine_info
info = machine_info()
try:
    import torch
    info["torch"] = torch.__version__
    info["torch_cuda"] = torch.cuda.is_available()
    if info["torch_cuda"]:
        info["torch_device"] = torch.cuda.get_device_name(0)
except ImportError:
    info["torch"] = None
    info["torch_cuda"] = False
if shutil.which("nvidia-smi"):
    query = ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]
    info["nvidia_smi"] = subprocess.run(query, capture_output=True, text=True).stdout.strip()
print(json.dumps(info))
"""


def phase_end(name: str) -> float:
    names = list(PHASES)
    return start + budget * sum(PHASES[n] for n in names[: names.index(name) + 1])


def step(name: str, command: list[str], phase: str, cap: float, env: dict | None = None) -> dict:
    """Run one command within its phase's time; its record goes into the report."""
    left = min(cap, phase_end(phase) - time.monotonic())
    if left < 5:
        record = {"status": "skipped", "why": "the time budget is spent"}
    else:
        began = time.monotonic()
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=left, stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
            )
            record = {"status": "ok" if done.returncode == 0 else "failed", "rc": done.returncode}
            record["seconds"] = round(time.monotonic() - began, 2)
            if done.returncode == 0:
                lines = done.stdout.strip().splitlines()
                record["last_line"] = lines[-1] if lines else ""
            else:
                record["stderr_tail"] = done.stderr[-3000:]
        except subprocess.TimeoutExpired:
            record = {"status": "timeout", "seconds": round(time.monotonic() - began, 2)}
    report["steps"][name] = record
    print(f"[{time.monotonic() - start:6.1f} s] {name}: {record['status']} "
          f"{record.get('seconds', '')}", flush=True)
    return record


def last_json(record: dict) -> dict | None:
    try:
        return json.loads(record.get("last_line", ""))
    except ValueError:
        return None


# -------------------------------------------------------------------------------- the machine
info = step("info", [py, "-c", INFO], "info", 60)
report["machine"] = last_json(info)
cuda_torch = bool(report["machine"] and report["machine"].get("torch_cuda"))

# ------------------------------------------------------------ every method's :test config
store = os.path.join(work, "csi_store")
step("csi_store", [py, "-c", "from tests.conftest import write_synthetic_csi_store as w;"
     f" w({store!r})"], "methods", 60)
loads = "from jaxfp.config import load_config\n" + "".join(f"load_config({s!r})\n" for s in SPECS)
step("configs_load", [py, "-c", loads], "methods", 60)


def run_spec(spec: str) -> None:
    name = spec.split("/", 1)[1].replace(".py:", ":")
    workdir = os.path.join(work, name.replace("/", "_").replace(":", "_"))
    extra = [f"--config.data.path={store}"] if "/csi/" in spec else []
    # A quarter of the GPU's memory each, so that three runs share it (JAX takes 75% by default).
    record = step(name, [py, "-m", "jaxfp.cli", "run", spec, "--workdir", workdir, *extra],
                  "methods", 150, {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.25"})
    results_file = os.path.join(workdir, "results.json")
    if record["status"] == "ok" and os.path.exists(results_file):
        with open(results_file) as f:
            rows = json.load(f).get("results", {})
        record["mean_error"] = {
            row: values["mean"] for row, values in rows.items()
            if isinstance(values, dict) and isinstance(values.get("mean"), int | float)
        }


# The runs are checks, not timings: three at a time (compilation is on the CPU, which has cores).
with ThreadPoolExecutor(1 if dry else 3) as pool:
    list(pool.map(run_spec, SPECS[:1] if dry else SPECS))
report["skipped_in_dry_run"] = SPECS[1:] if dry else []

# ------------------------------------------------------- the ensemble over the real devices
members, steps = ("2", "25") if dry else ("8", "200")
for mode in ["sharded"] if dry else ["one_by_one", "vmapped", "sharded"]:
    record = step(f"ensemble_{mode}", [py, "experiments/bench/ensemble.py", "--mode", mode,
                  "--members", members, "--steps", steps], "ensemble", 90)
    record["result"] = last_json(record)

# -------------------------------------------------- jaxfp against PyTorch on CUDA, main cases
rows = {}
bench_steps = "1" if dry else "10"
for case in ["ensemble"] if dry else VERSUS:
    jax_side = step(f"versus_{case}_jax", [py, "experiments/bench/versus_pytorch.py", "--worker",
                    "jax", "--case", case, "--steps", bench_steps, "--threads",
                    str(os.cpu_count())], "versus_pytorch", 90)
    row = {"jax_ms": None, "torch_ms": None}
    if last_json(jax_side):
        row["jax_ms"] = last_json(jax_side)["seconds"] * 1e3
    sides = ("torch", "torch_func") if case == "ensemble" else ("torch",)
    for side in sides:
        if not cuda_torch:
            report["steps"][f"versus_{case}_{side}"] = {"status": "skipped", "why": "no CUDA"}
            continue
        done = step(f"versus_{case}_{side}", [py, "-c", TORCH_WORKER, case, side, bench_steps],
                    "versus_pytorch", 90)
        if last_json(done):
            row[f"{side}_ms"] = last_json(done)["seconds"] * 1e3
    best = min((v for k, v in row.items() if k.startswith("torch") and v), default=None)
    row["time_vs_best_torch"] = row["jax_ms"] / best if row["jax_ms"] and best else None
    rows[case] = row
report["versus_pytorch"] = rows

# ------------------------------------------------------------------------------ the report
report["seconds"] = round(time.monotonic() - start, 1)
failed = sorted(k for k, v in report["steps"].items() if v["status"] in ("failed", "timeout"))
report["failed"] = failed
os.makedirs(out_dir, exist_ok=True)
path = os.path.join(out_dir, "device_check.json")
with open(path + ".tmp", "w") as f:
    json.dump(report, f, indent=2)
os.replace(path + ".tmp", path)
shutil.rmtree(work, ignore_errors=True)
for case, row in rows.items():
    print(f"{case:14s} " + "  ".join(f"{k} {v:.3g}" for k, v in row.items() if v is not None))
print(f"{path}: {len(report['steps'])} steps, failed: {failed or 'none'}, {report['seconds']} s")
sys.exit(1 if failed else 0)
PY
