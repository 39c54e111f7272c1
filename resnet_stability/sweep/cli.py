"""``python -m resnet_stability.sweep``: accuracy-vs-h sweeps on the paper's datasets.

For each dataset and block ("cell"), every h × trial network trains at once as one
members model (:mod:`resnet_stability.sweep.trainer`). Finished cells are saved as
they finish; rerunning the same command resumes (:mod:`resnet_stability.sweep.schedule`).
Outputs in ``--out`` (default ``results/<dataset>``, ``results/<dataset>-quick`` with
``--quick``): ``results.csv`` (one row per dataset × block × h × trial),
``accuracy_vs_h.png``/``.pdf``, ``summary.txt``, ``spec.json``,
``stability_vs_accuracy.png``/``.pdf`` and ``stability_correlation.csv`` (each
member's Prop. 1 statistic against its test accuracy, :mod:`resnet_stability.correlation`;
with ``--noise`` / time windows also ``stability_noise_correlation.csv`` /
``stability_time_correlation.csv``); with ``--learn-h``
also ``learned_h.csv`` and ``learned_h.png``/``.pdf`` (each block's trained h). Bad
inputs end with one line on stderr and exit code 2 (:mod:`resnet_stability.sweep.checks`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from resnet_stability.sweep.devices import DEVICE_CHOICES
from resnet_stability.sweep.executors import EXECUTORS, default_workers, share_the_gpu
from resnet_stability.data.registry import RECORDS, dataset_names
from resnet_stability.sweep.experiment import NOISE_KINDS, OPTIMIZERS, check_h_grid

ALL = "all"
EXIT_USAGE = 2


def __getattr__(name):
    """Tables derived from the dataset records (read live, see :mod:`resnet_stability.data.registry`):
    ``NEEDS_USER_DATA`` (not shipped: the user brings the data with --data, or fetches it ->
    what to give), ``ALL_DATASETS`` (``--dataset all``: every dataset that runs on shipped or
    simulated data) and ``DATA_FILES`` (datasets read from the user's file or folder -> what
    they expect there)."""
    if name == "NEEDS_USER_DATA":
        return {n: r.needs() for n, r in RECORDS.items() if r.needs_data}
    if name == "ALL_DATASETS":
        return dataset_names(needs_data=False)
    if name == "DATA_FILES":
        return {n: r.data for n, r in RECORDS.items() if r.data is not None}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: The registered block names (``resnet_stability.layers.BLOCKS``; a test keeps them
#: equal), so that ``--help`` and argument errors answer without importing TensorFlow.
BLOCK_NAMES = ("batchnorm", "lm", "multistep", "residual", "rk4", "shrinkage", "zeros")


class CleanParser(argparse.ArgumentParser):
    """argparse, but a bad value gives ONE error line (and exit code 2)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def parse_h_grid(text: str) -> tuple[float, ...]:
    """``0.1,0.5,1`` or ``start:stop:step``, e.g. ``0.1:1.0:0.1``: start, start + step, ...
    up to stop (included when the steps reach it, up to float rounding; never beyond)."""
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 3 or parts[2] <= 0 or parts[1] < parts[0]:
                raise ValueError
            start, stop, step = parts
            count = int((stop - start) / step + 1e-9) + 1  # 1e-9: (1.0 - 0.1) / 0.1 = 8.999... counts as 9
            values = [round(start + k * step, 10) for k in range(count)]
        else:
            values = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid --h {text!r}: give a comma list such as 0.1,0.5,1 or start:stop:step such as 0.1:1.0:0.1"
        ) from None
    try:
        return check_h_grid(values)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"invalid --h {text!r}: {error}") from None


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


def _level_list(text):
    try:
        values = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        values = ()
    if not values or any(not (0 <= v < float("inf")) for v in values):
        raise argparse.ArgumentTypeError(f"invalid --noise {text!r}: give levels >= 0 such as 0.1,0.5,1")
    return values


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
    """The argument parser (imports neither TensorFlow nor Keras, so --help is quick)."""
    datasets = list(RECORDS) + [ALL]
    parser = CleanParser(
        prog="python -m resnet_stability.sweep",
        description="Accuracy-vs-h sweeps of step-size residual networks on the paper's datasets: every "
        "h × trial network of a (dataset, block) cell trains at once. Each dataset has the paper's preset; "
        "any flag overrides it. Rerunning a command resumes it.",
    )
    add = parser.add_argument
    add("--dataset", required=True, type=_name_list(datasets, "dataset"),
        help=f"one or more of {', '.join(datasets)} (all = {', '.join(dataset_names(needs_data=False))})")
    add("--blocks", type=_name_list(BLOCK_NAMES, "block"), help="comma list; default residual,batchnorm,shrinkage")
    add("--h", dest="h_values", type=parse_h_grid, help="h grid: 0.1,0.5,1 or start:stop:step; default 0.1:1.0:0.1")
    add("--trials", type=_bounded(int, "--trials", 1), help="trials per h (default 10)")
    add("--depth", type=_bounded(int, "--depth", 1), help="number of blocks (preset)")
    add("--width", type=_bounded(int, "--width", 1), help="state width (preset)")
    add("--epochs", type=_bounded(int, "--epochs", 1), help="training epochs (preset)")
    add("--batch-size", type=_bounded(int, "--batch-size", 1), help="batch size per member (preset)")
    add("--lr", type=_bounded(float, "--lr", 0.0, float("inf")), help="learning rate (default 1e-3)")
    add("--optimizer", choices=OPTIMIZERS, help="Keras optimiser (default adam)")
    add("--test-size", type=_bounded(float, "--test-size", 0.0, 1.0),
        help=f"test fraction (default 0.2); not for {', '.join(dataset_names(fixed_split=True))} (fixed splits)")
    add("--seed", type=_bounded(int, "--seed", 0), help="experiment seed (default 0)")
    add("--out", type=Path, help="output folder (default results/<dataset>, with --quick results/<dataset>-quick)")
    add("--quick", action="store_true", help="tiny configuration that finishes in seconds (smoke test)")
    add("--device", choices=DEVICE_CHOICES, default="auto",
        help="where to train (default: auto, a GPU if TensorFlow sees one)")
    add("--jit", choices=("auto", "on", "off"), default="auto",
        help="XLA: on = the whole training step, off = none; auto = the whole step on a GPU, only the optimiser "
        "update on a CPU")
    add("--source", choices=("local", "uci"), default="local", help="shipped files, or fetch via ucimlrepo (default: local)")
    add("--inputs", choices=("paper", "clean"),
        help="UCI datasets: paper = the raw attributes as integer codes, width = attribute count, no stem "
        "(default); clean = one-hot, leaking columns dropped, a linear stem")
    add("--data", dest="data_path", type=Path,
        help="your data: a transaction file (bitcoin: CSV/Parquet), the Elliptic folder, or a BitcoinHeist CSV")
    add("--train-span", type=_bounded(float, "--train-span", 0.0, float("inf")),
        help="time-split data: length of the training window (days; Elliptic: time steps); default per dataset")
    add("--test-span", type=_bounded(float, "--test-span", 0.0, float("inf")),
        help="time-split data: length of each later test window; default per dataset")
    add("--noise", dest="noise_levels", type=_level_list,
        help="noise robustness: perturb the standardised test inputs at these levels, e.g. 0.1,0.5,1")
    add("--noise-kinds", type=_name_list(NOISE_KINDS, "noise kind"), help="default gaussian,uniform,constant")
    add("--stream", action="store_true",
        help="bitcoin: train by streaming the file in chunks instead of loading it; all members then share one "
        "batch order")
    add("--chunk-rows", type=_bounded(int, "--chunk-rows", 1),
        help="with --stream: rows per chunk read from the file (default 1000000; also the default shuffle buffer)")
    add("--learn-h", action="store_true",
        help="learn each block's step size with the other weights, h = h_max·sigmoid(θ), starting at the grid's "
        "h (one-step blocks only); writes learned_h.png and each member's learned h per block")
    add("--h-max", type=_bounded(float, "--h-max", 0.0, float("inf")),
        help="with --learn-h: the largest h a block can learn (default 1.0); every --h value must be <= it")
    add("--stability-penalty", type=_bounded(float, "--stability-penalty", 0.0),
        help="with --learn-h: μ of a penalty toward Euler stability, μ·max(0, max|1 + hλ| − 1) per block added to "
        "the training loss (its gradient reaches h only; forward-Euler blocks); default 0: none")
    add("--levels", type=_bounded(int, "--levels", 1),
        help="multi-level training: train, prolong every network to twice the depth at h/2 (each block's weights "
        "start both of its two children), train again, ... L levels of --epochs each (default 1: plain "
        "training; one-step blocks only); writes accuracy_by_level.png and each member's level_accuracy")
    add("--executor", choices=EXECUTORS, default="inprocess",
        help="where cells run (default: inprocess, one after the other; processes: --workers cells at once on this "
        "machine, for a GPU or many cores; ray: one task per cell)")
    add("--workers", type=_bounded(int, "--workers", 1),
        help="with --executor processes: cells at once (default: one per core on a GPU machine, one per two "
        "cores on a CPU, whose cells run as two shards)")
    add("--blocks-together", action="store_true",
        help="train a dataset's blocks as one members step (all their networks in one compiled step: for a GPU, "
        "which one cell leaves mostly idle); each cell's results stay its own; not with --stream or --levels > 1")
    add("--address", help="Ray cluster address for --executor ray (default: start or join a local one)")
    add("--show-config", action="store_true", help="print the resolved configuration and exit")
    return parser


OVERRIDES = (
    "blocks", "h_values", "trials", "depth", "width", "epochs", "batch_size", "lr", "optimizer", "test_size", "seed",
    "train_span", "test_span", "noise_levels", "noise_kinds", "data_path", "stream", "chunk_rows", "inputs",
    "learn_h", "h_max", "levels", "stability_penalty",
)
SIMULATED_ROWS = {False: 20_000, True: 2_000}  # rows of the simulated Bitcoin file (full, --quick)


def resolve_specs(args) -> list:
    from resnet_stability.sweep.experiment import resolve_spec

    names = list(dataset_names(needs_data=False)) if ALL in args.dataset else list(dict.fromkeys(args.dataset))  # "wine,wine" is one
    overrides = {name: getattr(args, name) for name in OVERRIDES}
    if args.chunk_rows is not None and not args.stream:
        raise ValueError("--chunk-rows only applies with --stream")
    if args.h_max is not None and not args.learn_h:
        raise ValueError("--h-max only applies with --learn-h")
    if args.stability_penalty and not args.learn_h:
        raise ValueError("--stability-penalty only applies with --learn-h (its gradient reaches the learned h only)")
    if args.blocks_together and (args.stream or (args.levels or 1) > 1):
        flag = "--stream" if args.stream else f"--levels {args.levels}"
        raise ValueError(f"--blocks-together trains plain in-memory cells; not with {flag}")
    if args.workers is not None and args.executor != "processes":
        raise ValueError(f"--workers only applies with --executor processes (got --executor {args.executor})")
    records = [RECORDS[name] for name in names]
    for record in records:
        needs_file = record.needs_data and not (record.online and args.source == "uci")
        if needs_file and args.data_path is None:
            raise ValueError(f"--dataset {record.name} needs {record.needs()}")
    if overrides["data_path"] is not None:
        without_files = [record.name for record in records if record.data is None]
        if without_files:
            raise ValueError(
                f"--data is only read by {', '.join(n for n, r in RECORDS.items() if r.data is not None)}; "
                f"--dataset {', '.join(without_files)} does not read a file: drop --data"
            )
        from resnet_stability.sweep.checks import check_data_path

        check_data_path(args.data_path, " or ".join(sorted({record.data for record in records})))
        overrides["data_path"] = str(Path(overrides["data_path"]).resolve())
    fixed = [record.name for record in records if record.fixed_split]
    if args.test_size is not None and fixed:
        print(f"warning: --test-size {args.test_size:g} is ignored for {', '.join(fixed)} (fixed train/test "
              "split) and not recorded", file=sys.stderr)
    return [resolve_spec(name, overrides, quick=args.quick) for name in names]


def default_out(args) -> Path:
    """``results/<dataset>`` (datasets joined by "-"), ``results/<dataset>-quick`` with
    ``--quick``, so that a smoke test never overwrites a full run's outputs."""
    name = "-".join(args.dataset) if len(args.dataset) > 1 else args.dataset[0]
    return Path("results") / (f"{name}-quick" if args.quick else name)


def load_checked(spec, source: str):
    """The dataset of ``spec`` (:func:`~resnet_stability.sweep.runner.load_spec_dataset`), with
    one-line errors for a failed ``--source uci`` fetch, an empty ``--data`` file and a
    ``--test-size`` too small or too large for the data."""
    import pandas as pd

    from resnet_stability.sweep import checks
    from resnet_stability.sweep.runner import load_spec_dataset

    try:
        dataset = load_spec_dataset(spec, source)
    except pd.errors.EmptyDataError as error:
        raise ValueError(f"--data {spec.data_path}: a file it names is empty ({error}); give "
                         f"{RECORDS[spec.dataset].data or 'a non-empty file'}") from None
    except checks.fetch_errors() as error:
        if source != "uci":
            raise
        raise checks.offline_error(spec.dataset, error) from None
    if dataset.time is None and dataset.test_mask is None:
        if spec.test_size is None:
            raise ValueError(f"{spec.dataset}: this copy of the data has no fixed train/test split "
                             "(no official test rows found); use --source local, the shipped copy")
        checks.check_test_size(spec.dataset, dataset.y, spec.test_size)
    return dataset


def with_simulated_bitcoin(spec, out: Path, quick: bool):
    """``spec`` unchanged, or for ``bitcoin`` without ``--data`` the spec of a simulated
    transaction file in ``out`` (written once, then reused so reruns resume)."""
    if spec.dataset != "bitcoin" or spec.data_path is not None:
        return spec
    from resnet_stability.data import simulate_transactions

    path = out / f"simulated_transactions_seed{spec.seed}_{SIMULATED_ROWS[quick]}.csv"
    if not path.exists():
        out.mkdir(parents=True, exist_ok=True)
        simulate_transactions(path, n_rows=SIMULATED_ROWS[quick], seed=spec.seed)
    print(f"bitcoin: no --data given, so training on SIMULATED transactions ({path}); "
          "every figure and table made from them says 'synthetic'")
    return dataclasses.replace(spec, data_path=str(path.resolve()))


def dataset_notes(spec, source: str) -> dict:
    """Load (or, streamed, scan) the data of ``spec`` once, before any training, so a bad
    file fails first; return what the outputs record of it: whether it is synthetic, its
    rows and, for time-split data, its windows (printed)."""
    if spec.stream:  # a streamed scan validates the file and finds its windows without holding it
        from resnet_stability.sweep.streaming import stream_notes

        notes = stream_notes(spec)
        print(f"{spec.dataset} (streamed in chunks of {spec.chunk_rows} rows): {notes['windows']}")
        return notes
    from resnet_stability.data.bitcoin import is_synthetic

    dataset = load_checked(spec, source)
    notes = {"synthetic": is_synthetic(dataset), "rows": int(dataset.X.shape[0])}
    if dataset.time is not None:
        from resnet_stability.sweep.plan import time_split_for

        notes["windows"] = time_split_for(dataset, spec).describe()
        print(f"{spec.dataset}: {notes['windows']}")
    return notes


def run(args) -> int:
    specs = resolve_specs(args)
    out = args.out or default_out(args)
    if args.show_config:
        print(json.dumps({"out": str(out), "experiments": [s.to_dict() for s in specs]}, indent=2))
        return 0
    from resnet_stability.sweep.checks import check_out_folder

    check_out_folder(out, args.quick)

    from resnet_stability.sweep.devices import select_device

    if args.executor == "processes":  # before a backend starts here: the cells' processes share the GPU
        share_the_gpu()
    device = select_device(args.device)

    from resnet_stability.sweep.outputs import write_outputs
    from resnet_stability.sweep.schedule import run_pending_cells
    from resnet_stability.sweep.store import ResultsStore

    store = ResultsStore(out)
    print(f"resnet_stability sweep: writing to {out.resolve()}")
    print(f"device: {device.description}; executor: {args.executor}")
    specs = [with_simulated_bitcoin(spec, out, args.quick) for spec in specs]
    notes = {spec.dataset: dataset_notes(spec, args.source) for spec in specs}  # bad files fail before training
    store.write_spec(
        specs, {"device": device.description, "executor": args.executor, "datasets": notes, "quick": args.quick}
    )

    options = dict(source=args.source, device=args.device, jit=args.jit, progress=args.executor == "inprocess")
    here = device.trained_on()
    if args.executor == "ray":  # a cluster's machines may have other devices than this one
        here["device"] = None
    workers = args.workers or (default_workers(device.kind) if args.executor == "processes" else None)
    run_pending_cells(store, specs, args.executor, args.address, here=here, workers=workers,
                      together=args.blocks_together, **options)

    written, lines = write_outputs(store, specs, notes, quick=args.quick)
    print("\n".join(lines))
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF's C++ start-up chatter
    parser = build_parser()
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        code = run(args)
    except BrokenPipeError:  # e.g. "--show-config | head" (an OSError: caught first)
        sys.stderr.close()
        return 0
    except (ValueError, RuntimeError, OSError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted: finished cells are saved; rerun the same command to resume", file=sys.stderr)
        return 130
    if not args.show_config:
        print(f"done in {time.perf_counter() - started:.1f} s")
    return code

