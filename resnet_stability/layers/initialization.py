"""Per-member initial weights: member m's slice drawn from member m's own seed.

A weight of shape (M, *shape) is M separate weights of shape ``shape``: Keras
initialisers compute fans from the whole shape, which is wrong for a stacked (M, w, w)
kernel. So member m's slice is drawn on the member shape with the generator
``numpy.random.default_rng(derive_seed(seeds[m], tag))``, and a standalone layer built
with seed ``seeds[m]`` draws exactly the same numbers (it is the case M = 1).

The common initialisers are sampled here with numpy, all members of a weight in one
pass (tens of microseconds a member, where one Keras initialiser call per member cost
~0.5 ms: ~20 s for a depth-100 cell of 100 members):

| Keras initialiser | member m's values |
|---|---|
| ``VarianceScaling`` (``glorot_*``, ``he_*``, ``lecun_*``) | s = scale / max(1, n), n = fan_in, fan_out or their mean by ``mode``; ``uniform``: U(−√(3s), √(3s)); ``untruncated_normal``: N(0, s); ``truncated_normal``: N(0, (√s / 0.87962566103423978)²) redrawn outside 2 standard deviations |
| ``RandomUniform(minval, maxval)`` | U(minval, maxval) |
| ``RandomNormal(mean, stddev)`` | N(mean, stddev²) |
| ``TruncatedNormal(mean, stddev)`` | N(mean, stddev²) redrawn outside mean ± 2 stddev |
| ``Zeros``, ``Ones``, ``Constant(value)`` | 0, 1, ``value`` (broadcast to the shape) |
| other seedless ones (e.g. ``Identity``) | the initialiser's own (deterministic) values, the same for every member |

Fans are Keras's: (shape[0], shape[1]) for a matrix, (n, n) for a vector, (1, 1) for a
scalar, or the products over ``input_axes`` / ``output_axes`` where an initialiser sets
them. Any other seeded initialiser (e.g. ``Orthogonal``) is called once per member
through Keras with seed ``derive_seed(seeds[m], tag)``: slower, same guarantee.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from resnet_stability.seeding import derive_seed

#: Keras's truncated-normal correction: the standard deviation of a unit normal
#: truncated to [−2, 2] (so the truncated draw keeps the requested variance).
TRUNCATED_NORMAL_STD = 0.87962566103423978


def fans(shape, input_axes=None, output_axes=None) -> tuple[int, int]:
    """(fan_in, fan_out) of a member weight shape, as Keras's ``VarianceScaling`` counts them."""
    shape = tuple(int(d) for d in shape)
    if input_axes is not None and output_axes is not None:
        return math.prod(shape[a] for a in input_axes), math.prod(shape[a] for a in output_axes)
    if not shape:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _truncated_normal(rng: np.random.Generator, mean: float, stddev: float, shape) -> np.ndarray:
    """N(mean, stddev²) with every value outside mean ± 2·stddev drawn again."""
    values = rng.normal(mean, stddev, shape)
    outside = np.abs(values - mean) > 2.0 * stddev
    while outside.any():
        values[outside] = rng.normal(mean, stddev, int(outside.sum()))
        outside = np.abs(values - mean) > 2.0 * stddev
    return values


def _variance_scaling_sampler(init):
    def sample(rng, shape):
        fan_in, fan_out = fans(shape, getattr(init, "input_axes", None), getattr(init, "output_axes", None))
        divisor = {"fan_in": fan_in, "fan_out": fan_out}.get(init.mode, (fan_in + fan_out) / 2.0)
        scale = init.scale / max(1.0, divisor)
        if init.distribution == "truncated_normal":
            return _truncated_normal(rng, 0.0, math.sqrt(scale) / TRUNCATED_NORMAL_STD, shape)
        if init.distribution == "untruncated_normal":
            return rng.normal(0.0, math.sqrt(scale), shape)
        limit = math.sqrt(3.0 * scale)
        return rng.uniform(-limit, limit, shape)

    return sample


#: Keras initialiser class -> factory of ``sample(rng, member_shape) -> float64 array``.
SAMPLERS = {
    keras.initializers.VarianceScaling: _variance_scaling_sampler,
    keras.initializers.RandomUniform: lambda init: lambda rng, shape: rng.uniform(init.minval, init.maxval, shape),
    keras.initializers.RandomNormal: lambda init: lambda rng, shape: rng.normal(init.mean, init.stddev, shape),
    keras.initializers.TruncatedNormal: lambda init: lambda rng, shape: _truncated_normal(
        rng, init.mean, init.stddev, shape
    ),
}


#: Seedless Keras initialisers computed with numpy: class -> ``values(init, shape)``.
CONSTANTS = {
    keras.initializers.Zeros: lambda init, shape: np.zeros(shape),
    keras.initializers.Ones: lambda init, shape: np.ones(shape),
    keras.initializers.Constant: lambda init, shape: np.asarray(init.value, dtype=float) * np.ones(shape),
}


def _numpy_sampler(init):
    for cls in type(init).__mro__:  # GlorotUniform etc. are VarianceScaling subclasses
        if cls in SAMPLERS:
            return SAMPLERS[cls](init)
    return None


def initial_member_values(initializer, member_shape, seeds: list[int], tag: str, dtype="float32") -> np.ndarray:
    """Initial values (len(seeds), *member_shape): slice m drawn from ``derive_seed(seeds[m], tag)``."""
    init = keras.initializers.get(initializer)
    member_shape = tuple(int(d) for d in member_shape)
    dtype = keras.backend.standardize_dtype(dtype or "float32")
    if "seed" not in init.get_config():  # deterministic: the same values for every member
        constant = CONSTANTS.get(type(init))
        value = constant(init, member_shape) if constant else ops.convert_to_numpy(init(member_shape, dtype=dtype))
        return np.broadcast_to(np.asarray(value), (len(seeds),) + member_shape).astype(dtype)
    sample = _numpy_sampler(init)
    if sample is not None:
        draws = [sample(np.random.default_rng(derive_seed(seed, tag)), member_shape) for seed in seeds]
    else:  # any other seeded Keras initialiser: one call per member
        config = init.get_config()
        draws = [
            ops.convert_to_numpy(type(init).from_config({**config, "seed": derive_seed(seed, tag)})(member_shape, dtype))
            for seed in seeds
        ]
    return np.stack(draws).astype(dtype)


def per_member_initializer(initializer, seeds: list[int], tag: str, members: int | None):
    """A Keras initializer for a weight of shape (M, *shape) (``members=M``) or ``shape``
    (``members=None``, one seed) drawing each member separately (:func:`initial_member_values`)."""

    def init(shape, dtype=None):
        shape = tuple(shape)
        if members is None:
            return ops.convert_to_tensor(initial_member_values(initializer, shape, seeds[:1], tag, dtype)[0])
        return ops.convert_to_tensor(initial_member_values(initializer, shape[1:], seeds, tag, dtype))

    return init
