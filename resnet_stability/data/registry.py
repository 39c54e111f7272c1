"""Dataset names -> loader functions, and :func:`load_dataset`."""

from __future__ import annotations

from collections.abc import Callable

from .dataset import Dataset
from .synthetic import make_synthetic
from .uci import (
    SOURCES,
    load_abalone,
    load_absenteeism,
    load_adult,
    load_autism,
    load_wine,
)


def load_synthetic(source: str = "local", **kwargs) -> Dataset:
    """:func:`~resnet_stability.data.make_synthetic` (``kind``, ``n_train``, ``n_test``,
    ``noise``, ``seed``). The data are generated, so ``source`` is only validated."""
    _check_source(source)
    return make_synthetic(**kwargs)


#: Registry: dataset name -> loader ``(source="local", **kwargs) -> Dataset``.
DATASETS: dict[str, Callable[..., Dataset]] = {
    "wine": load_wine,
    "abalone": load_abalone,
    "absenteeism": load_absenteeism,
    "autism": load_autism,
    "adult": load_adult,
    "synthetic": load_synthetic,
}


def _check_source(source: str) -> None:
    if not isinstance(source, str) or source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; allowed sources: {list(SOURCES)}")


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, in the paper's order."""
    return list(DATASETS)


def load_dataset(name: str, source: str = "local", **kwargs) -> Dataset:
    """Load dataset ``name`` from ``source`` ("local": shipped files, SHA-256 checked;
    "uci": ucimlrepo, cached). Extra keyword arguments go to the loader, e.g.
    ``load_dataset("synthetic", kind="moons", noise=0.2, seed=3)`` or
    ``load_dataset("absenteeism", drop_leaky=False)``.

    Raises:
        ValueError: unknown ``name`` or ``source`` (the message lists the allowed ones).
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; allowed datasets: {list_datasets()}")
    _check_source(source)
    return DATASETS[name](source, **kwargs)
