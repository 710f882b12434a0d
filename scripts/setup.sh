#!/usr/bin/env bash
# Shared by demo.sh and test.sh: system library, virtual environment, jaxfp with the given extras.
# Usage: source scripts/setup.sh EXTRAS   (e.g. "datagen" or "dev,datagen")
set -euo pipefail
# Dr.Jit's CPU backend (Sionna RT, used by datagen) needs Debian's LLVM 19; the preinstalled 15 aborts.
if [ ! -e /usr/lib/x86_64-linux-gnu/libLLVM.so.19.1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq libllvm19
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e ".[$1]"
