"""The streamed batch source: train a Bitcoin cell from its transaction file, read in chunks.

:func:`trainer.train_cell <resnet_stability.sweep.trainer.train_cell>` trains a cell from
any batch source; :class:`StreamBatches` is the one that reads a transaction file (CSV
or Parquet in :data:`~resnet_stability.data.bitcoin.BITCOIN_SCHEMA`) again and again in
chunks of ``spec.chunk_rows`` rows, so memory holds one chunk of raw rows, its features
and a shuffle buffer (plus what a background thread has read ahead: up to 4 batches
while training, 1 chunk while evaluating), never the whole file's features. The file
work itself (scan, windows, standardiser, shuffle buffer, prefetch) is
:mod:`resnet_stability.data.stream`, TensorFlow-free.

Passes over the file (each streamed):

1. *scan* (:func:`scan_for`: :func:`~resnet_stability.data.stream.scan_bitcoin` with the
   spec's chunking, spans, ``max_rows`` and seed): the windows of
   :func:`~resnet_stability.data.timesplit.time_windows` and the training window's
   standardiser.
2. *one pass per epoch* (:meth:`StreamBatches.epoch_batches`): training-window rows
   through a shuffle buffer into batches of ``spec.batch_size``, standardised and tiled
   to every member inside the compiled step.
3. *evaluation* (:meth:`StreamBatches.score`): accuracy of every member on the training
   window and on every test window (and, with ``spec.noise_levels``, on the first test
   window under noise: ``trainer.noise_sources``), counted exactly as
   :func:`trainer.evaluate_accuracy <resnet_stability.sweep.trainer.evaluate_accuracy>`
   does (non-finite outputs are wrong).

**Batch order (the one difference from the in-memory source).** All members see the same
batches in the same order: a per-member shuffle would need random access to the file.
Trials therefore differ only in their initialisation (and members in h); in memory they
also differ in shuffle order. Epoch ``e`` shuffles with
``numpy.random.default_rng(derive_seed(spec.seed, "stream-shuffle", e))``
(:func:`shuffle_seed`) and a buffer of ``shuffle_buffer`` rows (default
``max(spec.chunk_rows, spec.batch_size)``), in the order
:mod:`resnet_stability.data.stream` documents: for a given ``shuffle_buffer`` and seed
it does not depend on ``chunk_rows`` (only the default buffer does).

**Prop. 1 statistic (the other difference).** In memory each member takes it at its own
seeded sample of 64 test rows; streamed, every member takes it at the first 64 rows (file
order) of the first test window, which the scan keeps, standardised like every batch.
The majority-class rate is that window's, from the scan's label counts. Multi-level
training would run through the same trainer, but the spec refuses ``levels > 1`` with
``stream``.
"""

from __future__ import annotations

import numpy as np

from resnet_stability.data.bitcoin import ENTITY_LABELS, NUMERIC_MASK
from resnet_stability.data.stream import StreamScan, feature_chunks, prefetch, scan_bitcoin, train_batches
from resnet_stability.data.timesplit import resolve_spans, time_bins
from resnet_stability.seeding import derive_seed
from resnet_stability.sweep.experiment import STREAM_DATASETS, ExperimentSpec
from resnet_stability.sweep.plan import MemberPlan


def scan_for(spec: ExperimentSpec, path=None) -> StreamScan:
    """The scan of ``path`` (default ``spec.data_path``) with ``spec``'s chunking,
    spans (defaults of :data:`~resnet_stability.data.timesplit.DEFAULT_WINDOWS` for unset
    ones), ``max_rows`` and seed."""
    train_span, test_span = resolve_spans(spec.dataset, spec.train_span, spec.test_span)
    return scan_bitcoin(
        spec.data_path if path is None else path,
        chunk_rows=spec.chunk_rows, train_span=train_span, test_span=test_span, max_rows=spec.max_rows, seed=spec.seed,
    )


def stream_notes(spec: ExperimentSpec) -> dict:
    """The sweep's up-front check of a streamed dataset: scans (validates) the file
    without holding it and returns its notes (rows, windows, synthetic)."""
    return scan_for(spec).notes()


def shuffle_seed(spec: ExperimentSpec, epoch: int) -> int:
    """Seed of epoch ``epoch``'s buffer shuffles (shared by all members)."""
    return derive_seed(spec.seed, "stream-shuffle", epoch)


def stream_plans(scan: StreamScan, spec: ExperimentSpec, block: str) -> list[MemberPlan]:
    """One ``plan.MemberPlan`` per (h, trial): its own seed and h; the shared training
    window, standardiser and batch order (``shuffle_seed`` holds ``spec.seed``: epoch e
    shuffles with ``derive_seed(shuffle_seed, "stream-shuffle", e)``); row sets as
    :class:`~resnet_stability.data.stream.StreamedRows` counts."""
    split = scan.time_split
    test_rows = split.windows[0].idx
    return [
        MemberPlan(
            h, trial, spec.member_seed(block, h, trial), spec.split_seed(trial), spec.seed,
            split.train_idx, test_rows, scan.mean, scan.scale, split,
        )
        for h, trial in spec.members()
    ]


class StreamBatches:
    """The batch source of a transaction file read in chunks (module docstring), for
    ``trainer.train_cell(StreamBatches(path, spec, block), spec, block)``.

    Scans the file on construction (cached). ``plans`` come from :func:`stream_plans`
    (row sets are counts; ``time_split`` describes the windows, so
    ``records.time_records`` works). All members share one batch order;
    ``shuffle_buffer`` (>= ``spec.batch_size``; default ``max(spec.chunk_rows,
    spec.batch_size)``) rows are shuffled at a time.

    Raises:
        ValueError: ``spec.dataset`` is not in :data:`STREAM_DATASETS`; a bad
            ``shuffle_buffer``; no training or no test rows.
        FileNotFoundError, BitcoinSchemaError: as the loader.
    """

    def __init__(self, path, spec: ExperimentSpec, block: str, *, shuffle_buffer: int | None = None):
        if spec.dataset not in STREAM_DATASETS:
            raise ValueError(
                f"streaming is only available for dataset(s) {', '.join(STREAM_DATASETS)} (transaction files), "
                f"not {spec.dataset!r}"
            )
        buffer_rows = max(spec.chunk_rows, spec.batch_size) if shuffle_buffer is None else shuffle_buffer
        if isinstance(buffer_rows, bool) or not isinstance(buffer_rows, int) or buffer_rows < spec.batch_size:
            raise ValueError(
                f"shuffle_buffer must be an integer >= batch_size ({spec.batch_size}), got {buffer_rows!r}"
            )
        self.spec, self.buffer_rows = spec, buffer_rows
        self.scan = scan_for(spec, path)
        self.path = self.scan.path
        self.plans = stream_plans(self.scan, spec, block)
        self.n_features, self.n_classes = len(NUMERIC_MASK), len(ENTITY_LABELS)
        self.standardise = None

    def open(self, spec: ExperimentSpec):
        """Called once, under the cell's device: returns ``inputs(batch)``, a batch
        ``(x (b, d), y (b,))`` standardised and copied to every member: (b, M, d), (b, M)."""
        import keras

        ops = keras.ops
        members = len(self.plans)
        mean = ops.convert_to_tensor(self.scan.mean, "float32")
        scale = ops.convert_to_tensor(self.scan.scale, "float32")

        def standardise(x, y):  # (b, d), (b,) -> every member's copy: (b, M, d), (b, M)
            x = (ops.tile(x[:, None, :], [1, members, 1]) - mean) / scale
            return x, ops.tile(y[:, None], [1, members])

        self.standardise = standardise
        return lambda batch: standardise(*batch)

    def batch_shapes(self) -> list:
        """None known ahead: a batch is (features, labels) read from the file; the step
        compiles at its first batch."""
        return []

    def epoch_batches(self, epoch: int):
        """Epoch ``epoch``'s batches, read ahead in a background thread."""
        import keras

        spec = self.spec
        batches = prefetch(train_batches(
            self.path, self.scan, chunk_rows=spec.chunk_rows, batch_size=spec.batch_size,
            buffer_rows=self.buffer_rows, rng=np.random.default_rng(shuffle_seed(spec, epoch)),
        ))
        return ((keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)) for x, y in batches)

    def score(self, predict, spec: ExperimentSpec, block: str) -> dict:
        """One evaluation pass over the file: the scores of ``trainer.score_members``."""
        return score_stream(predict, self.standardise, self.path, spec, block, self.scan, len(self.plans))

    def stability(self, shards, block: str):
        """``(euler_max, euler_stable_share, seconds)`` of every member
        (``trainer.members_statistic``) at the scan's sample: the first test window's
        first rows, the same for every member."""
        import keras

        from resnet_stability.sweep.trainer import members_statistic

        rows = self.scan.test_sample
        return members_statistic(
            shards, block,
            lambda: self.standardise(keras.ops.convert_to_tensor(rows), keras.ops.zeros(len(rows), "int32"))[0],
        )

    def majority_rate(self) -> np.ndarray:
        """(M,) the first test window's majority-class rate, the same for every member."""
        return np.full(len(self.plans), self.scan.test_majority_rate)


class WindowScores:
    """Correct-prediction counts of every member on one group of rows (a window), fed
    chunk by chunk and evaluated in pieces of ``trainer.EVAL_CHUNK`` rows (as
    ``evaluate_accuracy`` cuts a row list, so noise draws match the in-memory source)."""

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
            self.correct = add_counts(self.correct, self.score(xs, ys, None))
            for i, source in enumerate(self.noise_sources):
                self.noisy[i] = add_counts(self.noisy[i], self.score(xs, ys, source))
            self.n += len(xs)
        self.parts = [(x[used:], y[used:])] if used < self.pending else []
        self.pending -= used

    def accuracies(self):
        self._flush(final=True)
        return self.correct / self.n, [c / self.n for c in self.noisy]


def add_counts(total, value):
    """``value``, added to ``total`` unless that is None (nothing counted yet)."""
    return value if total is None else total + value


def score_stream(predict, standardise, path, spec: ExperimentSpec, block: str, scan: StreamScan, members: int) -> dict:
    """One evaluation pass over the file: the scores of ``trainer.score_members`` (noise
    on the first test window, from ``trainer.noise_sources``)."""
    import keras

    from resnet_stability.sweep.trainer import evaluate_accuracy, noise_sources

    def score(x, y, perturb):  # correct predictions per member on rows x, y
        rows = np.zeros((len(x), members), np.int32)
        ops = keras.ops
        accuracy = evaluate_accuracy(
            predict, lambda _: standardise(ops.convert_to_tensor(x), ops.convert_to_tensor(y)), rows, perturb=perturb
        )
        return np.rint(accuracy * len(x))

    test_index = scan.time_split.windows[0].index
    counts = {0: WindowScores(score)}
    noise_keys = []
    for window in scan.time_split.windows:
        sources = {}
        if window.index == test_index:
            sources = noise_sources(spec, block)
            noise_keys = list(sources)
        counts[window.index] = WindowScores(score, sources.values())
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
    "StreamBatches",
    "WindowScores",
    "scan_for",
    "score_stream",
    "shuffle_seed",
    "stream_notes",
    "stream_plans",
]
