"""One record per dataset (:class:`DatasetRecord`, :data:`RECORDS`), and :func:`load_dataset`.

Every fact that depends on the dataset (its loader, the sweep's preset, its default
time windows, whether it needs ``--data``, whether it can stream, whether it can be
fetched online, ...) is a field of its record; everything else reads the record. A new
dataset is its loader plus one :func:`register` call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MappingProxyType

from .dataset import Dataset

# The loaders' modules import pandas and scikit-learn: they are imported when a dataset
# is loaded, not with the registry (the sweep's --help reads the records only).


def _uci_loader(function: str) -> Callable[..., Dataset]:
    def load(source: str = "local", **kwargs) -> Dataset:
        from . import uci

        return getattr(uci, function)(source, **kwargs)

    load.__name__ = load.__qualname__ = function
    load.__doc__ = f":func:`resnet_stability.data.uci.{function}` (imported on first use)."
    return load


load_wine, load_abalone, load_absenteeism, load_autism, load_adult = (
    _uci_loader(f"load_{name}") for name in ("wine", "abalone", "absenteeism", "autism", "adult")
)


def load_synthetic(source: str = "local", **kwargs) -> Dataset:
    """:func:`~resnet_stability.data.make_synthetic` (``kind``, ``n_train``, ``n_test``,
    ``noise``, ``seed``). The data are generated, so ``source`` is only validated."""
    from .synthetic import make_synthetic

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
    from .bitcoin import load_bitcoin

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
    from .elliptic import load_elliptic

    return load_elliptic(path)


def load_bitcoinheist_entry(source: str = "local", *, path=None, **kwargs) -> Dataset:
    """Registry entry "bitcoinheist": :func:`~resnet_stability.data.bitcoinheist.
    load_bitcoinheist` (``source="local"`` with ``path=...``, or ``source="uci"``;
    ``cache_dir`` and ``refresh`` pass through)."""
    from .bitcoinheist import load_bitcoinheist

    _check_source(source)
    return load_bitcoinheist(path, source, **kwargs)


@dataclasses.dataclass(frozen=True)
class DatasetRecord:
    """Every fact about one dataset, in one place (:data:`RECORDS`).

    Attributes:
        name: the registry name (``load_dataset(name)``, ``--dataset name``).
        loader: ``(source="local", **kwargs) -> Dataset``.
        preset: the sweep's preset for it (``epochs``, ``depth``, ``width``,
            ``batch_size``, optionally ``trials``): what a sweep trains unless a flag
            overrides it (:func:`resnet_stability.sweep.experiment.resolve_spec`).
        windows: the default ``(train_span, test_span)`` of a split in time, in the
            dataset's time unit, for a dataset whose rows carry a time stamp (trained on
            an early window, tested on the later ones); None for the others.
        fixed_split: the dataset comes with its own train/test split (a test fraction
            means nothing; its spec's ``test_size`` is always None). True for every
            dataset with ``windows``.
        data: what ``path=...`` / ``--data`` must name, for a dataset read from the
            user's file or folder; None for one that reads no file.
        needs_data: not shipped: a sweep needs ``--data`` (or, if ``online``,
            ``--source uci``); ``--dataset all`` leaves it out.
        online: ``source="uci"`` fetches it from the UCI repository.
        inputs: its inputs come encoded the paper's way or our cleaner way
            (``inputs="paper" | "clean"``, :mod:`resnet_stability.data.uci`).
        stream: a sweep can train it by streaming its file (``--stream``; the
            transaction schema of :mod:`resnet_stability.data.bitcoin`).
    """

    name: str
    loader: Callable[..., Dataset]
    preset: Mapping[str, int]
    windows: tuple[float, float] | None = None
    fixed_split: bool = False
    data: str | None = None
    needs_data: bool = False
    online: bool = False
    inputs: bool = False
    stream: bool = False

    def __post_init__(self):
        object.__setattr__(self, "preset", MappingProxyType(dict(self.preset)))
        if self.windows is not None:
            object.__setattr__(self, "windows", tuple(float(v) for v in self.windows))
            object.__setattr__(self, "fixed_split", True)  # a split in time is a fixed split
        if self.needs_data and self.data is None:
            raise ValueError(f"dataset record {self.name!r}: needs_data without saying what (data=...)")

    @property
    def time_split(self) -> bool:
        """Its rows carry a time stamp: split in time (``windows`` is set)."""
        return self.windows is not None

    def needs(self) -> str:
        """What a sweep of it needs when it is not given ``--data`` (``needs_data``)."""
        online = ", or --source uci to fetch it from the UCI repository" if self.online else ""
        return f"--data PATH to {self.data}{online}"


#: The paper leaves open what our presets choose the same for every dataset: Adam with
#: learning rate 1e-3, a stratified 80/20 split (Adult uses its official train/test
#: files), ReLU. The width is the paper's, which is each UCI dataset's number of raw
#: attributes: with the paper's inputs (``inputs="paper"``, the default) the blocks see
#: those attributes directly (no stem); with ``inputs="clean"`` a linear stem maps the
#: encoded features to that width.
_UCI = dict(online=True, inputs=True)

#: Registry: dataset name -> :class:`DatasetRecord`, in the paper's order: the five UCI
#: sets (Zhang & Wynter, experiments section), the generated 2-D set, then the
#: time-stamped Bitcoin sets, which need ``path=...`` (bitcoinheist also takes
#: source="uci"). Adding a dataset is its loader plus one :func:`register` call.
RECORDS: dict[str, DatasetRecord] = {}


def register(record: DatasetRecord) -> DatasetRecord:
    """Add ``record`` (replacing a record of the same name) and return it."""
    if not isinstance(record, DatasetRecord):
        raise TypeError(f"register takes a DatasetRecord, got {type(record).__name__}")
    RECORDS[record.name] = record
    return record


register(DatasetRecord("wine", load_wine, dict(epochs=50, depth=20, width=13, batch_size=10), **_UCI))
register(DatasetRecord("abalone", load_abalone, dict(epochs=50, depth=50, width=8, batch_size=50), **_UCI))
register(DatasetRecord("absenteeism", load_absenteeism, dict(epochs=20, depth=100, width=19, batch_size=10), **_UCI))
register(DatasetRecord("autism", load_autism, dict(epochs=30, depth=100, width=20, batch_size=10), **_UCI))
register(DatasetRecord("adult", load_adult, dict(epochs=50, depth=100, width=14, batch_size=100), fixed_split=True, **_UCI))
# The paper trains its 2-D figures with 100 blocks of width 2 and gives no epochs or
# batch size: ours are 50 epochs of batch 32 on 500 training points (fixed train/test sets).
register(DatasetRecord("synthetic", load_synthetic, dict(epochs=50, depth=100, width=2, batch_size=32), fixed_split=True))
# Bitcoin entity type (paper: 128 blocks of width 32, 100 epochs, batch 100 000, 5 trials
# per h), trained on an early time window and tested on later ones. Windows: days since
# 2012-01-01, train on the first year of data, then test on half-year windows, so
# 2012-01..2018-05 gives about 11 windows reaching ~5.5 years past the training data (the
# paper's data spans 1/2012-5/2018; its exact windows are not given, this is our choice).
# Without --data a sweep trains on a simulated file (resnet_stability.data.simulate).
register(DatasetRecord(
    "bitcoin", load_bitcoin_file, dict(epochs=100, depth=128, width=32, batch_size=100_000, trials=5),
    windows=(365.0, 182.0), stream=True,
    data="a CSV or Parquet file of transactions (timestamp, n_inputs, n_outputs, volume_btc, entity)",
))
# Public stand-ins, not in the paper; our choices: the Bitcoin architecture, with batch
# sizes that give tens of steps per epoch on their training windows.
# Elliptic windows: time steps (about two weeks each): the common Elliptic protocol (Weber
# et al. 2019) trains on steps 1-34 and tests on 35-49; 5-step windows give 3 test windows
# (35-39, 40-44, 45-49), start = first step = 1.
register(DatasetRecord(
    "elliptic", load_elliptic_folder, dict(epochs=50, depth=128, width=32, batch_size=256, trials=5),
    windows=(34.0, 5.0), needs_data=True,
    data="the Kaggle elliptic_bitcoin_dataset folder (elliptic_txs_features.csv, elliptic_txs_classes.csv)",
))
# BitcoinHeist windows: days since 2009-01-01, the same one-year / half-year choice as
# bitcoin; the data starts in 2011, so with start=None training covers its first 365 days.
register(DatasetRecord(
    "bitcoinheist", load_bitcoinheist_entry, dict(epochs=20, depth=128, width=32, batch_size=10_000, trials=5),
    windows=(365.0, 182.0), needs_data=True, online=True, data="BitcoinHeistData.csv (UCI dataset 526)",
))


class _LoaderView(Mapping):
    """``DATASETS``: dataset name -> loader, a live read-only view of :data:`RECORDS`."""

    def __getitem__(self, name):
        return RECORDS[name].loader

    def __iter__(self):
        return iter(RECORDS)

    def __len__(self):
        return len(RECORDS)

    def __repr__(self):
        return f"DATASETS({dict(self)!r})"


#: Dataset name -> loader ``(source="local", **kwargs) -> Dataset`` (from :data:`RECORDS`).
DATASETS: Mapping[str, Callable[..., Dataset]] = _LoaderView()


def dataset_record(name: str) -> DatasetRecord:
    """The record of dataset ``name``.

    Raises:
        ValueError: unknown ``name`` (the message lists the allowed ones).
    """
    if not isinstance(name, str) or name not in RECORDS:
        raise ValueError(f"unknown dataset {name!r}; allowed datasets: {list_datasets()}")
    return RECORDS[name]


def dataset_names(**facts) -> tuple[str, ...]:
    """Names of the registered datasets (in order) whose record has every given fact,
    e.g. ``dataset_names(inputs=True)`` or ``dataset_names(time_split=True)``."""
    return tuple(name for name, record in RECORDS.items()
                 if all(getattr(record, fact) == value for fact, value in facts.items()))


def _check_source(source: str) -> None:
    from .uci import SOURCES

    if not isinstance(source, str) or source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; allowed sources: {list(SOURCES)}")


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, in the paper's order."""
    return list(RECORDS)


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
    record = dataset_record(name)
    _check_source(source)
    return record.loader(source, **kwargs)
