"""One cell of a sweep as a plain function: load data, train the members, make tables.

:func:`run_cells_together` (one cell, or a dataset's cells trained as one members step)
is what every executor runs (in this process, in processes, or as a Ray task on a
cluster); it depends only on its arguments, so where it runs cannot change its numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import sys

import pandas as pd

from resnet_stability.data.registry import RECORDS
from resnet_stability.sweep.experiment import ExperimentSpec


@dataclasses.dataclass
class CellOutput:
    """The tables of one finished (dataset, block) cell."""

    results: pd.DataFrame  # one row per member
    over_time: pd.DataFrame  # one row per member × test window (time-split data), else empty
    noise: pd.DataFrame  # one row per member × noise kind × level, else empty
    seconds: float
    notes: dict  # e.g. the time windows, whether the data is synthetic, the backend and device kind


def load_spec_dataset(spec: ExperimentSpec, source: str = "local"):
    """The dataset of ``spec`` (its file for the Bitcoin-type datasets), subsampled to
    ``spec.max_rows`` rows if set. Datasets are immutable, so the last loaded are kept,
    as many as there are registered datasets: the sweep's up-front check and the cells of
    one process read each dataset once, even in a sweep over all of them."""
    return _load(spec.dataset, spec.data_path, source, spec.max_rows, spec.seed, spec.inputs)


@functools.lru_cache(maxsize=len(RECORDS))
def _load(name: str, data_path: str | None, source: str, max_rows: int | None, seed: int, inputs: str | None):
    from resnet_stability.data import dataset_record, load_dataset, subsample_rows

    kwargs = {}
    if dataset_record(name).data is not None and (data_path is not None or source == "local"):
        kwargs["path"] = data_path
    if inputs is not None:
        kwargs["inputs"] = inputs
    return subsample_rows(load_dataset(name, source=source, **kwargs), max_rows, seed)


def run_cells_together(
    spec: ExperimentSpec,
    blocks,
    *,
    source: str = "local",
    device: str = "auto",
    jit: str = "auto",
    progress: bool = True,
) -> dict[str, CellOutput]:
    """Train the cells of ``spec.dataset`` × ``blocks`` and return their tables, by block.
    One block: :func:`~resnet_stability.sweep.trainer.train_cell`; several: one members
    step for all their members (:func:`~resnet_stability.sweep.trainer.train_cells_together`,
    the sweep's ``--blocks-together``), each cell's tables its own."""
    from resnet_stability.data.bitcoin import is_synthetic
    from resnet_stability.data.registry import dataset_names, dataset_record
    from resnet_stability.sweep.devices import select_device
    from resnet_stability.sweep.progress import EpochProgress
    from resnet_stability.sweep.trainer import train_cell, train_cells_together, xla_mode

    blocks = tuple(blocks)
    info = select_device(device)
    xla = xla_mode(jit, info.kind)
    if spec.stream and not dataset_record(spec.dataset).stream:
        raise ValueError(f"streaming is only available for {', '.join(dataset_names(stream=True))}, not {spec.dataset!r}")
    dataset = None if spec.stream else load_spec_dataset(spec, source)  # streaming never loads the file
    callback = None
    if progress:
        members = spec.members_per_cell * len(blocks)
        bar = EpochProgress(spec.epochs * spec.levels, members, stream=sys.stdout, label=f"{spec.dataset} × {'+'.join(blocks)}")

        def callback(epoch, losses, alive):
            bar.update(epoch, float(losses[alive].mean()) if alive.any() else float("nan"), int((~alive).sum()))

    if spec.stream:  # memory holds one chunk of the file at a time (resnet_stability.sweep.streaming)
        from resnet_stability.data.stream import file_is_synthetic
        from resnet_stability.sweep.streaming import StreamBatches

        (block,) = blocks  # (the sweep never trains streamed cells together)
        batches = StreamBatches(spec.data_path, spec, block)
        synthetic = file_is_synthetic(spec.data_path)
    else:
        batches = dataset
        synthetic = is_synthetic(dataset)
    if len(blocks) == 1:
        results = {blocks[0]: train_cell(batches, spec, blocks[0], device=info.name, xla=xla, on_epoch_end=callback)}
    else:
        results = train_cells_together(batches, spec, blocks, device=info.name, xla=xla, on_epoch_end=callback)
    return {block: cell_output(result, spec, block, info, xla, synthetic) for block, result in results.items()}


def cell_output(result, spec: ExperimentSpec, block: str, info, xla: str, synthetic: bool) -> CellOutput:
    """The tables of a trained cell (``result``: its ``CellResult``)."""
    from resnet_stability.sweep.records import cell_records, noise_records, time_records

    notes = {"synthetic": synthetic, "device": info.description, "xla": xla, "stream": spec.stream,
             "trained_on": info.trained_on()}
    split = result.plans[0].time_split
    if split is not None:
        notes["windows"] = split.describe()
    results = cell_records(result, spec, block, info.description)
    results["synthetic_data"] = notes["synthetic"]
    return CellOutput(
        results=results,
        over_time=time_records(result, spec, block),
        noise=noise_records(result, spec, block),
        seconds=result.seconds,
        notes=notes,
    )
