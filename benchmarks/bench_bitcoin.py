"""Bitcoin-scale throughput: streaming a 1 M-row transaction file, then training on it.

1. Writes a simulated 1 M-row Parquet file in the transaction schema (once, cached in
   --workdir), then times ``load_bitcoin`` (validated, streamed in chunks): rows/s.
2. Trains one cell of members on the training window of that file with the paper's
   Bitcoin architecture (128 blocks of width 32) and prints the training throughput of
   the LAST epoch (steady state: no tracing, no building, no evaluation) in rows per
   second (training-window rows / epoch seconds), and member-rows per second (the same
   times the number of members trained at once).

Run: ``python benchmarks/bench_bitcoin.py [--rows 1000000] [--members 2] [--epochs 2]``.
The paper's full preset (batch 100 000, 50 members, 100 epochs) is GPU work; on a CPU
keep --members and --epochs small.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from resnet_stability.data import load_bitcoin, simulate_transactions  # noqa: E402
from resnet_stability.sweep.experiment import resolve_spec  # noqa: E402
from resnet_stability.sweep.plan import time_split_for  # noqa: E402
from resnet_stability.sweep.trainer import train_cell  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=2, help="h values trained at once (1 trial each)")
    parser.add_argument("--epochs", type=int, default=2, help=">= 2: the last epoch is timed")
    parser.add_argument("--depth", type=int, default=128)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--workdir", type=Path, default=Path("benchmarks/.data"))
    parser.add_argument("--xla", choices=("step", "update", "off"), default="update",
                        help="XLA for the whole step, the optimiser update only (the CPU default), or none")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the last epoch is timed)")

    path = args.workdir / f"simulated_{args.rows}.parquet"
    if not path.exists():
        args.workdir.mkdir(parents=True, exist_ok=True)
        simulate_transactions(path, n_rows=args.rows, seed=0)
    started = time.perf_counter()
    dataset = load_bitcoin(path)
    load_seconds = time.perf_counter() - started
    print(f"load_bitcoin (streamed, validated): {len(dataset.y) / load_seconds:,.0f} rows/s over {len(dataset.y):,} rows")

    h_values = tuple(round(0.1 + 0.9 * k / max(1, args.members - 1), 4) for k in range(args.members))
    spec = resolve_spec("bitcoin", dict(blocks=("residual",), h_values=h_values, trials=1, epochs=args.epochs,
                                        depth=args.depth, width=args.width, batch_size=args.batch_size))
    train_rows = len(time_split_for(dataset, spec).train_idx)
    epoch_ends = []
    train_cell(dataset, spec, "residual", xla=args.xla,
               on_epoch_end=lambda *_: epoch_ends.append(time.perf_counter()))
    rows_per_second = train_rows / (epoch_ends[-1] - epoch_ends[-2])
    print(f"training: {args.members} members, depth {args.depth}, width {args.width}, batch {args.batch_size}, "
          f"XLA: {args.xla}; last of {args.epochs} epochs on {train_rows:,} training-window rows")
    print(f"training throughput: {rows_per_second:,.0f} rows/s, {rows_per_second * args.members:,.0f} member-rows/s")


if __name__ == "__main__":
    main()
