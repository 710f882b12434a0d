#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine (Python >= 3.11, root): venv, install, lint, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh dev,datagen
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# worksteal: an idle worker takes queued tests from a busy one (a few tests take minutes);
# the slowest tests are listed so the suite's time can be watched
.venv/bin/pytest -n 2 --dist worksteal --durations=20 "$@"
