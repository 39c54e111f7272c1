#!/bin/bash
# Issue 10, part 4, on a lent GPU machine with JAX (CUDA) but no TensorFlow.
#
# Here first: bash benchmarks/gpu/fetch_wheels.sh, and the TensorFlow engine's numbers
# for the engine test's cases: KERAS_BACKEND=tensorflow python tests/engine_probe.py
# .whl/tensorflow_numbers.npz (the .whl folder travels; ~100 kB more).
# There: device run, command "bash benchmarks/gpu/check_jax_gpu.sh", carry [".whl"],
# timeout_s 600 (a session has 15 minutes of device time, the machine's start included).
# Writes under $OUT, most important first, each part under its own time limit, so that a
# run stopped at its limit still brings back what it finished (log.txt holds everything):
# 1. the JAX engine's numbers on the GPU compared with TensorFlow's (tests/engine_probe.py
#    --compare) and a second run's, bit for bit (the two runs side by side, without
#    JAX's memory preallocation; timings are not taken then);
# 2. bench_presets.py --device gpu $FIRST (default: Adult's batch-norm and shrinkage
#    cells; its residual one was measured on 2026-12-04; Adult is ~60 % of the GPU
#    estimate) -> presets_gpu_first.json;
# 3. bench_stacked_cells.py $STACKED: the three blocks' cells of a dataset stepped as one
#    program against each alone (more members per compiled step);
# 4. bench_presets.py --device gpu $REST (default: every cell of the other four presets)
#    -> presets_gpu_rest.json;
# 5. the README's main job (Wine, 300 networks), if time is left.
# Measured on 2026-12-04 (H200, benchmarks/gpu/h200_2026-12-04.log): part 1 took 140 s
# one run after the other, a depth-100 cell 50-90 s in bench_presets, the Wine main job
# 75 s. DEVICE=cpu FIRST='--datasets wine --blocks residual' STACKED='--dataset wine'
# REST=... runs the same here, as a dry run.
OUT=${OUT:-/tmp/out}
source "$(dirname "$0")/common.sh"
DEVICE=${DEVICE:-gpu}
FIRST=${FIRST:---datasets adult --blocks batchnorm,shrinkage}
STACKED=${STACKED:---dataset adult}
REST=${REST:---datasets wine,abalone,absenteeism,autism}
part() { echo "== $1 ($(date +%T), ${SECONDS}s in)"; }

part "1. the engine's cases on the $DEVICE against TensorFlow's numbers, and a second run"
check_engine_numbers

part "2. bench_presets.py --device $DEVICE $FIRST"
timeout 200 python3 benchmarks/bench_presets.py --device "$DEVICE" $FIRST --json "$OUT/presets_gpu_first.json"

part "3. the blocks of a dataset stepped as one program: bench_stacked_cells.py $STACKED"
timeout 240 python3 benchmarks/bench_stacked_cells.py --device "$DEVICE" $STACKED

part "4. bench_presets.py --device $DEVICE $REST"
timeout 400 python3 benchmarks/bench_presets.py --device "$DEVICE" $REST --json "$OUT/presets_gpu_rest.json"

part "5. the README's main job on the $DEVICE"
timeout 100 python3 -m resnet_stability.sweep --dataset wine --device "$DEVICE" --out /tmp/wine 2>&1 | grep -v "epoch [0-9]" | tail -12
part "done"
