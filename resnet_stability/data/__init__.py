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
"""

from .dataset import Dataset
from .files import (
    EXPECTED_SHA256,
    ChecksumMismatchError,
    DataFileError,
    MissingDataFileError,
    data_root,
)
from .preprocessing import fit_standardizer, split_indices, standardize, subsample_rows
from .registry import DATASETS, list_datasets, load_dataset
from .synthetic import SYNTHETIC_KINDS, make_synthetic
from .uci import SOURCES, UCI_IDS, autism_result_findings

__all__ = [
    "DATASETS",
    "EXPECTED_SHA256",
    "SOURCES",
    "SYNTHETIC_KINDS",
    "UCI_IDS",
    "ChecksumMismatchError",
    "DataFileError",
    "Dataset",
    "MissingDataFileError",
    "autism_result_findings",
    "data_root",
    "fit_standardizer",
    "list_datasets",
    "load_dataset",
    "make_synthetic",
    "split_indices",
    "standardize",
    "subsample_rows",
]
