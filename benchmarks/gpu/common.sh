# Sourced by the scripts beside it (check_jax_gpu.sh, reproduction_gpu.sh): what both do
# on the lent GPU machine before their own parts. Needs OUT set.
set -uo pipefail
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} KERAS_BACKEND=jax PYTHONUNBUFFERED=1
if ! python3 -c "import keras" 2>/dev/null; then  # the GPU image: Keras from the carried wheels
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
python3 -c "import jax, keras; print('jax', jax.__version__, 'keras', keras.__version__, jax.devices())" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>/dev/null

# The engine's cases (tests/engine_probe.py) against TensorFlow's numbers, and a second
# run bit for bit; the two runs side by side, without JAX's memory preallocation.
check_engine_numbers() {
  XLA_PYTHON_CLIENT_PREALLOCATE=false timeout 200 python3 tests/engine_probe.py /tmp/jax_numbers.npz \
    --compare .whl/tensorflow_numbers.npz > /tmp/probe1.log 2>&1 &
  local first=$!
  XLA_PYTHON_CLIENT_PREALLOCATE=false timeout 200 python3 tests/engine_probe.py /tmp/jax_numbers_again.npz > /tmp/probe2.log 2>&1
  wait $first  # (a plain wait would also wait for the tee behind the script's output)
  grep -E "^(device|[a-z0-9-]+: DIFFERENT)|cases the same|Max|Error" /tmp/probe1.log
  python3 -c "
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
differ = [k for k in a.files if not np.array_equal(a[k], b[k], equal_nan=True)]
print(f'{len(a.files) - len(differ)} of {len(a.files)} arrays identical in a second run', differ[:20])
" /tmp/jax_numbers.npz /tmp/jax_numbers_again.npz || tail -5 /tmp/probe2.log
}
