"""The paper's blocks: an integrator applied to a vector field, with an explicit step h.

| block name  | class               | update (column-vector math)                         |
|-------------|---------------------|-----------------------------------------------------|
| residual    | StepResidual        | y + h·(K2 σ(K1 y + b1) + b2)          (Eq. 7)       |
| shrinkage   | Shrinkage           | y − h·(K1ᵀ σ(K1 y + b1) + b2)         (Eq. 8)       |
| batchnorm   | BatchNormResidual   | y + h·BN2(K2 σ(BN1(K1 y)))                          |
| rk4         | RK4                 | classic RK4 step of size h along f = K2 σ(K1 y + b1) + b2 |

Multistep blocks (lm, zeros, multistep) are in ``multistep.py``.

h = 1 with the residual block is a plain ResNet block.

**Learned step sizes** (``learn_h=True``, one-step blocks only). h becomes a trainable
weight, one per block (per member with ``members``), trained with the others:

    h = h_max · σ(clip(θ, −L, L)),   σ(t) = 1 / (1 + e^{−t}),   L = ``H_LOGIT_LIMIT`` = 20,

so h stays in [h_max·σ(−20), h_max] ⊂ (0, h_max] whatever the updates do to θ (the
clip only matters past |θ| = 20, where σ' < 3e-9 already: without it, θ = −1e5 after
a huge step would give h = 0 exactly in floating point). θ starts at logit(h / h_max),
so the block starts at the given h (to σ's rounding: 1 ulp in float32); h = h_max
itself (θ = +∞) starts at θ = logit(1 − ``H_START_MARGIN``), i.e. h = 0.999·h_max,
where σ' = 1e-3 still lets θ train, slowly (at |θ| >= 17, σ' rounds to 0 in float32
and h would be frozen at h_max); a larger h_max lets such an h move freely.
θ is a plain trainable variable named ``h_logit``, shape () or (M,), with no constraint.

**Toward Euler stability** (``stability_penalty`` = μ > 0, with ``learn_h``, forward-Euler
blocks): in training each block adds μ·max(0, max_λ |1 + hλ| − 1) to its member's loss,
λ the eigenvalues of its field's Jacobian at the batch's first example, h the learned
step; the gradient reaches h only (``euler_penalty.py``).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from resnet_stability.layers.euler_penalty import euler_penalty, validate_stability_penalty
from resnet_stability.layers.fields import BatchNormField, ShrinkageField, TwoLayerField
from resnet_stability.layers.integrators import forward_euler, runge_kutta4
from resnet_stability.layers.members import (
    as_member_column,
    check_input_shape,
    member_scalars,
    member_seeds,
    normalize_seed,
    validate_h_max,
    validate_members,
    validate_step_size,
)
from resnet_stability.layers.registry import BLOCKS, register_block

#: L: a learned step size is h_max·σ(clip(θ, −L, L)) (module docstring).
H_LOGIT_LIMIT = 20.0
#: h = h_max starts at h_max·(1 − margin) (θ = +∞ cannot be stored, nor trained from).
H_START_MARGIN = 1e-3
#: h_max when none is given: the paper's largest h.
DEFAULT_H_MAX = 1.0


def _sigmoid(t):
    return 1.0 / (1.0 + np.exp(-t))


def initial_h_logit(h, h_max: float) -> np.ndarray:
    """θ₀ = logit(r) = log(r / (1 − r)), r = h / h_max clipped to
    [σ(−L), 1 − H_START_MARGIN]: float64, shape () or (M,)."""
    ratio = np.clip(np.asarray(h, dtype=np.float64) / h_max, _sigmoid(-H_LOGIT_LIMIT), 1.0 - H_START_MARGIN)
    return np.log(ratio) - np.log1p(-ratio)


def learned_step_size(theta, h_max: float):
    """h = h_max · σ(clip(θ, −L, L)) (keras.ops; θ a tensor or variable)."""
    return h_max * ops.sigmoid(ops.clip(theta, -H_LOGIT_LIMIT, H_LOGIT_LIMIT))


class OneStepBlock(keras.layers.Layer):
    """y_{n+1} = integrator(f, y_n, h) for the vector field ``field_class``.

    Args:
        h: step size, a finite float > 0, or (with ``members``) one value per member.
        activation: σ, a Keras activation name or callable (default ReLU).
        members: None for an ordinary layer on (batch, width), or M for M independent
            networks on members-first states (M, batch, width), with a leading M axis on
            every weight (``build_model`` switches a model's (batch, M, ...) inputs to
            that layout and back).
        seed: None, an int, or (with members) one int per member. Member m's weights
            equal those of a standalone layer built with member m's seed.
        kernel_initializer, bias_initializer: Keras initialisers, applied per member.
        learn_h: train h with the other weights, h = h_max·σ(θ) (module docstring);
            False (default) keeps h the fixed number given.
        h_max: the bound of a learned h, a finite float > 0 with h <= h_max (default
            1.0); read only with ``learn_h``.
        stability_penalty: μ >= 0 (default 0: none); μ > 0 adds the Euler-stability
            penalty to the training loss (module docstring); needs ``learn_h`` and a
            forward-Euler block.

    Width comes from the input; the block preserves shape. ``step_size`` is the current h.
    """

    field_class: type = TwoLayerField
    integrator = staticmethod(forward_euler)
    #: Whether ``learn_h=True`` is allowed (the multistep blocks say False).
    learns_h = True

    @classmethod
    def check_learn_h(cls, learn_h) -> bool:
        """``learn_h`` as a bool; ValueError if this block cannot learn its h."""
        if not isinstance(learn_h, (bool, np.bool_)):
            raise ValueError(f"learn_h must be True or False, got {learn_h!r}")
        if learn_h and not cls.learns_h:
            allowed = ", ".join(name for name, block in sorted(BLOCKS.items()) if block.learns_h)
            name = getattr(cls, "block_name", cls.__name__)
            raise ValueError(f"block {name!r} cannot learn h (learn_h=True); allowed: {allowed}")
        return bool(learn_h)

    @classmethod
    def check_stability_penalty(cls, stability_penalty, learn_h: bool) -> float:
        """μ as a float; ValueError unless μ = 0, or μ > 0 with ``learn_h`` on a
        forward-Euler block (the penalty's gradient reaches only a learned h)."""
        mu = validate_stability_penalty(stability_penalty)
        if mu > 0 and not learn_h:
            raise ValueError(f"stability_penalty={mu!r} needs learn_h=True: its gradient reaches the learned h only")
        if mu > 0 and cls.integrator is not forward_euler:
            allowed = ", ".join(name for name, block in sorted(BLOCKS.items())
                                if getattr(block, "integrator", None) is forward_euler and block.learns_h)
            name = getattr(cls, "block_name", cls.__name__)
            raise ValueError(f"block {name!r} is not a forward-Euler block; stability_penalty > 0 needs one of: {allowed}")
        return mu

    @classmethod
    def history_length(cls, **block_kwargs) -> int:
        """How many past states (y_n, y_{n-1}, ...) the block reads: 1 for one-step blocks."""
        return 1

    def __init__(
        self,
        h=0.1,
        activation="relu",
        members=None,
        seed=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        learn_h=False,
        h_max=DEFAULT_H_MAX,
        stability_penalty=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.members = validate_members(members)
        self.h = validate_step_size(h, self.members)
        self.learn_h = self.check_learn_h(learn_h)
        self.h_max = validate_h_max(h_max, self.h if self.learn_h else [])
        self.stability_penalty = self.check_stability_penalty(stability_penalty, self.learn_h)
        self.seed = normalize_seed(seed)
        self.field = self.field_class(
            activation=activation,
            members=self.members,
            seeds=member_seeds(seed, self.members),
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            dtype=self.dtype_policy,
            name="field",
        )
        self.activation = self.field.activation

    def build(self, input_shape):
        check_input_shape(self.name, input_shape, self.members)
        self.field.build(input_shape)
        if self.learn_h:
            theta = initial_h_logit(self.h, self.h_max)  # member m: logit(h_m / h_max)
            self.h_logit = self.add_weight(
                name="h_logit",
                shape=() if self.members is None else (self.members,),
                initializer=lambda shape, dtype=None: ops.reshape(as_member_column(theta, self.members, dtype), shape),
            )

    def step_column(self, dtype):
        """h as a scalar or per-member column broadcasting against ([M,] batch, width):
        the fixed h, or with ``learn_h`` h_max·σ(θ) from the trainable θ."""
        if not self.learn_h:
            return as_member_column(self.h, self.members, dtype)
        return ops.cast(learned_step_size(member_scalars(self.h_logit, self.members), self.h_max), dtype)

    @property
    def step_size(self) -> np.ndarray:
        """The current h as float64 numpy, shape () or (M,): the fixed h, or the learned
        h_max·σ(θ) (before the block is built: the h it will start from)."""
        if not self.learn_h:
            return np.asarray(self.h, dtype=np.float64)
        theta = self.h_logit if self.built else initial_h_logit(self.h, self.h_max)
        return np.asarray(ops.convert_to_numpy(learned_step_size(theta, self.h_max)), dtype=np.float64)

    def call(self, y, training=None):
        h = self.step_column(y.dtype)
        if training and self.stability_penalty > 0:
            theta = self.h_logit if self.members is None else ops.reshape(self.h_logit, (self.members,))
            self.add_loss(euler_penalty(self.field, y, learned_step_size(theta, self.h_max), self.stability_penalty))
        return self.integrator(lambda state: self.field(state, training=training), y, h)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            h=self.h,
            activation=self.activation,
            members=self.members,
            seed=self.seed,
            kernel_initializer=keras.initializers.serialize(self.field.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.field.bias_initializer),
            learn_h=self.learn_h,
            h_max=self.h_max,
            stability_penalty=self.stability_penalty,
        )
        return config


@register_block("residual")
class StepResidual(OneStepBlock):
    """Residual block with step size h (Zhang & Wynter, Eq. 7).

    y_{n+1} = y_n + h·(K2 σ(K1 y_n + b1) + b2). h = 1 is the plain ResNet block.
    """

    field_class = TwoLayerField


@register_block("shrinkage")
class Shrinkage(OneStepBlock):
    """Shrinkage block (Zhang & Wynter, Eq. 8): one matrix K1, used twice.

    y_{n+1} = y_n − h·(K1ᵀ σ(K1 y_n + b1) + b2). The Jacobian of the update minus the
    identity, −h K1ᵀ diag(σ') K1, is symmetric with real eigenvalues <= 0 (Prop. 2).
    """

    field_class = ShrinkageField


@register_block("batchnorm")
class BatchNormResidual(OneStepBlock):
    """Batch-norm residual block (Zhang & Wynter, Sec. "Batch normalization").

    y_{n+1} = y_n + h·BN2(K2 σ(BN1(K1 y_n))): batch normalisation after each matrix,
    no biases (BN's β replaces them), statistics per member and feature over the batch.
    """

    field_class = BatchNormField


@register_block("rk4")
class RK4(OneStepBlock):
    """Classic Runge–Kutta 4 step of size h along the residual field (one f per block).

    k1 = f(y), k2 = f(y + h k1/2), k3 = f(y + h k2/2), k4 = f(y + h k3),
    y_{n+1} = y_n + h/6 (k1 + 2 k2 + 2 k3 + k4), f(y) = K2 σ(K1 y + b1) + b2.
    """

    field_class = TwoLayerField
    integrator = staticmethod(runge_kutta4)
