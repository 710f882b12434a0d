#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine (Python >= 3.11, root): venv, install, lint, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# Dr.Jit's CPU backend (Sionna RT, used by the datagen tests) needs Debian's LLVM 19.
if [ ! -e /usr/lib/x86_64-linux-gnu/libLLVM.so.19.1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq libllvm19
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[dev,datagen]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/pytest -n 2 "$@"
