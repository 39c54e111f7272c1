"""The members axis: M independent networks stored as one set of weights.

A layer built with ``members=M`` stores every weight with a leading axis of size M
(a kernel is (M, n_in, n_out)) and takes states of shape (M, batch, width), *members
first*: slice m is member m's batch and only ever meets member m's weights. Members
first makes each member's batch one contiguous (batch, width) matrix, so a layer's
products are one batched matmul (M, b, i) @ (M, i, o) with no transposes (on a 2-core
CPU a (batch, M, width) layout cost ~4x as much per product). With ``members=None`` the
same layer is an ordinary Keras layer on (batch, width).

A members *model* (:func:`resnet_stability.models.build_model`) keeps Keras's batch-first
convention at its boundary, (batch, M, features) in and (batch, M, classes) out: its
stem and head (:class:`~resnet_stability.layers.MembersDense`, one layer each) work on
(batch, M, width), and :class:`MembersLayout` switches to members first after the stem
and back before the head. (The head's softmax stays the model's last operation, so
Keras's cross-entropy reads its logits exactly, as in a standalone model; a transpose
after it would make Keras clip the probabilities to [1e-7, 1 − 1e-7] instead.)

The helpers here are the only places that know about that axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from resnet_stability.seeding import derive_seed


def validate_members(members) -> int | None:
    """Return ``members`` as an int >= 1, or None; raise ValueError otherwise."""
    if members is None:
        return None
    if isinstance(members, bool) or not isinstance(members, (int, np.integer)) or members < 1:
        raise ValueError(f"members must be None or an integer >= 1, got {members!r}")
    return int(members)


def check_input_shape(layer_name: str, shape, members: int | None, members_first: bool = True) -> int:
    """Check an input shape against ``members`` and return its width: (batch, width)
    without members, else (M, batch, width) for blocks (``members_first``) or
    (batch, M, width) for :class:`~resnet_stability.layers.MembersDense`."""
    shape = tuple(shape)
    layout = "(M, batch, width)" if members_first else "(batch, M, width)"
    if members is None:
        if len(shape) != 2:
            raise ValueError(
                f"{layer_name}: expected input shape (batch, width) because members=None, "
                f"got {shape}; build the layer with members=M for {layout} inputs"
            )
    else:
        expected = f"({members}, batch, width) (members first)" if members_first else f"(batch, {members}, width)"
        if len(shape) != 3 or shape[0 if members_first else 1] != members:
            raise ValueError(f"{layer_name}: members={members} needs input shape {expected}, got {shape}")
    if shape[-1] is None:
        raise ValueError(f"{layer_name}: the last (width) axis of the input must be known, got {shape}")
    return int(shape[-1])


def normalize_seed(seed):
    """A seed for configs: None, a plain int, or a list of plain ints (numpy ints accepted)."""
    if seed is None:
        return None
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return int(seed)
    return [int(s) for s in seed]


def member_seeds(seed, members: int | None) -> list[int]:
    """Per-member seeds: a list of M ints, or ``[seed]`` without members.

    ``seed`` may be None (fresh random seeds), an int (member m gets
    ``derive_seed(seed, "member", m)``; without members the int itself) or a sequence of
    M ints used as they are.
    """
    count = 1 if members is None else members
    if seed is None:
        rng = np.random.default_rng()
        return [int(s) for s in rng.integers(0, 2**31, size=count)]
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        if members is None:
            return [int(seed)]
        return [derive_seed(int(seed), "member", m) for m in range(members)]
    seeds = [int(s) for s in seed]
    if len(seeds) != count:
        raise ValueError(f"seed has {len(seeds)} values but members={members}; give one seed per member")
    return seeds


def member_values(name: str, value, members: int | None) -> list[float] | float:
    """Validate a per-member float parameter such as h: a float, or one value per member."""
    if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        values = [float(v) for v in np.asarray(value, dtype=float).reshape(-1)]
        if members is None:
            if len(values) != 1:
                raise ValueError(
                    f"{name} has {len(values)} values but members=None; pass one float, "
                    f"or build with members={len(values)}"
                )
            return values[0]
        if len(values) != members:
            raise ValueError(f"{name} has {len(values)} values but members={members}; give one per member")
        return values
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a float or one float per member, got {value!r}") from None


def validate_step_size(h, members: int | None):
    """h: a finite float > 0, or one such value per member."""
    h = member_values("h", h, members)
    for value in np.atleast_1d(h).tolist():
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"h must be a finite number > 0, got h={value!r}")
    return h


def validate_h_max(h_max, h) -> float:
    """h_max: a finite float > 0, and every value of ``h`` (a float or one per member)
    <= h_max, the bound of a learned step size (``learn_h``)."""
    try:
        h_max = float(h_max)
    except (TypeError, ValueError):
        raise ValueError(f"h_max must be a finite number > 0, got h_max={h_max!r}") from None
    if not math.isfinite(h_max) or h_max <= 0:
        raise ValueError(f"h_max must be a finite number > 0, got h_max={h_max!r}")
    for value in np.atleast_1d(h).tolist():
        if value > h_max:
            raise ValueError(f"h={value!r} exceeds h_max={h_max!r}; give h <= h_max")
    return h_max


def as_member_column(value, members: int | None, dtype):
    """A float or per-member list as a tensor that broadcasts against ([M,] batch, width)."""
    values = np.asarray(value, dtype=np.float64)  # cast once, straight to ``dtype``
    if members is None or values.ndim == 0:
        return ops.convert_to_tensor(values, dtype=dtype)
    return ops.convert_to_tensor(values.reshape(members, 1, 1), dtype=dtype)


def member_scalars(variable, members: int | None):
    """A per-member scalar weight (shape (M,), or () without members) as a column that
    broadcasts against ([M,] batch, width), e.g. LM-ResNet's k or ZeroS's λ."""
    return variable if members is None else ops.reshape(variable, (members, 1, 1))


def member_rows(vector, members: int | None):
    """A per-feature weight ((M, w), or (w,) without members: a bias, BN's γ, β, moving
    statistics) as rows that broadcast against ([M,] batch, w)."""
    return vector if members is None else ops.expand_dims(vector, 1)


def members_matmul(x, kernel, members: int | None):
    """x @ kernel per member: (b, i) @ (i, o), or (M, b, i) @ (M, i, o) -> (M, b, o)."""
    return ops.matmul(x, kernel)


def members_matmul_transposed(x, kernel, members: int | None):
    """x @ kernelᵀ per member: (b, o) with (i, o) -> (b, i), or (M, b, o) with (M, i, o)
    -> (M, b, i)."""
    if members is None:
        return ops.matmul(x, ops.transpose(kernel))
    return ops.einsum("mbo,mio->mbi", x, kernel)


@keras.saving.register_keras_serializable(package="resnet_stability")
class MembersLayout(keras.layers.Layer):
    """Swap the batch and members axes: (batch, M, d) <-> (M, batch, d).

    A members model applies it once before its first block (to members first) and once
    after its last (back to batch first); swapping twice is the identity."""

    def call(self, x):
        return ops.swapaxes(x, 0, 1)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        return (shape[1], shape[0]) + shape[2:]
