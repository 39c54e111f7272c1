"""Tests for training from a streamed transaction file (``resnet_stability.sweep.streaming``).

What must hold: the scan finds exactly the windows of ``time_windows`` and the
standardiser of ``fit_standardizer`` without holding the file; training never sees more
than one chunk of rows at a time; with the same batch order a member is the same network
as a plain standalone loop (weights atol 2e-5, as in ``test_trainer.py``); the batch
order depends on the shuffle buffer and the seed, not on the chunking; the evaluation
pass scores exactly as the in-memory ``evaluate_accuracy``; the sweep CLI runs with
``--stream`` and rejects it for other datasets.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from resnet_stability import sweep
from resnet_stability.data import fit_standardizer, load_dataset, simulate_transactions, subsample_rows
from resnet_stability.data.timesplit import time_windows
from resnet_stability.models import build_model
from resnet_stability.seeding import derive_seed
from resnet_stability.sweep import streaming, trainer
from resnet_stability.sweep.experiment import ExperimentSpec, resolve_spec
from resnet_stability.sweep.noise import NoiseSource
from resnet_stability.sweep.records import cell_records, time_records

WEIGHT_ATOL = 2e-5
ROWS = 1500
CHUNK = 97  # much smaller than the file, and not a divisor of anything in it


@pytest.fixture(scope="module")
def tx_file(tmp_path_factory):
    """A 1500-row simulated transaction file (Parquet) and its in-memory Dataset."""
    path = simulate_transactions(tmp_path_factory.mktemp("stream") / "tx.parquet", n_rows=ROWS, seed=3)
    return path, load_dataset("bitcoin", path=str(path))


def stream_spec(path, **overrides) -> ExperimentSpec:
    values = dict(blocks=("residual",), h_values=(0.2, 1.0), trials=1, depth=2, width=5, epochs=2,
                  batch_size=32, lr=1e-2, data_path=str(path), stream=True, chunk_rows=CHUNK)
    values.update(overrides)
    return resolve_spec("bitcoin", values)


def assert_same_split(scan_split, memory_split):
    assert scan_split.train_start == memory_split.train_start and scan_split.train_end == memory_split.train_end
    assert len(scan_split.train_idx) == memory_split.train_idx.size
    assert [(w.index, w.start, w.end, w.n) for w in scan_split.windows] == [
        (w.index, w.start, w.end, w.n) for w in memory_split.windows
    ]
    assert scan_split.describe(counts=True) == memory_split.describe(counts=True)


# ------------------------------------------------------------------- scan (no training)


@pytest.mark.parametrize("spans", [None, (200.5, 91.25)], ids=["default-spans", "fractional-spans"])
def test_scan_finds_the_windows_and_standardizer_of_the_in_memory_dataset(tx_file, spans):
    path, dataset = tx_file
    overrides = {} if spans is None else dict(train_span=spans[0], test_span=spans[1])
    spec = stream_spec(path, **overrides)
    scan = streaming.scan_bitcoin(path, spec)
    memory = time_windows(dataset.time, *(spans or (365.0, 182.0)), unit="days")
    assert len(memory.windows) >= 5
    assert_same_split(scan.time_split, memory)
    mean, scale = fit_standardizer(dataset.X[memory.train_idx], dataset.numeric_mask)
    np.testing.assert_allclose(scan.mean, mean, atol=1e-9, rtol=0)
    np.testing.assert_allclose(scan.scale, scale, atol=1e-9, rtol=0)
    assert scan.mean[3:].tolist() == [0.0] * 4 and scan.scale[3:].tolist() == [1.0] * 4  # cyclic: untouched
    assert scan.synthetic and scan.n_rows == ROWS


def test_scan_with_max_rows_keeps_the_rows_subsample_rows_keeps(tx_file):
    path, dataset = tx_file
    spec = stream_spec(path, max_rows=400, seed=5)
    scan = streaming.scan_bitcoin(path, spec)
    small = subsample_rows(dataset, 400, 5)
    memory = time_windows(small.time, 365.0, 182.0, unit="days")
    assert scan.n_rows == 400
    assert_same_split(scan.time_split, memory)
    mean, scale = fit_standardizer(small.X[memory.train_idx], small.numeric_mask)
    np.testing.assert_allclose(scan.mean, mean, atol=1e-9, rtol=0)
    np.testing.assert_allclose(scan.scale, scale, atol=1e-9, rtol=0)


def test_window_bins_equal_time_windows_membership():
    rng = np.random.default_rng(0)
    for trial in range(20):
        t = rng.uniform(-3.7, 40.0, size=300)
        train_span, test_span = rng.uniform(1, 15), rng.choice([0.25, 1.0, rng.uniform(0.3, 9)])
        if trial % 2:  # many rows exactly on the boundaries
            t, train_span, test_span = np.round(t * 4) / 4, np.round(train_span * 4) / 4, [0.25, 1.0, 2.5][trial % 3]
            assert np.isin(t, streaming.window_edges(t.min(), t.max(), train_span, test_span)).sum() > 10
        memory = time_windows(t, train_span, test_span)
        edges = streaming.window_edges(t.min(), t.max(), train_span, test_span)
        bins = streaming.time_bins(t, edges)
        np.testing.assert_array_equal(np.flatnonzero(bins == 0), memory.train_idx)
        for window in memory.windows:
            np.testing.assert_array_equal(np.flatnonzero(bins == window.index), window.idx)
            assert (edges[window.index], edges[window.index + 1]) == (window.start, window.end)
        listed = {w.index for w in memory.windows}
        assert all(np.sum(bins == k) == 0 for k in range(1, len(edges) - 1) if k not in listed)
        assert (bins >= -1).all() and (bins < len(edges) - 1).all()


def test_running_standardizer_is_stable_and_equals_fit_standardizer():
    rng = np.random.default_rng(1)
    X = np.column_stack([
        1e6 + rng.normal(size=5000),  # a large offset: sums of squares would lose it all
        rng.exponential(size=5000),
        np.full(5000, 3.25),  # constant: scale 1
        rng.normal(size=5000),  # not numeric: mean 0, scale 1
    ])
    mask = np.array([True, True, True, False])
    running = streaming.RunningStandardizer(mask)
    for part in np.array_split(X, [1, 7, 1000, 1001, 3999]):
        running.update(part)
    mean, scale = running.result()
    expected_mean, expected_scale = fit_standardizer(X, mask)
    np.testing.assert_allclose(mean, expected_mean, atol=1e-9, rtol=0)
    np.testing.assert_allclose(scale, expected_scale, atol=1e-9, rtol=0)
    assert scale[2] == 1.0 and (mean[3], scale[3]) == (0.0, 1.0)


def test_buffer_shuffler_cuts_full_batches_in_an_order_independent_of_chunking():
    rows = np.arange(1000)

    def batches(pieces, buffer, batch=32):
        shuffler = streaming.BufferShuffler(buffer, batch, np.random.default_rng(7))
        out = []
        for piece in np.array_split(rows, pieces):
            out += [x for x, _ in shuffler.add(piece, piece)]
        return out + [x for x, _ in shuffler.finish()]

    reference = batches(1, 100)
    assert [len(b) for b in reference[:-1]] == [32] * (len(reference) - 1) and 0 < len(reference[-1]) <= 32
    np.testing.assert_array_equal(np.sort(np.concatenate(reference)), rows)  # every row once
    for pieces in (3, 97, 1000):
        assert all(np.array_equal(a, b) for a, b in zip(batches(pieces, 100), reference, strict=True))
    assert not np.array_equal(np.concatenate(reference), rows)  # shuffled
    assert not np.array_equal(np.concatenate(batches(1, 500)), np.concatenate(reference))
    with pytest.raises(ValueError, match="shuffle_buffer must be >= batch_size"):
        streaming.BufferShuffler(16, 32, np.random.default_rng(0))


def test_prefetch_keeps_the_order_raises_errors_and_stops_when_left():
    assert list(streaming.prefetch(iter(range(100)), depth=3)) == list(range(100))

    def failing():
        yield 1
        raise ValueError("bad chunk")

    with pytest.raises(ValueError, match="bad chunk"):
        list(streaming.prefetch(failing()))
    produced = []

    def endless():
        for k in range(10**9):
            produced.append(k)
            yield k

    items = streaming.prefetch(endless(), depth=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()  # joins the thread: it must stop, not run on
    assert len(produced) <= 3 + 2 + 1


# ---------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def streamed_cell(tx_file):
    """A cell trained from chunks of 97 rows, recording every chunk and batch it saw.
    The scan cache is cleared so the scan is recorded too; loading the file is forbidden."""
    path, _ = tx_file
    spec = stream_spec(path, noise_levels=(0.5,), noise_kinds=("gaussian",))
    seen = dict(frames=[], features=[], batches=[])
    real_frames, real_features = streaming.iter_bitcoin_frames, streaming.bitcoin_features
    real_shuffler_add = streaming.BufferShuffler.add

    def frames(*args, **kwargs):
        for frame in real_frames(*args, **kwargs):
            seen["frames"].append(len(frame))
            yield frame

    def features(frame):
        seen["features"].append(len(frame))
        return real_features(frame)

    def add(self, x, y):
        for batch in real_shuffler_add(self, x, y):
            seen["batches"].append(len(batch[0]))
            assert self.count <= self.buffer_rows
            yield batch

    def no_loading(*args, **kwargs):
        raise AssertionError("streaming must not load the whole file")

    streaming._scan.cache_clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(streaming, "iter_bitcoin_frames", frames)
        patch.setattr(streaming, "bitcoin_features", features)
        patch.setattr(streaming.BufferShuffler, "add", add)
        patch.setattr("resnet_stability.data.bitcoin.load_bitcoin", no_loading)
        patch.setattr(trainer, "EVAL_CHUNK", 50)  # several evaluation pieces per window
        result = streaming.train_cell_streaming(path, spec, "residual")
    return spec, result, seen


def test_streaming_holds_one_chunk_at_a_time(tx_file, streamed_cell):
    path, dataset = tx_file
    spec, result, seen = streamed_cell
    assert max(seen["frames"]) <= CHUNK and max(seen["features"]) <= CHUNK
    assert sum(seen["frames"]) >= 3 * ROWS  # two scan passes and the evaluation pass read it all
    assert max(seen["batches"]) <= spec.batch_size
    split = result.plans[0].time_split
    for accuracy in [result.test_accuracy, result.train_accuracy, *result.window_accuracy.values()]:
        assert ((accuracy >= 0) & (accuracy <= 1)).all()
    assert sorted(result.window_accuracy) == [w.index for w in split.windows]
    np.testing.assert_array_equal(result.test_accuracy, result.window_accuracy[split.windows[0].index])
    table = time_records(result, spec, "residual")
    memory = time_windows(dataset.time, 365.0, 182.0)
    counts = table.groupby("window")["n"].first()
    assert counts.to_dict() == {w.index: w.n for w in memory.windows}
    records = cell_records(result, spec, "residual", "cpu")
    assert (records["n_train"] == memory.train_idx.size).all()
    assert (records["n_test"] == memory.windows[0].n).all()
    assert not result.diverged.any() and np.isfinite(result.final_loss).all()
    with pytest.raises(TypeError, match="no in-memory indices"):
        np.asarray(result.plans[0].train_idx)


def test_streamed_scores_equal_the_in_memory_evaluation_of_the_same_model(tx_file, streamed_cell, monkeypatch):
    path, dataset = tx_file
    spec, result, _ = streamed_cell
    monkeypatch.setattr(trainer, "EVAL_CHUNK", 50)  # the same pieces, so the same noise draws
    plan, members = result.plans[0], len(result.plans)
    features = tf.constant(dataset.X, tf.float32)
    mean, scale = tf.constant(plan.mean, tf.float32), tf.constant(plan.scale, tf.float32)

    def gather(idx):
        return (tf.gather(features, idx) - mean) / scale, tf.gather(tf.constant(dataset.y, tf.int32), idx)

    model = result.model  # all members as one members model
    predict = tf.function(lambda x: model(x, training=False))
    memory = time_windows(dataset.time, 365.0, 182.0)

    def score(idx, perturb=None):
        return trainer.evaluate_accuracy(predict, gather, np.repeat(idx[:, None], members, axis=1), perturb)

    np.testing.assert_array_equal(result.train_accuracy, score(memory.train_idx))
    for window in memory.windows:
        np.testing.assert_array_equal(result.window_accuracy[window.index], score(window.idx))
    noise = NoiseSource("gaussian", 0.5, derive_seed(spec.seed, spec.dataset, "residual", "noise", "gaussian", 0.5))
    np.testing.assert_array_equal(result.noise_accuracy[("gaussian", 0.5)], score(memory.windows[0].idx, noise))
    assert not np.array_equal(result.noise_accuracy[("gaussian", 0.5)], result.test_accuracy)


def reference_batches(n, batch, buffer, seed):
    """The documented batch order, written out on row positions 0..n-1 (file order)."""
    rng = np.random.default_rng(seed)
    pending, out, position = np.empty(0, np.int64), [], 0
    while position < n:
        take = min(buffer - len(pending), n - position)
        pending = np.concatenate([pending, np.arange(position, position + take)])
        position += take
        if len(pending) == buffer:
            pending = pending[rng.permutation(buffer)]
            used = buffer // batch * batch
            out += [pending[s : s + batch] for s in range(0, used, batch)]
            pending = pending[used:]
    pending = pending[rng.permutation(len(pending))]
    return out + [pending[s : s + batch] for s in range(0, len(pending), batch)]


def test_every_member_equals_a_standalone_loop_fed_the_same_batches(tx_file):
    """Four members (h 0.2 and 1.0 × two trials: different h, different seeds) trained
    from the stream; each equals its own standalone network (its h, its seed) trained by
    a plain loop on the documented shared batch order, and the members end apart."""
    path, dataset = tx_file
    h_values = (0.2, 1.0)
    spec = stream_spec(path, h_values=h_values, trials=2)
    buffer = 100  # not a multiple of the batch: rows are carried from buffer to buffer
    result = streaming.train_cell_streaming(path, spec, "residual", shuffle_buffer=buffer)
    assert [(p.h, p.trial) for p in result.plans] == [(h, t) for h in h_values for t in range(2)]

    split = time_windows(dataset.time, 365.0, 182.0)
    assert split.train_idx.size % spec.batch_size and split.train_idx.size > 2 * buffer
    mean, scale = fit_standardizer(dataset.X[split.train_idx], dataset.numeric_mask)
    x_train = ((dataset.X[split.train_idx] - mean) / scale).astype(np.float32)
    y_train = dataset.y[split.train_idx]
    epochs = [reference_batches(len(y_train), spec.batch_size, buffer, derive_seed(spec.seed, "stream-shuffle", e))
              for e in range(spec.epochs)]
    finals = []
    for m, (h, trial) in enumerate(spec.members()):
        seed = spec.member_seed("residual", h, trial)
        model = build_model(7, 4, "residual", depth=spec.depth, width=spec.width, h=h, seed=seed)
        initial = [v.numpy().copy() for v in model.variables]
        optimizer = keras.optimizers.Adam(learning_rate=spec.lr)
        for batches in epochs:
            for rows in batches:
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y_train[rows], model(x_train[rows])))
                optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        moved = max(float(np.abs(v.numpy() - w).max()) for v, w in zip(model.variables, initial))
        assert moved > 1e-3
        assert [v.path for v in model.variables] == [v.path for v in result.model.variables]
        for alone, together in zip(model.variables, result.model.variables):
            np.testing.assert_allclose(together.numpy()[m], alone.numpy(), atol=WEIGHT_ATOL, rtol=1e-5,
                                       err_msg=f"member {m}: {alone.path}")
        finals.append(np.concatenate([v.numpy().ravel() for v in model.variables]))
    for a in range(len(finals)):  # the comparison tells members apart
        for b in range(a):
            assert np.max(np.abs(finals[a] - finals[b])) > 100 * WEIGHT_ATOL


def test_results_depend_on_the_shuffle_buffer_not_on_the_chunking(tx_file):
    path, _ = tx_file
    runs = [
        streaming.train_cell_streaming(path, stream_spec(path, chunk_rows=chunk), "residual", shuffle_buffer=128)
        for chunk in (CHUNK, 1000)
    ]
    for a, b in zip(runs[0].model.variables, runs[1].model.variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(runs[0].final_loss, runs[1].final_loss)
    other = streaming.train_cell_streaming(path, stream_spec(path, seed=1), "residual", shuffle_buffer=128)
    assert not np.allclose(other.model.variables[-1].numpy(), runs[0].model.variables[-1].numpy())
    with pytest.raises(ValueError, match="shuffle_buffer must be an integer >= batch_size"):
        streaming.train_cell_streaming(path, stream_spec(path), "residual", shuffle_buffer=8)


# ------------------------------------------------------------------------ spec and CLI


def test_spec_fields_validate_and_enter_the_cell_hash_only_when_streaming(tx_file):
    path, _ = tx_file
    plain = stream_spec(path, stream=False)
    assert "stream" not in plain.cell_config("residual") and "chunk_rows" not in plain.cell_config("residual")
    assert stream_spec(path, stream=False, chunk_rows=5).cell_hash("residual") == plain.cell_hash("residual")
    streamed = stream_spec(path)
    assert streamed.cell_config("residual")["stream"] is True
    assert streamed.cell_hash("residual") != plain.cell_hash("residual")
    assert stream_spec(path, chunk_rows=98).cell_hash("residual") != streamed.cell_hash("residual")
    with pytest.raises(ValueError, match="only available for dataset.*bitcoin.*not 'wine'"):
        resolve_spec("wine", dict(stream=True))
    with pytest.raises(ValueError, match="chunk_rows must be an integer >= 1, got 0"):
        stream_spec(path, chunk_rows=0)


def test_sweep_cli_streams_a_file(tx_file, tmp_path, capsys, monkeypatch):
    path, _ = tx_file

    def no_loading(*args, **kwargs):
        raise AssertionError("--stream must not load the whole file")

    monkeypatch.setattr("resnet_stability.sweep.runner._load", no_loading)
    out = tmp_path / "out"
    argv = ["--dataset", "bitcoin", "--data", str(path), "--stream", "--quick", "--chunk-rows", "200",
            "--blocks", "residual", "--out", str(out)]
    assert sweep.main(argv) == 0
    stdout = capsys.readouterr().out
    assert "streamed in chunks of 200 rows" in stdout
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 3 * 2 and table["test_accuracy"].between(0, 1).all()
    assert table["synthetic_data"].all()
    over_time = pd.read_csv(out / "accuracy_over_time.csv")
    assert over_time["window"].nunique() >= 5 and over_time["accuracy"].between(0, 1).all()
    spec = json.loads((out / "spec.json").read_text())
    assert spec["experiments"][0]["stream"] is True and spec["experiments"][0]["chunk_rows"] == 200
    assert spec["datasets"]["bitcoin"]["stream"] is True and spec["datasets"]["bitcoin"]["rows"] == 300
    assert sweep.main(argv) == 0  # a rerun resumes: the cell is found under its streaming hash
    assert "already done" in capsys.readouterr().out


def exit_code(argv) -> int:
    try:
        return sweep.main(argv)
    except SystemExit as exit_info:  # argparse errors
        return exit_info.code


@pytest.mark.parametrize(
    "argv, bad",
    [
        (["--dataset", "wine", "--stream"], "not 'wine'"),
        (["--dataset", "bitcoin", "--chunk-rows", "50"], "--chunk-rows only applies with --stream"),
        (["--dataset", "bitcoin", "--stream", "--chunk-rows", "0"], "invalid --chunk-rows '0'"),
    ],
)
def test_stream_flags_reject_bad_use_with_one_line(argv, bad, capfd, tmp_path):
    assert exit_code(argv + ["--out", str(tmp_path / "x")]) == 2
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and bad in lines[0], lines
