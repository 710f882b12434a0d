"""`python -m datagen` (also `jaxfp datagen`): generate, combine and verify CSI data sets.

python -m datagen generate --out DIR [--shard i/N] [--config FILE[:ARG]] [--config.key=value ...]
python -m datagen combine --out DIR PART [PART ...]
python -m datagen verify DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.py")


def main(argv: Sequence[str] | None = None) -> int:
    from jaxfp.config import check_output_folder
    from jaxfp.data.types import DataFormatError

    argv = list(sys.argv[1:] if argv is None else argv)
    overrides = [a for a in argv if a.startswith("--config.")]
    parser = argparse.ArgumentParser(prog="datagen", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="ray-trace (a shard of) the data set into --out")
    gen.add_argument("--out", required=True)
    gen.add_argument(
        "--shard", default="0/1", help="i/N: this process makes chunks c with c %% N == i"
    )
    gen.add_argument("--config", default=DEFAULT_CONFIG, help="config file, optionally FILE:ARG")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    comb = sub.add_parser("combine", help="one data set from parts made elsewhere (no copy)")
    comb.add_argument("--out", required=True)
    comb.add_argument("parts", nargs="+")
    ver = sub.add_parser("verify", help="check every chunk's checksums and completeness")
    ver.add_argument("root")
    args = parser.parse_args([a for a in argv if not a.startswith("--config.")])
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        if args.command == "generate":
            from datagen.config import check
            from datagen.generate import generate, parse_shard
            from jaxfp.config import apply_overrides, load_config

            shard = parse_shard(args.shard)
            check_output_folder(args.out, "--out")
            config = apply_overrides(load_config(args.config), overrides)
            check(config)
            summary = generate(config, args.out, shard, progress=not args.quiet)
            print(json.dumps(summary, indent=1))
        elif args.command == "combine":
            from jaxfp.data.csi_store import CsiDataset, combine

            check_output_folder(args.out, "--out")
            combine(args.out, args.parts)
            print(f"{args.out}: {len(CsiDataset(args.out))} receivers from {len(args.parts)} parts")
        else:
            from jaxfp.data.csi_store import CsiDataset

            dataset = CsiDataset(args.root)
            dataset.verify()
            print(f"{args.root}: {len(dataset)} receivers, all chunks complete and intact")
    except (DataFormatError, FileNotFoundError, KeyError, ValueError) as err:
        print(f"datagen: error: {err}", file=sys.stderr)
        return 2
    return 0
