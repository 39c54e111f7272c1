"""The paper's datasets as arrays, shipped for offline use.

>>> from resnet_stability.data import load_dataset, split_indices, fit_standardizer
>>> ds = load_dataset("wine")                      # shipped copy, SHA-256 checked
>>> train, test = split_indices(ds.y, test_size=0.2, seed=0, test_mask=ds.test_mask)
>>> mean, scale = fit_standardizer(ds.X[train], ds.numeric_mask)
>>> X_train = (ds.X[train] - mean) / scale

Modules: :mod:`.dataset` (the :class:`Dataset` container), :mod:`.files` (where the
files are, SHA-256 checks), :mod:`.arff` (ARFF reader), :mod:`.preprocessing`
(encoding, splitting, standardising), :mod:`.online` (ucimlrepo + cache), :mod:`.uci`
(the five UCI loaders), :mod:`.synthetic` (2-D generators), :mod:`.registry`
(name -> loader).

Time-stamped Bitcoin data (not shipped; bring a file): :mod:`.bitcoin` (transaction
schema, :func:`load_bitcoin`), :mod:`.elliptic` (Kaggle Elliptic folder),
:mod:`.bitcoinheist` (UCI 526), :mod:`.simulate` (synthetic drifting transactions),
:mod:`.timesplit` (train on an early span, test on later windows), :mod:`.stream` (a
transaction file read in chunks: scan, standardiser, shuffle buffer, prefetch).

>>> from resnet_stability.data import simulate_transactions, load_bitcoin, dataset_time_windows
>>> ds = load_bitcoin(simulate_transactions("tx.parquet"))   # SYNTHETIC, drifting
>>> split = dataset_time_windows(ds)                        # 365-day train, 182-day windows
"""

from .bitcoin import (
    BITCOIN_SCHEMA,
    ENTITY_LABELS,
    BitcoinSchemaError,
    is_synthetic,
    load_bitcoin,
    iter_bitcoin_frames,
    read_bitcoin_frame,
    validate_bitcoin_frame,
)
from .bitcoinheist import load_bitcoinheist
from .dataset import Dataset
from .elliptic import load_elliptic
from .files import (
    EXPECTED_SHA256,
    ChecksumMismatchError,
    DataFileError,
    MissingDataFileError,
    data_root,
)
from .preprocessing import fit_standardizer, split_indices, standardize, subsample_rows
from .registry import DATASETS, list_datasets, load_dataset
from .simulate import simulate_frame, simulate_transactions
from .synthetic import SYNTHETIC_KINDS, make_synthetic
from .timesplit import (
    DEFAULT_WINDOWS,
    TimeSplit,
    Window,
    dataset_time_windows,
    time_windows,
)
from .uci import SOURCES, UCI_IDS, autism_result_findings

__all__ = [
    "BITCOIN_SCHEMA",
    "DATASETS",
    "DEFAULT_WINDOWS",
    "ENTITY_LABELS",
    "EXPECTED_SHA256",
    "SOURCES",
    "SYNTHETIC_KINDS",
    "UCI_IDS",
    "BitcoinSchemaError",
    "ChecksumMismatchError",
    "DataFileError",
    "Dataset",
    "MissingDataFileError",
    "TimeSplit",
    "Window",
    "autism_result_findings",
    "data_root",
    "dataset_time_windows",
    "fit_standardizer",
    "is_synthetic",
    "list_datasets",
    "load_bitcoin",
    "load_bitcoinheist",
    "load_dataset",
    "load_elliptic",
    "make_synthetic",
    "iter_bitcoin_frames",
    "read_bitcoin_frame",
    "simulate_frame",
    "simulate_transactions",
    "split_indices",
    "standardize",
    "subsample_rows",
    "time_windows",
    "validate_bitcoin_frame",
]
