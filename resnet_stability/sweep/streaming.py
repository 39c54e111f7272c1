"""Train a Bitcoin cell by streaming its transaction file: memory holds one chunk.

:func:`trainer.train_cell <resnet_stability.sweep.trainer.train_cell>` trains from a Dataset
held in memory (about 70 bytes a row after :func:`~resnet_stability.data.bitcoin.
load_bitcoin`). :func:`train_cell_streaming` trains the same members model from a
transaction file (CSV or Parquet in :data:`~resnet_stability.data.bitcoin.
BITCOIN_SCHEMA`) read again and again in chunks of ``spec.chunk_rows`` rows
(:func:`~resnet_stability.data.bitcoin.iter_bitcoin_frames`), so memory holds one chunk
of raw rows, its features, and a shuffle buffer (plus what a background thread has
read ahead: up to 4 batches while training, 1 chunk while evaluating; :func:`prefetch`):
never the whole file's features.

Passes over the file (each streamed):

1. *scan* (:func:`scan_bitcoin`, cached per file and settings): the number of rows (only
   with ``spec.max_rows``), the time range, then the per-window row counts and the
   training window's standardiser (:class:`RunningStandardizer`). The windows are
   exactly those of :func:`~resnet_stability.data.timesplit.time_windows` on the full
   time array (:func:`window_edges`); the standardiser equals
   :func:`~resnet_stability.data.fit_standardizer` on the training rows (to rounding).
   ``spec.max_rows`` keeps the same rows as :func:`~resnet_stability.data.subsample_rows`
   (a uniform random subset of the file's rows, seed ``spec.seed``).
2. *one pass per epoch*, over the chunks up to the last one holding a training row:
   training-window rows go through a :class:`BufferShuffler` into batches of
   ``spec.batch_size`` that feed :class:`~resnet_stability.sweep.train_step.MembersTrainStep`
   (standardised and tiled to every member inside the compiled step).
3. *evaluation*: accuracy of every member on the training window and on every test
   window (and, with ``spec.noise_levels``, on the first test window under noise),
   counted exactly as :func:`trainer.evaluate_accuracy
   <resnet_stability.sweep.trainer.evaluate_accuracy>` does (non-finite outputs are wrong).

**Batch order (the one difference from the in-memory engine).** All members see the same
batches in the same order: a per-member shuffle would need random access to the file.
Trials therefore differ only in their initialisation (and members in h); in the
in-memory engine they also differ in shuffle order. Epoch ``e`` shuffles with
``numpy.random.default_rng(derive_seed(spec.seed, "stream-shuffle", e))``: training rows
arrive in file order and fill a buffer of ``shuffle_buffer`` rows (default
``max(spec.chunk_rows, spec.batch_size)``); a full buffer is permuted and cut into full
batches, the rest (fewer than ``batch_size`` rows) stays in it; at the end of the epoch
the buffer is permuted once more and emptied, so every batch is full except possibly
the epoch's last. For a given ``shuffle_buffer`` and seed the order does not depend on
``chunk_rows`` (only the default buffer does); a buffer at least as large as the
training window is one full permutation per epoch (and holds that window in memory).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import pathlib
import time
from collections.abc import Callable, Iterator

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
from resnet_stability.data.timesplit import DEFAULT_WINDOWS, TimeSplit, Window, _check_span, _fmt, unit_word
from resnet_stability.seeding import derive_seed
from resnet_stability.sweep.experiment import STREAM_DATASETS, ExperimentSpec


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


# --------------------------------------------------------------------------- windows


def window_edges(
    t_min: float, t_max: float, train_span: float, test_span: float, start: float | None = None
) -> np.ndarray:
    """Bin edges ``[start, train_end, train_end + test_span, ...]`` of the split that
    :func:`~resnet_stability.data.timesplit.time_windows` makes of times in
    ``[t_min, t_max]``, computed with the same float expressions.

    With ``bin = searchsorted(edges, t, side="right") - 1``: bin -1 is before ``start``
    (in no split), bin 0 the training window, bin k >= 1 test window k (empty windows
    included; :func:`time_windows` skips them but keeps the numbering).
    """
    train_span = _check_span("train_span", train_span)
    test_span = _check_span("test_span", test_span)
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
    """Bin of every time (see :func:`window_edges`): -1 = before the training window,
    0 = training window, k = test window k."""
    return np.searchsorted(edges, np.asarray(time, dtype=np.float64), side="right") - 1


def resolve_spans(spec: ExperimentSpec) -> tuple[float, float]:
    """``(train_span, test_span)`` of ``spec``, with :data:`DEFAULT_WINDOWS` for unset ones."""
    default_train, default_test = DEFAULT_WINDOWS[spec.dataset]
    return (
        default_train if spec.train_span is None else spec.train_span,
        default_test if spec.test_span is None else spec.test_span,
    )


# ---------------------------------------------------------------------- standardiser


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


# ------------------------------------------------------------------------------ scan


def subsample_positions(n: int, max_rows: int | None, seed: int) -> np.ndarray | None:
    """The rows :func:`~resnet_stability.data.subsample_rows` keeps of ``n`` rows (sorted),
    or None when it keeps them all."""
    if max_rows is None or n <= max_rows:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))


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
    n_rows: int  # rows used (file rows, or spec.max_rows of them)
    time_split: TimeSplit  # train_idx / window idx are StreamedRows (counts)
    edges: np.ndarray  # window_edges
    mean: np.ndarray  # standardiser of the training window
    scale: np.ndarray
    keep: np.ndarray | None  # the file rows used (spec.max_rows), None = all
    last_train_chunk: int  # the last chunk (of chunk_rows rows) holding a training row
    synthetic: bool  # the file's sidecar marks it synthetic

    def notes(self) -> dict:
        """The sweep's per-dataset notes (spec.json)."""
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


def scan_bitcoin(path, spec: ExperimentSpec) -> StreamScan:
    """Scan a transaction file for :func:`train_cell_streaming` (cached per file content
    stamp and settings). Validates every row; raises what
    :func:`~resnet_stability.data.bitcoin.iter_bitcoin_frames` and
    :func:`~resnet_stability.data.timesplit.time_windows` raise (no training or no test
    rows)."""
    if path is None:
        raise ValueError("streaming needs a transaction file: pass --data PATH (CSV or Parquet)")
    path = pathlib.Path(path).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"Bitcoin transaction file not found: {path}")
    stat = path.stat()
    train_span, test_span = resolve_spans(spec)
    return _scan(str(path), stat.st_size, stat.st_mtime_ns, spec.chunk_rows, spec.max_rows, spec.seed,
                 float(train_span), float(test_span))


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
    standardizer = RunningStandardizer(NUMERIC_MASK)
    last_train_chunk = -1
    for number, X, _, t in feature_chunks(path, chunk_rows, keep):
        bins = time_bins(t, edges)
        counts += np.bincount(bins + 1, minlength=counts.size)[: counts.size]
        train = bins == 0
        if train.any():
            standardizer.update(X[train])
            last_train_chunk = number
    start, train_end = float(edges[0]), float(edges[1])
    data_range = f"the data's time range is [{_fmt(t_min)}, {_fmt(t_max)}]"
    if counts[1] == 0:
        raise ValueError(
            f"no training rows in [{_fmt(start)}, {_fmt(train_end)}) (start=None, "
            f"train_span={train_span!r}); {data_range}"
        )
    windows = tuple(
        Window(index=k, start=float(edges[k]), end=float(edges[k + 1]), idx=StreamedRows(counts[k + 1]))
        for k in range(1, len(edges) - 1)
        if counts[k + 1]
    )
    if not windows:
        raise ValueError(
            f"no test rows at or after {_fmt(train_end)} (start=None, train_span={train_span!r}, "
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
    for array in (mean, scale, edges) + (() if keep is None else (keep,)):
        array.flags.writeable = False  # cached: shared by every caller
    return StreamScan(path, n_rows, split, edges, mean, scale, keep, last_train_chunk, file_is_synthetic(path))


def stream_notes(spec: ExperimentSpec) -> dict:
    """The sweep's up-front check of a streamed dataset: scans (validates) the file
    without holding it and returns its notes (rows, windows, synthetic)."""
    return scan_bitcoin(spec.data_path, spec).notes()


# -------------------------------------------------------------------------- batches


class BufferShuffler:
    """Rows in, shuffled batches out (see the module docstring).

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


def epoch_batches(path, spec: ExperimentSpec, scan: StreamScan, epoch: int, buffer_rows: int):
    """The batches ``(x float32 (b, d) raw features, y int32 (b,))`` of epoch ``epoch``."""
    shuffler = BufferShuffler(buffer_rows, spec.batch_size, np.random.default_rng(shuffle_seed(spec, epoch)))
    for _, X, y, t in feature_chunks(path, spec.chunk_rows, scan.keep, stop_after=scan.last_train_chunk):
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


def shuffle_seed(spec: ExperimentSpec, epoch: int) -> int:
    """Seed of epoch ``epoch``'s buffer shuffles (shared by all members)."""
    return derive_seed(spec.seed, "stream-shuffle", epoch)


# -------------------------------------------------------------------------- training


class _Scores:
    """Correct-prediction counts of every member on one group of rows (a window), fed
    chunk by chunk and evaluated in pieces of ``trainer.EVAL_CHUNK`` rows (as
    ``evaluate_accuracy`` cuts a row list, so noise draws match the in-memory engine)."""

    def __init__(self, score, noise_sources=()):
        from resnet_stability.sweep.trainer import EVAL_CHUNK

        self.score, self.noise_sources, self.piece = score, list(noise_sources), EVAL_CHUNK
        self.parts: list[tuple[np.ndarray, np.ndarray]] = []
        self.pending = 0
        self.n = 0
        self.correct = None
        self.noisy = [None] * len(self.noise_sources)

    def add(self, x, y):
        self.parts.append((x, y))
        self.pending += len(x)
        if self.pending >= self.piece:
            self._flush(final=False)

    def _flush(self, final: bool):
        if not self.pending:
            return
        x = np.concatenate([p[0] for p in self.parts])
        y = np.concatenate([p[1] for p in self.parts])
        used = self.pending if final else self.pending // self.piece * self.piece
        for s in range(0, used, self.piece):
            xs, ys = x[s : min(s + self.piece, used)], y[s : min(s + self.piece, used)]
            self.correct = _add(self.correct, self.score(xs, ys, None))
            for i, source in enumerate(self.noise_sources):
                self.noisy[i] = _add(self.noisy[i], self.score(xs, ys, source))
            self.n += len(xs)
        self.parts = [(x[used:], y[used:])] if used < self.pending else []
        self.pending -= used

    def accuracies(self):
        self._flush(final=True)
        return self.correct / self.n, [c / self.n for c in self.noisy]


def _add(total, value):
    return value if total is None else total + value


def stream_plans(scan: StreamScan, spec: ExperimentSpec, block: str):
    """One ``plan.MemberPlan`` per (h, trial): its own seed and h; the shared training
    window, standardiser and batch order (``shuffle_seed`` holds ``spec.seed``: epoch e
    shuffles with ``derive_seed(shuffle_seed, "stream-shuffle", e)``); row sets as
    :class:`StreamedRows` counts."""
    from resnet_stability.sweep.plan import MemberPlan

    split = scan.time_split
    test_rows = split.windows[0].idx
    return [
        MemberPlan(
            h, trial, spec.member_seed(block, h, trial), spec.split_seed(trial), spec.seed,
            split.train_idx, test_rows, scan.mean, scan.scale, split,
        )
        for h, trial in spec.members()
    ]


def train_cell_streaming(
    path,
    spec: ExperimentSpec,
    block: str,
    *,
    device: str | None = None,
    xla: str = "update",
    on_epoch_end: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
    shuffle_buffer: int | None = None,
):
    """Train all members of the (``spec.dataset``, ``block``) cell from the transaction
    file ``path``, streamed in chunks of ``spec.chunk_rows`` rows (module docstring).

    Returns a ``trainer.CellResult`` as :func:`trainer.train_cell
    <resnet_stability.sweep.trainer.train_cell>` does, with ``plans`` from
    :func:`stream_plans` (row sets are :class:`StreamedRows` counts; ``time_split``
    describes the windows, so ``records.time_records`` works). All members share one
    batch order; ``shuffle_buffer`` (>= ``spec.batch_size``; default
    ``max(spec.chunk_rows, spec.batch_size)``) rows are shuffled at a time.
    ``on_epoch_end(epoch, mean_loss_per_member, alive)`` is called after each epoch.

    Raises:
        ValueError: ``spec.dataset`` is not in :data:`STREAM_DATASETS`; a bad
            ``shuffle_buffer``; no training or no test rows.
        FileNotFoundError, BitcoinSchemaError: as the loader.
    """
    import tensorflow as tf

    from resnet_stability.sweep.train_step import MembersTrainStep
    from resnet_stability.sweep.trainer import (
        CellResult,
        build_members_shards,
        device_kind,
        make_optimizer,
        members_predictor,
        run_epochs,
        shard_count,
    )

    if spec.dataset not in STREAM_DATASETS:
        raise ValueError(
            f"streaming is only available for dataset(s) {', '.join(STREAM_DATASETS)} (transaction files), "
            f"not {spec.dataset!r}"
        )
    buffer_rows = max(spec.chunk_rows, spec.batch_size) if shuffle_buffer is None else shuffle_buffer
    if isinstance(buffer_rows, bool) or not isinstance(buffer_rows, int) or buffer_rows < spec.batch_size:
        raise ValueError(f"shuffle_buffer must be an integer >= batch_size ({spec.batch_size}), got {buffer_rows!r}")
    started = time.perf_counter()
    scan = scan_bitcoin(path, spec)
    path = scan.path
    plans = stream_plans(scan, spec, block)
    members = len(plans)
    with tf.device(device) if device else contextlib.nullcontext():
        models, build_args = build_members_shards(
            plans, spec, block, len(NUMERIC_MASK), len(ENTITY_LABELS), shard_count(device_kind(device), members)
        )
        mean = tf.constant(scan.mean, tf.float32)
        scale = tf.constant(scan.scale, tf.float32)

        def standardise(x, y):  # (b, d), (b,) -> every member's copy: (b, M, d), (b, M)
            x = (tf.tile(x[:, None, :], [1, members, 1]) - mean) / scale
            return x, tf.tile(y[:, None], [1, members])

        train_step = MembersTrainStep(
            models, lambda: make_optimizer(spec.optimizer, spec.lr), lambda batch: standardise(*batch), xla
        )

        def streamed_batches(epoch):
            batches = prefetch(epoch_batches(path, spec, scan, epoch, buffer_rows))
            return ((tf.constant(x), tf.constant(y)) for x, y in batches)

        final_loss, diverged_epoch = run_epochs(train_step, spec.epochs, streamed_batches, on_epoch_end)

        scores = _score_stream(members_predictor(models), standardise, path, spec, block, scan, members)
        last_finite = scores["test"]
        diverged = ~train_step.alive()
        if diverged.any():  # the diverged networks (experiment.DIVERGED_RULE), then the last finite weights again
            train_step.load_diverged()
            scores = _score_stream(members_predictor(models), standardise, path, spec, block, scan, members)
            train_step.write_back()
        seconds = time.perf_counter() - started
    return CellResult(
        plans=plans,
        test_accuracy=scores["test"],
        train_accuracy=scores["train"],
        final_loss=final_loss,
        diverged=diverged,
        diverged_epoch=diverged_epoch,
        seconds=seconds,
        shards=models,
        window_accuracy=scores["windows"],
        noise_accuracy=scores["noise"],
        build_args=build_args,
        test_accuracy_last_finite=last_finite,
    )


def _score_stream(predict, standardise, path, spec: ExperimentSpec, block: str, scan, members: int) -> dict:
    """One evaluation pass over the file: the scores of ``trainer.score_members``."""
    import tensorflow as tf

    from resnet_stability.sweep.noise import NoiseSource
    from resnet_stability.sweep.trainer import evaluate_accuracy, noise_seed

    def score(x, y, perturb):  # correct predictions per member on rows x, y
        rows = np.zeros((len(x), members), np.int32)
        accuracy = evaluate_accuracy(predict, lambda _: standardise(tf.constant(x), tf.constant(y)), rows, perturb=perturb)
        return np.rint(accuracy * len(x))

    test_index = scan.time_split.windows[0].index
    noise_keys = [
        (kind, level)
        for kind in (spec.noise_kinds if spec.noise_levels else ())
        for level in spec.noise_levels
        if level > 0  # level 0 is the clean score
    ]
    counts = {0: _Scores(score)}
    for window in scan.time_split.windows:
        sources = ()
        if window.index == test_index:
            sources = [NoiseSource(kind, level, noise_seed(spec, block, kind, level)) for kind, level in noise_keys]
        counts[window.index] = _Scores(score, sources)
    for _, X, y, t in prefetch(feature_chunks(path, spec.chunk_rows, scan.keep), depth=1):
        bins = time_bins(t, scan.edges)
        x32, y32 = X.astype(np.float32), y.astype(np.int32)
        for b in np.unique(bins):
            if b in counts:
                rows = bins == b
                counts[b].add(x32[rows], y32[rows])
    scores = {"train": counts[0].accuracies()[0], "windows": {}, "noise": {}}
    for window in scan.time_split.windows:
        scores["windows"][window.index], noisy = counts[window.index].accuracies()
        if window.index == test_index:
            scores["noise"] = dict(zip(noise_keys, noisy))
    scores["test"] = scores["windows"][test_index]
    return scores


__all__ = [
    "STREAM_DATASETS",
    "BufferShuffler",
    "RunningStandardizer",
    "StreamScan",
    "StreamedRows",
    "epoch_batches",
    "feature_chunks",
    "file_is_synthetic",
    "resolve_spans",
    "scan_bitcoin",
    "shuffle_seed",
    "stream_notes",
    "stream_plans",
    "subsample_positions",
    "time_bins",
    "train_cell_streaming",
    "window_edges",
]
