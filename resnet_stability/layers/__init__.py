"""Keras layers for ODE-inspired residual networks, with an optional members axis.

Blocks (registered by name in :data:`BLOCKS`):

- ``StepResidual`` ("residual"): y + h·(K2 σ(K1 y + b1) + b2)
- ``Shrinkage`` ("shrinkage"): y − h·(K1ᵀ σ(K1 y + b1) + b2)
- ``BatchNormResidual`` ("batchnorm"): y + h·BN2(K2 σ(BN1(K1 y)))
- ``RK4`` ("rk4"): a classic Runge–Kutta 4 step along the residual field
- ``LinearMultistep`` ("lm"), ``ZeroS`` ("zeros"), ``Multistep`` ("multistep"):
  Σ α_i y_{n−i} + h β f(y_n); ``build_model`` supplies the history
"""

from resnet_stability.layers.blocks import RK4, BatchNormResidual, OneStepBlock, Shrinkage, StepResidual
from resnet_stability.layers.dense import MembersDense
from resnet_stability.layers.fields import BatchNormField, ShrinkageField, TwoLayerField, VectorField
from resnet_stability.layers.multistep import LinearMultistep, Multistep, MultistepBlock, ZeroS
from resnet_stability.layers.registry import BLOCKS, get_block, register_block

__all__ = [
    "BLOCKS",
    "BatchNormField",
    "BatchNormResidual",
    "LinearMultistep",
    "Multistep",
    "MultistepBlock",
    "RK4",
    "ZeroS",
    "MembersDense",
    "OneStepBlock",
    "Shrinkage",
    "ShrinkageField",
    "StepResidual",
    "TwoLayerField",
    "VectorField",
    "get_block",
    "register_block",
]
