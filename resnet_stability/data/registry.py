"""Dataset names -> loader functions, and :func:`load_dataset`."""

from __future__ import annotations

from collections.abc import Callable

from .bitcoin import load_bitcoin
from .bitcoinheist import load_bitcoinheist
from .dataset import Dataset
from .elliptic import load_elliptic
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


def _local_only(name: str, source: str) -> None:
    _check_source(source)
    if source != "local":
        raise ValueError(
            f"{name}: source={source!r} is not available (not on the UCI repository); "
            "use source='local' with path=..."
        )


def load_bitcoin_file(source: str = "local", *, path=None) -> Dataset:
    """Registry entry "bitcoin": :func:`~resnet_stability.data.bitcoin.load_bitcoin`
    of the CSV/Parquet file ``path`` (required: the paper's data is not public)."""
    _local_only("bitcoin", source)
    if path is None:
        raise ValueError(
            "bitcoin: pass path=... to a CSV or Parquet file of transactions in the "
            "schema of resnet_stability.data.bitcoin (timestamp, n_inputs, n_outputs, "
            "volume_btc, entity); the paper's data is not public. For a synthetic "
            "stand-in, write one with resnet_stability.data.simulate_transactions(path) "
            "and pass that path."
        )
    return load_bitcoin(path)


def load_elliptic_folder(source: str = "local", *, path=None) -> Dataset:
    """Registry entry "elliptic": :func:`~resnet_stability.data.elliptic.load_elliptic`
    of the Kaggle folder ``path`` (required)."""
    _local_only("elliptic", source)
    if path is None:
        raise ValueError(
            "elliptic: pass path=... to the folder holding elliptic_txs_features.csv and "
            "elliptic_txs_classes.csv (https://www.kaggle.com/datasets/ellipticco/"
            "elliptic-data-set); it is not shipped"
        )
    return load_elliptic(path)


def load_bitcoinheist_entry(source: str = "local", *, path=None, **kwargs) -> Dataset:
    """Registry entry "bitcoinheist": :func:`~resnet_stability.data.bitcoinheist.
    load_bitcoinheist` (``source="local"`` with ``path=...``, or ``source="uci"``;
    ``cache_dir`` and ``refresh`` pass through)."""
    _check_source(source)
    return load_bitcoinheist(path, source, **kwargs)


#: Registry: dataset name -> loader ``(source="local", **kwargs) -> Dataset``.
#: The five UCI sets first (paper order), then the generated 2-D set, then the
#: time-stamped Bitcoin sets, which need ``path=...`` (bitcoinheist also takes
#: source="uci").
DATASETS: dict[str, Callable[..., Dataset]] = {
    "wine": load_wine,
    "abalone": load_abalone,
    "absenteeism": load_absenteeism,
    "autism": load_autism,
    "adult": load_adult,
    "synthetic": load_synthetic,
    "bitcoin": load_bitcoin_file,
    "elliptic": load_elliptic_folder,
    "bitcoinheist": load_bitcoinheist_entry,
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
    ``load_dataset("absenteeism", drop_leaky=False)``. The Bitcoin sets are not
    shipped and take ``path=...``: ``load_dataset("bitcoin", path="tx.parquet")``,
    ``load_dataset("elliptic", path="elliptic_bitcoin_dataset/")``,
    ``load_dataset("bitcoinheist", path="BitcoinHeistData.csv")`` (or
    ``source="uci"``).

    Raises:
        ValueError: unknown ``name`` or ``source`` (the message lists the allowed ones).
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; allowed datasets: {list_datasets()}")
    _check_source(source)
    return DATASETS[name](source, **kwargs)
