"""Would a feature-major state layout speed the members engine up on a CPU? A measurement.

Inside a members model the state is members-first, (M, batch, w): a block's products are
batched matmuls (M, b, w) @ (M, w, w), a member's bias or batch-norm statistics are
(M, 1, w) broadcast over the middle axis, and batch norm swaps to (b, M, w) and back
(``layers/fields.py``: that was faster than the middle-axis broadcasts). The alternative
measured here keeps the state *feature-major*, (M, w, b): the products become
Kᵀ @ Y, (M, w, w)ᵀ @ (M, w, b), the same arithmetic, a bias or statistic is (M, w, 1)
broadcast along the last, contiguous axis, batch norm's sums run over that axis, and
nothing is transposed between blocks.

For each preset shape this script builds ``--depth`` residual and batch-norm blocks of one
50-member shard both ways (the same weights; the batch-norm derivative written out as in
``layers/fields.py``), checks that the two layouts give the same outputs and gradients
(to float32 rounding), and times forward + backward in one ``tf.function`` on one thread
with Grappler off, as the engine runs a shard. It prints the feature-major / members-first
time ratio per block kind, best of ``--rounds`` interleaved rounds. Pure TensorFlow:
nothing in the package changes by running it.

    python benchmarks/bench_layout.py [--depth 20] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

MEMBERS = 50  # one of a 2-core CPU's two shards
SHAPES = {"adult": (100, 14), "absenteeism": (10, 19), "wine": (10, 13)}  # batch, width
EPSILON = 1e-3


def normalize(z, gamma, beta, axis):
    """Batch norm over ``axis`` of z with the derivative written out (``fields.normalized_rows``)."""
    mean = tf.reduce_mean(z, axis=axis, keepdims=True)
    centred = z - mean
    inverse_std = tf.math.rsqrt(tf.reduce_mean(tf.square(centred), axis=axis, keepdims=True) + EPSILON)

    @tf.custom_gradient
    def normalized(z, gamma, beta):
        scale = gamma * inverse_std
        out = centred * scale + beta

        def grad(g):
            n = tf.cast(tf.shape(g)[axis], g.dtype)
            d_beta = tf.reduce_sum(g, axis=axis, keepdims=True)
            d_gamma = inverse_std * tf.reduce_sum(g * centred, axis=axis, keepdims=True)
            negative_scale = -scale
            d_z = g * scale + centred * (negative_scale * inverse_std * d_gamma / n) + negative_scale * d_beta / n
            return d_z, d_gamma, d_beta

        return out, grad

    return normalized(z, gamma, beta)


def members_first_block(kind, y, weights, h):
    """One block on (M, b, w), as the engine computes it today."""
    if kind == "residual":
        k1, b1, k2, b2 = weights
        hidden = tf.nn.relu(tf.matmul(y, k1) + b1[:, None, :])
        return y + h * (tf.matmul(hidden, k2) + b2[:, None, :])
    k1, g1, be1, k2, g2, be2 = weights

    def bn(z, gamma, beta):  # batch first, statistics broadcast over the leading axis
        rows = tf.transpose(z, (1, 0, 2))
        return tf.transpose(normalize(rows, gamma[None], beta[None], axis=0), (1, 0, 2))

    z1 = bn(tf.matmul(y, k1), g1, be1)
    return y + h * bn(tf.matmul(tf.nn.relu(z1), k2), g2, be2)


def feature_major_block(kind, y, weights, h):
    """The same block on (M, w, b): products Kᵀ Y, vectors as (M, w, 1) columns."""
    if kind == "residual":
        k1, b1, k2, b2 = weights
        hidden = tf.nn.relu(tf.matmul(k1, y, transpose_a=True) + b1[:, :, None])
        return y + h * (tf.matmul(k2, hidden, transpose_a=True) + b2[:, :, None])
    k1, g1, be1, k2, g2, be2 = weights

    def bn(z, gamma, beta):
        return normalize(z, gamma[:, :, None], beta[:, :, None], axis=2)

    z1 = bn(tf.matmul(k1, y, transpose_a=True), g1, be1)
    return y + h * bn(tf.matmul(k2, tf.nn.relu(z1), transpose_a=True), g2, be2)


def make_weights(kind, depth, width, rng):
    kernel = lambda: tf.Variable(rng.normal(0, width ** -0.5, (MEMBERS, width, width)).astype(np.float32))  # noqa: E731
    vector = lambda value: tf.Variable(np.full((MEMBERS, width), value, np.float32))  # noqa: E731
    if kind == "residual":
        return [[kernel(), vector(0.01), kernel(), vector(0.01)] for _ in range(depth)]
    return [[kernel(), vector(1.0), vector(0.0), kernel(), vector(1.0), vector(0.0)] for _ in range(depth)]


def shard_problem(kind, depth, batch, width):
    """(weights, h, y) of one shard: ``depth`` blocks' weights, h (M, 1, 1), a state (M, b, w)."""
    rng = np.random.default_rng(0)
    weights = make_weights(kind, depth, width, rng)
    h = tf.constant(rng.uniform(0.1, 1.0, (MEMBERS, 1, 1)).astype(np.float32))
    return weights, h, tf.constant(rng.normal(size=(MEMBERS, batch, width)).astype(np.float32))


def run_like_a_shard():
    """One thread, Grappler off: as the engine runs a shard on a CPU."""
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def make_step(block, kind, weights, h):
    variables = [v for layer in weights for v in layer]

    def step(y):
        with tf.GradientTape() as tape:
            state = y
            for layer in weights:
                state = block(kind, state, layer, h)
            loss = tf.reduce_sum(tf.square(state))
        return state, tape.gradient(loss, variables)

    return tf.function(step, autograph=False)


def best_time(step, y, calls):
    started = time.perf_counter()
    for _ in range(calls):
        out = step(y)
    out[0].numpy()
    return (time.perf_counter() - started) / calls


def interleaved_best(steps: dict, rounds: int, calls: int) -> dict:
    """{name: (step, y)} -> {name: best seconds per call}, the steps timed in turn ``rounds`` times."""
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, (step, y) in steps.items():
            times[name].append(best_time(step, y, calls))
    return {name: min(values) for name, values in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args(argv)
    run_like_a_shard()
    print(f"{MEMBERS} members, depth {args.depth}, forward + backward, 1 thread, best of {args.rounds} rounds")
    print(f"{'preset':12s} {'block':10s} {'members-first':>14s} {'feature-major':>14s} {'ratio':>7s}")
    for preset, (batch, width) in SHAPES.items():
        for kind in ("residual", "batchnorm"):
            weights, h, y = shard_problem(kind, args.depth, batch, width)
            rows = make_step(members_first_block, kind, weights, h)
            columns = make_step(feature_major_block, kind, weights, h)
            y_columns = tf.transpose(y, (0, 2, 1))
            out_rows, grad_rows = rows(y)
            out_columns, grad_columns = columns(y_columns)
            np.testing.assert_allclose(tf.transpose(out_columns, (0, 2, 1)), out_rows, rtol=1e-4, atol=1e-4)
            for a, b in zip(grad_rows, grad_columns):
                np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-3 * float(np.max(np.abs(a))))
            best = interleaved_best({"rows": (rows, y), "columns": (columns, y_columns)}, args.rounds, args.calls)
            r, c = best["rows"], best["columns"]
            print(f"{preset:12s} {kind:10s} {r * 1e3:11.2f} ms {c * 1e3:11.2f} ms {c / r:6.2f}x")


if __name__ == "__main__":
    main()
