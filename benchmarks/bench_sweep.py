"""Wall time per trained Wine network: the members engine vs a plain ``fit`` loop.

Both train the paper's Wine preset networks (20 blocks of width 13, 50 epochs, batch 10,
Adam 1e-3, 80/20 split):

- engine: one full cell, 10 h × 10 trials = 100 networks as one members model;
- plain: ``build_model(...).fit`` once per trial, the way one would without the
  engine (a few trials, timed, then per network).

Prints the ratio plain / engine of seconds per trained network (higher is better), twice:
with the engine's cell timed in this process, and with the engine as a user runs it,
``python -m resnet_stability.sweep --dataset wine --blocks BLOCK`` in a fresh process
(Python start, imports, data, training, scoring, every output file), wall time / 100.
Run: ``python benchmarks/bench_sweep.py [--block residual] [--plain-networks 3]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from resnet_stability.data import load_dataset  # noqa: E402
from resnet_stability.models import build_model  # noqa: E402
from resnet_stability.sweep.experiment import resolve_spec  # noqa: E402
from resnet_stability.sweep.plan import plan_members  # noqa: E402
from resnet_stability.sweep.trainer import train_cell  # noqa: E402


def time_engine(dataset, spec, block, xla):
    started = time.perf_counter()
    result = train_cell(dataset, spec, block, xla=xla)
    return (time.perf_counter() - started) / spec.members_per_cell, float(np.mean(result.test_accuracy))


def time_sweep_command(block: str) -> float:
    """Seconds per network of the whole sweep command for one cell, process start included."""
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "resnet_stability.sweep", "--dataset", "wine", "--blocks", block,
                        "--out", out], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return (time.perf_counter() - started) / 100


def time_plain(dataset, spec, block, networks):
    plans = plan_members(dataset, spec, block)
    chosen = [plans[int(k)] for k in np.linspace(0, len(plans) - 1, networks)]
    started = time.perf_counter()
    accuracies = []
    for plan in chosen:
        model = build_model(dataset.n_features, dataset.n_classes, block, spec.depth, spec.width, plan.h, seed=plan.seed)
        model.compile(optimizer=keras.optimizers.Adam(spec.lr), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        x_train = (dataset.X[plan.train_idx] - plan.mean) / plan.scale
        x_test = (dataset.X[plan.test_idx] - plan.mean) / plan.scale
        model.fit(x_train, dataset.y[plan.train_idx], epochs=spec.epochs, batch_size=spec.batch_size, verbose=0)
        accuracies.append(model.evaluate(x_test, dataset.y[plan.test_idx], verbose=0)[1])
    return (time.perf_counter() - started) / networks, float(np.mean(accuracies))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--block", default="residual")
    parser.add_argument("--plain-networks", type=int, default=3, help="trials timed for the plain loop")
    parser.add_argument("--xla", choices=("step", "update", "off"), default="update",
                        help="XLA for the engine's whole step, its optimiser update only (the CPU default), or none")
    args = parser.parse_args()
    dataset = load_dataset("wine")
    spec = resolve_spec("wine", {"blocks": (args.block,)})
    print(f"Wine preset: depth {spec.depth}, width {spec.width}, {spec.epochs} epochs, batch {spec.batch_size}, "
          f"block {args.block}, {os.cpu_count()} CPU cores")
    engine_s, engine_acc = time_engine(dataset, spec, args.block, args.xla)
    print(f"engine: {spec.members_per_cell} networks in one cell, mean test accuracy {engine_acc:.3f}")
    plain_s, plain_acc = time_plain(dataset, spec, args.block, args.plain_networks)
    print(f"plain fit loop: {args.plain_networks} networks, mean test accuracy {plain_acc:.3f}")
    command_s = time_sweep_command(args.block)
    print(f"ratio of wall time per trained network, plain / engine: {plain_s / engine_s:.1f}x (engine in this "
          f"process); {plain_s / command_s:.1f}x (the sweep command in a fresh process, start-up included)")


if __name__ == "__main__":
    main()
