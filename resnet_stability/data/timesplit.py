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


def _fmt(x: float) -> str:
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
        train = f"train: {unit}{_fmt(self.train_start)}–{_fmt(self.train_end)}"
        if counts:
            train += f" (n={self.train_idx.size})"
        parts = []
        for w in self.windows:
            text = f"{w.index}: {_fmt(w.start)}–{_fmt(w.end)}"
            if counts:
                text += f" (n={w.n})"
            parts.append(text)
        return (
            f"{train}; test windows of {_fmt(self.test_span)}{span_unit}: "
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


def _check_span(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


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
    train_span = _check_span("train_span", train_span)
    test_span = _check_span("test_span", test_span)
    t_min, t_max = float(t.min()), float(t.max())
    data_range = f"the data's time range is [{_fmt(t_min)}, {_fmt(t_max)}]"
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
            f"no training rows in [{_fmt(start)}, {_fmt(train_end)}) (start={start!r}, "
            f"train_span={train_span!r}); {data_range}"
        )
    windows = []
    k = 0
    while True:
        lo = train_end + k * test_span
        if lo > t_max:
            break
        hi = train_end + (k + 1) * test_span
        idx = rows(lo, hi)
        if idx.size:
            windows.append(Window(index=k + 1, start=lo, end=hi, idx=idx))
        k += 1
    if not windows:
        raise ValueError(
            f"no test rows at or after {_fmt(train_end)} (start={start!r}, "
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
    if train_span is None or test_span is None:
        if dataset.name not in DEFAULT_WINDOWS:
            raise ValueError(
                f"no default windows for dataset {dataset.name!r}; pass train_span and "
                f"test_span (defaults exist for {sorted(DEFAULT_WINDOWS)})"
            )
        default_train, default_test = DEFAULT_WINDOWS[dataset.name]
        train_span = default_train if train_span is None else train_span
        test_span = default_test if test_span is None else test_span
    return time_windows(
        dataset.time, train_span, test_span, start, unit=unit_word(dataset.time_unit)
    )
