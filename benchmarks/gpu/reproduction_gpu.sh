#!/bin/bash
# Issue 10, part 4: the whole UCI reproduction (5 presets × 3 blocks × 100 networks, the
# paper's epochs) on a lent GPU, each dataset's three cells as one members step
# (--blocks-together) and the five datasets in their own processes, all at once
# (--executor processes): a cell leaves the GPU mostly idle, and compiling takes one host
# core. Against the target of 10 minutes on one H100.
#
# Here first, as for check_jax_gpu.sh: bash benchmarks/gpu/fetch_wheels.sh and
# KERAS_BACKEND=tensorflow python tests/engine_probe.py .whl/tensorflow_numbers.npz.
# There: device run, command "bash benchmarks/gpu/reproduction_gpu.sh", carry [".whl"],
# timeout_s 600. Writes under $OUT: log.txt (each cell's line as it finishes, with the
# seconds since the sweep started), results.csv and summary.txt if the sweep finished,
# cells.tgz (the finished cells, which a later sweep resumes from) in any case.
# 1. the two checks of 2026-12-04's fixes, side by side (~80 s): the engine's cases
#    against TensorFlow's numbers, and a second run bit for bit (check_jax_gpu.sh, part 1);
# 2. the reproduction, stopped at $LIMIT seconds (default 470) if it has not finished;
#    an earlier lease's cells.tgz, copied here to .whl/cells.tgz (it travels with the
#    wheels), is resumed from: its cells are skipped, the others trained.
# DEVICE=cpu LIMIT=60 SWEEP_ARGS='--dataset wine --quick' runs the same here, as a dry run.
OUT=${OUT:-/tmp/out}
source "$(dirname "$0")/common.sh"
DEVICE=${DEVICE:-gpu}
LIMIT=${LIMIT:-470}
SWEEP_ARGS=${SWEEP_ARGS:---dataset wine,abalone,absenteeism,autism,adult}
EXTRA=${EXTRA---blocks-together}  # each dataset's three cells as one step; EXTRA= for one process per cell

echo "== 1. the engine's cases against TensorFlow's numbers, and a second run ($(date +%T))"
check_engine_numbers

echo "== 2. the reproduction, in processes ($(date +%T)): $SWEEP_ARGS"
if [ -f .whl/cells.tgz ]; then mkdir -p /tmp/uci && tar xzf .whl/cells.tgz -C /tmp/uci && echo "resuming: $(ls /tmp/uci/cells/*.done.json | wc -l) cells done"; fi
start=$SECONDS
timeout --signal=INT -k 30 "$LIMIT" python3 -m resnet_stability.sweep $SWEEP_ARGS --device "$DEVICE" \
  --executor processes $EXTRA --out /tmp/uci 2>&1 | while IFS= read -r line; do echo "[$((SECONDS - start)) s] $line"; done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv 2>/dev/null
cp /tmp/uci/results.csv /tmp/uci/summary.txt "$OUT/" 2>/dev/null
tar czf "$OUT/cells.tgz" -C /tmp/uci cells 2>/dev/null
echo "== done ($(date +%T))"
