"""Bitcoin transactions labelled by entity type: the schema, its validation, the loader.

Zhang & Wynter classify Bitcoin transactions by the type of entity behind them from four
raw attributes per transaction (number of input addresses, number of output addresses,
BTC volume, time stamp). Their data is not public, so this module defines a plain file
schema that users fill with their own data (or with
:func:`~resnet_stability.data.simulate.simulate_transactions`, a synthetic stand-in).

File schema (:data:`BITCOIN_SCHEMA`; one row per transaction, CSV or Parquet; other
columns are allowed and ignored; column names are matched exactly):

============  =================================  ==========================================
column        type                               meaning / constraint
============  =================================  ==========================================
timestamp     datetime64, ISO-8601 string or     when the transaction was confirmed;
              unix seconds (int or float)        2009-01-03 <= t < 2100-01-01 (UTC)
n_inputs      integer                            number of input addresses, >= 1
n_outputs     integer                            number of output addresses, >= 1
volume_btc    float                              BTC moved, >= 0 and finite
entity        string                             "exchange", "service", "gambling" or
                                                 "mining_pool"
============  =================================  ==========================================

Timestamps: a numeric column is unix seconds (UTC); a datetime column (e.g. a Parquet
timestamp) is used as is (timezone-naive means UTC, timezone-aware is converted to UTC);
a text column is parsed as ISO 8601 (``"2014-03-01"``, ``"2014-03-01 12:34:56"``,
``"2014-03-01T12:34:56Z"``, ``"2014-03-01T12:34:56+02:00"``). A text column that mixes
ISO strings with numbers is rejected (the numbers are reported as unparsable).

Entity labels are compared after stripping spaces, lower-casing and mapping spaces and
hyphens to ``_`` (so ``"Mining pool"`` is ``"mining_pool"``). No value may be missing.

Feature engineering (:func:`bitcoin_features`), in this column order:

====================  ===========================================  ============
feature               definition                                   numeric_mask
====================  ===========================================  ============
log1p_n_inputs        log(1 + n_inputs)                            True
log1p_n_outputs       log(1 + n_outputs)                           True
log1p_volume_btc      log(1 + volume_btc)                          True
hour_sin, hour_cos    sin/cos(2 pi h / 24), h = hour of day in     False
                      UTC with minutes and seconds as fractions
                      (h = seconds since UTC midnight / 3600)
weekday_sin,          sin/cos(2 pi d / 7), d = UTC day of week,    False
weekday_cos           Monday = 0 ... Sunday = 6
====================  ===========================================  ============

The log features are standardised per trial (``numeric_mask`` True); the cyclic ones are
already in [-1, 1] and pass through. The absolute time is NOT a feature: it is
``Dataset.time`` (float days since 2012-01-01 00:00 UTC), the coordinate that
:func:`~resnet_stability.data.timesplit.time_windows` splits on; as a feature it would
turn every later test window into an extrapolation in that one column.

Labels: ``class_names = ENTITY_LABELS = ("exchange", "service", "gambling",
"mining_pool")``, label k is ``ENTITY_LABELS[k]`` whatever the file contains. Rows keep
the file's order (row i of the Dataset is data row i of the file).

Synthetic files: when ``<path>.meta.json`` exists next to the file (written by
:func:`~resnet_stability.data.simulate.simulate_transactions`) and says
``"synthetic": true``, the Dataset's ``synthetic`` flag is True (and its description
starts with ``"SYNTHETIC"``); test with :func:`is_synthetic`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib

import numpy as np
import pandas as pd

from .dataset import Dataset

#: Entity types, in label order (label k is ``ENTITY_LABELS[k]``).
ENTITY_LABELS: tuple[str, ...] = ("exchange", "service", "gambling", "mining_pool")

#: ``Dataset.time`` is measured in days from this instant (UTC).
TIME_ORIGIN = pd.Timestamp("2012-01-01", tz="UTC")
TIME_UNIT = "days since 2012-01-01"

#: Timestamps outside [TIMESTAMP_MIN, TIMESTAMP_MAX) are rejected: Bitcoin's genesis
#: block is 2009-01-03; a date far in the future usually means milliseconds, not seconds.
TIMESTAMP_MIN = pd.Timestamp("2009-01-03", tz="UTC")
TIMESTAMP_MAX = pd.Timestamp("2100-01-01", tz="UTC")

#: File suffixes :func:`read_bitcoin_frame` accepts (compressed CSV included).
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip")
PARQUET_SUFFIXES = (".parquet", ".pq")

FEATURE_NAMES: tuple[str, ...] = (
    "log1p_n_inputs",
    "log1p_n_outputs",
    "log1p_volume_btc",
    "hour_sin",
    "hour_cos",
    "weekday_sin",
    "weekday_cos",
)
NUMERIC_MASK: tuple[bool, ...] = (True, True, True, False, False, False, False)

#: How many offending rows an error message shows.
_SHOW = 5


@dataclasses.dataclass(frozen=True)
class SchemaColumn:
    """One column of the transaction schema."""

    name: str
    dtype: str
    meaning: str
    constraint: str


#: The transaction file schema: column name -> :class:`SchemaColumn` (in file order).
BITCOIN_SCHEMA: dict[str, SchemaColumn] = {
    c.name: c
    for c in (
        SchemaColumn(
            "timestamp",
            "datetime64, ISO-8601 string, or unix seconds (int/float)",
            "when the transaction was confirmed (naive = UTC)",
            "2009-01-03 <= timestamp < 2100-01-01",
        ),
        SchemaColumn("n_inputs", "int", "number of input addresses", ">= 1"),
        SchemaColumn("n_outputs", "int", "number of output addresses", ">= 1"),
        SchemaColumn("volume_btc", "float", "BTC volume of the transaction", ">= 0, finite"),
        SchemaColumn(
            "entity",
            "str",
            "type of the entity behind the transaction (the label)",
            "one of " + ", ".join(ENTITY_LABELS),
        ),
    )
}

SCHEMA_COLUMNS: tuple[str, ...] = tuple(BITCOIN_SCHEMA)


class BitcoinSchemaError(ValueError):
    """A transaction file or frame does not follow :data:`BITCOIN_SCHEMA`.

    ``problems`` lists one message per bad column (the ``str`` of the error joins them).
    Row numbers in messages are 0-based data rows (header excluded; CSV line = row + 2).
    """

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = list(problems)
        where = f"{source}: " if source else ""
        allowed = "; ".join(
            f"{c.name} ({c.dtype}; {c.constraint})" for c in BITCOIN_SCHEMA.values()
        )
        super().__init__(
            f"{where}transaction data does not follow the Bitcoin schema:\n  - "
            + "\n  - ".join(self.problems)
            + f"\nExpected columns: {allowed}."
        )


#: Rows per chunk when streaming a transaction file.
CHUNK_ROWS = 1_000_000


def _rows(mask: np.ndarray, values: pd.Series | None = None) -> str:
    """'3 row(s), e.g. rows 1, 4, 9 (values ...)' for a boolean mask of bad rows."""
    bad = np.flatnonzero(mask)
    shown = bad[:_SHOW]
    text = f"{bad.size} row(s), e.g. row(s) {', '.join(str(int(i)) for i in shown)}"
    if values is not None:
        vals = [values.iloc[int(i)] for i in shown]
        text += f" (value(s) {', '.join(repr(_plain(v)) for v in vals)})"
    return text


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _parse_timestamp(col: pd.Series, problems: list[str]) -> pd.Series | None:
    name = "timestamp"
    missing = col.isna().to_numpy()
    if pd.api.types.is_bool_dtype(col.dtype):
        problems.append(f"column {name!r}: boolean values are not timestamps")
        return None
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        ts = col
        if getattr(col.dt, "tz", None) is None:
            ts = col.dt.tz_localize("UTC")
        else:
            ts = col.dt.tz_convert("UTC")
        bad_parse = missing
    elif pd.api.types.is_numeric_dtype(col.dtype):
        seconds = col.astype(np.float64)
        finite = np.isfinite(seconds.to_numpy())
        # Out-of-range seconds (e.g. milliseconds) would overflow datetime64; clip them
        # to just outside the allowed range and let the range check below report them.
        epoch = pd.Timestamp(0, tz="UTC")
        lo = int((TIMESTAMP_MIN - epoch).total_seconds()) - 86400
        hi = int((TIMESTAMP_MAX - epoch).total_seconds()) + 86400
        if pd.api.types.is_integer_dtype(col.dtype):
            safe = col.clip(lo, hi).astype(np.int64)
        else:
            safe = seconds.where(finite, 0.0).clip(lo, hi)
        ts = pd.to_datetime(safe, unit="s", utc=True)
        ts = ts.where(finite)
        bad_parse = ~finite
        if (bad_parse & ~missing).any():
            problems.append(
                f"column {name!r}: non-finite unix seconds in "
                + _rows(bad_parse & ~missing, col)
            )
            bad_parse = missing
    else:
        text = col.astype(object).where(~missing, None)
        ts = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
        bad_parse = ts.isna().to_numpy() & ~missing
        if bad_parse.any():
            problems.append(
                f"column {name!r}: unparsable timestamp(s) in {_rows(bad_parse, col)}; "
                "accepted: datetime64, ISO-8601 strings (e.g. '2014-03-01T12:34:56Z'), "
                "or a numeric column of unix seconds"
            )
        bad_parse = missing
    if missing.any():
        problems.append(f"column {name!r}: missing value(s) in {_rows(missing)}")
    ok = ~(ts.isna().to_numpy())
    out_of_range = ok & ((ts < TIMESTAMP_MIN) | (ts >= TIMESTAMP_MAX)).to_numpy()
    if out_of_range.any():
        problems.append(
            f"column {name!r}: timestamp(s) outside [{TIMESTAMP_MIN.date()}, "
            f"{TIMESTAMP_MAX.date()}) in {_rows(out_of_range, col)} (Bitcoin starts "
            "2009-01-03; unix times must be seconds, not milliseconds)"
        )
    return ts


def _parse_count(col: pd.Series, name: str, problems: list[str]) -> pd.Series | None:
    if pd.api.types.is_bool_dtype(col.dtype):
        problems.append(f"column {name!r}: expected integers >= 1, got booleans")
        return None
    values = pd.to_numeric(col, errors="coerce")
    missing = col.isna().to_numpy()
    nonnumeric = values.isna().to_numpy() & ~missing
    if missing.any():
        problems.append(f"column {name!r}: missing value(s) in {_rows(missing)}")
    if nonnumeric.any():
        problems.append(f"column {name!r}: non-numeric value(s) in {_rows(nonnumeric, col)}")
    arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(arr)
    nonint = ok & (arr != np.round(arr))
    if nonint.any():
        problems.append(f"column {name!r}: non-integer value(s) in {_rows(nonint, col)}")
    small = ok & ~nonint & (arr < 1)
    if small.any():
        problems.append(f"column {name!r}: value(s) below 1 in {_rows(small, col)}")
    inf = ~ok & ~missing & ~nonnumeric
    if inf.any():
        problems.append(f"column {name!r}: infinite value(s) in {_rows(inf, col)}")
    if missing.any() or nonnumeric.any() or nonint.any() or small.any() or inf.any():
        return None
    return pd.Series(arr.astype(np.int64), index=col.index, name=name)


def _parse_volume(col: pd.Series, problems: list[str]) -> pd.Series | None:
    name = "volume_btc"
    if pd.api.types.is_bool_dtype(col.dtype):
        problems.append(f"column {name!r}: expected floats >= 0, got booleans")
        return None
    values = pd.to_numeric(col, errors="coerce")
    missing = col.isna().to_numpy()
    nonnumeric = values.isna().to_numpy() & ~missing
    arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    if missing.any():
        problems.append(f"column {name!r}: missing value(s) in {_rows(missing)}")
    if nonnumeric.any():
        problems.append(f"column {name!r}: non-numeric value(s) in {_rows(nonnumeric, col)}")
    inf = np.isinf(arr)
    if inf.any():
        problems.append(f"column {name!r}: infinite value(s) in {_rows(inf, col)}")
    negative = np.isfinite(arr) & (arr < 0)
    if negative.any():
        problems.append(
            f"column {name!r}: negative volume(s) in {_rows(negative, col)}; "
            "volume_btc must be >= 0"
        )
    if missing.any() or nonnumeric.any() or inf.any() or negative.any():
        return None
    return pd.Series(arr, index=col.index, name=name)


def normalise_entity(values: pd.Series) -> pd.Series:
    """Strip, lower-case, and map spaces/hyphens to ``_`` (``"Mining pool"`` ->
    ``"mining_pool"``); missing values stay missing."""
    missing = values.isna()
    text = values.astype(object).where(~missing, "").astype(str).str.strip().str.lower()
    text = text.str.replace(r"[\s\-]+", "_", regex=True)
    return text.astype(object).where(~missing, None)


def _parse_entity(col: pd.Series, problems: list[str]) -> pd.Series | None:
    name = "entity"
    missing = col.isna().to_numpy()
    if not missing.any() and col.isin(ENTITY_LABELS).all():
        return col.astype(str)  # already canonical: skip the string work
    norm = normalise_entity(col)
    unknown = ~missing & ~norm.isin(ENTITY_LABELS).to_numpy()
    if missing.any():
        problems.append(f"column {name!r}: missing label(s) in {_rows(missing)}")
    if unknown.any():
        labels = sorted({str(v) for v in col[unknown]})
        shown = labels[:_SHOW] + (["..."] if len(labels) > _SHOW else [])
        problems.append(
            f"column {name!r}: unknown entity label(s) {shown} in {_rows(unknown)}; "
            f"allowed labels: {list(ENTITY_LABELS)}"
        )
    if missing.any() or unknown.any():
        return None
    return norm.astype(str)


def validate_bitcoin_frame(frame: pd.DataFrame, source: str = "") -> pd.DataFrame:
    """Check ``frame`` against :data:`BITCOIN_SCHEMA` and return it normalised.

    Returns a new frame with exactly the schema columns, in schema order:
    ``timestamp`` (datetime64, UTC), ``n_inputs`` / ``n_outputs`` (int64),
    ``volume_btc`` (float64), ``entity`` (one of :data:`ENTITY_LABELS`), index
    ``0..n-1`` in the input's row order. Extra columns are dropped.

    Raises:
        BitcoinSchemaError: listing every problem found: missing columns, unparsable or
            out-of-range timestamps, non-integer or < 1 counts, negative / non-finite
            volumes, missing or unknown entity labels (with the allowed labels), each
            with the number of offending rows and the first few row numbers.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    frame = frame.reset_index(drop=True)
    missing_cols = [c for c in SCHEMA_COLUMNS if c not in frame.columns]
    problems: list[str] = []
    if missing_cols:
        problems.append(
            f"missing column(s) {missing_cols}; columns found: {list(map(str, frame.columns))}"
        )
    if len(frame) == 0 and not missing_cols:
        problems.append("no rows")
    parsed: dict[str, pd.Series | None] = {}
    if "timestamp" in frame.columns:
        parsed["timestamp"] = _parse_timestamp(frame["timestamp"], problems)
    for name in ("n_inputs", "n_outputs"):
        if name in frame.columns:
            parsed[name] = _parse_count(frame[name], name, problems)
    if "volume_btc" in frame.columns:
        parsed["volume_btc"] = _parse_volume(frame["volume_btc"], problems)
    if "entity" in frame.columns:
        parsed["entity"] = _parse_entity(frame["entity"], problems)
    if problems:
        raise BitcoinSchemaError(problems, source)
    return pd.DataFrame({c: parsed[c] for c in SCHEMA_COLUMNS})


# --------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------


def _file_kind(path: pathlib.Path) -> str:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise ValueError(
        f"{path}: unsupported file type; allowed suffixes: "
        f"{list(CSV_SUFFIXES + PARQUET_SUFFIXES)}"
    )


def sidecar_path(path: os.PathLike | str) -> pathlib.Path:
    """``<path>.meta.json``: the metadata file that may sit next to a transaction file."""
    path = pathlib.Path(path)
    return path.with_name(path.name + ".meta.json")


def read_sidecar(path: os.PathLike | str) -> dict | None:
    """The JSON object in ``<path>.meta.json``, or None when there is none."""
    meta = sidecar_path(path)
    if not meta.is_file():
        return None
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{meta}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{meta}: expected a JSON object, got {type(data).__name__}")
    return data


def read_bitcoin_frame(path: os.PathLike | str) -> pd.DataFrame:
    """Read a CSV (``.csv``, optionally ``.gz``/``.bz2``/``.xz``/``.zip``) or Parquet
    (``.parquet``, ``.pq``) transaction file and return it validated and normalised
    (see :func:`validate_bitcoin_frame` for the columns and dtypes).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: an unsupported suffix (the allowed ones are listed).
        BitcoinSchemaError: the content does not follow :data:`BITCOIN_SCHEMA`.
    """
    path = pathlib.Path(path).expanduser()
    kind = _file_kind(path)
    if not path.is_file():
        raise FileNotFoundError(f"Bitcoin transaction file not found: {path}")
    if kind == "parquet":
        frame = pd.read_parquet(path)
    else:
        # entity as text, everything else inferred (a numeric timestamp column = unix s).
        frame = pd.read_csv(path, dtype={"entity": object}, low_memory=False)
    return validate_bitcoin_frame(frame, source=str(path))


def iter_bitcoin_frames(path: os.PathLike | str, chunk_rows: int = CHUNK_ROWS):
    """Yield the file's rows as validated frames of at most ``chunk_rows`` rows.

    Parquet files are read batch by batch (``pyarrow.parquet.ParquetFile.iter_batches``),
    CSV files with ``pandas.read_csv(chunksize=...)``, so memory holds one chunk of raw
    rows at a time. Row numbers in a schema error are counted within the chunk, whose
    first file row the message names.
    """
    path = pathlib.Path(path).expanduser()
    kind = _file_kind(path)
    if not path.is_file():
        raise FileNotFoundError(f"Bitcoin transaction file not found: {path}")
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be an integer >= 1, got {chunk_rows!r}")
    if kind == "parquet":
        import pyarrow.parquet as pq

        chunks = (batch.to_pandas() for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows))
    else:
        chunks = pd.read_csv(path, dtype={"entity": object}, low_memory=False, chunksize=chunk_rows)
    offset = 0
    for frame in chunks:
        try:
            yield validate_bitcoin_frame(frame.reset_index(drop=True), source=str(path))
        except BitcoinSchemaError as error:
            if offset == 0:
                raise
            problems = [f"{p} [rows counted from file row {offset}]" for p in error.problems]
            raise BitcoinSchemaError(problems, source=str(path)) from None
        offset += len(frame)


# --------------------------------------------------------------------------------------
# Features and the Dataset
# --------------------------------------------------------------------------------------


def bitcoin_features(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X (n, 7), y (n,), time (n,))`` from a frame returned by
    :func:`validate_bitcoin_frame` / :func:`read_bitcoin_frame`.

    Columns of ``X`` are :data:`FEATURE_NAMES` (see the module docstring for the exact
    definitions); ``y[i]`` indexes :data:`ENTITY_LABELS`; ``time`` is float days since
    2012-01-01 00:00 UTC.
    """
    ts = frame["timestamp"]
    seconds_of_day = (ts - ts.dt.floor("D")).dt.total_seconds().to_numpy(np.float64)
    hour = seconds_of_day / 3600.0
    weekday = ts.dt.day_of_week.to_numpy(np.float64)  # Monday = 0
    X = np.column_stack(
        [
            np.log1p(frame["n_inputs"].to_numpy(np.float64)),
            np.log1p(frame["n_outputs"].to_numpy(np.float64)),
            np.log1p(frame["volume_btc"].to_numpy(np.float64)),
            np.sin(2 * np.pi * hour / 24.0),
            np.cos(2 * np.pi * hour / 24.0),
            np.sin(2 * np.pi * weekday / 7.0),
            np.cos(2 * np.pi * weekday / 7.0),
        ]
    ) if len(frame) else np.zeros((0, len(FEATURE_NAMES)))
    codes = pd.Categorical(frame["entity"], categories=ENTITY_LABELS).codes
    if (codes < 0).any():
        raise BitcoinSchemaError(["column 'entity': unknown labels; validate the frame first"])
    time = ((ts - TIME_ORIGIN).dt.total_seconds() / 86400.0).to_numpy(np.float64)
    return X, codes.astype(np.int64), time


def is_synthetic(dataset: Dataset) -> bool:
    """True when ``dataset`` holds simulated stand-ins for real data, e.g. a file marked
    synthetic by its sidecar (its :attr:`~resnet_stability.data.Dataset.synthetic` flag)."""
    return bool(getattr(dataset, "synthetic", False))


_DESCRIPTION = (
    "Bitcoin transactions labelled by entity type (the task of Zhang & Wynter; their "
    "data is not public), read from {source} ({n} rows, {start} to {end} UTC). Schema: "
    "timestamp (datetime / ISO-8601 / unix seconds), n_inputs (int >= 1), n_outputs "
    "(int >= 1), volume_btc (float >= 0), entity (exchange / service / gambling / "
    "mining_pool). Target: entity, labels 0..3 in that order. Features: log1p of "
    "n_inputs, n_outputs and volume_btc (numeric, standardise per trial); sin/cos of the "
    "UTC hour of day (fractional, period 24) and of the UTC weekday (Monday = 0, period "
    "7), left as they are. time = days since 2012-01-01 UTC (not a feature), for "
    "splits in time."
)


def load_bitcoin(path: os.PathLike | str, chunk_rows: int = CHUNK_ROWS) -> Dataset:
    """Load a transaction file (CSV or Parquet in :data:`BITCOIN_SCHEMA`) as a Dataset.

    The file is streamed in chunks of ``chunk_rows`` rows (:func:`iter_bitcoin_frames`):
    each chunk is validated and turned into features at once, so the raw rows (strings,
    timestamps) of a large file are never all in memory; what is kept is about 70 bytes
    per row (the float64 features, label and time), e.g. ~1.2 GB for the paper's 16.5 M
    transactions.

    ``X``: :data:`FEATURE_NAMES` (log1p counts and volume; hour-of-day and weekday as
    sin/cos), ``numeric_mask`` True for the three log features only; ``y``: index into
    ``class_names = ENTITY_LABELS``; ``time``: days since 2012-01-01 UTC
    (``time_unit = "days since 2012-01-01"``); ``test_mask`` None (split in time with
    :func:`~resnet_stability.data.timesplit.time_windows`). If ``<path>.meta.json``
    marks the file synthetic, the Dataset's ``synthetic`` flag is True (and its
    description says so first).

    Raises:
        FileNotFoundError, ValueError, BitcoinSchemaError: see
            :func:`read_bitcoin_frame`.
    """
    path = pathlib.Path(path).expanduser()
    parts, first, last = [], None, None
    for frame in iter_bitcoin_frames(path, chunk_rows):
        parts.append(bitcoin_features(frame))
        low, high = frame["timestamp"].min(), frame["timestamp"].max()
        first = low if first is None else min(first, low)
        last = high if last is None else max(last, high)
    if not parts:
        raise BitcoinSchemaError(["the file has no rows"], source=str(path))
    X, y, time = (np.concatenate(column) for column in zip(*parts))
    description = _DESCRIPTION.format(
        source=path.name, n=len(y), start=first.strftime("%Y-%m-%d"), end=last.strftime("%Y-%m-%d")
    )
    meta = read_sidecar(path)
    synthetic = meta is not None and meta.get("synthetic") is True
    if synthetic:
        details = ", ".join(
            f"{k}={meta[k]}" for k in ("generator", "seed", "drift", "n_rows") if k in meta
        )
        description = (
            f"SYNTHETIC data (sidecar {sidecar_path(path).name}: {details}); NOT real "
            "transactions. " + description
        )
    return Dataset(
        name="bitcoin",
        X=X,
        y=y,
        feature_names=FEATURE_NAMES,
        class_names=ENTITY_LABELS,
        numeric_mask=np.asarray(NUMERIC_MASK, dtype=bool),
        description=description,
        time=time,
        time_unit=TIME_UNIT,
        synthetic=synthetic,
    )


def schema_table() -> str:
    """:data:`BITCOIN_SCHEMA` as a Markdown table (for READMEs and error pages)."""
    lines = ["| column | type | meaning | constraint |", "|---|---|---|---|"]
    for c in BITCOIN_SCHEMA.values():
        lines.append(f"| `{c.name}` | {c.dtype} | {c.meaning} | {c.constraint} |")
    return "\n".join(lines)
