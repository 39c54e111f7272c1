"""Layer states and Jacobian spectra of a built model (Zhang & Wynter, Props 1 and 2).

For block i with vector field f_i and step h_i, the state y_i that an input reaches at
that block gives the Jacobian J_i = ∂f_i/∂y at y_i. Forward Euler, y + h f(y), is stable
there when every eigenvalue λ of J_i satisfies |1 + h λ| <= 1 (Prop. 1); for the
shrinkage block J_i = −K1ᵀ diag(σ') K1 has real eigenvalues <= 0 (Prop. 2).

Scope:

- Models from :func:`resnet_stability.models.build_model` **without a members axis**
  (``members=None``): optional linear stem named ``"stem"``, one-step blocks (layers with
  a ``.field`` attribute, state in, state out), softmax head named ``"head"``. A model
  with a members axis raises ``ValueError``; build a standalone model (same seed) to
  analyse one member.
- Jacobians come from ``tf.GradientTape`` (see :func:`field_jacobian`), so the
  TensorFlow backend is required.
- The Prop. 1 statistic is the forward-Euler criterion. For blocks with another
  integrator (``integrator="rk4"``, the multistep blocks, whose field is evaluated at
  the current state y_n) the spectrum of hJ is still reported, but the disc
  |1 + z| <= 1 is not their stability region (and a multistep block's β is not folded
  into h).
"""

from __future__ import annotations

from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Circle
from matplotlib.ticker import MaxNLocator

from resnet_stability.layers.multistep import run_blocks

SPECTRA_COLUMNS = ["block", "point", "eig_real", "eig_imag", "h", "h_eig_real", "h_eig_imag", "euler_factor"]


def check_no_members(model) -> None:
    """Raise ValueError if any layer of ``model`` carries a members axis."""
    for layer in _all_layers(model):
        members = getattr(layer, "members", None)
        if members is not None:
            raise ValueError(
                f"layer {layer.name!r} of model {model.name!r} has members={members}; the analysis "
                "functions work only with models built with members=None (build a standalone "
                "model with the member's seed to analyse one member)"
            )


def _all_layers(model):
    layers = []
    for layer in model.layers:
        layers.append(layer)
        field = getattr(layer, "field", None)
        if field is not None:
            layers.append(field)
    return layers


def block_layers(model) -> list:
    """The model's blocks (layers with a ``.field`` attribute), in order.

    Raises ValueError for a model with a members axis (only ``members=None`` is supported).
    """
    check_no_members(model)
    return [layer for layer in model.layers if getattr(layer, "field", None) is not None]


def _optional_layer(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def _as_input(model, x):
    x = np.asarray(x)
    input_dim = model.inputs[0].shape[-1]
    if x.ndim != 2 or (input_dim is not None and x.shape[1] != input_dim):
        raise ValueError(
            f"x must have shape (n, {input_dim}) for model {model.name!r} (members=None), got {x.shape}"
        )
    dtype = getattr(model, "compute_dtype", None) or "float32"
    return keras.ops.convert_to_tensor(x, dtype=dtype)


def layer_states(model, x) -> list[np.ndarray]:
    """States along the network for inputs ``x`` of shape (n, input_dim).

    Returns ``depth + 1`` arrays of shape (n, width): entry i is the state entering
    block i (entry 0 is the output of the stem, or ``x`` itself when the model has no
    stem), and the last entry is the state leaving the last block, i.e. what the head
    sees. Computed by calling the stem and the blocks in sequence in inference mode
    (``training=False``: batch norm uses its moving statistics); a multistep block (one
    with ``history_length`` = d > 1) gets the history ``[y_i, y_{i−1}, …]``, wired by
    the helper ``build_model`` uses (:func:`~resnet_stability.layers.multistep.run_blocks`).
    Models without a members axis only (ValueError otherwise).
    """
    blocks = block_layers(model)
    state = _as_input(model, x)
    stem = _optional_layer(model, "stem")
    if stem is not None:
        state = stem(state, training=False)
    return [np.asarray(keras.ops.convert_to_numpy(y)) for y in run_blocks(blocks, state, training=False)]


def field_jacobian(block, y) -> np.ndarray:
    """Jacobians ∂f/∂y of ``block.field`` at each row of ``y`` (n, width): (n, width, width).

    Entry [p, i, j] is ∂f_i/∂y_j at point p, for ``block.field(y, training=False)``: the
    same as ``tf.GradientTape.batch_jacobian``, computed in one reverse pass over the
    batch repeated ``width`` times with unit output cotangents (row i of J_p is
    e_iᵀ J_p). Rows of a field in inference mode are independent, so this is exact; it
    avoids the per-block ``pfor`` retracing of ``batch_jacobian`` (about 15x faster on
    deep models). Blocks without a members axis only.
    """
    import tensorflow as tf

    if getattr(block, "members", None) is not None:
        raise ValueError(
            f"block {block.name!r} has members={block.members}; field_jacobian works only with members=None"
        )
    y = tf.convert_to_tensor(np.asarray(y), dtype=block.compute_dtype)
    if y.shape.rank != 2:
        raise ValueError(f"y must have shape (n, width), got {tuple(y.shape)}")
    n, width = int(y.shape[0]), int(y.shape[1])
    repeated = tf.repeat(y, width, axis=0)  # row p * width + i is point p
    cotangents = tf.tile(tf.eye(width, dtype=y.dtype), [n, 1])  # ... paired with e_i
    with tf.GradientTape() as tape:
        tape.watch(repeated)
        f = block.field(repeated, training=False)
    rows = tape.gradient(f, repeated, output_gradients=cotangents)
    return tf.reshape(rows, (n, width, width)).numpy()


def jacobian_spectra(model, x, max_points: int | None = None) -> pd.DataFrame:
    """Eigenvalues λ of each block's field Jacobian at the states the inputs reach.

    One row per (block, input point, eigenvalue), columns ``block`` (index along the
    network), ``point`` (row of ``x``), ``eig_real``, ``eig_imag``, ``h`` (the block's
    step), ``h_eig_real``, ``h_eig_imag`` (hλ) and ``euler_factor`` = |1 + hλ|, the
    quantity of Prop. 1. ``max_points`` keeps the first ``max_points`` rows of ``x``.
    Jacobians from :func:`field_jacobian` (equal to ``GradientTape.batch_jacobian`` of
    ``block.field(y, training=False)``), eigenvalues by ``numpy.linalg.eigvals`` in float64
    (no symmetry assumed). Models without a
    members axis only (ValueError otherwise).
    """
    blocks = block_layers(model)
    if max_points is not None:
        if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) or max_points < 1:
            raise ValueError(f"max_points must be None or an integer >= 1, got {max_points!r}")
        x = np.asarray(x)[: int(max_points)]
    states = layer_states(model, x)
    frames = []
    for index, block in enumerate(blocks):
        jac = field_jacobian(block, states[index]).astype(np.float64)
        eigs = np.linalg.eigvals(jac)  # (n, width)
        n, width = eigs.shape
        h = float(block.step_size)  # the fixed h, or the learned one (learn_h)
        h_eigs = h * eigs
        frames.append(
            pd.DataFrame(
                {
                    "block": np.full(n * width, index, dtype=np.int64),
                    "point": np.repeat(np.arange(n, dtype=np.int64), width),
                    "eig_real": eigs.real.reshape(-1),
                    "eig_imag": eigs.imag.reshape(-1),
                    "h": np.full(n * width, h),
                    "h_eig_real": h_eigs.real.reshape(-1),
                    "h_eig_imag": h_eigs.imag.reshape(-1),
                    "euler_factor": np.abs(1.0 + h_eigs).reshape(-1),
                }
            )
        )
    if not frames:
        return pd.DataFrame({column: pd.Series(dtype=float) for column in SPECTRA_COLUMNS})
    return pd.concat(frames, ignore_index=True)[SPECTRA_COLUMNS]


def euler_statistic(spectra: pd.DataFrame, tol: float = 1e-6) -> pd.DataFrame:
    """Per block, the Prop. 1 statistic max |1 + hλ| over points and eigenvalues.

    Columns ``block``, ``h``, ``max_euler_factor`` and ``stable`` (max <= 1 + ``tol``:
    forward Euler does not amplify any direction there; ``tol`` absorbs float rounding,
    e.g. λ = 0 where ReLUs are inactive gives exactly 1).
    """
    grouped = spectra.groupby("block", sort=True)
    table = grouped.agg(h=("h", "first"), max_euler_factor=("euler_factor", "max")).reset_index()
    table["stable"] = table["max_euler_factor"] <= 1.0 + tol
    return table


def plot_spectra(spectra: pd.DataFrame, path, title: str | None = None) -> Path:
    """Scatter hλ in the complex plane over the forward-Euler stability disc |1 + z| <= 1.

    Points are coloured by block index (colour bar); the disc is centred at −1 with
    radius 1. The title gives the largest Prop. 1 statistic max |1 + hλ|. Writes the
    figure to ``path`` in the format its suffix names (.png, .pdf, ...) and returns it.
    """
    path = Path(path)
    finite = spectra[np.isfinite(spectra["h_eig_real"]) & np.isfinite(spectra["h_eig_imag"])]
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    ax.add_patch(Circle((-1.0, 0.0), 1.0, facecolor="tab:green", alpha=0.15, edgecolor="none",
                        label="|1 + hλ| ≤ 1 (Euler stable)"))
    ax.add_patch(Circle((-1.0, 0.0), 1.0, fill=False, edgecolor="tab:green", linewidth=1.2))
    ax.axhline(0.0, color="0.6", linewidth=0.6)
    ax.axvline(0.0, color="0.6", linewidth=0.6)
    if len(finite):
        depth_max = max(int(spectra["block"].max()), 1)
        sc = ax.scatter(finite["h_eig_real"], finite["h_eig_imag"], c=finite["block"], cmap="viridis",
                        vmin=0, vmax=depth_max, s=10, alpha=0.8, linewidths=0)
        bar = fig.colorbar(sc, ax=ax, label="block (depth)")
        bar.locator = MaxNLocator(integer=True)
        bar.update_ticks()
        xs = np.concatenate([finite["h_eig_real"].to_numpy(), [-2.0, 0.0]])
        ys = np.concatenate([finite["h_eig_imag"].to_numpy(), [-1.0, 1.0]])
    else:
        xs, ys = np.array([-2.0, 0.0]), np.array([-1.0, 1.0])
    # a square window around the disc and every point, so equal aspect needs no adjusting
    half = 0.55 * max(np.ptp(xs), np.ptp(ys)) + 0.1
    cx, cy = (xs.min() + xs.max()) / 2.0, (ys.min() + ys.max()) / 2.0
    ax.set_xlim(cx - half, cx + half)
    ax.set_ylim(cy - half, cy + half)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("Re(hλ)")
    ax.set_ylabel("Im(hλ)")
    ax.legend(loc="upper left", fontsize=8)
    stat = float(spectra["euler_factor"].max()) if len(spectra) else float("nan")
    verdict = "stable" if stat <= 1.0 + 1e-6 else "not stable"
    heading = title or "Block Jacobian spectra"
    ax.set_title(f"{heading}\nmax |1 + hλ| = {stat:.4f} (Prop. 1: {verdict})", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
