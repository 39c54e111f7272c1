"""Where the cells of a sweep run. Executors only decide *where*; never *what*.

- ``inprocess`` (default): one cell after the other in this process.
- ``ray``: each (dataset, block) cell is one Ray task, asking for a GPU where the
  cluster has them; results come back as tasks finish. Needs ``pip install .[ray]``.
"""

from __future__ import annotations

from collections.abc import Iterator

EXECUTORS = ("inprocess", "ray")


def run_cells(cells, function, executor: str = "inprocess", address: str | None = None, **kwargs) -> Iterator:
    """Yield ``(cell, function(*cell, **kwargs))`` for every cell, as they finish."""
    if executor == "inprocess":
        for cell in cells:
            yield cell, function(*cell, **kwargs)
    elif executor == "ray":
        yield from _run_ray(cells, function, address, kwargs)
    else:
        raise ValueError(f"unknown executor {executor!r}; allowed: {', '.join(EXECUTORS)}")


def _run_ray(cells, function, address, kwargs):
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
