"""Where the cells of a sweep run. Executors only decide *where*; never *what*.

- ``inprocess`` (default): one cell after the other in this process.
- ``processes``: ``--workers`` cells at once (the sweep's default:
  :func:`default_workers`), each in a fresh Python process of this machine (results
  come back as cells finish). For a GPU, where one cell leaves the
  device mostly idle (a step of the paper's cells is bound by kernel launches, and its
  set-up by compiling on one host core), and for CPUs with many more cores than a cell's
  two shards use. Not for a 2-core machine under TensorFlow: the Wine main job took 42 s
  this way against 38 s one cell after the other (under JAX, whose one program a cell
  does not keep both cores busy, 45 against 57-60 s).
- ``ray``: each (dataset, block) cell is one Ray task, asking for a GPU where the
  cluster has them; results come back as tasks finish. Needs ``pip install .[ray]``.

Every executor runs the same function on the same arguments
(:func:`~resnet_stability.sweep.runner.run_cells_together`), so where a cell runs does not change
its numbers (tested for each).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Iterator

#: Set (where the user has not) before this process starts a backend when cells run in
#: several processes on one machine, so that they share its GPU: JAX would take 75 % of
#: the GPU's memory in each process, TensorFlow all of it.
SHARED_GPU_ENVIRONMENT = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}


def run_in_process(cells, function, kwargs, address=None, workers=None) -> Iterator:
    """One cell after the other, here."""
    for cell in cells:
        yield cell, function(*cell, **kwargs)


def run_in_processes(cells, function, kwargs, address=None, workers=None) -> Iterator:
    """``workers`` (default: one per core; at most one per cell) fresh processes
    (``spawn``: nothing of this process's backend state is inherited). A cell that
    fails does not stop the others: they finish and are yielded, then its error is
    raised."""
    cells = list(cells)
    if not cells:
        return
    share_the_gpu()
    workers = min(len(cells), workers or os.cpu_count() or 1)
    context = multiprocessing.get_context("spawn")
    failures = []
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        running = {pool.submit(function, *cell, **kwargs): cell for cell in cells}
        try:
            for future in concurrent.futures.as_completed(running):
                try:
                    result = future.result()
                except Exception as failure:  # the other cells still finish and are kept
                    failures.append(failure)
                    continue
                yield running[future], result
        except BaseException:  # a stopped sweep (Ctrl-C, a time limit) stops its cells' processes too
            for future in running:
                future.cancel()
            for process in list(pool._processes.values()):
                process.terminate()
            raise
    if failures:
        raise failures[0]


def run_on_ray(cells, function, kwargs, address=None, workers=None) -> Iterator:
    try:
        import ray
    except ImportError:
        raise RuntimeError("--executor ray needs Ray: pip install '.[ray]' (or pip install ray)") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=True, ignore_reinit_error=True)
    try:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        remote = ray.remote(num_gpus=gpus, max_retries=0)(function)
        pending = {remote.remote(*cell, **kwargs): cell for cell in cells}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), ray.get(ref)
    finally:
        if started_here:
            ray.shutdown()


EXECUTORS = {"inprocess": run_in_process, "processes": run_in_processes, "ray": run_on_ray}


def default_workers(device_kind: str) -> int:
    """Cells at once for ``--executor processes`` without ``--workers``: one per core on
    a GPU machine (a cell's process keeps one core busy launching kernels, and compiles
    in bursts); on a CPU, the cores over the shards a cell runs as (each shard keeps
    one core busy: TensorFlow's two, so half as many cells as cores)."""
    from resnet_stability.sweep.engines import current_engine

    cores = os.cpu_count() or 1
    return max(1, cores // current_engine().shards(device_kind, 100))


def share_the_gpu() -> None:
    """:data:`SHARED_GPU_ENVIRONMENT`, where not set: call before this process starts
    JAX or TensorFlow on a GPU (the processes it starts inherit it)."""
    for name, value in SHARED_GPU_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def run_cells(cells, function, executor: str = "inprocess", address: str | None = None,
              workers: int | None = None, **kwargs) -> Iterator:
    """Yield ``(cell, function(*cell, **kwargs))`` for every cell, as they finish
    (``address``: Ray's; ``workers``: the processes of ``processes``)."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; allowed: {', '.join(EXECUTORS)}")
    yield from EXECUTORS[executor](cells, function, kwargs, address=address, workers=workers)
