"""The paper's blocks: an integrator applied to a vector field, with an explicit step h.

| block name  | class               | update (column-vector math)                         |
|-------------|---------------------|-----------------------------------------------------|
| residual    | StepResidual        | y + h·(K2 σ(K1 y + b1) + b2)          (Eq. 7)       |
| shrinkage   | Shrinkage           | y − h·(K1ᵀ σ(K1 y + b1) + b2)         (Eq. 8)       |
| batchnorm   | BatchNormResidual   | y + h·BN2(K2 σ(BN1(K1 y)))                          |
| rk4         | RK4                 | classic RK4 step of size h along f = K2 σ(K1 y + b1) + b2 |

Multistep blocks (lm, zeros, multistep) are in ``multistep.py``.

h = 1 with the residual block is a plain ResNet block.
"""

from __future__ import annotations

import keras

from resnet_stability.layers.fields import BatchNormField, ShrinkageField, TwoLayerField
from resnet_stability.layers.integrators import forward_euler, runge_kutta4
from resnet_stability.layers.members import (
    as_member_column,
    check_input_shape,
    member_seeds,
    normalize_seed,
    validate_members,
    validate_step_size,
)
from resnet_stability.layers.registry import register_block


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

    Width comes from the input; the block preserves shape.
    """

    field_class: type = TwoLayerField
    integrator = staticmethod(forward_euler)

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
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.members = validate_members(members)
        self.h = validate_step_size(h, self.members)
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

    def call(self, y, training=None):
        h = as_member_column(self.h, self.members, y.dtype)
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
