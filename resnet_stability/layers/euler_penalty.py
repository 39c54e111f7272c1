"""A penalty toward Euler stability for learned step sizes (``stability_penalty``).

Prop. 1 of Zhang & Wynter: a forward-Euler block y + h f(y) maps a small perturbation
along an eigenvector of J = ∂f/∂y (at y) to |1 + hλ| times itself; the block is Euler
stable at y when every eigenvalue λ of J has |1 + hλ| <= 1. With ``learn_h`` and
``stability_penalty`` = μ > 0, each block adds to its member's training loss

    P = μ · max(0, F − 1),   F = max_λ |1 + h λ|,

where h is the block's learned step and λ runs over the eigenvalues of J at one point:
the block's input state for the first example of the batch (row 0 of every member's
batch, so member m sees what the standalone network with its seed and batch order sees).
A member's loss is then its cross-entropy plus Σ_blocks P. F is the Prop. 1 statistic of
the block at that point (``analysis.members_spectra`` takes the max over blocks and
sample test inputs; the penalty never reads test data).

The eigenvalues enter as constants: the gradient of P reaches h only, through
∂|1 + hλ|/∂h = (Re λ + h|λ|²) / |1 + hλ|, and pulls h toward the region where the
current field is Euler stable (h <= −2 Re λ / |λ|² for every λ with Re λ < 0). The
weights' gradient is the cross-entropy's alone: eigenvalue derivatives are unbounded
where eigenvalues coincide, as the repeated zeros of a ReLU field's Jacobian do.

J comes from forward differences of the field in inference mode (batch norm with its
moving statistics, as the statistic is measured): row j of Jᵀ is
(f(y + ε e_j) − f(y)) / ε with ε = ``FD_STEP`` · max(1, max_i |y_i|); exact for a ReLU
field unless a unit's pre-activation changes sign within ε, and otherwise off by O(ε).
A non-finite Jacobian gives P = +inf, so the member diverges (its state did).

Costs one field evaluation on w + 1 points and one w × w eigen-decomposition per block,
member and step; ``keras.ops.eig`` has no XLA kernel, so a cell with the penalty
compiles only its update (``sweep.trainer.train_cell``).
"""

from __future__ import annotations

import math

from keras import ops

#: ε of the forward differences, relative to max(1, max_i |y_i|).
FD_STEP = 1e-3


def validate_stability_penalty(value) -> float:
    """μ: a finite float >= 0 (0: no penalty)."""
    try:
        mu = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"stability_penalty must be a finite number >= 0, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(mu) or mu < 0:
        raise ValueError(f"stability_penalty must be a finite number >= 0, got {value!r}")
    return mu


def field_jacobian_at_first_row(field, y):
    """Jᵀ of ``field`` (inference mode) at row 0 of the batch by forward differences:
    y ([M,] batch, w) -> ([M,] w, w), entry [j, i] ≈ ∂f_i/∂y_j; no gradient flows."""
    width = int(y.shape[-1])
    lead = tuple(int(d) for d in y.shape[:-2])  # (M,) with members, () without
    point = ops.reshape(y[..., :1, :], lead + (1, width))  # ([M,] 1, w), shape known when traced
    eps = FD_STEP * ops.maximum(1.0, ops.max(ops.abs(point), axis=(-2, -1), keepdims=True))
    probes = ops.concatenate([point, point + eps * ops.eye(width, dtype=point.dtype)], axis=-2)
    values = field(probes, training=False)  # ([M,] w + 1, w)
    return ops.stop_gradient((values[..., 1:, :] - values[..., :1, :]) / eps)


def euler_factor(jacobian_t, h):
    """F = max_λ |1 + hλ| over the eigenvalues λ of the matrix (constants) for step h
    (shape () or (M,), the member's h): jacobian_t ([M,] w, w) -> ([M,]); +inf where
    the matrix has a non-finite entry."""
    finite = ops.all(ops.isfinite(jacobian_t), axis=(-2, -1))
    safe = ops.where(finite[..., None, None], jacobian_t, ops.zeros_like(jacobian_t))
    eigenvalues, _ = ops.eig(safe)
    re = ops.stop_gradient(ops.real(eigenvalues))
    im = ops.stop_gradient(ops.imag(eigenvalues))
    h = ops.expand_dims(ops.cast(h, re.dtype), -1)
    factor = ops.sqrt(ops.max(ops.square(1.0 + h * re) + ops.square(h * im), axis=-1))
    return ops.where(finite, factor, ops.full_like(factor, math.inf))


def euler_penalty(field, y, h, mu: float):
    """P = μ · max(0, F − 1) per member (module docstring): y the block's input state
    ([M,] batch, w), h its step (() or (M,)) -> ([M,])."""
    factor = euler_factor(field_jacobian_at_first_row(field, y), h)
    return mu * ops.relu(factor - 1.0)
