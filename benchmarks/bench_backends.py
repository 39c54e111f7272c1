"""The members networks' forward and backward pass under Keras backends, at the paper's presets.

For each preset (default: wine, absenteeism, adult) and block, a fresh Python process per
backend (default: tensorflow and jax, those installed) builds ONE shard of the engine
(the cell's first 50 members, with their h values, at the preset's depth, width and batch
size) and times its forward and backward pass, ``Model.stateless_call`` and the
gradient of the summed cross-entropy, compiled as each backend compiles a step
(TensorFlow: ``tf.function`` with TensorFlow's kernels and Grappler off, as the engine
runs it; JAX: ``jax.jit``, one XLA program). Every process is pinned to one core with
one thread, as the engine runs a shard on a CPU. It prints the set-up (build, trace,
compile: the first call) and the step, the best of 3 × 10 calls, and each backend's step
as a ratio to TensorFlow's. The optimiser update is not included (the engine compiles
it with XLA on either backend).

Backends run interleaved, ``--rounds`` times (the best of the rounds is reported), since
a shared machine's speed drifts between processes.

Run: ``python benchmarks/bench_backends.py [--datasets wine,adult] [--blocks residual,batchnorm]
[--backends tensorflow,jax] [--rounds 2]`` (JAX: ``pip install ".[backends]"``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

from bench_presets import PAPER_BLOCKS

SHARD_MEMBERS = 50
DEFAULT_DATASETS = ("wine", "absenteeism", "adult")


def preset_shape(dataset: str) -> tuple[int, int, int, list[float]]:
    """(depth, width, batch size, h of the cell's first SHARD_MEMBERS members) of a preset."""
    from resnet_stability.sweep.experiment import resolve_spec

    spec = resolve_spec(dataset, {})
    return spec.depth, spec.width, spec.batch_size, [h for h, _ in spec.members()][:SHARD_MEMBERS]


def measure(dataset: str, block: str) -> dict:
    """Child process (its backend set by KERAS_BACKEND): set-up and step of one shard."""
    import timeit

    import numpy as np

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "tensorflow":
        import tensorflow as tf

        from resnet_stability.sweep.devices import configure_cpu_threads, skip_graph_rewrites

        configure_cpu_threads(cores=1)  # one op at a time, one thread each: one core
        skip_graph_rewrites()  # as the engine runs on a CPU
    import keras

    from resnet_stability.models import build_model

    depth, width, batch, h = preset_shape(dataset)
    started = time.perf_counter()
    model = build_model(width, 2, block=block, depth=depth, width=width, h=h, members=len(h),
                        seed=list(range(len(h))))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, SHARD_MEMBERS, width)).astype("float32")
    y = rng.integers(0, 2, size=(batch, SHARD_MEMBERS)).astype("int32")
    trainable = [np.asarray(v.value) for v in model.trainable_variables]
    state = [np.asarray(v.value) for v in model.non_trainable_variables]
    if backend == "tensorflow":
        @tf.function
        def forward_backward(trainable, state, x, y):
            with tf.GradientTape() as tape:
                tape.watch(trainable)
                probabilities, new_state = model.stateless_call(trainable, state, x, training=True)
                loss = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(y, probabilities))
            return loss, tape.gradient(loss, trainable), new_state

        args = ([tf.constant(v) for v in trainable], [tf.constant(v) for v in state], tf.constant(x), tf.constant(y))

        def call():
            return forward_backward(*args)[0].numpy()
    elif backend == "jax":
        import jax
        import jax.numpy as jnp

        def loss(trainable, state, x, y):
            probabilities, new_state = model.stateless_call(trainable, state, x, training=True)
            return jnp.sum(keras.losses.sparse_categorical_crossentropy(y, probabilities)), new_state

        forward_backward = jax.jit(jax.value_and_grad(loss, has_aux=True))
        args = ([jnp.asarray(v) for v in trainable], [jnp.asarray(v) for v in state], jnp.asarray(x), jnp.asarray(y))

        def call():
            return jax.block_until_ready(forward_backward(*args))
    else:
        raise SystemExit(f"unknown backend {backend!r}; allowed: tensorflow, jax")
    call()
    setup = time.perf_counter() - started
    step = min(timeit.repeat(call, number=10, repeat=3)) / 10
    return dict(backend=backend, block=block, setup=setup, step=step)


def run_child(backend: str, dataset: str, block: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    command = [sys.executable, __file__, "--child", json.dumps([dataset, block])]
    if hasattr(os, "sched_getaffinity") and sys.platform.startswith("linux"):
        command = ["taskset", "-c", str(min(os.sched_getaffinity(0)))] + command
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{backend} {dataset} {block} failed:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DEFAULT_DATASETS))
    parser.add_argument("--blocks", default=",".join(PAPER_BLOCKS))
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(measure(*json.loads(args.child))), flush=True)
        return

    backends = [b for b in args.backends.split(",") if b == "tensorflow" or importlib.util.find_spec(b)]
    if "tensorflow" not in backends:
        raise SystemExit("--backends must include tensorflow (the ratios are to it)")
    print(f"one {SHARD_MEMBERS}-member shard, one core; forward + backward; best of {args.rounds} interleaved rounds")
    print(f"{'dataset':12s} {'block':10s} {'depth×width×batch':>18s} " + " ".join(
        f"{b + ' set-up':>16s} {b + ' step':>16s}" for b in backends) + " " + " ".join(
        f"{b + '/tf':>9s}" for b in backends if b != "tensorflow"))
    for dataset in args.datasets.split(","):
        shape = preset_shape(dataset)[:3]
        for block in args.blocks.split(","):
            best = {}
            for _ in range(args.rounds):
                for backend in backends:
                    result = run_child(backend, dataset, block)
                    old = best.get(backend)
                    best[backend] = result if old is None or result["step"] < old["step"] else old
            cells = " ".join(f"{best[b]['setup']:15.1f}s {best[b]['step'] * 1e3:14.1f}ms" for b in backends)
            ratios = " ".join(f"{best[b]['step'] / best['tensorflow']['step']:8.2f}x" for b in backends
                              if b != "tensorflow")
            print(f"{dataset:12s} {block:10s} {'×'.join(map(str, shape)):>18s} {cells} {ratios}", flush=True)


if __name__ == "__main__":
    main()
