#!/bin/bash
# Issue 10, part 4, on a lent GPU machine with JAX (CUDA) but no TensorFlow.
#
# Here first: bash benchmarks/gpu/fetch_wheels.sh, and the TensorFlow engine's numbers
# for the engine test's cases: KERAS_BACKEND=tensorflow python tests/engine_probe.py
# .whl/tensorflow_numbers.npz (the .whl folder travels; ~100 kB more).
# There: device run, command "bash benchmarks/gpu/check_jax_gpu.sh", carry [".whl"].
# Writes under $OUT: the JAX engine's numbers on the GPU compared with TensorFlow's
# (tests/engine_probe.py --compare), whether a second run gives the same numbers bit for
# bit (XLA on GPUs may reduce with atomics), the README's main job (Wine, 300 networks) on the
# GPU, and bench_presets.py --device gpu (the five presets, JSON in $OUT).
# DEVICE=cpu BENCH_ARGS='--datasets wine --blocks residual' runs the same here, as a dry run.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1
if ! python3 -c "import keras" 2>/dev/null; then  # the GPU image: Keras from the carried wheels
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
python3 -c "import jax, keras; print('jax', jax.__version__, 'keras', keras.__version__, jax.devices())" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
echo "== the engine's cases on the GPU against TensorFlow's numbers"
python3 tests/engine_probe.py "$OUT/jax_gpu_numbers.npz" --compare .whl/tensorflow_numbers.npz 2>&1 | tail -20
echo "== determinism: the same cases again, every number bit for bit"
python3 tests/engine_probe.py "$OUT/jax_gpu_numbers_again.npz" > /dev/null 2>&1
python3 -c "
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
same = [k for k in a.files if np.array_equal(a[k], b[k], equal_nan=True)]
print(f'{len(same)} of {len(a.files)} arrays identical in a second run')
" "$OUT/jax_gpu_numbers.npz" "$OUT/jax_gpu_numbers_again.npz"
echo "== the README's main job on the GPU"
python3 -m resnet_stability.sweep --dataset wine --device "${DEVICE:-gpu}" --out "$OUT/wine" 2>&1 | grep -v "epoch [0-9]" | tail -12
echo "== bench_presets.py --device gpu"
python3 benchmarks/bench_presets.py --device "${DEVICE:-gpu}" --json "$OUT/presets_gpu.json" ${BENCH_ARGS:-}
