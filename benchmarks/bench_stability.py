"""Cost of the Prop. 1 statistic (``trainer.member_stability``) for one cell.

Builds the members shards of one cell of a preset (untrained weights: the statistic's
cost does not depend on their values), and times :func:`trainer.member_stability` on
them: 64 test inputs per member, every block's field Jacobian and its eigenvalues.
The training it is added to is not run; compare with a cell's ``cell_seconds``.

Run: ``python benchmarks/bench_stability.py --dataset wine`` (100 members, depth 20,
width 13) or, for the depth-100 presets, a few members to extrapolate linearly:
``python benchmarks/bench_stability.py --dataset adult --members 4`` (depth 100, width 14).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from resnet_stability.sweep.experiment import resolve_spec  # noqa: E402
from resnet_stability.sweep.plan import plan_members  # noqa: E402
from resnet_stability.sweep.runner import load_spec_dataset  # noqa: E402
from resnet_stability.sweep.trainer import build_members_shards, member_stability, shard_count  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="wine")
    parser.add_argument("--block", default="residual")
    parser.add_argument("--members", type=int, default=None, help="first members of the cell only (default: all)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    spec = resolve_spec(args.dataset, {"blocks": (args.block,)})
    dataset = load_spec_dataset(spec)
    plans = plan_members(dataset, spec, args.block)[: args.members]
    shards, _ = build_members_shards(plans, spec, args.block, dataset.n_features, dataset.n_classes,
                                     shard_count("cpu", len(plans)))
    features = tf.constant(dataset.X, "float32")
    mean = tf.constant(np.stack([p.mean for p in plans]), "float32")
    scale = tf.constant(np.stack([p.scale for p in plans]), "float32")

    def gather(idx):
        return (tf.gather(features, idx) - mean) / scale, None

    for repeat in range(args.repeats):
        started = time.perf_counter()
        euler_max, share, _ = member_stability(shards, gather, plans, args.block)
        seconds = time.perf_counter() - started
        print(f"{args.dataset} {args.block}: {len(plans)} members, depth {spec.depth}, width {spec.width}: "
              f"{seconds:.2f} s ({seconds / len(plans):.3f} s per member; run {repeat + 1}); "
              f"median euler_max {np.median(euler_max):.3f}, mean stable share {share.mean():.2f}")


if __name__ == "__main__":
    main()
