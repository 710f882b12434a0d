#!/usr/bin/env bash
# Wheels of the packages jaxfp needs that the GPU machine's image lacks (docs/performance.md), for
# its Python 3.12, into scripts/device_wheels/ (git-ignored): run this where pip reaches PyPI, then
# carry that folder to the GPU machine, where scripts/device_check.sh installs them with no network.
# The versions are the ones this project's tests run with; their own needs (absl-py, PyYAML,
# protobuf, packaging, numpy, jax) are on that image already.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-scripts/device_wheels}"
python="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
mkdir -p "$dest"
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d "$dest" \
  jraph==0.0.6.dev0 ml-collections==1.1.0 tensorboardX==2.6.5
ls -l "$dest"
