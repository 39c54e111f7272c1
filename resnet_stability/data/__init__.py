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
(one :class:`DatasetRecord` per dataset: loader, sweep preset, time windows, ...).

Time-stamped Bitcoin data (not shipped; bring a file): :mod:`.bitcoin` (transaction
schema, :func:`load_bitcoin`), :mod:`.elliptic` (Kaggle Elliptic folder),
:mod:`.bitcoinheist` (UCI 526), :mod:`.simulate` (synthetic drifting transactions),
:mod:`.timesplit` (train on an early span, test on later windows), :mod:`.stream` (a
transaction file read in chunks: scan, standardiser, shuffle buffer, prefetch).

>>> from resnet_stability.data import simulate_transactions, load_bitcoin, dataset_time_windows
>>> ds = load_bitcoin(simulate_transactions("tx.parquet"))   # SYNTHETIC, drifting
>>> split = dataset_time_windows(ds)                        # 365-day train, 182-day windows
"""

import importlib

#: Public name -> the submodule that defines it. The submodules are imported on first
#: use (PEP 562), so that importing the registry of dataset records (e.g. for the sweep's
#: ``--help``) does not import pandas, scikit-learn or the loaders.
_EXPORTS = {
    'BITCOIN_SCHEMA': 'bitcoin',
    'ENTITY_LABELS': 'bitcoin',
    'BitcoinSchemaError': 'bitcoin',
    'is_synthetic': 'bitcoin',
    'load_bitcoin': 'bitcoin',
    'iter_bitcoin_frames': 'bitcoin',
    'read_bitcoin_frame': 'bitcoin',
    'validate_bitcoin_frame': 'bitcoin',
    'load_bitcoinheist': 'bitcoinheist',
    'Dataset': 'dataset',
    'load_elliptic': 'elliptic',
    'EXPECTED_SHA256': 'files',
    'ChecksumMismatchError': 'files',
    'DataFileError': 'files',
    'MissingDataFileError': 'files',
    'data_root': 'files',
    'fit_standardizer': 'preprocessing',
    'split_indices': 'preprocessing',
    'standardize': 'preprocessing',
    'subsample_rows': 'preprocessing',
    'DATASETS': 'registry',
    'RECORDS': 'registry',
    'DatasetRecord': 'registry',
    'dataset_record': 'registry',
    'list_datasets': 'registry',
    'load_dataset': 'registry',
    'register': 'registry',
    'simulate_frame': 'simulate',
    'simulate_transactions': 'simulate',
    'SYNTHETIC_KINDS': 'synthetic',
    'make_synthetic': 'synthetic',
    'DEFAULT_WINDOWS': 'timesplit',
    'TimeSplit': 'timesplit',
    'Window': 'timesplit',
    'dataset_time_windows': 'timesplit',
    'time_windows': 'timesplit',
    'SOURCES': 'uci',
    'UCI_IDS': 'uci',
    'autism_result_findings': 'uci',
}


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "BITCOIN_SCHEMA",
    "DATASETS",
    "DEFAULT_WINDOWS",
    "RECORDS",
    "ENTITY_LABELS",
    "EXPECTED_SHA256",
    "SOURCES",
    "SYNTHETIC_KINDS",
    "UCI_IDS",
    "BitcoinSchemaError",
    "ChecksumMismatchError",
    "DataFileError",
    "Dataset",
    "DatasetRecord",
    "MissingDataFileError",
    "TimeSplit",
    "Window",
    "autism_result_findings",
    "data_root",
    "dataset_record",
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
    "register",
    "simulate_frame",
    "simulate_transactions",
    "split_indices",
    "standardize",
    "subsample_rows",
    "time_windows",
    "validate_bitcoin_frame",
]
