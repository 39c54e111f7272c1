"""``python -m resnet_stability.sweep``: accuracy-vs-h sweeps on the paper's datasets.

For each dataset and block ("cell"), every h × trial network trains at once as one
members model (:mod:`resnet_stability.engine`). Finished cells are saved as they
finish; rerunning the same command resumes. Outputs in ``--out``: ``results.csv`` (one
row per dataset × block × h × trial), ``accuracy_vs_h.png``/``.pdf``, ``summary.txt``,
``spec.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from resnet_stability.devices import DEVICE_CHOICES, quiet_native_stderr
from resnet_stability.experiment import OPTIMIZERS, PRESETS

ALL = "all"
EXIT_USAGE = 2


class CleanParser(argparse.ArgumentParser):
    """argparse, but a bad value gives ONE error line (and exit code 2)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def parse_h_grid(text: str) -> tuple[float, ...]:
    """``0.1,0.5,1`` or ``start:stop:step`` (stop included), e.g. ``0.1:1.0:0.1``."""
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 3 or parts[2] <= 0 or parts[1] < parts[0]:
                raise ValueError
            start, stop, step = parts
            count = int(round((stop - start) / step)) + 1
            values = [round(start + k * step, 10) for k in range(count)]
        else:
            values = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid --h {text!r}: give a comma list such as 0.1,0.5,1 or start:stop:step such as 0.1:1.0:0.1"
        ) from None
    bad = [v for v in values if not (0 < v < float("inf"))]
    if not values or bad:
        raise argparse.ArgumentTypeError(f"invalid --h {text!r}: every h must be a finite number > 0")
    return tuple(values)


def _name_list(allowed, what):
    def parse(text):
        names = tuple(n.strip() for n in text.split(",") if n.strip())
        unknown = [n for n in names if n not in allowed]
        if not names or unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(unknown) or repr(text)}; allowed: {', '.join(allowed)}"
            )
        return names

    return parse


def _bounded(kind, name, low, high=None):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {name} {text!r}: expected {kind.__name__}") from None
        if not (value >= low if high is None else low < value < high):
            allowed = f">= {low}" if high is None else f"in ({low}, {high})"
            raise argparse.ArgumentTypeError(f"invalid {name} {text!r}: must be {allowed}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    with quiet_native_stderr():
        from resnet_stability.layers import BLOCKS

    datasets = list(PRESETS) + [ALL]
    parser = CleanParser(
        prog="python -m resnet_stability.sweep",
        description=__doc__.split("\n\n")[0] + " Any flag overrides the dataset's preset.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--dataset", required=True, type=_name_list(datasets, "dataset"), help=f"one of {', '.join(datasets)}")
    add("--blocks", type=_name_list(sorted(BLOCKS), "block"), help="comma list; default residual,batchnorm,shrinkage")
    add("--h", dest="h_values", type=parse_h_grid, help="h grid: 0.1,0.5,1 or start:stop:step; default 0.1:1.0:0.1")
    add("--trials", type=_bounded(int, "--trials", 1), help="trials per h (default 10)")
    add("--depth", type=_bounded(int, "--depth", 1), help="number of blocks (preset)")
    add("--width", type=_bounded(int, "--width", 1), help="state width (preset)")
    add("--epochs", type=_bounded(int, "--epochs", 1), help="training epochs (preset)")
    add("--batch-size", type=_bounded(int, "--batch-size", 1), help="batch size per member (preset)")
    add("--lr", type=_bounded(float, "--lr", 0.0, float("inf")), help="learning rate (default 1e-3)")
    add("--optimizer", choices=OPTIMIZERS, help="Keras optimiser (default adam)")
    add("--test-size", type=_bounded(float, "--test-size", 0.0, 1.0), help="test fraction (default 0.2)")
    add("--seed", type=_bounded(int, "--seed", 0), help="experiment seed (default 0)")
    add("--out", type=Path, help="output folder (default results/<dataset>)")
    add("--quick", action="store_true", help="tiny configuration that finishes in seconds (smoke test)")
    add("--device", choices=DEVICE_CHOICES, default="auto", help="where to train")
    add("--jit", choices=("auto", "on", "off"), default="auto", help="XLA-compile the training step (auto: on GPU)")
    add("--source", choices=("local", "uci"), default="local", help="shipped files, or fetch via ucimlrepo")
    add("--show-config", action="store_true", help="print the resolved configuration and exit")
    return parser


OVERRIDES = ("blocks", "h_values", "trials", "depth", "width", "epochs", "batch_size", "lr", "optimizer", "test_size", "seed")


def resolve_specs(args) -> list:
    from resnet_stability.experiment import resolve_spec

    names = list(PRESETS) if ALL in args.dataset else list(dict.fromkeys(args.dataset))  # "wine,wine" is one
    overrides = {name: getattr(args, name) for name in OVERRIDES}
    return [resolve_spec(name, overrides, quick=args.quick) for name in names]


def run(args) -> int:
    specs = resolve_specs(args)
    out = args.out or Path("results") / ("-".join(args.dataset) if len(args.dataset) > 1 else args.dataset[0])
    if args.show_config:
        print(json.dumps({"out": str(out), "experiments": [s.to_dict() for s in specs]}, indent=2))
        return 0

    from resnet_stability.devices import select_device

    device = select_device(args.device)
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # one new train step per cell is expected, not a retracing problem
    jit = {"on": True, "off": False, "auto": device.kind == "gpu"}[args.jit]

    from resnet_stability.data import load_dataset, subsample_rows
    from resnet_stability.engine import cell_records, train_cell
    from resnet_stability.plots import plot_accuracy_vs_h
    from resnet_stability.progress import EpochProgress
    from resnet_stability.results import aggregate, summary_lines
    from resnet_stability.store import ResultsStore, atomic_write_text

    store = ResultsStore(out)
    print(f"resnet_stability sweep: writing to {out.resolve()}")
    print(f"device: {device.description} (XLA {'on' if jit else 'off'})")
    store.write_spec(specs, {"device": device.description, "jit_compile": jit})
    cells = [(spec, block) for spec in specs for block in spec.blocks]
    for number, (spec, block) in enumerate(cells, start=1):
        label = f"[{number}/{len(cells)}] {spec.dataset} × {block}: {spec.members_per_cell} networks"
        if store.has_cell(spec, block):
            print(f"{label} — already done, skipped ({store.cell_path(spec, block).name})")
            continue
        dataset = subsample_rows(load_dataset(spec.dataset, source=args.source), spec.max_rows, spec.seed)
        print(f"{label}, depth {spec.depth}, width {spec.width}, {spec.epochs} epochs, batch {spec.batch_size}")
        bar = EpochProgress(spec.epochs, spec.members_per_cell)

        def progress(epoch, losses, alive):
            bar.update(epoch, float(losses[alive].mean()) if alive.any() else float("nan"), int((~alive).sum()))

        result = train_cell(dataset, spec, block, device=device.tf_name, jit_compile=jit, on_epoch_end=progress)
        path = store.write_cell(spec, block, cell_records(result, spec, block, device.description))
        print(f"    {result.seconds:.1f} s ({result.seconds / spec.members_per_cell:.3f} s per network) -> {path}")

    table = store.read_table(specs)
    table_path = store.write_table(table)
    agg_path = out / "accuracy_by_h.csv"
    atomic_write_text(agg_path, aggregate(table).to_csv(index=False))
    note = " [quick]" if args.quick else ""
    figures = plot_accuracy_vs_h(table, out / "accuracy_vs_h", title_note=note)
    lines = summary_lines(table)
    atomic_write_text(out / "summary.txt", "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {table_path}, {agg_path}, {', '.join(str(f) for f in figures)}, {out / 'summary.txt'}")
    return 0


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF's C++ start-up chatter
    parser = build_parser()
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        code = run(args)
    except (ValueError, RuntimeError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. "--show-config | head"
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: finished cells are saved; rerun the same command to resume", file=sys.stderr)
        return 130
    if not args.show_config:
        print(f"done in {time.perf_counter() - started:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
