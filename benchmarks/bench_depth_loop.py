"""Would a loop over depth shorten a deep cell's set-up without slowing its step? A measurement.

Today a members model is ``depth`` block layers in a row, so the training step's graph
holds every block and its derivative: tracing it is most of a depth-100 cell's set-up
(``bench_presets.py``). The blocks share one structure, so the alternative is one block
in a ``tf.while_loop`` (``tf.foldl``) over weights stacked (depth, M, ...): a graph the
size of one block at any depth, its derivative a loop too (TensorFlow keeps each
iteration's intermediates in tensor lists).

For one 50-member shard at each deep preset's shape this script builds ``--depth``
residual and batch-norm blocks (``bench_layout.members_first_block``, the engine's
members-first arithmetic) both ways with the same weights, checks that they give the same
outputs and gradients, and prints per way the set-up (trace and first call of a fresh
``tf.function``, forward + backward) and the step (best of ``--rounds`` interleaved
rounds), one thread, Grappler off, as the engine runs a shard. Pure TensorFlow: nothing in
the package changes by running it.

    python benchmarks/bench_depth_loop.py [--depth 100] [--rounds 3] [--unroll 1]

``--unroll U`` puts U blocks in each iteration (depth / U iterations): a graph U blocks
large, and 1/U of the loop's per-iteration overhead.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench_layout import MEMBERS, interleaved_best, make_step, members_first_block, run_like_a_shard, shard_problem  # noqa: E402

SHAPES = {"adult": (100, 14), "absenteeism": (10, 19)}  # batch, width


def looped_step(kind, weights, h, unroll=1):
    """``unroll`` blocks in a loop over depth / ``unroll`` iterations, on the same weights
    stacked: weight i of the u-th block of every iteration as one (depth / unroll, M, ...)
    variable, so each iteration reads whole slices (no sub-slicing in the loop)."""
    k = len(weights[0])
    stacked = [tf.Variable(tf.stack([layer[i] for layer in weights[u::unroll]])) for u in range(unroll) for i in range(k)]

    def body(state, group):
        for u in range(unroll):
            state = members_first_block(kind, state, list(group[u * k : (u + 1) * k]), h)
        return state

    def step(y):
        with tf.GradientTape() as tape:
            state = tf.foldl(body, tuple(stacked), initializer=y, parallel_iterations=1)
            loss = tf.reduce_sum(tf.square(state))
        grads = tape.gradient(loss, stacked)  # [u * k + i]: (depth / unroll, ...) -> depth order
        return state, [tf.reshape(tf.stack([grads[u * k + i] for u in range(unroll)], axis=1),
                                  (len(weights), *weights[0][i].shape)) for i in range(k)]

    return tf.function(step, autograph=False), stacked


def first_call(step, y):
    started = time.perf_counter()
    step(y)[0].numpy()
    return time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--unroll", type=int, default=1, help="blocks per loop iteration (a divisor of --depth)")
    args = parser.parse_args(argv)
    run_like_a_shard()
    if args.depth % args.unroll:
        parser.error(f"--unroll {args.unroll} does not divide --depth {args.depth}")
    print(f"{MEMBERS} members, depth {args.depth}, forward + backward, 1 thread; step: best of {args.rounds} rounds; "
          f"loop: {args.unroll} block(s) per iteration")
    print(f"{'preset':12s} {'block':10s} {'set-up unrolled / loop':>24s} {'step unrolled / loop':>26s} {'ratio':>6s}")
    for preset, (batch, width) in SHAPES.items():
        for kind in ("residual", "batchnorm"):
            weights, h, y = shard_problem(kind, args.depth, batch, width)
            unrolled = make_step(members_first_block, kind, weights, h)  # today's graph: the blocks in a row
            looped, _ = looped_step(kind, weights, h, args.unroll)
            setup_unrolled, setup_looped = first_call(unrolled, y), first_call(looped, y)
            out_u, grads_u = unrolled(y)
            out_l, grads_l = looped(y)
            np.testing.assert_allclose(out_l, out_u, rtol=1e-5, atol=1e-5)
            for i, stacked_grad in enumerate(grads_l):  # the loop's gradient of weight i, every depth
                per_layer = tf.stack(grads_u[i :: len(weights[0])])
                np.testing.assert_allclose(stacked_grad, per_layer, rtol=1e-4, atol=1e-4 * float(np.max(np.abs(per_layer))))
            best = interleaved_best({"unrolled": (unrolled, y), "looped": (looped, y)}, args.rounds, args.calls)
            u, lp = best["unrolled"], best["looped"]
            print(f"{preset:12s} {kind:10s} {setup_unrolled:10.1f} s / {setup_looped:5.1f} s "
                  f"{u * 1e3:11.1f} ms / {lp * 1e3:6.1f} ms {lp / u:5.2f}x")


if __name__ == "__main__":
    main()
