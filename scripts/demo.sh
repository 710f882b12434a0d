#!/usr/bin/env bash
# The main job on a fresh Debian machine (Python >= 3.11): venv, install, run the demo into runs/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e .
.venv/bin/jaxfp demo --workdir runs/demo "$@"
