#!/usr/bin/env bash
# The main job on a fresh Debian machine (Python >= 3.11, root): venv, install, run the demo into runs/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh datagen
.venv/bin/jaxfp demo --workdir runs/demo "$@"
