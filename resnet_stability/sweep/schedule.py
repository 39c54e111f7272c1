"""Running the cells of a sweep that are not finished yet, resumably and safely.

:func:`run_pending_cells`:

1. lists every (dataset, block) cell as ``[i/n] dataset × block``; a finished, intact
   cell (:meth:`ResultsStore.cell_problem` is None) is reported skipped; a damaged one
   gets ONE warning line on stderr naming its file and what is wrong, and is recomputed;
2. takes each pending cell's lock (:meth:`ResultsStore.cell_lock`) so that two sweeps
   into one folder never compute the same cell: when another sweep holds it, one line
   says so and the cell is waited for, then skipped if the other sweep finished it;
3. in process, prints each cell's header just before it trains (its progress bar
   follows); with a remote executor (Ray), the cells' headers print as they are
   submitted and the locks are held until all of them are written.
"""

from __future__ import annotations

import contextlib
import sys

from resnet_stability.sweep.executors import run_cells
from resnet_stability.sweep.runner import run_cells_together


def _label(number: int, total: int, spec, block: str) -> str:
    return f"[{number}/{total}] {spec.dataset} × {block}"


def _header(label: str, spec) -> str:
    return (f"{label}: {spec.members_per_cell} networks, depth {spec.depth}, width {spec.width}, "
            f"{spec.epochs} epochs, batch {spec.batch_size}")


def _lock(store, spec, block, label):
    def waiting():
        print(f"{label}: another sweep is computing this cell ({store.cell_path(spec, block).name}); "
              "waiting for it", flush=True)

    return store.cell_lock(spec, block, on_wait=waiting)


def _write(store, spec, block, output) -> None:
    path = store.write_cell(spec, block, output.results, {"over_time": output.over_time, "noise": output.noise},
                            trained_on=output.notes["trained_on"])
    print(f"    {spec.dataset} × {block}: {output.seconds:.1f} s "
          f"({output.seconds / spec.members_per_cell:.3f} s per network, "
          f"XLA: {output.notes['xla']}) -> {path}", flush=True)


def _describe(trained_on: dict) -> str:
    device = trained_on["device"]
    return f"Keras backend {trained_on['backend']!r}" + ("" if device is None else f" on a {device.upper()}")


def pending_cells(store, specs, here: dict | None = None) -> list[tuple[str, object, str]]:
    """``(label, spec, block)`` of every cell to compute; prints the skipped ones and
    warns (stderr, one line each) about damaged ones, and about finished ones trained
    under another Keras backend, or on another kind of device, than ``here`` (what this
    sweep trains on, ``DeviceInfo.trained_on``; a None device is unknown and not
    compared): such cells are kept, as these differ by rounding only."""
    cells = [(spec, block) for spec in specs for block in spec.blocks]
    pending = []
    for number, (spec, block) in enumerate(cells, start=1):
        label, path = _label(number, len(cells), spec, block), store.cell_path(spec, block)
        problem = store.cell_problem(spec, block)
        if problem is None:
            print(f"{label} — already done, skipped ({path.name})")
            there = store.cell_trained_on(spec, block)
            if here is not None and _trained_elsewhere(there, here):
                print(f"warning: {path} was trained under the {_describe(there)}, this sweep runs under the "
                      f"{_describe(here)}; kept (their numbers differ by float rounding; delete "
                      f"{path.parent.name}/{path.stem}.* to retrain it here)", file=sys.stderr)
            continue
        if problem != "missing":
            print(f"warning: {path}: {problem}; recomputing this cell", file=sys.stderr)
        pending.append((label, spec, block))
    return pending


def _trained_elsewhere(there: dict, here: dict) -> bool:
    """Another backend, or another kind of device where both are known."""
    devices = (there["device"], here["device"])
    return there["backend"] != here["backend"] or (None not in devices and devices[0] != devices[1])


def _done_meanwhile(store, spec, block, label) -> bool:
    if store.has_cell(spec, block):
        print(f"{label} — finished by another sweep meanwhile, skipped ({store.cell_path(spec, block).name})")
        return True
    return False


def _units(pending, together: bool) -> list[list]:
    """The pending cells grouped into what trains at once: each cell alone, or with
    ``together`` the pending cells of one spec (dataset) that
    :func:`~resnet_stability.sweep.trainer.can_train_together`."""
    if not together:
        return [[cell] for cell in pending]
    from resnet_stability.sweep.trainer import can_train_together

    units: dict[tuple, list] = {}
    for number, (label, spec, block) in enumerate(pending):
        key = ("spec", id(spec)) if can_train_together(spec) else ("alone", number)
        units.setdefault(key, []).append((label, spec, block))
    return list(units.values())


def _claim(store, unit, locks, submitted: str = "") -> tuple | None:
    """Lock every cell of ``unit`` (held until ``locks`` closes) and print the header of
    each not finished meanwhile; ``(spec, blocks)`` of those, or None if none is left."""
    blocks = []
    for label, spec, block in unit:
        locks.enter_context(_lock(store, spec, block, label))
        if not _done_meanwhile(store, spec, block, label):
            print(_header(label, spec) + submitted, flush=True)
            blocks.append(block)
    return (unit[0][1], tuple(blocks)) if blocks else None


def run_pending_cells(store, specs, executor: str = "inprocess", address: str | None = None,
                      here: dict | None = None, workers: int | None = None, together: bool = False,
                      **options) -> None:
    """Compute and store every unfinished cell of ``specs``; ``options`` go to
    :func:`~resnet_stability.sweep.runner.run_cells_together` (source, device, jit,
    progress). ``here`` is what the cells train on, if known (:func:`pending_cells`);
    ``address`` and ``workers`` go to the executor
    (:func:`~resnet_stability.sweep.executors.run_cells`); ``together``: a dataset's
    pending cells train as one members step (``--blocks-together``)."""
    units = _units(pending_cells(store, specs, here), together)
    if executor == "inprocess":
        for unit in units:
            with contextlib.ExitStack() as locks:
                claimed = _claim(store, unit, locks)
                if claimed is not None:
                    for (spec, _), outputs in run_cells([claimed], run_cells_together, executor, address, workers, **options):
                        for block, output in outputs.items():
                            _write(store, spec, block, output)
        return
    with contextlib.ExitStack() as locks:
        claimed = [_claim(store, unit, locks, f" (submitted to {executor})") for unit in units]
        for (spec, _), outputs in run_cells([c for c in claimed if c is not None], run_cells_together, executor,
                                            address, workers, **options):
            for block, output in outputs.items():
                _write(store, spec, block, output)
