"""BitcoinHeist ransomware addresses (UCI 526; Akcora et al., IJCAI-PRICAI 2020), with time.

A public, time-stamped Bitcoin data set: 2,916,697 daily address records from 2011 to
2018, each either "white" (not known to be ransomware) or labelled with a ransomware
family (e.g. "princetonCerber", "montrealCryptoLocker"). Edges moving less than
0.3 BTC were filtered out by the authors. Licence: CC BY 4.0 (UCI's listing).

Raw columns (``BitcoinHeistData.csv``, with this header): ``address, year, day, length,
weight, count, looped, neighbors, income, label``. ``day`` is the day of the year
(1..365, 1..366 in leap years); ``income`` is in Satoshi (1e-8 BTC).

Preprocessing (:func:`preprocess_bitcoinheist`):

- Target: binary. ``label == "white"`` -> 0, any other label (a ransomware family) -> 1;
  ``class_names = ("white", "ransomware")``. Strongly imbalanced (about 1.4 % ransomware
  in the release).
- Features: ``log1p`` of all six graph attributes, in this order: ``log1p_length``,
  ``log1p_weight``, ``log1p_count``, ``log1p_looped``, ``log1p_neighbors``,
  ``log1p_income``. All six are non-negative and heavily right-skewed (income spans
  about six orders of magnitude), so one transform serves them all; numeric, unscaled
  (``numeric_mask`` True; standardise per trial).
- Dropped: ``address`` (an identifier), ``year`` and ``day`` (they become ``time``,
  not features: as a feature, time would make later test windows an extrapolation).
- ``time`` = days since 2009-01-01: ``(date(year, 1, 1) - date(2009, 1, 1)).days +
  day - 1``; ``time_unit = "days since 2009-01-01"``.

Sources: ``source="local"`` reads ``path`` (a CSV with the header above; ``address`` may
be absent); ``source="uci"`` fetches UCI id 526 with ucimlrepo through the on-disk cache
of :mod:`resnet_stability.data.online` (same frame, read back from the cache CSV).
"""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pandas as pd

from .dataset import Dataset
from .online import fetch_raw_frame

UCI_ID = 526
SOURCES = ("local", "uci")
RAW_COLUMNS = (
    "address", "year", "day", "length", "weight", "count", "looped", "neighbors",
    "income", "label",
)
REQUIRED_COLUMNS = RAW_COLUMNS[1:]  # address is optional (ucimlrepo may leave IDs out)
FEATURE_COLUMNS = ("length", "weight", "count", "looped", "neighbors", "income")
FEATURE_NAMES = tuple(f"log1p_{c}" for c in FEATURE_COLUMNS)
CLASS_NAMES = ("white", "ransomware")
WHITE = "white"
TIME_ORIGIN_YEAR = 2009
TIME_UNIT = "days since 2009-01-01"


def _canonical_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Match column names ignoring case and surrounding spaces; check the required ones."""
    lookup = {str(c).strip().lower(): c for c in frame.columns}
    missing = [c for c in REQUIRED_COLUMNS if c not in lookup]
    if missing:
        raise ValueError(
            f"BitcoinHeist: missing column(s) {missing}; expected the header "
            f"{','.join(RAW_COLUMNS)} (address optional); columns found: "
            f"{list(map(str, frame.columns))}"
        )
    return pd.DataFrame({c: frame[lookup[c]] for c in REQUIRED_COLUMNS}).reset_index(
        drop=True
    )


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise ValueError(
            f"BitcoinHeist: column {column!r} has {int(bad.sum())} missing or non-numeric "
            f"value(s), e.g. rows {rows} (0-based)"
        )
    return values


def bitcoinheist_time(year: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 2009-01-01 of (year, day-of-year), day 1 = 1 January.

    Raises:
        ValueError: a non-integer year/day, or a day outside 1..365 (1..366 in leap years).
    """
    year = np.asarray(year, dtype=np.float64)
    day = np.asarray(day, dtype=np.float64)
    for name, v in (("year", year), ("day", day)):
        if np.any(v != np.round(v)):
            raise ValueError(f"BitcoinHeist: column {name!r} must hold integers")
    year_i = year.astype(np.int64)
    leap = (year_i % 4 == 0) & ((year_i % 100 != 0) | (year_i % 400 == 0))
    bad = (day < 1) | (day > np.where(leap, 366, 365))
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise ValueError(
            f"BitcoinHeist: column 'day' is the day of the year (1..365, 1..366 in leap "
            f"years); {int(bad.sum())} row(s) out of range, e.g. rows {rows} "
            f"(year, day) = {[(int(year_i[r]), day[r]) for r in rows]}"
        )
    jan1 = (year_i - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    origin = np.datetime64(f"{TIME_ORIGIN_YEAR}-01-01", "D")
    return (jan1 - origin).astype(np.float64) + day - 1.0


def preprocess_bitcoinheist(raw: pd.DataFrame, source: str = "") -> Dataset:
    """The Dataset of a raw BitcoinHeist frame (see the module docstring)."""
    frame = _canonical_columns(raw)
    labels = frame["label"].astype(object)
    if labels.isna().any():
        rows = np.flatnonzero(labels.isna().to_numpy())[:5].tolist()
        raise ValueError(f"BitcoinHeist: missing label(s), e.g. rows {rows} (0-based)")
    labels = labels.astype(str).str.strip()
    y = (labels != WHITE).to_numpy().astype(np.int64)
    columns = []
    for c in FEATURE_COLUMNS:
        v = _numbers(frame, c)
        if np.any(v < 0):
            rows = np.flatnonzero(v < 0)[:5].tolist()
            raise ValueError(
                f"BitcoinHeist: column {c!r} must be >= 0; negative at rows {rows}"
            )
        columns.append(np.log1p(v))
    X = np.column_stack(columns) if len(frame) else np.zeros((0, len(FEATURE_COLUMNS)))
    time = bitcoinheist_time(_numbers(frame, "year"), _numbers(frame, "day"))
    families = sorted(set(labels[labels != WHITE]))
    counts = np.bincount(y, minlength=2)
    years = _numbers(frame, "year")
    span = f"{int(years.min())}-{int(years.max())}" if len(years) else "empty"
    description = (
        "BitcoinHeist ransomware address dataset (UCI id 526; Akcora, Li, Gel & "
        "Kantarcioglu, 'BitcoinHeist: Topological Data Analysis for Ransomware "
        "Detection on the Bitcoin Blockchain', IJCAI-PRICAI 2020)"
        + (f", from {source}" if source else "")
        + f": {len(frame)} daily address records, years {span}. Target: binary, "
        f"label 'white' = 0 ({counts[0]}), any ransomware family = 1 ({counts[1]}; "
        f"{len(families)} families). Features: log1p of length, weight, count, looped, "
        "neighbors, income (Satoshi), numeric, unscaled. Dropped: address; year/day "
        "become time = days since 2009-01-01 (not a feature). "
        "Licence: CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)."
    )
    return Dataset(
        name="bitcoinheist",
        X=X,
        y=y,
        feature_names=FEATURE_NAMES,
        class_names=CLASS_NAMES,
        numeric_mask=np.ones(len(FEATURE_NAMES), dtype=bool),
        description=description,
        time=time,
        time_unit=TIME_UNIT,
    )


def load_bitcoinheist(
    path: os.PathLike | str | None = None,
    source: str = "local",
    *,
    cache_dir: os.PathLike | str | None = None,
    refresh: bool = False,
) -> Dataset:
    """BitcoinHeist (UCI 526) as a binary white-vs-ransomware Dataset with ``time``.

    ``source="local"``: read the CSV at ``path`` (e.g. ``BitcoinHeistData.csv`` from
    https://archive.ics.uci.edu/dataset/526). ``source="uci"``: fetch UCI id 526 with
    ucimlrepo, cached under ``cache_dir`` (default
    :func:`~resnet_stability.data.online.cache_root`), ``refresh=True`` re-fetches;
    ``path`` must then be None. See the module docstring for every choice.

    Raises:
        ValueError: unknown ``source``, a missing ``path`` for ``source="local"``, or
            malformed data (missing columns, non-numeric values, days out of range).
        FileNotFoundError: no file at ``path``.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; allowed sources: {list(SOURCES)}")
    if source == "uci":
        if path is not None:
            raise ValueError(
                "BitcoinHeist: pass either path=... (source='local') or source='uci', "
                f"not both (got path={str(path)!r})"
            )
        raw = fetch_raw_frame(UCI_ID, cache_dir=cache_dir, refresh=refresh)
        return preprocess_bitcoinheist(raw, source=f"UCI id {UCI_ID} via ucimlrepo")
    if path is None:
        raise ValueError(
            "BitcoinHeist: source='local' needs path=... to BitcoinHeistData.csv "
            "(https://archive.ics.uci.edu/dataset/526), or use source='uci' to fetch it "
            "with ucimlrepo"
        )
    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"BitcoinHeist: file not found: {path}")
    raw = pd.read_csv(path, low_memory=False)
    return preprocess_bitcoinheist(raw, source=path.name)
