#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine (Python >= 3.11, root): venv, install, lint, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh dev,datagen
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/pytest -n 2 "$@"
