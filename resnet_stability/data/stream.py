"""A transaction file read in chunks: what training from a streamed file needs, without TensorFlow.

Memory holds one chunk of raw rows (``chunk_rows``), its features and a shuffle buffer
(plus what :func:`prefetch`'s background thread has read ahead), never the whole file's
features. The training side is ``resnet_stability.sweep.streaming`` (its batch source
for ``sweep.trainer.train_cell``).

- :func:`scan_bitcoin` (cached per file and settings): the number of rows (only with
  ``max_rows``), the time range, then the per-window row counts, the training
  window's standardiser (:class:`RunningStandardizer`), and of the first test window
  its majority-class rate and its first ``STABILITY_SAMPLE`` rows in file order (where a
  streamed cell takes the Prop. 1 statistic). The windows are exactly those of
  :func:`~resnet_stability.data.timesplit.time_windows` on the full time array (its
  :func:`~resnet_stability.data.timesplit.window_edges` and ``time_bins``); the
  standardiser equals :func:`~resnet_stability.data.fit_standardizer` on the training rows
  (to rounding); ``max_rows`` keeps the rows :func:`~resnet_stability.data.subsample_rows`
  keeps (:func:`~resnet_stability.data.preprocessing.subsample_positions`).
- :func:`train_batches`: one epoch's training-window rows, in file order, through a
  :class:`BufferShuffler` into batches.
- :func:`prefetch`: an iterator read ahead in a background thread.

**Batch order.** Training rows arrive in file order and fill a buffer of ``buffer_rows``
rows; a full buffer is permuted (by the epoch's generator) and cut into full batches, the
rest (fewer than ``batch_size`` rows) stays in it; at the end of the epoch the buffer is
permuted once more and emptied, so every batch is full except possibly the epoch's last.
For a given ``buffer_rows`` and generator the order does not depend on ``chunk_rows``; a
buffer at least as large as the training window is one full permutation per epoch (and
holds that window in memory).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import pathlib
from collections.abc import Iterator

import numpy as np

from resnet_stability.data.bitcoin import (
    ENTITY_LABELS,
    NUMERIC_MASK,
    TIME_UNIT,
    BitcoinSchemaError,
    bitcoin_features,
    iter_bitcoin_frames,
    read_sidecar,
)
from resnet_stability.data.preprocessing import subsample_positions
from resnet_stability.data.timesplit import TimeSplit, Window, format_time, time_bins, unit_word, window_edges
from resnet_stability.stability import STABILITY_SAMPLE


class StreamedRows:
    """Stands in for a row-index array (``MemberPlan.train_idx``, ``Window.idx``) when
    the rows are streamed, not held: it has the number of rows (``len``, ``.size``)
    and no indices (using it as an array raises TypeError)."""

    __slots__ = ("count",)

    def __init__(self, count: int):
        self.count = int(count)

    def __len__(self) -> int:
        return self.count

    @property
    def size(self) -> int:
        return self.count

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            f"{self!r}: rows of a streamed file have no in-memory indices, only a count (len)"
        )

    def __repr__(self) -> str:
        return f"StreamedRows({self.count})"


class RunningStandardizer:
    """:func:`~resnet_stability.data.fit_standardizer`, one chunk of training rows at a time.

    ``update(X)`` merges a chunk's count, mean and sum of squared deviations (float64,
    Chan et al.'s pairwise update: stable however large the mean is); ``result()``
    gives ``(mean, scale)``: mean and population standard deviation of the numeric
    columns, scale 1 for a column that is constant over the rows seen, mean 0 / scale 1
    for the other columns.
    """

    def __init__(self, numeric_mask):
        self.numeric_mask = np.asarray(numeric_mask, dtype=bool)
        d = int(self.numeric_mask.sum())
        self.n = 0
        self.mean = np.zeros(d)
        self.m2 = np.zeros(d)
        self.low = np.full(d, np.inf)
        self.high = np.full(d, -np.inf)

    def update(self, X: np.ndarray) -> None:
        cols = np.asarray(X, dtype=np.float64)[:, self.numeric_mask]
        n_b = cols.shape[0]
        if n_b == 0:
            return
        mean_b = cols.mean(axis=0)
        m2_b = ((cols - mean_b) ** 2).sum(axis=0)
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta**2 * (self.n * n_b / n)
        self.n = n
        self.low = np.minimum(self.low, cols.min(axis=0))
        self.high = np.maximum(self.high, cols.max(axis=0))

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n == 0:
            raise ValueError("X_train has no rows")
        d = self.numeric_mask.size
        mean, scale = np.zeros(d), np.ones(d)
        sd = np.sqrt(self.m2 / self.n)
        sd[self.low == self.high] = 1.0
        mean[self.numeric_mask] = self.mean
        scale[self.numeric_mask] = sd
        return mean, scale


def feature_chunks(
    path, chunk_rows: int, keep: np.ndarray | None = None, stop_after: int | None = None
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """``(chunk number, X, y, time)`` of each chunk of ``path`` (validated, features built),
    only the file rows in ``keep`` (sorted) if given, up to chunk ``stop_after``."""
    offset = 0
    for number, frame in enumerate(iter_bitcoin_frames(path, chunk_rows)):
        if stop_after is not None and number > stop_after:
            return
        n = len(frame)
        if keep is not None:
            lo, hi = np.searchsorted(keep, [offset, offset + n])
            frame = frame.iloc[keep[lo:hi] - offset]
        offset += n
        X, y, t = bitcoin_features(frame)
        yield number, X, y, t


@dataclasses.dataclass(frozen=True, eq=False)
class StreamScan:
    """What the scan passes learn about a file (see :func:`scan_bitcoin`)."""

    path: str
    n_rows: int  # rows used (file rows, or max_rows of them)
    time_split: TimeSplit  # train_idx / window idx are StreamedRows (counts)
    edges: np.ndarray  # window_edges
    mean: np.ndarray  # standardiser of the training window
    scale: np.ndarray
    keep: np.ndarray | None  # the file rows used (max_rows), None = all
    last_train_chunk: int  # the last chunk (of chunk_rows rows) holding a training row
    synthetic: bool  # the file's sidecar marks it synthetic
    test_sample: np.ndarray  # (<= STABILITY_SAMPLE, d) the first test window's first rows, raw features
    test_majority_rate: float  # share of the first test window's rows in its most common class

    def notes(self) -> dict:
        """The per-dataset notes a sweep writes (spec.json)."""
        return {
            "synthetic": self.synthetic,
            "rows": self.n_rows,
            "windows": self.time_split.describe(),
            "stream": True,
        }


def file_is_synthetic(path) -> bool:
    """True when ``<path>.meta.json`` marks the file synthetic (as ``is_synthetic`` of its Dataset)."""
    meta = read_sidecar(path)
    return meta is not None and meta.get("synthetic") is True


def scan_bitcoin(
    path, *, chunk_rows: int, train_span: float, test_span: float, max_rows: int | None = None, seed: int = 0
) -> StreamScan:
    """Scan a transaction file (CSV or Parquet in ``BITCOIN_SCHEMA``) read in chunks of
    ``chunk_rows`` rows, split in time as ``time_windows(time, train_span, test_span)``
    (``start=None``), using the rows ``subsample_rows(..., max_rows, seed)`` keeps.
    Cached per file content stamp and settings (:func:`clear_scan_cache`). Validates every
    row; raises what :func:`~resnet_stability.data.bitcoin.iter_bitcoin_frames` and
    :func:`~resnet_stability.data.timesplit.time_windows` raise (no training or no test
    rows)."""
    if path is None:
        raise ValueError("streaming needs a transaction file: pass --data PATH (CSV or Parquet)")
    path = pathlib.Path(path).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"Bitcoin transaction file not found: {path}")
    stat = path.stat()
    return _scan(str(path), stat.st_size, stat.st_mtime_ns, chunk_rows, max_rows, seed,
                 float(train_span), float(test_span))


def clear_scan_cache() -> None:
    """Forget every cached :func:`scan_bitcoin` (the next one reads its file again)."""
    _scan.cache_clear()


@functools.lru_cache(maxsize=4)
def _scan(path, size, mtime_ns, chunk_rows, max_rows, seed, train_span, test_span) -> StreamScan:
    del size, mtime_ns  # cache key only: a changed file is scanned again
    keep = None
    if max_rows is not None:
        n_file = sum(len(frame) for frame in iter_bitcoin_frames(path, chunk_rows))
        keep = subsample_positions(n_file, max_rows, seed)
    n_rows, t_min, t_max = 0, math.inf, -math.inf
    for _, _, _, t in feature_chunks(path, chunk_rows, keep):
        if t.size:
            n_rows += t.size
            t_min, t_max = min(t_min, float(t.min())), max(t_max, float(t.max()))
    if n_rows == 0:
        raise BitcoinSchemaError(["the file has no rows"], source=path)
    edges = window_edges(t_min, t_max, train_span, test_span)
    counts = np.zeros(len(edges) + 1, dtype=np.int64)  # bins -1 .. len(edges) - 1
    classes = len(ENTITY_LABELS)
    label_counts = np.zeros((counts.size, classes), dtype=np.int64)
    samples: list[list[np.ndarray]] = [[] for _ in range(counts.size)]  # each bin's first rows, file order
    standardizer = RunningStandardizer(NUMERIC_MASK)
    last_train_chunk = -1
    for number, X, y, t in feature_chunks(path, chunk_rows, keep):
        bins = time_bins(t, edges)
        counts += np.bincount(bins + 1, minlength=counts.size)[: counts.size]
        cell = (bins + 1) * classes + y
        label_counts += np.bincount(cell, minlength=label_counts.size)[: label_counts.size].reshape(label_counts.shape)
        for b in np.unique(bins):
            held = sum(len(part) for part in samples[b + 1])
            if held < STABILITY_SAMPLE:
                samples[b + 1].append(X[bins == b][: STABILITY_SAMPLE - held])
        train = bins == 0
        if train.any():
            standardizer.update(X[train])
            last_train_chunk = number
    start, train_end = float(edges[0]), float(edges[1])
    data_range = f"the data's time range is [{format_time(t_min)}, {format_time(t_max)}]"
    if counts[1] == 0:
        raise ValueError(
            f"no training rows in [{format_time(start)}, {format_time(train_end)}) (start=None, "
            f"train_span={train_span!r}); {data_range}"
        )
    windows = tuple(
        Window(index=k, start=float(edges[k]), end=float(edges[k + 1]), idx=StreamedRows(counts[k + 1]))
        for k in range(1, len(edges) - 1)
        if counts[k + 1]
    )
    if not windows:
        raise ValueError(
            f"no test rows at or after {format_time(train_end)} (start=None, train_span={train_span!r}, "
            f"test_span={test_span!r}); {data_range}"
        )
    split = TimeSplit(
        train_idx=StreamedRows(counts[1]),
        windows=windows,
        train_start=start,
        train_end=train_end,
        train_span=train_span,
        test_span=test_span,
        unit=unit_word(TIME_UNIT),
    )
    mean, scale = standardizer.result()
    first_test = windows[0].index + 1  # its row in counts, label_counts and samples
    test_sample = np.concatenate(samples[first_test]).astype(np.float32)
    test_majority_rate = float(label_counts[first_test].max() / counts[first_test])
    for array in (mean, scale, edges, test_sample) + (() if keep is None else (keep,)):
        array.flags.writeable = False  # cached: shared by every caller
    return StreamScan(path, n_rows, split, edges, mean, scale, keep, last_train_chunk, file_is_synthetic(path),
                      test_sample, test_majority_rate)


class BufferShuffler:
    """Rows in, shuffled batches out (the module docstring's batch order).

    ``add(x, y)`` appends rows and yields the batches of every buffer that fills
    (exactly ``buffer_rows`` rows, carried rows included); ``finish()`` yields the
    batches of what is left, the last one possibly short.
    """

    def __init__(self, buffer_rows: int, batch_size: int, rng: np.random.Generator):
        if buffer_rows < batch_size:
            raise ValueError(f"shuffle_buffer must be >= batch_size ({batch_size}), got {buffer_rows}")
        self.buffer_rows, self.batch_size, self.rng = buffer_rows, batch_size, rng
        self.parts: list[tuple[np.ndarray, np.ndarray]] = []
        self.count = 0

    def add(self, x: np.ndarray, y: np.ndarray):
        start = 0
        while start < len(x):
            take = min(self.buffer_rows - self.count, len(x) - start)
            self.parts.append((x[start : start + take], y[start : start + take]))
            self.count += take
            start += take
            if self.count == self.buffer_rows:
                yield from self._flush(final=False)

    def finish(self):
        yield from self._flush(final=True)

    def _flush(self, final: bool):
        if self.count == 0:
            return
        x = np.concatenate([p[0] for p in self.parts])
        y = np.concatenate([p[1] for p in self.parts])
        order = self.rng.permutation(self.count)
        x, y = x[order], y[order]
        used = self.count if final else self.count // self.batch_size * self.batch_size
        for s in range(0, used, self.batch_size):
            yield x[s : min(s + self.batch_size, used)], y[s : min(s + self.batch_size, used)]
        self.parts = [(x[used:], y[used:])] if used < self.count else []
        self.count -= used


def train_batches(path, scan: StreamScan, *, chunk_rows: int, batch_size: int, buffer_rows: int,
                  rng: np.random.Generator):
    """One epoch's batches ``(x float32 (b, d) raw features, y int32 (b,))`` of the
    training window of ``path`` (as ``scan`` found it), read in chunks of ``chunk_rows``
    rows up to the last one holding a training row and shuffled by a
    :class:`BufferShuffler` of ``buffer_rows`` rows drawing from ``rng``."""
    shuffler = BufferShuffler(buffer_rows, batch_size, rng)
    for _, X, y, t in feature_chunks(path, chunk_rows, scan.keep, stop_after=scan.last_train_chunk):
        train = time_bins(t, scan.edges) == 0
        if train.any():
            yield from shuffler.add(X[train].astype(np.float32), y[train].astype(np.int32))
    yield from shuffler.finish()


def prefetch(items, depth: int = 4):
    """Iterate ``items`` (an iterator) in a background thread, at most ``depth`` items
    ahead, so that reading and parsing the next chunk overlaps the training or
    prediction steps (TensorFlow releases the GIL). The order is unchanged; an exception
    in the thread is raised here; leaving the loop early stops the thread."""
    import queue
    import threading

    ahead: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                ahead.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            put((end, error))

    thread = threading.Thread(target=work, name="stream-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = ahead.get()
            if item is end:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()


__all__ = [
    "BufferShuffler",
    "RunningStandardizer",
    "StreamScan",
    "StreamedRows",
    "clear_scan_cache",
    "feature_chunks",
    "file_is_synthetic",
    "prefetch",
    "scan_bitcoin",
    "train_batches",
]
