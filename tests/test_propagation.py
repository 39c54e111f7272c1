"""Tests for ``resnet_stability.analysis.propagation``: states at every layer, per-layer
accuracy, propagation grids and GIFs (Figs 2–7), accuracy vs h on 2-D data (Fig. 8)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from resnet_stability.analysis import (
    animate_propagation,
    block_layers,
    default_layers,
    layer_accuracy,
    plot_accuracy_vs_h_synthetic,
    plot_propagation,
    record_propagation,
)
from resnet_stability.data.synthetic import make_synthetic
from resnet_stability.models import build_model


@pytest.fixture(scope="module")
def circles():
    data = make_synthetic("circles", n_train=20, n_test=20, noise=0.05, seed=0)
    return data.X[~data.test_mask].astype(np.float32), data.y[~data.test_mask]


# --- propagation ---------------------------------------------------------------------


def test_record_propagation_shape_and_layer_zero(shrinkage_model, points):
    states = record_propagation(shrinkage_model, points)
    assert states.shape == (4 + 1, len(points), 2)
    np.testing.assert_array_equal(states[0], points)  # no stem: layer 0 is the input
    assert not np.allclose(states[-1], states[0])
    # each layer is the previous one pushed through its block
    blocks = block_layers(shrinkage_model)
    np.testing.assert_allclose(blocks[2](states[2]).numpy(), states[3], atol=1e-6)


def test_record_propagation_with_stem():
    model = build_model(3, 2, "residual", depth=2, width=4, h=0.2, seed=5)
    x = np.random.default_rng(3).normal(size=(6, 3)).astype(np.float32)
    states = record_propagation(model, x)
    assert states.shape == (3, 6, 4)
    np.testing.assert_allclose(states[0], model.get_layer("stem")(x).numpy(), atol=1e-6)


def test_layer_accuracy_head_matches_model(residual_model):
    x = np.random.default_rng(4).normal(size=(40, 3)).astype(np.float32)
    y = (x[:, 0] + 0.3 * x[:, 1] > 0).astype(int)
    states = record_propagation(residual_model, x)
    accuracy = layer_accuracy(residual_model, states, y)
    assert accuracy.shape == (states.shape[0],)
    predicted = np.argmax(residual_model.predict(x, verbose=0), axis=-1)
    assert accuracy[-1] == pytest.approx(np.mean(predicted == y))
    # one-hot labels give the same answer
    np.testing.assert_allclose(layer_accuracy(residual_model, states, np.eye(2)[y]), accuracy)


def test_layer_accuracy_probe(residual_model):
    x = np.random.default_rng(5).normal(size=(40, 3)).astype(np.float32)
    x[:, 0] += np.where(x[:, 0] > 0, 1.0, -1.0)  # a margin of 2 around x0 = 0
    y = (x[:, 0] > 0).astype(int)  # linearly separable at layer 0
    states = record_propagation(residual_model, x)
    probe = layer_accuracy(residual_model, states, y, method="probe")
    assert probe.shape == (states.shape[0],)
    assert probe[0] == 1.0
    assert np.all((probe >= 0) & (probe <= 1))
    held_out = layer_accuracy(residual_model, states[:, :30], y[:30], method="probe",
                              states_test=states[:, 30:], y_test=y[30:])
    assert held_out.shape == (states.shape[0],)
    with pytest.raises(ValueError, match="method"):
        layer_accuracy(residual_model, states, y, method="knn")
    with pytest.raises(ValueError, match="states_test"):
        layer_accuracy(residual_model, states, y, method="probe", states_test=states)


def test_default_layers():
    assert default_layers(100) == [0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    deep = default_layers(500)
    assert deep[:4] == [0, 5, 50, 100] and deep[-1] == 500
    assert deep == [0, 5, 50, *range(100, 501, 50)]
    assert default_layers(7) == [0, 5, 7]
    assert default_layers(20) == [0, 5, 10, 20]
    assert default_layers(0) == [0]
    with pytest.raises(ValueError):
        default_layers(-1)


# --- figures -------------------------------------------------------------------------


def test_figures_are_written(tmp_path, shrinkage_model, circles):
    x, y = circles
    out = plot_propagation(shrinkage_model, x, y, tmp_path / "prop.png", title="circles")
    assert out.stat().st_size > 1000
    with pytest.raises(ValueError, match="out of range"):
        plot_propagation(shrinkage_model, x, y, tmp_path / "bad.png", layers=[0, 9])

    gif = animate_propagation(shrinkage_model, x, y, tmp_path / "prop.gif", fps=4)
    assert gif.stat().st_size > 1000
    with Image.open(gif) as image:
        assert image.n_frames == 4 + 1

    table = pd.DataFrame(
        [
            {"block": block, "h": h, "trial": trial, "test_accuracy": 0.6 + 0.2 * h + 0.05 * trial}
            for block in ("residual", "shrinkage")
            for h in (0.1, 0.5, 1.0)
            for trial in range(3)
        ]
    )
    written = plot_accuracy_vs_h_synthetic(table, tmp_path / "fig8.png")
    assert sorted(p.name for p in written) == ["fig8.pdf", "fig8.png"]
    assert all(p.stat().st_size > 1000 for p in written)


# --- scope ---------------------------------------------------------------------------


def test_members_model_is_rejected(tmp_path):
    model = build_model(2, 2, "residual", depth=2, width=2, h=0.1, members=2, seed=0)
    x = np.zeros((3, 2), dtype=np.float32)
    for call in (
        lambda: record_propagation(model, x),
        lambda: layer_accuracy(model, np.zeros((3, 3, 2)), np.zeros(3)),
        lambda: plot_propagation(model, x, np.zeros(3), tmp_path / "m.png"),
    ):
        with pytest.raises(ValueError, match="members"):
            call()
