"""Evaluations after training: noise robustness and accuracy on later time windows."""

from __future__ import annotations

import numpy as np
import pytest

from resnet_stability.data import load_dataset, simulate_transactions
from resnet_stability.engine import noise_records, time_records, train_cell
from resnet_stability.noise import NoiseSource
from resnet_stability.experiment import resolve_spec
from resnet_stability.plots import plot_accuracy_over_time, plot_noise_robustness


@pytest.fixture(scope="module")
def noisy_cell():
    spec = resolve_spec(
        "wine",
        dict(blocks=("residual",), h_values=(0.1, 0.5), trials=2, depth=2, epochs=10, lr=0.01,
             noise_levels=(0.0, 0.3, 50.0)),
    )
    result = train_cell(load_dataset("wine"), spec, "residual")
    return spec, result, noise_records(result, spec, "residual")


def test_noise_table_has_one_row_per_member_kind_and_level(noisy_cell):
    spec, result, table = noisy_cell
    assert set(table["noise"]) == {"gaussian", "uniform", "constant"}
    per_level = table.groupby(["noise", "level"]).size()
    assert (per_level == spec.members_per_cell).all()
    assert sorted(table["level"].unique()) == [0.0, 0.3, 50.0]


def test_zero_noise_equals_clean_test_accuracy(noisy_cell):
    _, result, table = noisy_cell
    for kind in ("gaussian", "uniform", "constant"):
        zero = table[(table["noise"] == kind) & (table["level"] == 0.0)]["accuracy"].to_numpy()
        np.testing.assert_array_equal(zero[: len(result.test_accuracy)], result.test_accuracy)


def test_huge_noise_drives_accuracy_down(noisy_cell):
    _, result, table = noisy_cell
    huge = table[(table["noise"] == "gaussian") & (table["level"] == 50.0)]["accuracy"]
    assert result.test_accuracy.mean() > 0.6
    assert huge.mean() < result.test_accuracy.mean() - 0.2


def test_noise_is_deterministic_in_its_seed_and_shaped_as_asked():
    shape = (4, 3, 2)
    a, b = NoiseSource("gaussian", 0.5, seed=1).draw(shape), NoiseSource("gaussian", 0.5, seed=1).draw(shape)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, NoiseSource("gaussian", 0.5, seed=2).draw(shape))
    np.testing.assert_array_equal(NoiseSource("constant", 0.25, seed=0).draw(shape), np.full(shape, 0.25))
    uniform = NoiseSource("uniform", 0.5, seed=0).draw((500, 2, 2))
    assert uniform.min() >= -0.5 and uniform.max() <= 0.5 and uniform.std() > 0.2
    with pytest.raises(ValueError, match="unknown noise kind 'pink'; allowed: gaussian, uniform, constant"):
        NoiseSource("pink", 0.1, seed=0)


def test_noise_figure_is_written(noisy_cell, tmp_path):
    _, _, table = noisy_cell
    paths = plot_noise_robustness(table, tmp_path / "noise")
    assert all(path.stat().st_size > 0 for path in paths)


def test_time_split_scores_every_later_window(tmp_path):
    path = simulate_transactions(tmp_path / "tx.csv", n_rows=1500, seed=3)
    dataset = load_dataset("bitcoin", path=str(path))
    spec = resolve_spec("bitcoin", dict(blocks=("shrinkage",), h_values=(0.2, 1.0), trials=1, depth=2, epochs=2,
                                         batch_size=64, data_path=str(path)))
    result = train_cell(dataset, spec, "shrinkage")
    split = result.plans[0].time_split
    table = time_records(result, spec, "shrinkage")
    assert sorted(table["window"].unique()) == [w.index for w in split.windows]
    assert len(table) == len(split.windows) * spec.members_per_cell
    first = table[table["window"] == split.windows[0].index]["accuracy"].to_numpy()
    np.testing.assert_array_equal(first, result.test_accuracy)  # test_accuracy is the next window
    train_end = dataset.time[result.plans[0].train_idx].max()
    assert train_end < dataset.time[split.windows[0].idx].min()  # trained strictly before testing
    paths = plot_accuracy_over_time(table, tmp_path / "time", split.describe())
    assert all(p.stat().st_size > 0 for p in paths)


def test_member_model_is_member_m_as_a_standalone_network(noisy_cell):
    _, result, _ = noisy_cell
    x = np.random.default_rng(0).normal(size=(7, len(result.plans), result.build_args["input_dim"]))
    together = np.asarray(result.model(x.astype("float32"), training=False))
    for m in (0, len(result.plans) - 1):
        alone = result.member_model(m)
        assert alone.layers[1].members is None
        np.testing.assert_allclose(np.asarray(alone(x[:, m].astype("float32"))), together[:, m], atol=1e-6)


def test_xla_choice():
    from resnet_stability.engine import xla_mode

    assert xla_mode("auto", "cpu") == "update" and xla_mode("auto", "gpu") == "step"
    assert xla_mode("on", "cpu") == "step" and xla_mode("off", "gpu") == "off"
    with pytest.raises(ValueError, match="unknown jit choice 'maybe'"):
        xla_mode("maybe", "cpu")
