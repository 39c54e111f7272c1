#!/bin/bash
# Issue 10, part 4: the whole UCI reproduction (5 presets × 3 blocks × 100 networks, the
# paper's epochs) on a lent GPU, every cell in its own process, all at once
# (--executor processes: a cell leaves the GPU mostly idle, and compiling takes one host
# core), against the target of 10 minutes on one H100.
#
# Here first, as for check_jax_gpu.sh: bash benchmarks/gpu/fetch_wheels.sh and
# KERAS_BACKEND=tensorflow python tests/engine_probe.py .whl/tensorflow_numbers.npz.
# There: device run, command "bash benchmarks/gpu/reproduction_gpu.sh", carry [".whl"],
# timeout_s 600. Writes under $OUT: log.txt (each cell's line as it finishes, with the
# seconds since the sweep started), results.csv and summary.txt if the sweep finished,
# cells.tgz (the finished cells, which a later sweep resumes from) in any case.
# 1. the two checks of 2026-12-04's fixes, side by side (~80 s): the engine's cases
#    against TensorFlow's numbers, and a second run bit for bit (check_jax_gpu.sh, part 1);
# 2. the reproduction, stopped at $LIMIT seconds (default 470) if it has not finished.
# DEVICE=cpu LIMIT=60 SWEEP_ARGS='--dataset wine --quick' runs the same here, as a dry run.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} KERAS_BACKEND=jax PYTHONUNBUFFERED=1
if ! python3 -c "import keras" 2>/dev/null; then  # the GPU image: Keras from the carried wheels
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
DEVICE=${DEVICE:-gpu}
LIMIT=${LIMIT:-470}
SWEEP_ARGS=${SWEEP_ARGS:---dataset wine,abalone,absenteeism,autism,adult}
python3 -c "import jax, keras; print('jax', jax.__version__, 'keras', keras.__version__, jax.devices())" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null

echo "== 1. the engine's cases against TensorFlow's numbers, and a second run ($(date +%T))"
XLA_PYTHON_CLIENT_PREALLOCATE=false timeout 200 python3 tests/engine_probe.py /tmp/jax_numbers.npz \
  --compare .whl/tensorflow_numbers.npz > /tmp/probe1.log 2>&1 &
first=$!
XLA_PYTHON_CLIENT_PREALLOCATE=false timeout 200 python3 tests/engine_probe.py /tmp/jax_numbers_again.npz > /tmp/probe2.log 2>&1
wait $first  # (a plain wait would also wait for the tee behind this script's output)
grep -E "^(device|[a-z0-9-]+: DIFFERENT)|cases the same|Max|Error" /tmp/probe1.log
python3 -c "
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
differ = [k for k in a.files if not np.array_equal(a[k], b[k], equal_nan=True)]
print(f'{len(a.files) - len(differ)} of {len(a.files)} arrays identical in a second run', differ[:20])
" /tmp/jax_numbers.npz /tmp/jax_numbers_again.npz || tail -5 /tmp/probe2.log

echo "== 2. the reproduction, every cell in its own process ($(date +%T)): $SWEEP_ARGS"
start=$SECONDS
timeout --signal=INT -k 30 "$LIMIT" python3 -m resnet_stability.sweep $SWEEP_ARGS --device "$DEVICE" \
  --executor processes --out /tmp/uci 2>&1 | while IFS= read -r line; do echo "[$((SECONDS - start)) s] $line"; done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv 2>/dev/null
cp /tmp/uci/results.csv /tmp/uci/summary.txt "$OUT/" 2>/dev/null
tar czf "$OUT/cells.tgz" -C /tmp/uci cells 2>/dev/null
echo "== done ($(date +%T))"
