"""Watch features propagate layer by layer (Zhang & Wynter, Figs 2–8).

Layer 0 is the state after the stem (the input itself when ``input_dim == width``, as for
the 2-D synthetic data), layer L the state after block L−1. The figures report, per layer,
the accuracy of the model's **own trained head** applied to that layer's state, as if the
network stopped there (``method="head"``, the default used by :func:`plot_propagation`
and :func:`animate_propagation`); ``method="probe"`` fits a fresh linear probe instead.

Models without a members axis only (``members=None``); others raise ``ValueError``.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.animation import FuncAnimation, PillowWriter

from resnet_stability.analysis.spectra import check_no_members, layer_states
from resnet_stability.plots import plot_accuracy_vs_h

METHODS = ("head", "probe")


def record_propagation(model, x) -> np.ndarray:
    """States of inputs ``x`` (n, input_dim) at every layer: array (depth + 1, n, width).

    Entry 0 is the state after the stem (``x`` itself without a stem), entry L the state
    after block L−1; the same states as :func:`resnet_stability.analysis.layer_states`.
    Models without a members axis only.
    """
    return np.stack(layer_states(model, x))


def _labels(y) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2:  # one-hot or probabilities
        y = np.argmax(y, axis=-1)
    if y.ndim != 1:
        raise ValueError(f"y must be class labels (n,) or one-hot (n, classes), got shape {y.shape}")
    return y.astype(np.int64)


def _as_states(states, name) -> np.ndarray:
    states = np.asarray(states)
    if states.ndim == 2:
        states = states[None]
    if states.ndim != 3:
        raise ValueError(f"{name} must have shape (layers, n, width) or (n, width), got {states.shape}")
    return states


def layer_accuracy(model, states, y, method: str = "head", states_test=None, y_test=None) -> np.ndarray:
    """Classification accuracy at each layer; returns an array with one value per layer.

    ``states`` is (layers, n, width) as from :func:`record_propagation` (a single (n, width)
    layer is accepted); ``y`` holds class labels (or one-hot rows).

    - ``method="head"`` (the figures' default): apply the model's own trained head (layer
      ``"head"``) to each layer's state, i.e. the accuracy the network would have if it
      stopped at that layer. No fitting.
    - ``method="probe"``: fit a logistic-regression linear probe (scikit-learn) on each
      layer's states. It is fit **and scored on the same points** unless ``states_test``
      and ``y_test`` are given, in which case it is fit on ``states``/``y`` and scored on
      those (a measure of linear separability, not of the trained network).

    Models without a members axis only.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; allowed: {list(METHODS)}")
    check_no_members(model)
    states = _as_states(states, "states")
    y = _labels(y)
    if states.shape[1] != len(y):
        raise ValueError(f"states hold {states.shape[1]} points but y has {len(y)} labels")
    if (states_test is None) != (y_test is None):
        raise ValueError("give both states_test and y_test, or neither")
    if states_test is not None:
        states_test = _as_states(states_test, "states_test")
        y_test = _labels(y_test)
        if states_test.shape[0] != states.shape[0] or states_test.shape[1] != len(y_test):
            raise ValueError(
                f"states_test {states_test.shape} must have {states.shape[0]} layers and one row per y_test label"
            )
    if method == "head":
        head = model.get_layer("head")
        eval_states, eval_y = (states, y) if states_test is None else (states_test, y_test)
        accuracies = []
        for layer_state in eval_states:
            tensor = keras.ops.convert_to_tensor(layer_state, dtype=head.compute_dtype)
            probs = keras.ops.convert_to_numpy(head(tensor, training=False))
            accuracies.append(float(np.mean(np.argmax(probs, axis=-1) == eval_y)))
        return np.asarray(accuracies)
    from sklearn.linear_model import LogisticRegression

    accuracies = []
    for index, layer_state in enumerate(states):
        fit_x = np.nan_to_num(layer_state.astype(np.float64), nan=0.0, posinf=1e300, neginf=-1e300)
        score_x, score_y = (fit_x, y) if states_test is None else (states_test[index].astype(np.float64), y_test)
        if len(np.unique(y)) < 2:
            accuracies.append(float(np.mean(score_y == y[0])))
            continue
        probe = LogisticRegression(max_iter=1000).fit(fit_x, y)
        score_x = np.nan_to_num(score_x, nan=0.0, posinf=1e300, neginf=-1e300)
        accuracies.append(float(probe.score(score_x, score_y)))
    return np.asarray(accuracies)


def default_layers(depth: int) -> list[int]:
    """The layers the paper shows: 0, 5, 10, 20, …, 100 for depth <= 100 and 0, 5, 50,
    100, 150, …, 500 for deeper models; clipped to ``depth``, always including ``depth``,
    sorted without duplicates. Beyond 500 blocks the step grows (50·⌈depth/500⌉) so the
    grid stays about ten panels."""
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 0:
        raise ValueError(f"depth must be an integer >= 0, got {depth!r}")
    depth = int(depth)
    if depth <= 100:
        candidates = [0, 5, *range(10, 101, 10)]
    else:
        step = 50 * math.ceil(depth / 500)
        candidates = [0, 5, 50, *range(step, depth + 1, step)]
    return sorted({layer for layer in candidates if layer <= depth} | {depth})


def _check_layers(layers, n_layers):
    layers = [int(layer) for layer in layers]
    bad = [layer for layer in layers if not 0 <= layer < n_layers]
    if bad:
        raise ValueError(f"layers {bad} out of range; this model has layers 0..{n_layers - 1}")
    if not layers:
        raise ValueError("layers must name at least one layer")
    return layers


def _class_colors(y):
    classes = np.unique(y)
    cmap = plt.get_cmap("tab10")
    return classes, {c: cmap(i % 10) for i, c in enumerate(classes)}


def _scatter_state(ax, state, y, classes, colors, s=8):
    xy = state[:, :2]
    finite = np.all(np.isfinite(xy), axis=1)
    for c in classes:
        mask = finite & (y == c)
        ax.scatter(xy[mask, 0], xy[mask, 1], s=s, color=colors[c], label=f"class {c}", linewidths=0, alpha=0.8)
    notes = []
    if state.shape[1] > 2:
        notes.append(f"first 2 of {state.shape[1]} coordinates")
    if not finite.all():
        notes.append(f"{int((~finite).sum())} non-finite points omitted")
    if notes:
        ax.text(0.02, 0.02, "\n".join(notes), transform=ax.transAxes, fontsize=7, va="bottom", color="0.3")
    return xy[finite]


def plot_propagation(model, x, y, path, layers=None, method: str = "head", title: str | None = None) -> Path:
    """A grid of panels, one per chosen layer, showing the states of ``x`` coloured by class.

    ``layers`` defaults to :func:`default_layers` of the model's depth. Each panel is
    titled "layer L — acc 0.93", the accuracy from :func:`layer_accuracy` with ``method``
    (default ``"head"``: the model's own head applied to that layer's state). States must
    be 2-D to be drawn as they are; for width > 2 the first two coordinates are drawn and
    the panel says so. Writes the figure to ``path`` (format from the suffix); returns it.
    Models without a members axis only.
    """
    path = Path(path)
    states = record_propagation(model, x)
    y = _labels(y)
    layers = _check_layers(default_layers(states.shape[0] - 1) if layers is None else layers, states.shape[0])
    accuracy = layer_accuracy(model, states[layers], y, method=method)
    classes, colors = _class_colors(y)
    ncols = min(4, len(layers))
    nrows = math.ceil(len(layers) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.0 * ncols, 2.9 * nrows + 0.4), squeeze=False)
    for ax, layer, acc in zip(axes.flat, layers, accuracy):
        _scatter_state(ax, states[layer], y, classes, colors)
        ax.set_title(f"layer {layer} — acc {acc:.2f}", fontsize=10)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(layers):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8, markerscale=2)
    method_note = "model's head" if method == "head" else "linear probe"
    fig.suptitle(title or f"Feature propagation in {model.name} (accuracy: {method_note})", fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.93, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def animate_propagation(model, x, y, path, fps: int = 8, method: str = "head", layers=None) -> Path:
    """An animated GIF of the states of ``x`` through the network, one frame per layer.

    Frames cover all layers 0..depth unless ``layers`` picks some; each frame is titled
    with the layer and its accuracy (``method`` as in :func:`layer_accuracy`, default the
    model's own head). Axis limits follow each frame's points. Written with matplotlib's
    ``PillowWriter`` at ``fps`` frames per second; returns ``path``. Models without a
    members axis only.
    """
    path = Path(path)
    if isinstance(fps, bool) or not isinstance(fps, (int, np.integer, float)) or not fps > 0:
        raise ValueError(f"fps must be a number > 0, got {fps!r}")
    states = record_propagation(model, x)
    y = _labels(y)
    layers = _check_layers(range(states.shape[0]) if layers is None else layers, states.shape[0])
    accuracy = layer_accuracy(model, states[layers], y, method=method)
    classes, colors = _class_colors(y)
    fig, ax = plt.subplots(figsize=(4.2, 4.0))

    def draw(frame):
        ax.clear()
        layer = layers[frame]
        xy = _scatter_state(ax, states[layer], y, classes, colors, s=10)
        if len(xy):
            low, high = xy.min(axis=0), xy.max(axis=0)
            pad = 0.08 * np.maximum(high - low, 1e-6)
            ax.set_xlim(low[0] - pad[0], high[0] + pad[0])
            ax.set_ylim(low[1] - pad[1], high[1] + pad[1])
        ax.legend(loc="upper right", fontsize=7, markerscale=1.5)
        ax.set_title(f"{model.name}: layer {layer} — acc {accuracy[frame]:.2f}", fontsize=10)
        return []

    animation = FuncAnimation(fig, draw, frames=len(layers), blit=False, repeat=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    animation.save(path, writer=PillowWriter(fps=fps))
    plt.close(fig)
    return path


def plot_accuracy_vs_h_synthetic(table: pd.DataFrame, path, title_note: str = "") -> list[Path]:
    """The synthetic summary figure (as the paper's Fig. 8): test accuracy against h, mean ± std
    over trials, one line per block.

    ``table`` needs columns ``block``, ``h``, ``test_accuracy`` (one row per trial, e.g. with
    a ``trial`` column); ``dataset`` defaults to "synthetic 2-D", ``diverged`` to False and
    ``train_accuracy`` to NaN where absent. Delegates to
    :func:`resnet_stability.plots.plot_accuracy_vs_h`, which writes ``<stem>.png`` and
    ``<stem>.pdf`` for the stem of ``path`` (its suffix is dropped); returns those paths.
    """
    missing = [c for c in ("block", "h", "test_accuracy") if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks columns {missing}; needs block, h, test_accuracy (one row per trial)")
    table = table.copy()
    defaults = {"dataset": "synthetic 2-D", "diverged": False, "train_accuracy": np.nan}
    for column, value in defaults.items():
        if column not in table.columns:
            table[column] = value
    path = Path(path)
    stem = path.with_suffix("") if path.suffix.lower() in (".png", ".pdf", ".svg") else path
    return plot_accuracy_vs_h(table, stem, title_note=title_note)
