"""The paper's blocks: an integrator applied to a vector field, with an explicit step h.

| block name | class             | field     | integrator | update (column-vector math)            |
|------------|-------------------|-----------|------------|----------------------------------------|
| residual   | StepResidual      | two_layer | euler      | y + h·(K2 σ(K1 y + b1) + b2)   (Eq. 7) |
| shrinkage  | Shrinkage         | shrinkage | euler      | y − h·(K1ᵀ σ(K1 y + b1) + b2)  (Eq. 8) |
| batchnorm  | BatchNormResidual | batchnorm | euler      | y + h·BN2(K2 σ(BN1(K1 y)))             |
| rk4        | RK4               | two_layer | rk4        | classic RK4 step of size h along the two_layer f |

Multistep blocks (lm, zeros, multistep) are in ``multistep.py``.

A block's class fixes only its *defaults*: every block takes ``field=`` (a name in
:data:`~resnet_stability.layers.registry.FIELDS`) and, one-step blocks, ``integrator=``
(a name in :data:`~resnet_stability.layers.registry.INTEGRATORS`), both stored in
``get_config``. So ``Shrinkage(h=0.5, integrator="rk4")`` (or ``build_model(...,
block="shrinkage", integrator="rk4")``) is an RK4 step along the shrinkage field, with no
new class; ``StepResidual(integrator="rk4")`` is the ``rk4`` block.

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

**Toward Euler stability** (``stability_penalty`` = μ > 0, with ``learn_h``, blocks whose
integrator is forward Euler, whatever their field): in training each block adds
μ·max(0, max_λ |1 + hλ| − 1) to its member's loss, λ the eigenvalues of its field's
Jacobian at the batch's first example, h the learned step; the gradient reaches h only
(``euler_penalty.py``).
"""

from __future__ import annotations

import numbers

import keras
import numpy as np
from keras import ops

from resnet_stability.layers import fields  # noqa: F401  (registers the paper's fields in FIELDS)
from resnet_stability.layers.euler_penalty import euler_penalty, validate_stability_penalty
from resnet_stability.layers.initialization import per_member_initializer
from resnet_stability.layers.integrators import EULER, is_forward_euler
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
from resnet_stability.layers.registry import BLOCKS, get_field, get_integrator, register_block

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


class StepBlock(keras.layers.Layer):
    """Base class of every block: a vector field, chosen by name, stepped with step h.

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
            penalty to the training loss (module docstring); needs ``learn_h`` and the
            forward-Euler integrator.
        field: the vector field's name in ``FIELDS`` (default: the block's
            ``default_field``); the field layer is ``self.field``.
        integrator: the integrator's name in ``INTEGRATORS`` (default: the block's
            ``default_integrator``); multistep blocks take their own scheme only.

    Width comes from the input; the block preserves shape. ``step_size`` is the current h;
    ``history_length`` is how many states y_n, y_{n−1}, … the block reads (1 here).
    """

    #: The field and integrator names used when ``field=`` / ``integrator=`` are not given.
    default_field = "two_layer"
    default_integrator = EULER
    #: How many past states (y_n, y_{n-1}, ...) the block reads: 1 for one-step blocks.
    history_length = 1
    #: Whether ``learn_h=True`` is allowed (the multistep blocks say False).
    learns_h = True

    @classmethod
    def label(cls) -> str:
        """The block's registered name in quotes (its class name if unregistered), for messages."""
        return repr(getattr(cls, "block_name", cls.__name__))

    @classmethod
    def check_learn_h(cls, learn_h) -> bool:
        """``learn_h`` as a bool; ValueError if this block cannot learn its h."""
        if not isinstance(learn_h, (bool, np.bool_)):
            raise ValueError(f"learn_h must be True or False, got {learn_h!r}")
        if learn_h and not cls.learns_h:
            allowed = ", ".join(name for name, block in sorted(BLOCKS.items()) if block.learns_h)
            raise ValueError(f"block {cls.label()} cannot learn h (learn_h=True); allowed: {allowed}")
        return bool(learn_h)

    @classmethod
    def check_integrator(cls, integrator) -> str:
        """The integrator's name (``default_integrator`` for None); ValueError unless it is
        registered in ``INTEGRATORS``."""
        name = cls.default_integrator if integrator is None else integrator
        get_integrator(name)
        return name

    @classmethod
    def check_stability_penalty(cls, stability_penalty, learn_h: bool, integrator=None) -> float:
        """μ as a float; ValueError unless μ = 0, or μ > 0 with ``learn_h`` and the
        forward-Euler integrator (``integrator``, default the block's own): the penalty's
        gradient reaches only a learned h, and |1 + hλ| <= 1 is Euler's stability region."""
        mu = validate_stability_penalty(stability_penalty)
        if mu > 0 and not learn_h:
            raise ValueError(f"stability_penalty={mu!r} needs learn_h=True: its gradient reaches the learned h only")
        integrator = cls.check_integrator(integrator)
        if mu > 0 and not is_forward_euler(integrator):
            allowed = ", ".join(name for name, block in sorted(BLOCKS.items())
                                if block.default_integrator == EULER and block.learns_h)
            label = cls.label() + ("" if integrator == cls.default_integrator else f" with integrator {integrator!r}")
            raise ValueError(
                f"block {label} is not a forward-Euler block; stability_penalty > 0 needs one of: {allowed}"
            )
        return mu

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
        field=None,
        integrator=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.members = validate_members(members)
        self.h = validate_step_size(h, self.members)
        self.learn_h = self.check_learn_h(learn_h)
        self.h_max = validate_h_max(h_max, self.h if self.learn_h else [])
        self.integrator_name = self.check_integrator(integrator)
        self.stability_penalty = self.check_stability_penalty(stability_penalty, self.learn_h, self.integrator_name)
        self.seed = normalize_seed(seed)
        self.field_name = self.default_field if field is None else field
        self.field = get_field(self.field_name)(
            activation=activation,
            members=self.members,
            seeds=member_seeds(seed, self.members),
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            dtype=self.dtype_policy,
            name="field",
        )
        self.activation = self.field.activation

    def add_member_scalar(self, name: str, start, constraint=None):
        """A trainable scalar per member (shape () without members, (M,) with): learned h's
        θ, LM-ResNet's k, ZeroS's λ. Read it in ``call`` as a column with
        :func:`~resnet_stability.layers.members.member_scalars`.

        ``start``: numbers (a float, or one per member), cast once from float64 to the
        variable's dtype; or a Keras initialiser, drawn per member from the block's seeds
        with tag ``name`` (member m's value is the standalone block's with member m's seed).
        """
        if isinstance(start, (numbers.Real, np.ndarray, list, tuple)):
            values = np.asarray(start, dtype=np.float64)

            def initializer(shape, dtype=None):  # member m: values[m] (or the one value)
                return ops.reshape(as_member_column(np.broadcast_to(values, shape), self.members, dtype), shape)

        else:
            initializer = per_member_initializer(start, self.field.seeds, name, self.members)
        return self.add_weight(
            name=name,
            shape=() if self.members is None else (self.members,),
            initializer=initializer,
            constraint=constraint,
        )

    def build(self, input_shape):
        check_input_shape(self.name, input_shape, self.members)
        self.field.build(input_shape)
        if self.learn_h:
            self.h_logit = self.add_member_scalar("h_logit", initial_h_logit(self.h, self.h_max))

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
            field=self.field_name,
            integrator=self.integrator_name,
        )
        return config


class OneStepBlock(StepBlock):
    """y_{n+1} = integrator(f, y_n, h): the integrator named ``integrator`` (default
    ``default_integrator``) applied to the field named ``field`` (default
    ``default_field``); arguments as :class:`StepBlock`.

    Not registered itself: ``OneStepBlock(field=..., integrator=...)`` is any
    combination, and the registered subclasses below are the paper's blocks, which
    differ only in their defaults.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.integrator = get_integrator(self.integrator_name)

    def call(self, y, training=None):
        h = self.step_column(y.dtype)
        if training and self.stability_penalty > 0:
            h_learned = learned_step_size(self.h_logit, self.h_max)
            self.add_loss(euler_penalty(self.field, y, h_learned, self.stability_penalty))
        return self.integrator(lambda state: self.field(state, training=training), y, h)


keras.saving.register_keras_serializable(package="resnet_stability")(OneStepBlock)


@register_block("residual")
class StepResidual(OneStepBlock):
    """Residual block with step size h (Zhang & Wynter, Eq. 7).

    y_{n+1} = y_n + h·(K2 σ(K1 y_n + b1) + b2). h = 1 is the plain ResNet block.
    """

    default_field = "two_layer"


@register_block("shrinkage")
class Shrinkage(OneStepBlock):
    """Shrinkage block (Zhang & Wynter, Eq. 8): one matrix K1, used twice.

    y_{n+1} = y_n − h·(K1ᵀ σ(K1 y_n + b1) + b2). The Jacobian of the update minus the
    identity, −h K1ᵀ diag(σ') K1, is symmetric with real eigenvalues <= 0 (Prop. 2).
    """

    default_field = "shrinkage"


@register_block("batchnorm")
class BatchNormResidual(OneStepBlock):
    """Batch-norm residual block (Zhang & Wynter, Sec. "Batch normalization").

    y_{n+1} = y_n + h·BN2(K2 σ(BN1(K1 y_n))): batch normalisation after each matrix,
    no biases (BN's β replaces them), statistics per member and feature over the batch.
    """

    default_field = "batchnorm"


@register_block("rk4")
class RK4(OneStepBlock):
    """Classic Runge–Kutta 4 step of size h along the residual field (one f per block).

    k1 = f(y), k2 = f(y + h k1/2), k3 = f(y + h k2/2), k4 = f(y + h k3),
    y_{n+1} = y_n + h/6 (k1 + 2 k2 + 2 k3 + k4), f(y) = K2 σ(K1 y + b1) + b2.
    """

    default_field = "two_layer"
    default_integrator = "rk4"
