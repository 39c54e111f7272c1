"""Keras layers for ODE-inspired residual networks, with an optional members axis.

A block is an integrator applied to a vector field, each chosen by name:

- fields (:data:`FIELDS`): ``two_layer`` K2 σ(K1 y + b1) + b2, ``shrinkage``
  −(K1ᵀ σ(K1 y + b1) + b2), ``batchnorm`` BN2(K2 σ(BN1(K1 y)));
- integrators (:data:`INTEGRATORS`): ``euler`` y + h f(y), ``rk4`` (classic RK4);
  the multistep blocks use their own scheme Σ α_i y_{n−i} + h β f(y_n).

Blocks (registered by name in :data:`BLOCKS`; each takes ``field=`` and, one-step
blocks, ``integrator=`` to replace its defaults):

- ``StepResidual`` ("residual"): y + h·(K2 σ(K1 y + b1) + b2)
- ``Shrinkage`` ("shrinkage"): y − h·(K1ᵀ σ(K1 y + b1) + b2)
- ``BatchNormResidual`` ("batchnorm"): y + h·BN2(K2 σ(BN1(K1 y)))
- ``RK4`` ("rk4"): a classic Runge–Kutta 4 step along the residual field
- ``LinearMultistep`` ("lm"), ``ZeroS`` ("zeros"), ``Multistep`` ("multistep"):
  Σ α_i y_{n−i} + h β f(y_n); ``build_model`` supplies the history (:func:`run_blocks`)
"""

from resnet_stability.layers.blocks import RK4, BatchNormResidual, OneStepBlock, Shrinkage, StepBlock, StepResidual
from resnet_stability.layers.dense import MembersDense
from resnet_stability.layers.fields import BatchNormField, ShrinkageField, TwoLayerField, VectorField
from resnet_stability.layers.multistep import (
    LinearMultistep,
    Multistep,
    MultistepBlock,
    ZeroS,
    ZeroStableClip,
    run_blocks,
)
from resnet_stability.layers.registry import (
    BLOCKS,
    FIELDS,
    INTEGRATORS,
    get_block,
    get_field,
    get_integrator,
    register_block,
    register_field,
    register_integrator,
)

__all__ = [
    "BLOCKS",
    "BatchNormField",
    "BatchNormResidual",
    "FIELDS",
    "INTEGRATORS",
    "LinearMultistep",
    "MembersDense",
    "Multistep",
    "MultistepBlock",
    "OneStepBlock",
    "RK4",
    "Shrinkage",
    "ShrinkageField",
    "StepBlock",
    "StepResidual",
    "TwoLayerField",
    "VectorField",
    "ZeroS",
    "ZeroStableClip",
    "get_block",
    "get_field",
    "get_integrator",
    "register_block",
    "register_field",
    "register_integrator",
    "run_blocks",
]
