"""The Prop. 1 statistic of every member of a members model at once.

For member m, block i (field f_i, step h_{m,i}) and sample input p, let y_{m,i,p} be the
state p reaches at block i and J = ∂f_i/∂y there. Then

    F[m, i] = max over p and over the eigenvalues λ of J of |1 + h_{m,i} λ|,
    euler_max[m] = max_i F[m, i],
    euler_stable_share[m] = (1/depth) · #{i : F[m, i] <= 1 + tol}.

F[m, i] is exactly :func:`~resnet_stability.analysis.spectra.euler_statistic`'s
``max_euler_factor`` of block i of member m run standalone
(``CellResult.member_model(m)``) on member m's inputs (tested): this module is the
same computation with the members axis kept, so a cell of M networks costs one
reverse pass per block instead of M standalone models (see README, cost).

A Jacobian with a non-finite entry at some point (a diverged network whose state or
weights overflowed) has no eigenvalues; its factor counts as +inf there (no finite
bound on the amplification), so F, euler_max are +inf and the block is not stable.

Scope: members models from :func:`resnet_stability.models.build_model` whose blocks are
one-step forward-Euler blocks (``residual``, ``batchnorm``, ``shrinkage``, or any field
with ``integrator="euler"``); any other block (an RK4 integrator, the multistep blocks)
raises ValueError, because |1 + hλ| <= 1 is not its stability region (see
:func:`is_euler_block`).

Written with ``keras.ops``; the one reverse-mode product it needs comes from the Keras
backend in use (:data:`VJPS`: TensorFlow's ``GradientTape`` or ``jax.vjp``).
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np

#: Default tolerance of "stable": λ = 0 (inactive ReLUs) gives |1 + hλ| = 1 exactly,
#: up to float rounding (as :func:`~resnet_stability.analysis.spectra.euler_statistic`).
STABLE_TOL = 1e-6


def is_euler_block(block) -> bool:
    """True for forward-Euler blocks (y + h f(y), whatever the field f), whose stability
    region is the disc |1 + hλ| <= 1 of Prop. 1; False for RK4 and the multistep blocks.

    ``block``: a block (its ``integrator_name``), or a block class (its
    ``default_integrator``: what the sweep's block names build)."""
    from resnet_stability.layers.integrators import is_forward_euler

    return is_forward_euler(block.default_integrator if isinstance(block, type) else block.integrator_name)


def _blocks(model) -> list:
    blocks = [layer for layer in model.layers if getattr(layer, "field", None) is not None]
    for block in blocks:
        if block.members is None:
            raise ValueError(f"block {block.name!r} has no members axis; use analysis.spectra for a standalone model")
        if not is_euler_block(block):
            raise ValueError(
                f"block {block.name!r} ({type(block).__name__}, integrator {block.integrator_name!r}) is not a "
                "forward-Euler block; the Prop. 1 statistic |1 + hλ| applies to forward-Euler blocks only "
                "(residual, batchnorm, shrinkage, or any one-step block with integrator='euler')"
            )
    return blocks


def members_block_states(model, x) -> list:
    """States entering each block of a members model, members first: ``depth`` tensors
    (M, n, width), for inputs ``x`` (n, M, input_dim) (member m's inputs in column m).

    The stem, the layout swap and the blocks are called in order in inference mode
    (``training=False``), as the model itself does; the head is not called.
    """
    blocks = _blocks(model)
    state = keras.ops.convert_to_tensor(x, dtype=model.compute_dtype)
    states = []
    for layer in model.layers[1:]:  # layers[0] is the input layer
        if layer.name == "head":
            break
        if layer in blocks:
            states.append(state)
            state = layer(state, training=False)
        else:  # the stem (MembersDense) or a MembersLayout swap
            state = layer(state)
    return states


def members_field_jacobian(block, y):
    """Jacobians ∂f/∂y of ``block.field`` for every member and point: y (M, n, w) ->
    (M, n, w, w), entry [m, p, i, j] = ∂f_i/∂y_j of member m at its point p.

    As :func:`~resnet_stability.analysis.spectra.field_jacobian`, one reverse pass over
    the points repeated w times with unit cotangents e_i (rows of a field in inference
    mode, and members, are independent, so this is exact)."""
    ops = keras.ops
    y = ops.convert_to_tensor(y, dtype=block.compute_dtype)
    members, n, width = (int(d) for d in y.shape)
    repeated = ops.repeat(y, width, axis=1)  # row p * width + i is point p ...
    cotangents = ops.tile(ops.eye(width, dtype=y.dtype)[None], [members, n, 1])  # ... paired with e_i
    rows = VJPS[keras.backend.backend()](lambda z: block.field(z, training=False), repeated, cotangents)
    return ops.convert_to_numpy(ops.reshape(rows, (members, n, width, width)))


def _tensorflow_vjp(fn, x, cotangent):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(x)
        f = fn(x)
    return tape.gradient(f, x, output_gradients=cotangent)


def _jax_vjp(fn, x, cotangent):
    import jax

    _, pullback = jax.vjp(fn, x)
    return pullback(cotangent)[0]


#: ``vjp(fn, x, v)`` = vᵀ ∂fn/∂x at x (reverse mode), by Keras backend.
VJPS = {"tensorflow": _tensorflow_vjp, "jax": _jax_vjp}


#: Fewest matrices a thread of :func:`eigenvalues` takes (fewer: not worth a thread).
EIGVALS_MIN_CHUNK = 64


@functools.lru_cache(maxsize=1)
def _eigvals_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="eigvals")


def eigenvalues(matrices: np.ndarray, threads: int = 1) -> np.ndarray:
    """``numpy.linalg.eigvals(matrices)``, (..., w, w) -> (..., w), the stack split over up
    to ``threads`` threads (at least :data:`EIGVALS_MIN_CHUNK` matrices each). numpy's
    LAPACK loop releases the GIL and solves each matrix on its own, so the result is the
    same, bit for bit. The statistic's eigenproblems (depth × M × points of them a cell,
    ~13×13) are most of its time: 2 threads took 51 → 26-33 ms for a Wine shard's block
    (1 800 matrices) and 420 → 215 ms for 12 800 14×14 ones (Adult's shape), on 2 cores."""
    flat = matrices.reshape((-1,) + matrices.shape[-2:])
    chunks = min(threads, len(flat) // EIGVALS_MIN_CHUNK)
    if chunks <= 1:
        return np.linalg.eigvals(matrices)
    parts = list(_eigvals_pool().map(np.linalg.eigvals, np.array_split(flat, chunks)))
    return np.concatenate(parts).reshape(matrices.shape[:-1])


def max_euler_factors(jacobians: np.ndarray, h: np.ndarray, threads: int = 1) -> np.ndarray:
    """max over points and eigenvalues of |1 + h_m λ|: jacobians (M, n, w, w), h (M,) ->
    (M,); eigenvalues by ``numpy.linalg.eigvals`` in float64 (:func:`eigenvalues`, on
    ``threads`` threads). A matrix with a non-finite entry gives +inf (module docstring)."""
    jac = np.asarray(jacobians, dtype=np.float64)
    finite = np.isfinite(jac).all(axis=(-2, -1))  # (M, n)
    eigs = eigenvalues(np.where(finite[..., None, None], jac, 0.0), threads)  # (M, n, w)
    factors = np.abs(1.0 + np.asarray(h, dtype=np.float64).reshape(-1, 1, 1) * eigs).max(axis=-1)
    return np.where(finite, factors, np.inf).max(axis=-1)


def members_euler_factors(model, x, threads: int = 1) -> np.ndarray:
    """F (M, depth): F[m, i] = max over the points of ``x`` (n, M, input_dim) and the
    eigenvalues λ of block i's field Jacobian of |1 + h λ|, h member m's current step
    in block i (the learned one where h is learned); eigenvalues on ``threads`` threads."""
    blocks = _blocks(model)
    states = members_block_states(model, x)
    columns = [
        max_euler_factors(members_field_jacobian(block, state), np.broadcast_to(block.step_size, (block.members,)),
                          threads)
        for block, state in zip(blocks, states)
    ]
    members = int(model.output_shape[1])
    return np.stack(columns, axis=1) if columns else np.zeros((members, 0))


def euler_summary(factors: np.ndarray, tol: float = STABLE_TOL) -> tuple[np.ndarray, np.ndarray]:
    """(euler_max, euler_stable_share), each (M,), from F (M, depth): the largest factor
    over blocks, and the share of blocks with F <= 1 + ``tol`` (NaN for depth 0)."""
    factors = np.asarray(factors, dtype=np.float64)
    if factors.ndim != 2:
        raise ValueError(f"factors must have shape (members, depth), got {factors.shape}")
    if factors.shape[1] == 0:
        nan = np.full(factors.shape[0], np.nan)
        return nan, nan.copy()
    return factors.max(axis=1), (factors <= 1.0 + tol).mean(axis=1)
