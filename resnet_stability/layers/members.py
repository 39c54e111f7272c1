"""The members axis: M independent networks stored as one set of weights.

A layer built with ``members=M`` stores every weight with a leading axis of size M
(a kernel is (M, n_in, n_out)) and takes inputs of shape (batch, M, width): slice m of
the input is member m's batch and only ever meets member m's weights. With
``members=None`` the same layer is an ordinary Keras layer on (batch, width).

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


def check_input_shape(layer_name: str, shape, members: int | None) -> int:
    """Check a block input shape against ``members`` and return its width."""
    shape = tuple(shape)
    if members is None:
        if len(shape) != 2:
            raise ValueError(
                f"{layer_name}: expected input shape (batch, width) because members=None, "
                f"got {shape}; build the layer with members=M for (batch, M, width) inputs"
            )
    else:
        if len(shape) != 3 or shape[1] != members:
            raise ValueError(
                f"{layer_name}: members={members} needs input shape (batch, {members}, width), "
                f"got {shape}"
            )
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


def as_member_column(value, members: int | None, dtype):
    """A float or per-member list as a tensor that broadcasts against (batch, [M,] width)."""
    values = np.asarray(value, dtype=np.float64)  # cast once, straight to ``dtype``
    if members is None or values.ndim == 0:
        return ops.convert_to_tensor(values, dtype=dtype)
    return ops.convert_to_tensor(values.reshape(members, 1), dtype=dtype)


def per_member_initializer(initializer, seeds: list[int], tag: str, members: int | None):
    """An initializer for a (M, *shape) weight that initialises each member separately.

    Keras initialisers compute fans from the whole shape, which is wrong for a stacked
    (M, w, w) kernel, so member m's slice is drawn by the initializer on the member shape
    with seed ``derive_seed(seeds[m], tag)``, exactly as a standalone layer with seed
    ``seeds[m]`` draws it.
    """
    base = keras.initializers.get(initializer)
    config = base.get_config()

    def draw(member_shape, dtype, seed):
        if "seed" in config:
            fresh = base.__class__.from_config({**config, "seed": derive_seed(seed, tag)})
        else:
            fresh = base  # deterministic initialisers (zeros, ones, constant)
        return ops.convert_to_tensor(fresh(member_shape, dtype=dtype))

    def init(shape, dtype=None):
        if members is None:
            return draw(shape, dtype, seeds[0])
        return ops.stack([draw(tuple(shape[1:]), dtype, s) for s in seeds], axis=0)

    return init


def members_matmul(x, kernel, members: int | None):
    """x @ kernel per member: (b, i) @ (i, o), or (b, M, i) with (M, i, o) -> (b, M, o)."""
    if members is None:
        return ops.matmul(x, kernel)
    return ops.einsum("bmi,mio->bmo", x, kernel)


def members_matmul_transposed(x, kernel, members: int | None):
    """x @ kernelᵀ per member: (b, o) with (i, o) -> (b, i); members as in members_matmul."""
    if members is None:
        return ops.matmul(x, ops.transpose(kernel))
    return ops.einsum("bmo,mio->bmi", x, kernel)
