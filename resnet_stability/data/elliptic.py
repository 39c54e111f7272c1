"""The Elliptic Bitcoin transaction data set (Weber et al. 2019), from its Kaggle layout.

Public stand-in for the paper's (private) Bitcoin data: 203,769 Bitcoin transactions in
49 time steps (about two weeks each), 46,564 of them labelled illicit or licit. Get it
from https://www.kaggle.com/datasets/ellipticco/elliptic-data-set (check its terms of
use there); this package does not ship or download it.

Folder layout read by :func:`load_elliptic` (``path`` is the folder):

- ``elliptic_txs_features.csv``: NO header. Column 1 ``txId``, column 2 the time step
  (1..49), then 165 anonymised features (93 "local" + 72 "aggregated" in the release;
  named ``local_1..local_93``, ``agg_1..agg_72`` when there are exactly 165, else
  ``feature_1..feature_k``). If the first line is not numeric it is taken as a header
  and its names are used.
- ``elliptic_txs_classes.csv``: header ``txId,class``; class ``"1"`` = illicit,
  ``"2"`` = licit, ``"unknown"`` = unlabelled.
- ``elliptic_txs_edgelist.csv`` (the transaction graph) is not needed and not read.

Preprocessing: rows with class "unknown" are DROPPED (about 77 % of the release);
labels licit = 0, illicit = 1; features are every column except txId and the time step,
all numeric (``numeric_mask`` True), unscaled; ``time`` is the time step,
``time_unit = "time step"``. Rows keep the features file's order.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pandas as pd

from .dataset import Dataset

FEATURES_FILE = "elliptic_txs_features.csv"
CLASSES_FILE = "elliptic_txs_classes.csv"
EDGES_FILE = "elliptic_txs_edgelist.csv"

#: Raw class value -> label (``class_names[label]``); "unknown" rows are dropped.
CLASS_MAP = {"2": 0, "1": 1}
CLASS_NAMES = ("licit", "illicit")
UNKNOWN = "unknown"
TIME_UNIT = "time step"

N_LOCAL, N_AGGREGATE = 93, 72


def _feature_names(k: int) -> tuple[str, ...]:
    if k == N_LOCAL + N_AGGREGATE:
        return tuple(f"local_{i}" for i in range(1, N_LOCAL + 1)) + tuple(
            f"agg_{i}" for i in range(1, N_AGGREGATE + 1)
        )
    return tuple(f"feature_{i}" for i in range(1, k + 1))


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _read_features(path: pathlib.Path) -> tuple[pd.DataFrame, tuple[str, ...] | None]:
    first = pd.read_csv(path, header=None, nrows=1, dtype=str)
    if first.shape[1] < 3:
        raise ValueError(
            f"{path}: expected txId, time step and at least one feature per line, got "
            f"{first.shape[1]} column(s)"
        )
    has_header = not all(_is_number(v) for v in first.iloc[0, :2])
    frame = pd.read_csv(path, header=None, skiprows=1 if has_header else 0, low_memory=False)
    names = tuple(str(v) for v in first.iloc[0, 2:]) if has_header else None
    return frame, names


def load_elliptic(path: os.PathLike | str) -> Dataset:
    """Load the labelled Elliptic transactions from the Kaggle folder ``path``.

    Returns a Dataset named "elliptic": ``X`` the 165 features (float64, unscaled,
    ``numeric_mask`` all True), ``y`` licit = 0 / illicit = 1, ``time`` the time step
    (1..49), ``time_unit = "time step"``. Rows with class "unknown" are dropped. The
    common protocol trains on time steps 1-34 and tests on 35-49
    (``DEFAULT_WINDOWS["elliptic"]`` in :mod:`~resnet_stability.data.timesplit`).

    Raises:
        FileNotFoundError: ``path`` is not a folder, or a required file is missing
            (named; the edge list is not required).
        ValueError: a malformed file: non-numeric features or time steps, duplicate
            txIds, a txId without a class entry, or a class other than "1", "2",
            "unknown".
    """
    folder = pathlib.Path(path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Elliptic: {folder} is not a folder; pass the folder that holds "
            f"{FEATURES_FILE} and {CLASSES_FILE}"
        )
    missing = [f for f in (FEATURES_FILE, CLASSES_FILE) if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"Elliptic: missing file(s) {missing} in {folder}; needed: {FEATURES_FILE} "
            f"(no header: txId, time step, 165 features) and {CLASSES_FILE} (header "
            f"txId,class). {EDGES_FILE} is not needed."
        )
    features, header_names = _read_features(folder / FEATURES_FILE)
    classes = pd.read_csv(folder / CLASSES_FILE, dtype=str, keep_default_na=False)
    classes.columns = [str(c).strip() for c in classes.columns]
    if list(classes.columns[:2]) != ["txId", "class"]:
        raise ValueError(
            f"Elliptic: {CLASSES_FILE} must have the header 'txId,class', got "
            f"{list(classes.columns)}"
        )

    numeric = features.apply(pd.to_numeric, errors="coerce")
    bad = features.notna() & numeric.isna() | features.isna()
    if bad.to_numpy().any():
        rows, cols = np.nonzero(bad.to_numpy())
        examples = [f"row {r}, column {c + 1}" for r, c in zip(rows[:5], cols[:5])]
        raise ValueError(
            f"Elliptic: {FEATURES_FILE} has {len(rows)} missing or non-numeric value(s), "
            f"e.g. at {examples} (1-based columns: 1 txId, 2 time step, then features)"
        )
    tx = numeric.iloc[:, 0]
    steps = numeric.iloc[:, 1].to_numpy(np.float64)
    if np.any(steps != np.round(steps)) or np.any(steps < 1):
        bad_steps = sorted(set(steps[(steps != np.round(steps)) | (steps < 1)].tolist()))[:5]
        raise ValueError(
            f"Elliptic: the time step (column 2 of {FEATURES_FILE}) must be an integer "
            f">= 1, got {bad_steps}"
        )
    if tx.duplicated().any():
        dups = tx[tx.duplicated()].astype(np.int64).tolist()[:5]
        raise ValueError(f"Elliptic: duplicate txId(s) in {FEATURES_FILE}: {dups}")

    raw_class = classes["class"].str.strip()
    allowed = set(CLASS_MAP) | {UNKNOWN}
    odd = sorted(set(raw_class) - allowed)
    if odd:
        raise ValueError(
            f"Elliptic: unknown class value(s) {odd[:5]} in {CLASSES_FILE}; allowed: "
            f"'1' (illicit), '2' (licit), 'unknown'"
        )
    class_tx = pd.to_numeric(classes["txId"], errors="coerce")
    if class_tx.isna().any():
        raise ValueError(f"Elliptic: non-numeric txId(s) in {CLASSES_FILE}")
    lookup = pd.Series(raw_class.to_numpy(), index=class_tx.to_numpy())
    if lookup.index.duplicated().any():
        dups = lookup.index[lookup.index.duplicated()].tolist()[:5]
        raise ValueError(f"Elliptic: duplicate txId(s) in {CLASSES_FILE}: {dups}")
    row_class = lookup.reindex(tx.to_numpy())
    if row_class.isna().any():
        absent = tx[row_class.isna().to_numpy()].astype(np.int64).tolist()[:5]
        raise ValueError(
            f"Elliptic: {int(row_class.isna().sum())} txId(s) of {FEATURES_FILE} have no "
            f"row in {CLASSES_FILE}, e.g. {absent}"
        )
    row_class = row_class.to_numpy()
    keep = row_class != UNKNOWN
    n_total, n_unknown = len(row_class), int((~keep).sum())
    y = np.array([CLASS_MAP[c] for c in row_class[keep]], dtype=np.int64)
    X = numeric.iloc[:, 2:].to_numpy(np.float64)[keep]
    names = header_names if header_names is not None else _feature_names(X.shape[1])
    counts = np.bincount(y, minlength=2)
    description = (
        "Elliptic Data Set (Weber et al. 2019, 'Anti-Money Laundering in Bitcoin', "
        "KDD workshop; Kaggle ellipticco/elliptic-data-set; see its terms of use): "
        f"Bitcoin transactions in time steps of about two weeks. Read from {folder}: "
        f"{n_total} transactions, {n_unknown} with class 'unknown' DROPPED, "
        f"{int(keep.sum())} kept ({counts[0]} licit, {counts[1]} illicit). Target: "
        "licit (class '2') = 0, illicit (class '1') = 1. Features: all "
        f"{X.shape[1]} anonymised feature columns (txId and time step excluded), "
        "numeric, unscaled. time = time step (not a feature); the common protocol "
        "trains on steps 1-34 and tests on 35-49."
    )
    return Dataset(
        name="elliptic",
        X=X,
        y=y,
        feature_names=names,
        class_names=CLASS_NAMES,
        numeric_mask=np.ones(X.shape[1], dtype=bool),
        description=description,
        time=steps[keep],
        time_unit=TIME_UNIT,
    )
