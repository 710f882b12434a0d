#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine (Python >= 3.11, root): venv, install, lint, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[dev]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/pytest -n 2 "$@"
