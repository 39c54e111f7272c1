#!/bin/bash
# Wheels the lent GPU machine lacks, for the JAX engine (benchmarks/gpu/check_jax_gpu.sh).
#
# That machine (an H200 image with CUDA 13, JAX, PyTorch, pandas, scikit-learn and
# matplotlib, Python 3.12, no network) has no Keras: Keras and the two of its
# dependencies the image lacks (namex, optree) travel as wheels, ~3 MB, in .whl/
# (ignored by git; name it in the device tool's `carry`). Run here, with network.
set -euo pipefail
cd "$(dirname "$0")/../.."
KERAS=$(python3 -c "import keras; print(keras.__version__)" 2>/dev/null || echo 3.15.1)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl "keras==$KERAS" namex optree
ls -la .whl
