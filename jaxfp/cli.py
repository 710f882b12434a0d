"""The `jaxfp` command: thin parsing around data loading and `methods.X.train_and_evaluate`.

jaxfp data info PATH [--format F] [--json]
jaxfp data convert SRC DST --to comford [--format F] [--layout L] [--not-detected V]
jaxfp run CONFIG[:ARG] --workdir DIR [--config.key=value ...]
jaxfp report WORKDIR|RESULTS_FILE ... [--markdown]    or    jaxfp report --docs docs
jaxfp demo [--workdir DIR]
jaxfp datagen ...           (runs `python -m datagen ...`; jaxfp never imports datagen)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxfp.config import ConfigError, check_output_folder, check_seeds
from jaxfp.data.types import DataFormatError
from jaxfp.eval.results import ResultsFileError, format_table

# User errors: one clear line and exit 2. Anything else is a bug and keeps its traceback.
USER_ERRORS = (ConfigError, DataFormatError, FileNotFoundError, ResultsFileError)


def _csi_info(path: str) -> int:
    from jaxfp.data.csi_store import CsiDataset

    data = CsiDataset(path, require_complete=False)
    sectors = {
        int(s): int(n) for s, n in zip(*np.unique(data.sector, return_counts=True), strict=True)
    }
    print(
        f"{path}  (format: jaxfp-csi, {data.header['num_receivers']} receivers planned, "
        f"{len(data)} on disk)\n"
        f"CSI {data.csi_shape} complex64; LoS {data.los.mean():.1%}; receivers per sector {sectors}; "
        f"mean paths {data.num_paths.mean():.2f}; without a path {int((data.num_paths == 0).sum())}"
    )
    return 0


def _data_info(args: argparse.Namespace) -> int:
    from jaxfp.data.registry import detect_format, load

    if os.path.isfile(os.path.join(args.path, "dataset.json")):
        return _csi_info(args.path)

    fmt = detect_format(args.path) if args.format == "auto" else args.format
    parts = load(args.path, fmt)
    summaries = {name: fs.summary() for name, fs in parts.items()}
    outliers = _floor_outliers(parts)
    if args.json:
        payload = {"path": args.path, "format": fmt, "parts": summaries}
        print(json.dumps({**payload, "floor_outliers": outliers}, indent=2))
        return 0
    print(f"{args.path}  (format: {fmt}, {len(parts)} part{'s' * (len(parts) != 1)})")
    columns = [
        "samples",
        "aps",
        "aps_ever_detected",
        "reference_points",
        "detected_per_sample_mean",
    ]
    columns += ["rss_dbm_min", "rss_dbm_max", "floors", "buildings"]
    rows = {name: {c: s.get(c) for c in columns} for name, s in summaries.items()}
    print(format_table(rows, columns))
    total = sum(s["samples"] for s in summaries.values())
    print(f"total samples: {total}")
    _print_floor_outliers(outliers)
    return 0


def _data_convert(args: argparse.Namespace) -> int:
    from jaxfp.data.comford_write import write_comford
    from jaxfp.data.registry import detect_format, load

    if os.path.lexists(args.dst):
        raise ConfigError(
            f"{args.dst}: exists; expected a new folder or .zip (nothing is overwritten)"
        )
    check_output_folder(os.path.dirname(os.path.abspath(args.dst)), "DST's folder")
    fmt = detect_format(args.src) if args.format == "auto" else args.format
    parts = load(args.src, fmt)
    layouts = ("intermediate", "ml") if args.layout == "both" else (args.layout,)
    write_comford(parts, args.dst, layouts, args.not_detected)
    counts = ", ".join(f"{name} {fs.n}" for name, fs in parts.items())
    print(f"{args.src} ({fmt}: {counts}) -> {args.dst} (comford, {' + '.join(layouts)})")
    return 0


def _floor_outliers(parts: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """{part: its floor-outlier places} for the parts that have any (`floor_outlier_places`)."""
    from jaxfp.data.longterm import floor_outlier_places

    found = {name: floor_outlier_places(fs) for name, fs in parts.items()}
    return {name: places for name, places in found.items() if places}


def _print_floor_outliers(outliers: dict[str, list[dict[str, Any]]]) -> None:
    if not outliers:
        print("floor outliers: none (no floor held by a single x, y that other floors share)")
        return
    print("floor outliers (a floor held by a single x, y that other floors share):")
    for name, places in outliers.items():
        for p in places:
            print(
                f"  {name}: {p['scans']} scans at ({p['x']:.2f}, {p['y']:.2f}) floor {p['floor']} "
                f"(building {p['building']}); other scans there: floors {p['other_floors_here']}"
            )


def _run(config_spec: str, workdir: str, overrides: Sequence[str]) -> int:
    from jaxfp.config import apply_overrides, load_config
    from jaxfp.methods import get_method
    from jaxfp.train.compile_cache import use_compilation_cache
    from jaxfp.train.distributed import maybe_initialize_distributed

    use_compilation_cache()  # before anything compiles: JAX reads the setting at the first compile
    check_output_folder(workdir, "--workdir")
    config = apply_overrides(load_config(config_spec), overrides)
    check_run_config(config)
    maybe_initialize_distributed()
    method = get_method(config.method)
    print(f"jaxfp run {config_spec} {' '.join(overrides)} --workdir {workdir}".strip(), flush=True)
    method(config, workdir)
    print(f"outputs in {os.path.abspath(workdir)}; tables again: jaxfp report {workdir}")
    return 0


def _report(paths: Sequence[str], markdown: bool, docs: str | None) -> int:
    from jaxfp.eval import docs_tables
    from jaxfp.eval.results import read_results, render

    if docs is not None:
        if not os.path.isdir(docs):
            raise FileNotFoundError(f"--docs {docs}: expected a folder of markdown documents")
        changed = docs_tables.update(docs_tables.markdown_files(docs))
        print(f"results blocks rewritten in {len(changed)} document(s): {' '.join(changed)}")
        return 0
    if not paths:
        raise ConfigError("jaxfp report: give a workdir or results file, or --docs FOLDER")
    print("\n\n".join(render(read_results(p), markdown=markdown) for p in paths))
    return 0


# Fields that must be positive wherever a config holds them.
POSITIVE_FIELDS = ("batch_size", "learning_rate", "num_steps", "num_epochs")


def check_run_config(config: Any) -> None:
    """Checks of what every method's config shares, wherever in the config it sits: seeds (a
    non-empty tuple of distinct non-negative integers), and positive step counts, batch sizes and
    learning rates (a method checks its own fields on top)."""

    def walk(node: Any, prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}{key}"
            if hasattr(value, "items"):
                walk(value, f"{name}.")
            elif key == "seeds":
                check_seeds(value, name)
            elif key in POSITIVE_FIELDS and isinstance(value, int | float) and not value > 0:
                raise ConfigError(f"config.{name}: expected > 0, got {value!r}")

    walk(config, "")


def _demo_config() -> str:
    candidates = [
        os.path.join(os.getcwd(), "experiments", "demo.py"),
        os.path.join(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments", "demo.py"
        ),
    ]
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise ConfigError("experiments/demo.py not found; run `jaxfp demo` from the jaxfp checkout")


def _demo_datagen(out: str) -> int:
    """Ray-trace the small etoile set (datagen's test size) and summarise it, if datagen is installed."""
    import importlib.util

    if importlib.util.find_spec("sionna") is None:
        print("datagen skipped: sionna-rt is not installed (pip install -e '.[datagen]')")
        return 0
    config = os.path.join(os.path.dirname(_demo_config()), "..", "datagen", "config.py")
    code = subprocess.call(
        [sys.executable, "-m", "datagen", "generate", "--out", out, "--quiet"]
        + ["--config", os.path.normpath(config) + ":test"]
    )
    if code:
        return code
    from jaxfp.data.csi_store import CsiDataset

    data = CsiDataset(out)
    print(
        f"CSI set {out}: {len(data)} receivers, CSI {data.csi_shape} complex64, "
        f"LoS {data.los.mean():.0%}, sectors {sorted(set(data.sector.tolist()))}, "
        f"mean paths {data.num_paths.mean():.1f}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxfp", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="inspect and convert data sets").add_subparsers(
        dest="data_command", required=True
    )
    info = data.add_parser("info", help="load, validate and summarise a data set")
    info.add_argument("path")
    info.add_argument("--format", default="auto")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    convert = data.add_parser("convert", help="write a data set in another format, atomically")
    convert.add_argument("src")
    convert.add_argument("dst", help="a new folder, or a path ending in .zip")
    convert.add_argument("--to", required=True, choices=["comford"])
    convert.add_argument("--format", default="auto", help="the source's format")
    convert.add_argument(
        "--layout",
        choices=["both", "intermediate", "ml"],
        default="both",
        help="COMFORD's intermediate files (every field), its ML-ready files, or both",
    )
    convert.add_argument(
        "--not-detected",
        type=float,
        default=-120.0,
        help="the ML-ready files' value for an AP not heard (default -120, COMFORD's)",
    )
    run = sub.add_parser("run", help="run an experiment config; --config.key=value overrides")
    run.add_argument("config", help="path to a config file, optionally CONFIG:ARG")
    run.add_argument("--workdir", required=True)
    report = sub.add_parser("report", help="print the tables of finished runs or results files")
    report.add_argument("paths", nargs="*", help="workdirs or results files (e.g. docs/results/*)")
    report.add_argument("--markdown", action="store_true", help="markdown tables (as in docs/)")
    report.add_argument(
        "--docs", metavar="FOLDER", help="rewrite the results blocks of FOLDER's markdown files"
    )
    demo = sub.add_parser("demo", help="kNN/WkNN and an MLP's seeds on the shipped DSI1 set")
    demo.add_argument("--workdir", default=os.path.join("runs", "demo"))
    sub.add_parser("datagen", help="ray-trace a CSI data set (python -m datagen --help)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["datagen"]:
        return subprocess.call([sys.executable, "-m", "datagen", *argv[1:]])
    overrides = [a for a in argv if a.startswith("--config.")]
    args = build_parser().parse_args([a for a in argv if not a.startswith("--config.")])
    try:
        if args.command == "data":
            return _data_convert(args) if args.data_command == "convert" else _data_info(args)
        if args.command == "run":
            return _run(args.config, args.workdir, overrides)
        if args.command == "report":
            return _report(args.paths, args.markdown, args.docs)
        code = _run(_demo_config(), args.workdir, overrides)
        return code or _demo_datagen(os.path.join(args.workdir, "etoile_small"))
    except USER_ERRORS as err:
        print(f"jaxfp: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
