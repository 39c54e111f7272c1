"""More members per compiled step: the cells of several blocks stepped as one program.

At the paper's cell size (100 members) a GPU is mostly idle: an H200 took 0.15-0.26 ms a
block for a step whatever its arithmetic (README, *On a GPU*). The issue's remedy is more
members per compiled step, e.g. the three blocks of a dataset in one program. The engine's
step already takes several members models (its shards, members in order), so the cells of
``--blocks`` of one dataset can be stepped together: their plans concatenated (member
m of block b: block b's h, seed, split and batch order, as in its own cell), one model per
block, one step for all. Each member's arithmetic is the one of its own cell; only the
program around it changes.

In one process, for ``--dataset`` at its paper preset (100 members a block):

- ``separate``: each block's cell alone, ``--epochs`` epochs (the last timed), one after
  the other: the step time of each and their sum (what the sweep does now);
- ``stacked``: all blocks' members in one step, the same epochs: its step time, and the
  ratio sum of separate steps / stacked step (> 1: stacking pays);
- the first epoch of each (from building its step: tracing and compiling included), and how far the stacked members' final
  losses are from the separate ones (relative, max over members: rounding only, since
  XLA may fuse the larger program differently).

Run: ``KERAS_BACKEND=jax python benchmarks/bench_stacked_cells.py --dataset adult
--device gpu`` (also ``--device cpu``, and under TensorFlow, where the step of several
models is the CPU shards' mechanism).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def train_epochs(train_step, source, epochs: int) -> tuple[list[float], np.ndarray]:
    """Seconds of each epoch (ended when its losses are on the host) and the last
    epoch's mean loss per member."""
    import keras

    seconds, mean_loss = [], None
    for epoch in range(epochs):
        started = time.perf_counter()
        losses = [train_step(batch)[0] for batch in source.epoch_batches(epoch)]
        mean_loss = keras.ops.convert_to_numpy(keras.ops.mean(keras.ops.stack(losses), axis=0))
        seconds.append(time.perf_counter() - started)
    return seconds, mean_loss


def run(dataset: str, blocks: list[str], epochs: int, device: str) -> dict:
    from resnet_stability.sweep.devices import select_device
    from resnet_stability.sweep.engines import current_engine
    from resnet_stability.sweep.experiment import resolve_spec
    from resnet_stability.sweep.plan import plan_members
    from resnet_stability.sweep.runner import load_spec_dataset
    from resnet_stability.sweep.trainer import MemoryBatches, build_members_shards, make_optimizer

    info = select_device(device)
    engine = current_engine()
    spec = resolve_spec(dataset, {"blocks": tuple(blocks), "epochs": epochs})
    data = load_spec_dataset(spec)
    plans = {block: plan_members(data, spec, block) for block in blocks}

    def cell(chosen: list[str]):
        source = MemoryBatches(data, [plan for block in chosen for plan in plans[block]])
        with engine.device_scope(info.name):
            models = [build_members_shards(plans[block], spec, block, data.n_features, data.n_classes, 1)[0][0]
                      for block in chosen]
            inputs = source.open(spec)
            started = time.perf_counter()
            step = engine.train_step(models, lambda: make_optimizer(spec.optimizer, spec.lr), inputs, "step")
            step.precompile(source.batch_shapes())  # as the sweep does (tracing here, compiling in threads)
            prepared = time.perf_counter() - started
            seconds, losses = train_epochs(step, source, epochs)
        steps = -(-len(plans[chosen[0]][0].train_idx) // spec.batch_size)
        return dict(first_epoch=prepared + seconds[0], step=seconds[-1] / steps, final_loss=losses)

    separate = {block: cell([block]) for block in blocks}
    stacked = cell(blocks)
    apart = np.concatenate([separate[block]["final_loss"] for block in blocks])
    together = stacked["final_loss"]
    finite = np.isfinite(apart) & np.isfinite(together)
    return dict(
        device=info.description, dataset=dataset, blocks=blocks,
        separate={block: {k: v for k, v in r.items() if k != "final_loss"} for block, r in separate.items()},
        stacked={k: v for k, v in stacked.items() if k != "final_loss"},
        loss_rel_diff=float(np.max(np.abs(together - apart)[finite] / np.abs(apart)[finite])) if finite.any() else None,
        same_finite=bool(np.array_equal(np.isfinite(apart), np.isfinite(together))),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="adult")
    parser.add_argument("--blocks", default="residual,batchnorm,shrinkage")
    parser.add_argument("--epochs", type=int, default=2, help=">= 2: the last epoch is timed")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the last epoch is timed)")
    r = run(args.dataset, args.blocks.split(","), args.epochs, args.device)
    print(f"{r['dataset']} on {r['device']}, {args.epochs} epochs, the last timed")
    for block, s in r["separate"].items():
        print(f"  {block:<10} alone:   step {s['step'] * 1e3:7.2f} ms   first epoch {s['first_epoch']:6.1f} s")
    total = sum(s["step"] for s in r["separate"].values())
    st = r["stacked"]
    print(f"  sum of the separate steps: {total * 1e3:.2f} ms")
    print(f"  {'+'.join(r['blocks'])} stacked: step {st['step'] * 1e3:.2f} ms   first epoch {st['first_epoch']:.1f} s")
    print(f"  separate / stacked: {total / st['step']:.2f}x; final losses stacked vs separate: max relative "
          f"difference {r['loss_rel_diff']:.1e}, same members finite: {r['same_finite']}")


if __name__ == "__main__":
    main()
