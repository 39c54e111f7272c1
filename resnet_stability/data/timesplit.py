"""Splits in time: train on an early span, test on consecutive later windows.

The paper's Bitcoin experiment (Zhang & Wynter, Fig. 15) applies a model trained on
early transactions to data increasingly far in time from its training data.
:func:`time_windows` makes that split from a time coordinate (``Dataset.time``):

- training rows: ``start <= t < start + train_span``;
- test window k (numbered from 1): ``start + train_span + (k-1) * test_span <= t <
  start + train_span + k * test_span``, for k = 1, 2, ... while the window starts at or
  before the last time in the data. Empty windows are skipped, their numbers are not
  reused (window numbers always mean the same distance from the training span).
- rows before ``start`` are in no split; ``start=None`` means ``floor(min(time))``.

All intervals are half-open ``[start, end)``; boundaries are computed as
``start + train_span + k * test_span`` (never by accumulation), so they do not drift.

>>> split = time_windows(ds.time, *DEFAULT_WINDOWS["bitcoin"], unit="days")
>>> split.describe()
'train: days 0–365; test windows of 182 days: 1: 365–547, 2: 547–729, …'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from numbers import Real

import numpy as np

class _DefaultWindows(Mapping):
    """Dataset name -> default ``(train_span, test_span)``, in that dataset's time unit:
    a live read-only view of the ``windows`` of the dataset records
    (:class:`~resnet_stability.data.registry.DatasetRecord`, where each choice is explained)."""

    @staticmethod
    def _table() -> dict[str, tuple[float, float]]:
        from .registry import RECORDS

        return {name: record.windows for name, record in RECORDS.items() if record.windows is not None}

    def __getitem__(self, name):
        return self._table()[name]

    def __iter__(self):
        return iter(self._table())

    def __len__(self):
        return len(self._table())

    def __repr__(self):
        return f"DEFAULT_WINDOWS({self._table()!r})"


#: Default ``(train_span, test_span)`` per dataset, in that dataset's time unit (from
#: each dataset's record, :attr:`~resnet_stability.data.registry.DatasetRecord.windows`).
DEFAULT_WINDOWS: Mapping[str, tuple[float, float]] = _DefaultWindows()


def format_time(x: float) -> str:
    """A time or span as messages and :meth:`TimeSplit.describe` write it (``%g``)."""
    return f"{x:g}"


@dataclasses.dataclass(frozen=True, eq=False)
class Window:
    """One test window: rows ``idx`` (sorted int64) with ``start <= t < end``.

    ``index`` is 1-based and counts windows from the end of the training span, empty
    ones included (window k starts ``(k-1) * test_span`` after training ends).
    """

    index: int
    start: float
    end: float
    idx: np.ndarray

    @property
    def n(self) -> int:
        """Number of rows in the window."""
        return int(self.idx.size)


@dataclasses.dataclass(frozen=True, eq=False)
class TimeSplit:
    """Result of :func:`time_windows`.

    Attributes:
        train_idx: sorted int64 rows with ``train_start <= t < train_end``.
        windows: the non-empty test windows, in time order.
        train_start, train_end: the training interval ``[train_start, train_end)``.
        train_span, test_span: the spans asked for.
        unit: plural unit word used by :meth:`describe` ("days", "time steps"), or "".
    """

    train_idx: np.ndarray
    windows: tuple[Window, ...]
    train_start: float
    train_end: float
    train_span: float
    test_span: float
    unit: str = ""

    def describe(self, counts: bool = False) -> str:
        """Human-readable summary for figure titles and metadata, e.g.
        ``"train: days 0–365; test windows of 182 days: 1: 365–547, 2: 547–729"``.
        Intervals are half-open ``[start, end)``. ``counts=True`` adds row counts."""
        unit = f"{self.unit} " if self.unit else ""
        span_unit = f" {self.unit}" if self.unit else ""
        train = f"train: {unit}{format_time(self.train_start)}–{format_time(self.train_end)}"
        if counts:
            train += f" (n={self.train_idx.size})"
        parts = []
        for w in self.windows:
            text = f"{w.index}: {format_time(w.start)}–{format_time(w.end)}"
            if counts:
                text += f" (n={w.n})"
            parts.append(text)
        return (
            f"{train}; test windows of {format_time(self.test_span)}{span_unit}: "
            + ", ".join(parts)
        )

    def window(self, index: int) -> Window:
        """The window numbered ``index`` (KeyError if it was empty or does not exist)."""
        for w in self.windows:
            if w.index == index:
                return w
        raise KeyError(
            f"no test window {index}; windows: {[w.index for w in self.windows]}"
        )


def check_span(name: str, value) -> float:
    """``value`` as a float if it is a positive finite number, else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def window_edges(
    t_min: float, t_max: float, train_span: float, test_span: float, start: float | None = None
) -> np.ndarray:
    """Bin edges ``[start, train_end, train_end + test_span, ...]`` of the split
    :func:`time_windows` makes of times in ``[t_min, t_max]``: ``start`` (None =
    ``floor(t_min)``), ``train_end = start + train_span``, then
    ``train_end + k * test_span`` for k = 1, 2, ... while window k starts at or before
    ``t_max`` (computed as written, never by accumulation, so they do not drift).

    With :func:`time_bins`, bin -1 is before ``start`` (in no split), bin 0 the training
    window, bin k >= 1 test window k (empty windows included; :func:`time_windows`
    skips them but keeps the numbering).
    """
    train_span = check_span("train_span", train_span)
    test_span = check_span("test_span", test_span)
    if not (math.isfinite(t_min) and math.isfinite(t_max)):
        raise ValueError("time contains NaN or infinite values")
    start = float(math.floor(t_min)) if start is None else float(start)
    train_end = start + train_span
    edges = [start, train_end]
    k = 0
    while train_end + k * test_span <= t_max:
        edges.append(train_end + (k + 1) * test_span)
        k += 1
    return np.asarray(edges, dtype=np.float64)


def time_bins(time: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of every time for :func:`window_edges`' ``edges``: -1 = before the training
    window, 0 = training window, k = test window k (intervals half-open)."""
    return np.searchsorted(edges, np.asarray(time, dtype=np.float64), side="right") - 1


def time_windows(
    time: np.ndarray,
    train_span: float,
    test_span: float,
    start: float | None = None,
    *,
    unit: str = "",
) -> TimeSplit:
    """Split rows by ``time`` into a training span and consecutive test windows.

    Args:
        time: float ``(n,)`` time coordinate (``Dataset.time``).
        train_span: length of the training interval ``[start, start + train_span)``.
        test_span: length of each test window after it.
        start: beginning of the training interval; None = the earliest time in the data
            rounded down to a whole unit (``floor(min(time))``), so windows begin on
            whole days / time steps.
        unit: plural unit word for :meth:`TimeSplit.describe` ("days", "time steps").

    Returns:
        A :class:`TimeSplit`. Training rows all come before every test row; windows are
        contiguous, disjoint and in time order (empty ones skipped, numbering kept).

    Raises:
        ValueError: ``time`` not 1-D / empty / not finite; a span not a positive finite
            number; ``start`` not finite; no training row; or no test row. Messages
            name the values and the data's time range.
    """
    t = np.asarray(time, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(f"time must be 1-D, got shape {t.shape}")
    if t.size == 0:
        raise ValueError("time is empty: no rows to split")
    if not np.all(np.isfinite(t)):
        raise ValueError("time contains NaN or infinite values")
    train_span = check_span("train_span", train_span)
    test_span = check_span("test_span", test_span)
    t_min, t_max = float(t.min()), float(t.max())
    data_range = f"the data's time range is [{format_time(t_min)}, {format_time(t_max)}]"
    if start is None:
        start = float(math.floor(t_min))
    else:
        if isinstance(start, bool) or not isinstance(start, Real) or not math.isfinite(
            float(start)
        ):
            raise ValueError(f"start must be a finite number or None, got {start!r}")
        start = float(start)
    train_end = start + train_span

    order = np.argsort(t, kind="stable")
    sorted_t = t[order]

    def rows(lo: float, hi: float) -> np.ndarray:
        a, b = np.searchsorted(sorted_t, [lo, hi], side="left")
        return np.sort(order[a:b]).astype(np.int64)

    train_idx = rows(start, train_end)
    if train_idx.size == 0:
        raise ValueError(
            f"no training rows in [{format_time(start)}, {format_time(train_end)}) (start={start!r}, "
            f"train_span={train_span!r}); {data_range}"
        )
    edges = window_edges(t_min, t_max, train_span, test_span, start)
    windows = []
    for k in range(1, len(edges) - 1):
        lo, hi = float(edges[k]), float(edges[k + 1])
        idx = rows(lo, hi)
        if idx.size:
            windows.append(Window(index=k, start=lo, end=hi, idx=idx))
    if not windows:
        raise ValueError(
            f"no test rows at or after {format_time(train_end)} (start={start!r}, "
            f"train_span={train_span!r}, test_span={test_span!r}); {data_range}"
        )
    return TimeSplit(
        train_idx=train_idx,
        windows=tuple(windows),
        train_start=start,
        train_end=train_end,
        train_span=train_span,
        test_span=test_span,
        unit=unit,
    )


def unit_word(time_unit: str) -> str:
    """A plural word for :meth:`TimeSplit.describe` from ``Dataset.time_unit``:
    ``"days since 2012-01-01"`` -> ``"days"``, ``"time step"`` -> ``"time steps"``."""
    text = str(time_unit).strip()
    if not text:
        return ""
    head = text.split(" since ")[0].strip()
    return head if head.endswith("s") else head + "s"


def resolve_spans(
    name: str, train_span: float | None = None, test_span: float | None = None
) -> tuple[float | None, float | None]:
    """``(train_span, test_span)`` for dataset ``name``: the given ones, with
    :data:`DEFAULT_WINDOWS` for those that are None (given ones are returned as they are).

    Raises:
        ValueError: a span is None and the dataset has no default (the known ones are listed).
    """
    if train_span is None or test_span is None:
        if name not in DEFAULT_WINDOWS:
            raise ValueError(
                f"no default windows for dataset {name!r}; pass train_span and "
                f"test_span (defaults exist for {sorted(DEFAULT_WINDOWS)})"
            )
        default_train, default_test = DEFAULT_WINDOWS[name]
        train_span = default_train if train_span is None else train_span
        test_span = default_test if test_span is None else test_span
    return train_span, test_span


def dataset_time_windows(
    dataset,
    train_span: float | None = None,
    test_span: float | None = None,
    start: float | None = None,
) -> TimeSplit:
    """:func:`time_windows` on ``dataset.time``, with :data:`DEFAULT_WINDOWS` for
    spans not given and the unit taken from ``dataset.time_unit``.

    Raises:
        ValueError: the dataset has no ``time``, or no spans were given and the dataset
            has no default (the known defaults are listed).
    """
    if getattr(dataset, "time", None) is None:
        raise ValueError(f"dataset {dataset.name!r} has no time coordinate to split on")
    train_span, test_span = resolve_spans(dataset.name, train_span, test_span)
    return time_windows(
        dataset.time, train_span, test_span, start, unit=unit_word(dataset.time_unit)
    )
