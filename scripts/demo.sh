#!/usr/bin/env bash
# The main job on a fresh Debian machine (Python >= 3.11): venv, install, run the demo into runs/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
# Dr.Jit's CPU backend (Sionna RT, for the small ray-traced set) needs Debian's LLVM 19.
if [ ! -e /usr/lib/x86_64-linux-gnu/libLLVM.so.19.1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq libllvm19
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[datagen]'
.venv/bin/jaxfp demo --workdir runs/demo "$@"
