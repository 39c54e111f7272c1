"""More members per compiled step: the cells of several blocks stepped as one program.

At the paper's cell size (100 members) a GPU is mostly idle: an H200 took 0.15-0.26 ms a
block for a step whatever its arithmetic (README, *On a GPU*). The issue's remedy is more
members per compiled step: the sweep's ``--blocks-together``
(``trainer.train_cells_together``) trains the three blocks' cells of a dataset by one
members step, each member's arithmetic that of its own cell.

In one process, for ``--dataset`` at its paper preset (100 members a block), as the sweep
trains (its XLA choice, scoring included, the statistic not):

- ``separate``: each block's cell alone (``trainer.train_cell``), ``--epochs`` epochs
  (the last timed), one after the other: the step time of each and their sum;
- ``stacked``: all blocks' cells together, the same epochs: its step time, and the ratio
  sum of separate steps / stacked step (> 1: stacking pays);
- the first epoch of each (from the call: building, tracing and compiling included), and
  how far the stacked members' final losses are from the separate ones (relative, max
  over members: rounding only, since XLA may fuse the larger program differently).

Run: ``KERAS_BACKEND=jax python benchmarks/bench_stacked_cells.py --dataset adult
--device gpu`` (also ``--device cpu``, and under TensorFlow).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def timed(train, batch_size: int) -> tuple[dict, dict]:
    """``train(on_epoch_end)``'s results (by block), and its first epoch (from the call:
    building, tracing and compiling included) and steady step time (its last epoch)."""
    marks, started = [], time.perf_counter()
    results = train(lambda *_: marks.append(time.perf_counter()))
    steps = -(-len(next(iter(results.values())).plans[0].train_idx) // batch_size)
    return results, dict(first_epoch=marks[0] - started, step=(marks[-1] - marks[-2]) / steps)


def run(dataset: str, blocks: list[str], epochs: int, device: str) -> dict:
    from resnet_stability.sweep.devices import select_device
    from resnet_stability.sweep.experiment import resolve_spec
    from resnet_stability.sweep.runner import load_spec_dataset
    from resnet_stability.sweep.trainer import train_cell, train_cells_together, xla_mode

    info = select_device(device)
    spec = resolve_spec(dataset, {"blocks": tuple(blocks), "epochs": epochs})
    data = load_spec_dataset(spec)
    options = dict(device=info.name, xla=xla_mode("auto", info.kind), stability=False)  # as the sweep trains
    results, times = {}, {}
    for block in blocks:
        alone, times[block] = timed(
            lambda report: {block: train_cell(data, spec, block, **options, on_epoch_end=report)}, spec.batch_size)
        results[block] = alone[block]
    stacked, times["stacked"] = timed(
        lambda report: train_cells_together(data, spec, blocks, **options, on_epoch_end=report), spec.batch_size)
    apart = np.concatenate([results[block].final_loss for block in blocks])
    together = np.concatenate([stacked[block].final_loss for block in blocks])
    finite = np.isfinite(apart) & np.isfinite(together)
    return dict(
        device=info.description, dataset=dataset, blocks=blocks,
        separate={block: times[block] for block in blocks}, stacked=times["stacked"],
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
