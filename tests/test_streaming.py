"""Tests for training from a streamed transaction file (``resnet_stability.sweep.streaming``:
its batch source for ``trainer.train_cell``; the file work is tested in ``test_stream.py``).

What must hold: training never sees more
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
from helpers import TX_ROWS, reference_batches
from resnet_stability.analysis.spectra import euler_statistic, jacobian_spectra
from resnet_stability.data import fit_standardizer, stream
from resnet_stability.data.timesplit import time_windows
from resnet_stability.models import build_model
from resnet_stability.seeding import derive_seed
from resnet_stability.sweep import streaming, trainer
from resnet_stability.sweep.experiment import ExperimentSpec, resolve_spec
from resnet_stability.sweep.noise import NoiseSource
from resnet_stability.sweep.records import cell_records, time_records

WEIGHT_ATOL = 2e-5
CHUNK = 97  # much smaller than the file, and not a divisor of anything in it


def stream_spec(path, **overrides) -> ExperimentSpec:
    values = dict(blocks=("residual",), h_values=(0.2, 1.0), trials=1, depth=2, width=5, epochs=2,
                  batch_size=32, lr=1e-2, data_path=str(path), stream=True, chunk_rows=CHUNK)
    values.update(overrides)
    return resolve_spec("bitcoin", values)


def train_streamed(path, spec, block="residual", **kwargs):
    """``trainer.train_cell`` fed by the file's streamed batch source."""
    return trainer.train_cell(streaming.StreamBatches(path, spec, block, **kwargs), spec, block)


# ---------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def streamed_cell(tx_file):
    """A cell trained from chunks of 97 rows, recording every chunk and batch it saw.
    The scan cache is cleared so the scan is recorded too; loading the file is forbidden."""
    path, _ = tx_file
    spec = stream_spec(path, noise_levels=(0.5,), noise_kinds=("gaussian",))
    seen = dict(frames=[], features=[], batches=[])
    real_frames, real_features = stream.iter_bitcoin_frames, stream.bitcoin_features
    real_shuffler_add = stream.BufferShuffler.add

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

    stream.clear_scan_cache()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stream, "iter_bitcoin_frames", frames)
        patch.setattr(stream, "bitcoin_features", features)
        patch.setattr(stream.BufferShuffler, "add", add)
        patch.setattr("resnet_stability.data.bitcoin.load_bitcoin", no_loading)
        patch.setattr(trainer, "EVAL_CHUNK", 50)  # several evaluation pieces per window
        result = train_streamed(path, spec)
    return spec, result, seen


def test_streaming_holds_one_chunk_at_a_time(tx_file, streamed_cell):
    path, dataset = tx_file
    spec, result, seen = streamed_cell
    assert max(seen["frames"]) <= CHUNK and max(seen["features"]) <= CHUNK
    assert sum(seen["frames"]) >= 3 * TX_ROWS  # two scan passes and the evaluation pass read it all
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


def test_a_streamed_cell_has_the_statistic_at_the_first_test_rows_and_the_majority_rate(tx_file, streamed_cell):
    """Like a cell in memory, a streamed cell records euler_max (each member's standalone
    network's spectra at the first 64 rows of the first test window, standardised by the
    training window's statistics) and the test window's majority-class rate."""
    path, dataset = tx_file
    spec, result, _ = streamed_cell
    memory = time_windows(dataset.time, 365.0, 182.0)
    first = np.sort(memory.windows[0].idx)
    mean, scale = fit_standardizer(dataset.X[memory.train_idx], dataset.numeric_mask)
    x = ((dataset.X[first[:64]] - mean) / scale).astype(np.float32)
    labels = dataset.y[first]
    np.testing.assert_allclose(result.test_majority_rate, [np.bincount(labels).max() / labels.size] * 2, rtol=0)
    for m, plan in enumerate(result.plans):
        table = euler_statistic(jacobian_spectra(result.member_model(m), x))
        assert len(table) == spec.depth and (table["h"] == plan.h).all()
        assert result.euler_max[m] == pytest.approx(table["max_euler_factor"].max(), abs=1e-5), m
        assert result.euler_stable_share[m] == pytest.approx(table["stable"].mean(), abs=1e-12), m
    assert result.euler_max[0] != pytest.approx(result.euler_max[1], abs=1e-3)  # h 0.2 and 1.0 differ
    records = cell_records(result, spec, "residual", "cpu")
    assert records["euler_max"].notna().all() and records["test_majority_rate"].notna().all()


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


def test_every_member_equals_a_standalone_loop_fed_the_same_batches(tx_file):
    """Four members (h 0.2 and 1.0 × two trials: different h, different seeds) trained
    from the stream; each equals its own standalone network (its h, its seed) trained by
    a plain loop on the documented shared batch order, and the members end apart."""
    path, dataset = tx_file
    h_values = (0.2, 1.0)
    spec = stream_spec(path, h_values=h_values, trials=2)
    buffer = 100  # not a multiple of the batch: rows are carried from buffer to buffer
    result = train_streamed(path, spec, shuffle_buffer=buffer)
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
        train_streamed(path, stream_spec(path, chunk_rows=chunk), shuffle_buffer=128)
        for chunk in (CHUNK, 1000)
    ]
    for a, b in zip(runs[0].model.variables, runs[1].model.variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(runs[0].final_loss, runs[1].final_loss)
    other = train_streamed(path, stream_spec(path, seed=1), shuffle_buffer=128)
    assert not np.allclose(other.model.variables[-1].numpy(), runs[0].model.variables[-1].numpy())
    with pytest.raises(ValueError, match="shuffle_buffer must be an integer >= batch_size"):
        streaming.StreamBatches(path, stream_spec(path), "residual", shuffle_buffer=8)


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
