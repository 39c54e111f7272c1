"""Vector fields f(y): the right-hand sides that the integrators step along.

A block is an integrator applied to a vector field (see ``integrators.py``): the field
owns the weights and computes f(y); the integrator decides how many times f is
evaluated and how the results are combined. Adding a field never touches an
integrator, and vice versa. Fields are registered by name in :data:`FIELDS`
(``two_layer``, ``shrinkage``, ``batchnorm``); a block takes any of them (``field=``).

A new field subclasses :class:`VectorField`, creates its weights in ``build`` with
``self._weight(tag, shape, initializer)`` (per-member initial values; ``tag`` is the
variable's name and its seed tag), computes f(y) in ``call`` with ``keras.ops`` and the
members helpers (``self._matmul``, ``self._rows``), and joins with one decorator line,
``@register_field("name")`` (an example is in the README, *Fields and integrators by
name*). Every block then takes it: ``build_model(..., field="name")``.

Math is written for a column vector y ∈ R^w. Keras stores kernels as (n_in, n_out) and
multiplies row vectors from the right, so the matrix K of the math is stored as Kᵀ;
with members, every weight carries a leading members axis (see ``members.py``).
"""

from __future__ import annotations

import keras
from keras import ops

from resnet_stability.layers.initialization import per_member_initializer
from resnet_stability.layers.members import (
    member_rows,
    members_matmul,
    members_matmul_transposed,
    validate_members,
)
from resnet_stability.layers.registry import register_field
#: Named in error messages; any name ``keras.activations.get`` knows is accepted.
COMMON_ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "selu", "gelu", "silu", "softplus", "leaky_relu", "linear")


def resolve_activation(activation):
    """Return (callable, serialisable identifier) for an activation name or callable."""
    if callable(activation):
        return activation, keras.activations.serialize(activation)
    if not isinstance(activation, str):
        raise ValueError(f"activation must be a name such as 'relu', got {activation!r}")
    try:
        fn = keras.activations.get(activation)
    except (ValueError, TypeError):
        fn = None
    if fn is None:
        allowed = ", ".join(COMMON_ACTIVATIONS)
        raise ValueError(f"unknown activation {activation!r}; allowed: a Keras activation name such as {allowed}")
    return fn, activation


class VectorField(keras.layers.Layer):
    """Base class: weights with an optional members axis, f(y) in ``call``.

    ``seeds`` holds one seed per member (one seed without members); weight ``tag`` of
    member m is initialised with ``derive_seed(seeds[m], tag)``.
    """

    def __init__(
        self,
        activation="relu",
        members=None,
        seeds=(0,),
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.members = validate_members(members)
        self.activation_fn, self.activation = resolve_activation(activation)
        self.seeds = [int(s) for s in seeds]
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def _weight(self, name, shape, initializer, trainable=True):
        full_shape = shape if self.members is None else (self.members,) + tuple(shape)
        return self.add_weight(
            name=name,
            shape=full_shape,
            initializer=per_member_initializer(initializer, self.seeds, name, self.members),
            trainable=trainable,
        )

    def _matmul(self, x, kernel):
        return members_matmul(x, kernel, self.members)

    def _rows(self, vector):
        """A per-feature weight broadcast over the batch axis of the state."""
        return member_rows(vector, self.members)

    def get_config(self):
        config = super().get_config()
        config.update(
            activation=self.activation,
            members=self.members,
            seeds=list(self.seeds),
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config


@register_field("two_layer")
class TwoLayerField(VectorField):
    """f(y) = K2 σ(K1 y + b1) + b2, with K1, K2 ∈ R^{w×w} and b1, b2 ∈ R^w."""

    def build(self, input_shape):
        width = int(input_shape[-1])
        self.kernel1 = self._weight("kernel1", (width, width), self.kernel_initializer)
        self.bias1 = self._weight("bias1", (width,), self.bias_initializer)
        self.kernel2 = self._weight("kernel2", (width, width), self.kernel_initializer)
        self.bias2 = self._weight("bias2", (width,), self.bias_initializer)

    def call(self, y, training=None):
        hidden = self.activation_fn(self._matmul(y, self.kernel1) + self._rows(self.bias1))
        return self._matmul(hidden, self.kernel2) + self._rows(self.bias2)


@register_field("shrinkage")
class ShrinkageField(VectorField):
    """f(y) = −(K1ᵀ σ(K1 y + b1) + b2): one matrix K1 used twice.

    Its Jacobian −K1ᵀ diag(σ'(K1 y + b1)) K1 is symmetric negative semi-definite for any
    monotone σ (Zhang & Wynter, Prop. 2): real eigenvalues λ <= 0. That alone does not
    make a forward-Euler step contract: it does so only where h·|λ| <= 2 for every λ,
    i.e. h·λ_max(K1ᵀ diag(σ') K1) <= 2 (Prop. 1), which fresh Glorot weights of width 13
    at h = 1 violate in most blocks (``tests/test_analysis.py``).
    """

    def build(self, input_shape):
        width = int(input_shape[-1])
        self.kernel1 = self._weight("kernel1", (width, width), self.kernel_initializer)
        self.bias1 = self._weight("bias1", (width,), self.bias_initializer)
        self.bias2 = self._weight("bias2", (width,), self.bias_initializer)

    def call(self, y, training=None):
        hidden = self.activation_fn(self._matmul(y, self.kernel1) + self._rows(self.bias1))
        return -(members_matmul_transposed(hidden, self.kernel1, self.members) + self._rows(self.bias2))


def batch_normalize(z, gamma, beta, members: int | None, epsilon: float):
    """Training-mode batch normalisation of a state z, per member and feature.

    Returns ``(out, mean, variance)``: out = γ (z − μ) / sqrt(σ² + ε) + β, with μ and σ²
    (biased) the mean and variance of z over its batch axis, per member and feature
    ((M, w), or (w,) without members, like γ and β and the moving statistics); each
    output's derivative is the formula's (out's through μ and σ², written out in
    :func:`normalized_rows`).

    A members-first state (M, batch, w) is normalised batch first, (batch, M, w), so
    that the statistics broadcast over the leading axis: TensorFlow's CPU kernels
    broadcasting (M, 1, w) over the middle axis of (M, batch, w) (and tiling it back in
    the derivative) made a batch-norm layer's forward and backward pass ~1.7x as slow
    as the two transposes plus batch-first arithmetic; the batch-norm block's Adult
    step went from 185 to 127 ms.
    """
    # γ and β as values (a cast reads a variable): the derivative is taken w.r.t. inputs
    gamma, beta = ops.cast(gamma, z.dtype), ops.cast(beta, z.dtype)
    rows = z if members is None else ops.swapaxes(z, 0, 1)  # batch first
    mean = ops.mean(rows, axis=0)
    centred = rows - mean
    variance = ops.mean(ops.square(centred), axis=0)
    inverse_std = ops.rsqrt(variance + epsilon)
    out = normalized_rows(rows, gamma, beta, centred, inverse_std)
    if members is not None:
        out = ops.swapaxes(out, 0, 1)
    return out, mean, variance


@ops.custom_gradient
def normalized_rows(z, gamma, beta, centred, inverse_std):
    """out = c·(γ r) + β, for the rows of z (axis 0) normalised: c = z − μ and
    r = 1/sqrt(σ² + ε) with μ = mean(z), σ² = mean(c²) over the n rows, computed by the
    caller from z and passed in (z itself is read by nothing here: it is the input the
    derivative ∂L/∂z is returned for). The derivative, written out, is the whole map
    z -> out's (through μ and σ²), for the upstream gradient g of out:

        ∂L/∂β = Σ g,   ∂L/∂γ = r Σ g·c,
        ∂L/∂z = γ r g − (γ r / n)(∂L/∂β + c r ∂L/∂γ)

    (Σ over the rows), and none for c and r, whose dependence on z it already holds (so
    nothing flows back through them a second time). Seven passes over the state instead
    of the ~16 of automatic differentiation: the batch-norm block's steady-state Adult
    step went from 141 to 113 ms (2 cores, means of three interleaved runs; README,
    *Speed*).

    One output, so that Keras's custom gradient works on every backend (PyTorch's takes
    a single upstream gradient; ``tests/test_backends.py``), and the statistics the
    moving averages need are computed once, by the caller: returned as further outputs,
    TensorFlow filled in zero gradients for them, and the derivative took their terms
    (~12 more operations per normalisation).
    """
    scale = gamma * inverse_std
    out = centred * scale + beta

    def grad(*args, upstream=None):
        g = args[0] if upstream is None else upstream  # TensorFlow, JAX: positional; PyTorch: keyword
        n = ops.cast(ops.shape(g)[0], g.dtype)
        d_beta = ops.sum(g, axis=0)
        d_gamma = inverse_std * ops.sum(g * centred, axis=0)
        negative_scale = -scale
        centred_coefficient = negative_scale * inverse_std * d_gamma / n
        constant = negative_scale * d_beta / n
        d_z = g * scale + centred * centred_coefficient + constant
        return d_z, d_gamma, d_beta, None, None

    return out, grad


@register_field("batchnorm")
class BatchNormField(VectorField):
    """f(y) = BN2(K2 σ(BN1(K1 y))), no biases (BN's β plays their part).

    BN(z) = γ (z − μ) / sqrt(σ² + ε) + β per feature, with μ, σ² the batch mean and
    (biased) variance in training and moving averages (momentum 0.99, ε = 1e-3, as
    ``keras.layers.BatchNormalization``) in inference. γ starts at 1, β at 0. With
    members, statistics are taken over the batch axis only, per member and feature, so
    members never mix.
    """

    momentum = 0.99
    epsilon = 1e-3

    def build(self, input_shape):
        width = int(input_shape[-1])
        self.kernel1 = self._weight("kernel1", (width, width), self.kernel_initializer)
        self.kernel2 = self._weight("kernel2", (width, width), self.kernel_initializer)
        # BN1 (after K1), then BN2 (after K2): γ, β trainable, the moving statistics not
        self.gamma1 = self._weight("gamma1", (width,), "ones")
        self.beta1 = self._weight("beta1", (width,), "zeros")
        self.moving_mean1 = self._weight("moving_mean1", (width,), "zeros", trainable=False)
        self.moving_variance1 = self._weight("moving_variance1", (width,), "ones", trainable=False)
        self.gamma2 = self._weight("gamma2", (width,), "ones")
        self.beta2 = self._weight("beta2", (width,), "zeros")
        self.moving_mean2 = self._weight("moving_mean2", (width,), "zeros", trainable=False)
        self.moving_variance2 = self._weight("moving_variance2", (width,), "ones", trainable=False)

    def _normalize(self, z, gamma, beta, moving_mean, moving_variance, training):
        """BN(z) with γ, β and the moving statistics of one of the two normalisations."""
        if training:
            out, mean, variance = batch_normalize(z, gamma, beta, self.members, self.epsilon)
            moving_mean.assign(self.momentum * moving_mean + (1 - self.momentum) * mean)
            moving_variance.assign(self.momentum * moving_variance + (1 - self.momentum) * variance)
            return out
        scale = gamma * ops.rsqrt(moving_variance + self.epsilon)
        return z * self._rows(scale) + self._rows(beta - moving_mean * scale)

    def call(self, y, training=None):
        z1 = self._normalize(
            self._matmul(y, self.kernel1), self.gamma1, self.beta1, self.moving_mean1, self.moving_variance1, training
        )
        z2 = self._matmul(self.activation_fn(z1), self.kernel2)
        return self._normalize(z2, self.gamma2, self.beta2, self.moving_mean2, self.moving_variance2, training)
