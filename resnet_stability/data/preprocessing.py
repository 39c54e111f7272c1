"""Encoding raw frames into arrays, and the per-trial split / standardisation.

Load time (no statistics of any split are used):

- numeric attributes -> one float64 column each, unscaled (``numeric_mask`` True);
- 0/1 flag attributes -> one float64 0/1 column each (``numeric_mask`` False);
- categorical attributes -> full one-hot, one column per level seen in the file, named
  ``"attribute=level"``; levels sorted, the missing level (``'?'`` or empty in the raw
  data, renamed :data:`MISSING`) last (``numeric_mask`` False);
- or, for the paper's raw-attribute inputs, categorical attributes -> ONE column of
  integer codes 0, 1, ... in that same level order (kind ``"code"``; standardised per
  trial like a numeric column, ``numeric_mask`` True).

Trial time: :func:`split_indices` then :func:`fit_standardizer` on the training rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

#: Level used for a missing categorical value (``'?'``, empty, or NaN in the raw data).
MISSING = "missing"

NUMERIC = "numeric"
FLAG = "flag"
CATEGORICAL = "categorical"
CODE = "code"
_KINDS = (NUMERIC, FLAG, CATEGORICAL, CODE)

_MISSING_TOKENS = {"?", ""}


def clean_strings(series: pd.Series) -> pd.Series:
    """Strip surrounding whitespace; map ``'?'``, empty strings and NaN to :data:`MISSING`."""
    missing = series.isna().to_numpy().copy()
    text = series.astype(object).where(~missing, "").astype(str).str.strip()
    missing |= text.isin(_MISSING_TOKENS).to_numpy()
    return text.where(~missing, MISSING).astype(object)


def to_numeric(series: pd.Series, column: str, *, allow_missing: bool = False) -> pd.Series:
    """Convert to float64; ``'?'``, empty and NaN become NaN (allowed only if asked).

    Raises:
        ValueError: a value is not a number, or a value is missing and
            ``allow_missing`` is False. The message names the column and the value.
    """
    def parse(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return np.nan
        if isinstance(v, str):
            s = v.strip()
            if s in _MISSING_TOKENS:
                return np.nan
            try:
                return float(s)
            except ValueError:
                raise ValueError(
                    f"column {column!r}: value {v!r} is not a number"
                ) from None
        return float(v)

    out = series.astype(object).map(parse).astype(np.float64)
    if not allow_missing and out.isna().any():
        n = int(out.isna().sum())
        raise ValueError(f"column {column!r}: {n} missing value(s) where none are expected")
    return out


def levels_of(values: pd.Series) -> list[str]:
    """The levels of a cleaned categorical column: sorted (numeric-looking ones in
    numeric order), the missing level last."""
    levels = sorted(set(values) - {MISSING}, key=_level_sort_key)
    if (values == MISSING).any():
        levels.append(MISSING)
    return levels


def integer_codes(values: pd.Series) -> np.ndarray:
    """A cleaned categorical column as float64 codes 0, 1, ... in :func:`levels_of` order."""
    return pd.Categorical(values, categories=levels_of(values)).codes.astype(np.float64)


def one_hot(values: pd.Series, column: str) -> tuple[np.ndarray, list[str]]:
    """Full one-hot of a cleaned categorical column: ``(matrix (n, k), names)``."""
    levels = levels_of(values)
    codes = pd.Categorical(values, categories=levels).codes
    matrix = np.zeros((len(values), len(levels)), dtype=np.float64)
    matrix[np.arange(len(values)), codes] = 1.0
    return matrix, [f"{column}={level}" for level in levels]


def _level_sort_key(level: str) -> tuple:
    """Numeric-looking levels in numeric order ("2" before "10"), then text levels."""
    try:
        return (0, float(level), "")
    except ValueError:
        return (1, 0.0, level)


def merge_case_variants(values: pd.Series) -> pd.Series:
    """Map levels that differ only in letter case to one spelling (the most frequent;
    ties go to the spelling that sorts first), e.g. ``'others'`` -> ``'Others'``."""
    counts = values.value_counts()
    groups: dict[str, list[str]] = {}
    for level in counts.index:
        groups.setdefault(str(level).casefold(), []).append(level)
    mapping = {}
    for variants in groups.values():
        if len(variants) > 1:
            keep = sorted(variants, key=lambda v: (-counts[v], v))[0]
            mapping.update({v: keep for v in variants})
    return values.map(lambda v: mapping.get(v, v))


def encode_columns(
    frame: pd.DataFrame, spec: Sequence[tuple[str, str]]
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Encode ``frame`` column by column, in the order of ``spec``.

    Args:
        frame: cleaned frame: numeric columns float without NaN, flag columns 0/1,
            categorical columns strings (missing already :data:`MISSING`).
        spec: ``[(column, kind), ...]`` with kind ``"numeric"``, ``"flag"``,
            ``"categorical"`` (one-hot) or ``"code"`` (categorical as one column of
            integer codes, :func:`integer_codes`, standardised like a numeric one).

    Returns:
        ``(X float64 (n, d), feature_names, numeric_mask bool (d,))``.
    """
    blocks: list[np.ndarray] = []
    names: list[str] = []
    mask: list[bool] = []
    for column, kind in spec:
        if kind not in _KINDS:
            raise ValueError(f"column {column!r}: kind {kind!r} is not one of {_KINDS}")
        if kind == CATEGORICAL:
            matrix, cols = one_hot(frame[column], column)
            blocks.append(matrix)
            names.extend(cols)
            mask.extend([False] * len(cols))
            continue
        if kind == CODE:
            blocks.append(integer_codes(frame[column])[:, None])
            names.append(column)
            mask.append(True)
            continue
        values = np.asarray(frame[column], dtype=np.float64)
        if np.isnan(values).any():
            raise ValueError(f"column {column!r}: NaN left after cleaning")
        if kind == FLAG and not np.isin(values, (0.0, 1.0)).all():
            bad = sorted(set(values[~np.isin(values, (0.0, 1.0))].tolist()))[:5]
            raise ValueError(f"column {column!r}: a 0/1 flag holds other values {bad}")
        blocks.append(values[:, None])
        names.append(column)
        mask.append(kind == NUMERIC)
    X = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(frame), 0))
    return X, tuple(names), np.asarray(mask, dtype=bool)


def bin_labels(values: np.ndarray, upper_edges: Sequence[float]) -> np.ndarray:
    """Label ``k`` for ``upper_edges[k-1] < v <= upper_edges[k]`` (``upper_edges[-1]`` may be inf).

    ``bin_labels(rings, [8, 10, inf])`` gives 0 for 1-8, 1 for 9-10, 2 for 11 and up.
    """
    values = np.asarray(values, dtype=np.float64)
    edges = np.asarray(upper_edges, dtype=np.float64)
    if np.any(np.diff(edges) <= 0):
        raise ValueError(f"upper_edges must increase strictly, got {list(upper_edges)}")
    labels = np.searchsorted(edges, values, side="left")
    if np.any(labels >= len(edges)):
        raise ValueError(f"values above the last edge {edges[-1]}: {values[labels >= len(edges)][:5]}")
    return labels.astype(np.int64)


def split_indices(
    y: np.ndarray,
    test_size: float,
    seed: int,
    test_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(train_idx, test_idx)``: sorted int64 row indices.

    Without ``test_mask``: a stratified random split,
    ``sklearn.model_selection.train_test_split(arange(n), test_size=test_size,
    random_state=seed, stratify=y)``; the same ``(y, test_size, seed)`` always gives the
    same split. With ``test_mask`` (bool, length n): the fixed split it marks
    (``test_size`` and ``seed`` are then ignored).

    Raises:
        ValueError: ``test_size`` not in (0, 1) (or not a positive row count smaller
            than n), ``test_mask`` of the wrong length, or a split with an empty side.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}")
    n = y.shape[0]
    if test_mask is not None:
        mask = np.asarray(test_mask)
        if mask.dtype != bool:
            raise ValueError(f"test_mask must be boolean, got dtype {mask.dtype}")
        if mask.shape != (n,):
            raise ValueError(f"test_mask must have shape ({n},), got {mask.shape}")
        train_idx = np.flatnonzero(~mask).astype(np.int64)
        test_idx = np.flatnonzero(mask).astype(np.int64)
        if train_idx.size == 0 or test_idx.size == 0:
            raise ValueError("test_mask leaves the train or the test split empty")
        return train_idx, test_idx
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float, np.integer, np.floating)):
        raise ValueError(f"test_size must be a float in (0, 1), got {test_size!r}")
    if isinstance(test_size, (float, np.floating)):
        if not 0.0 < float(test_size) < 1.0:
            raise ValueError(f"test_size must be a float in (0, 1), got {test_size!r}")
    elif not 0 < int(test_size) < n:
        raise ValueError(f"test_size as a row count must be in 1..{n - 1}, got {test_size!r}")
    train_idx, test_idx = train_test_split(
        np.arange(n, dtype=np.int64),
        test_size=test_size,
        random_state=seed,
        stratify=y,
    )
    return np.sort(train_idx).astype(np.int64), np.sort(test_idx).astype(np.int64)


def fit_standardizer(
    X_train: np.ndarray, numeric_mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-column ``(mean, scale)`` from the training rows only; apply as ``(X - mean) / scale``.

    Numeric columns (``numeric_mask`` True): mean and population standard deviation
    (``ddof=0``) of ``X_train``; a column that is constant in ``X_train`` gets scale 1.
    Other columns (one-hot, flags): mean 0, scale 1, so they pass through unchanged.
    """
    X_train = np.asarray(X_train, dtype=np.float64)
    numeric_mask = np.asarray(numeric_mask, dtype=bool)
    if X_train.ndim != 2:
        raise ValueError(f"X_train must be 2-D, got shape {X_train.shape}")
    if numeric_mask.shape != (X_train.shape[1],):
        raise ValueError(
            f"numeric_mask must have shape ({X_train.shape[1]},), got {numeric_mask.shape}"
        )
    if X_train.shape[0] == 0:
        raise ValueError("X_train has no rows")
    d = X_train.shape[1]
    mean = np.zeros(d, dtype=np.float64)
    scale = np.ones(d, dtype=np.float64)
    if numeric_mask.any():
        cols = X_train[:, numeric_mask]
        mu = cols.mean(axis=0)
        sd = cols.std(axis=0)
        constant = np.ptp(cols, axis=0) == 0
        sd[constant] = 1.0
        mean[numeric_mask] = mu
        scale[numeric_mask] = sd
    return mean, scale


def standardize(X: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(X - mean) / scale`` as float64 (the output of :func:`fit_standardizer`)."""
    return (np.asarray(X, dtype=np.float64) - mean) / scale


def subsample_positions(n: int, max_rows: int | None, seed: int) -> np.ndarray | None:
    """The rows :func:`subsample_rows` keeps of ``n`` rows: ``max_rows`` of them drawn
    without replacement by ``numpy.random.default_rng(seed)``, sorted; None when it
    keeps them all (``max_rows`` None or at least ``n``)."""
    if max_rows is None or n <= max_rows:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))


def subsample_rows(dataset, max_rows: int | None, seed: int):
    """At most ``max_rows`` rows of ``dataset`` (a uniform random, sorted subset, same
    ``seed`` -> same rows), keeping its ``test_mask`` for the rows kept. Used by the
    sweep's ``--quick`` mode; returns ``dataset`` itself when it is small enough."""
    rows = subsample_positions(dataset.X.shape[0], max_rows, seed)
    if rows is None:
        return dataset
    return dataclasses.replace(
        dataset,
        X=dataset.X[rows],
        y=dataset.y[rows],
        test_mask=None if dataset.test_mask is None else dataset.test_mask[rows],
        time=None if dataset.time is None else dataset.time[rows],
    )
