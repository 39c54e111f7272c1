"""Multistep blocks: y_{n+1} = Σ_{i<d} α_i y_{n−i} + h β f(y_n), f the residual field.

A multistep block takes the history ``[y_n, y_{n−1}, …, y_{n−d+1}]`` (a list of d
tensors) and returns y_{n+1}. ``build_model`` keeps that history and starts the
network with d − 1 forward-Euler starter blocks (as ZeroSNet does), so user code never
handles it. Called on a single tensor y, a block treats the history as constant
(y_{n−i} = y), which for a consistent scheme (Σ α_i = 1) is y + h β f(y).

| name       | class             | coefficients                                             |
|------------|-------------------|----------------------------------------------------------|
| lm         | LinearMultistep   | α = (1 − k, k), β = 1; k trainable per block (LM-ResNet)  |
| zeros      | ZeroS             | ZeroSNet Eq. 10: α(λ), β(λ), third order; λ optional trainable |
| multistep  | Multistep         | any fixed (α, β)                                           |

The field is :class:`TwoLayerField` (f(y) = K2 σ(K1 y + b1) + b2), the integrator
:func:`resnet_stability.layers.integrators.multistep`.
"""

from __future__ import annotations

import keras
import numpy as np

from resnet_stability import stability
from resnet_stability.layers.blocks import OneStepBlock
from resnet_stability.layers.integrators import multistep
from resnet_stability.layers.initialization import per_member_initializer
from resnet_stability.layers.members import member_scalars
from resnet_stability.layers.registry import register_block

PACKAGE = "resnet_stability"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClipToZeroStableK(keras.constraints.Constraint):
    """Keeps LM-ResNet's k in its zero-stable interval (−1, 1] (``stability.clip_lm_k``)."""

    def __init__(self, margin=1e-3):
        self.margin = margin

    def __call__(self, k):
        return stability.clip_lm_k(k, margin=self.margin)

    def get_config(self):
        return {"margin": self.margin}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClipToZeroStableLambda(keras.constraints.Constraint):
    """Keeps ZeroS's λ in (−∞, −1) ∪ (1/3, ∞) (``stability.clip_zeros_lam``)."""

    def __init__(self, margin=1e-3):
        self.margin = margin

    def __call__(self, lam):
        return stability.clip_zeros_lam(lam, margin=self.margin)

    def get_config(self):
        return {"margin": self.margin}


def _newest_shape(input_shape):
    """The shape of y_n from a single shape or a history of shapes (lists after JSON)."""
    if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
        return tuple(input_shape[0])
    return tuple(input_shape)


class MultistepBlock(OneStepBlock):
    """Base class: subclasses set ``steps`` (d) and implement ``coefficients()``.

    h stays fixed (``learn_h=True`` is refused): α, β are derived for equal fixed steps."""

    steps = 2
    learns_h = False

    @classmethod
    def history_length(cls, **block_kwargs) -> int:
        return cls.steps

    def build(self, input_shape):
        super().build(_newest_shape(input_shape))

    def coefficients(self):
        """(alphas, beta): d scalars or per-member columns, and one."""
        raise NotImplementedError

    def call(self, inputs, training=None):
        history = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs] * self.steps
        if len(history) != self.steps:
            raise ValueError(f"{self.name}: needs a history of {self.steps} states, got {len(history)}")
        y = history[0]
        h = self.step_column(y.dtype)
        alphas, beta = self.coefficients()
        return multistep(lambda state: self.field(state, training=training), history, h, alphas, beta)

    def compute_output_shape(self, input_shape):
        return _newest_shape(input_shape)


@register_block("multistep")
class Multistep(MultistepBlock):
    """General explicit multistep block with fixed coefficients (ZeroSNet, Eq. 2).

    y_{n+1} = Σ_{i<d} α_i y_{n−i} + h β f(y_n), ``alphas = (α_0, …, α_{d−1})``.
    Warns (``stability.ZeroStabilityWarning``) when the coefficients fail the root condition.
    """

    @classmethod
    def history_length(cls, alphas=(1.0,), **block_kwargs) -> int:
        return len(alphas)

    def __init__(self, alphas=(1.0,), beta=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alphas = [float(a) for a in alphas]
        self.beta = float(beta)
        self.steps = len(self.alphas)
        stability.warn_if_not_zero_stable(self.alphas, name="Multistep block", stacklevel=3)

    def coefficients(self):
        return self.alphas, self.beta

    def get_config(self):
        return {**super().get_config(), "alphas": list(self.alphas), "beta": self.beta}


@register_block("lm")
class LinearMultistep(MultistepBlock):
    """LM-ResNet (Lu et al.): u_{n+1} = (1 − k) u_n + k u_{n−1} + h f(u_n).

    k is a trainable scalar per block (per member), initialised U[−0.1, 0]. Zero-stable
    for k ∈ (−1, 1]; ``constrain=True`` clips k into that interval after every update.
    """

    steps = 2

    def __init__(self, constrain=False, **kwargs):
        super().__init__(**kwargs)
        self.constrain = bool(constrain)

    def build(self, input_shape):
        super().build(input_shape)
        shape = () if self.members is None else (self.members,)
        self.k = self.add_weight(
            name="k",
            shape=shape,
            initializer=per_member_initializer(
                keras.initializers.RandomUniform(-0.1, 0.0), self.field.seeds, "k", self.members
            ),
            constraint=ClipToZeroStableK() if self.constrain else None,
        )

    def coefficients(self):
        k = member_scalars(self.k, self.members)
        return [1.0 - k, k], 1.0

    def get_config(self):
        return {**super().get_config(), "constrain": self.constrain}


@register_block("zeros")
class ZeroS(MultistepBlock):
    """ZeroSNet's third-order three-step block (Chen, Jin, Shang, Eq. 10).

    α = (3(1+λ)/(4λ), −1/λ, (1+λ)/(4λ)), β = (3λ−1)/(2λ). Zero-stable iff
    λ ∈ (−∞, −1) ∪ (1/3, ∞). ``trainable_lam=True`` learns λ per block (per member),
    kept in the zero-stable region by ``ClipToZeroStableLambda``.
    """

    steps = 3

    def __init__(self, lam=1.0, trainable_lam=False, **kwargs):
        super().__init__(**kwargs)
        alphas, _ = stability.zeros_coefficients(lam)  # validates λ
        self.lam = float(lam)
        self.trainable_lam = bool(trainable_lam)
        stability.warn_if_not_zero_stable(alphas, name=f"ZeroS block (lam={self.lam})", stacklevel=3)

    def build(self, input_shape):
        super().build(input_shape)
        if self.trainable_lam:
            shape = () if self.members is None else (self.members,)
            self.lam_variable = self.add_weight(
                name="lam",
                shape=shape,
                initializer=keras.initializers.Constant(np.float64(self.lam)),  # a Python float would round through float32
                constraint=ClipToZeroStableLambda(),
            )

    def coefficients(self):
        if not self.trainable_lam:
            return stability.zeros_coefficients(self.lam)
        lam = member_scalars(self.lam_variable, self.members)
        return stability.zeros_formula(lam)

    def get_config(self):
        return {**super().get_config(), "lam": self.lam, "trainable_lam": self.trainable_lam}
