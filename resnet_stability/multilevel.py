"""Multi-level training (Chang et al. 2018): prolong a trained network to twice the depth.

A network of depth D with step h is forward Euler (or RK4, ...) on the ODE
y' = f(y, θ(t)) over t ∈ [0, T], T = D·h, with θ(t) piecewise constant: block i holds
θ_i on [i·h, (i+1)·h). :func:`prolong` returns the network of depth 2D with step h/2
whose blocks 2i and 2i+1 both hold θ_i (Meganet's ``prolongateWeights``): the same
ODE, the same T, integrated with half the step. Its output differs from the parent's
by the discretisation error only: O(h) over [0, T] for forward Euler (the local errors
O(h²) of the D blocks add up), so training can go on from a network that already
computes (nearly) the same function, at twice the depth.
"""

from __future__ import annotations

import keras
import numpy as np

from resnet_stability.layers.blocks import OneStepBlock, initial_h_logit

BLOCK_PREFIX = "block_"


def model_blocks(model: keras.Model) -> list:
    """The blocks ``block_0``, ``block_1``, ... of a ``build_model`` network, in order."""
    blocks = [layer for layer in model.layers if layer.name.startswith(BLOCK_PREFIX)]
    return sorted(blocks, key=lambda layer: int(layer.name[len(BLOCK_PREFIX) :]))


def check_prolongable(model: keras.Model) -> list:
    """The model's blocks; ValueError unless every one is a one-step block."""
    blocks = model_blocks(model)
    if not all(isinstance(block, OneStepBlock) for block in blocks):
        raise ValueError(
            f"prolong: model {model.name!r} has multistep blocks; only one-step blocks (residual, shrinkage, "
            "batchnorm, rk4) can be prolonged (a multistep block reads y_{n-1}, ... at spacing h, and halving h "
            "changes that history, so it is not the same ODE)"
        )
    return blocks


def half_step_config(block: OneStepBlock, name: str) -> dict:
    """The config of a child block: the parent's, named ``name``, with h -> h/2 (its
    field and integrator names, and every other argument, as they are).

    With ``learn_h`` the config's h is the parent's *current* learned h halved (its
    start value h_max·σ(θ₀) for the child; the weights copied afterwards hold the same)."""
    config = block.get_config()
    config["name"] = name
    half = np.asarray(block.step_size if block.learn_h else config["h"], dtype=np.float64) / 2
    config["h"] = half.tolist()
    return config


def child_weights(block: OneStepBlock) -> list[np.ndarray]:
    """The parent's weights for both children, in ``block.weights`` order: all copied,
    batch-norm moving statistics included; a learned step's logit θ replaced by
    θ' = logit(h/(2·h_max)) (:func:`~resnet_stability.layers.blocks.initial_h_logit`),
    so h_max·σ(θ') = h/2 (to rounding; an h below 2·h_max·σ(−20) ≈ 4e-9·h_max stays
    at that floor)."""
    values = []
    for weight in block.weights:
        value = keras.ops.convert_to_numpy(weight)
        if block.learn_h and weight is block.h_logit:
            value = initial_h_logit(block.step_size / 2, block.h_max).astype(value.dtype).reshape(value.shape)
        values.append(value)
    return values


def clone_layer(layer, config: dict | None = None):
    """A fresh layer of ``layer``'s class from ``config`` (default: its own)."""
    return layer.__class__.from_config(layer.get_config() if config is None else config)


def prolonged_name(name: str, depth: int) -> str:
    """``residual_depth4`` -> ``residual_depth8``; other names are kept."""
    suffix = f"_depth{depth}"
    return name[: -len(suffix)] + f"_depth{2 * depth}" if name.endswith(suffix) else name


def prolong(model: keras.Model) -> keras.Model:
    """Depth D, step h -> depth 2D, step h/2: blocks 2i and 2i+1 both start as block i.

    ``model`` is a ``build_model`` network with one-step blocks (residual, shrinkage,
    batchnorm, rk4, any field with any one-step integrator), with or without members; a
    multistep block raises ValueError. Block
    i's h_i (a float, one per member, or the learned h_max·σ(θ_i)) becomes h_i/2 in both
    children, every other weight (batch-norm moving statistics included) is copied; the
    stem, the layout layers and the head are copied as they are. The parent is left
    untouched; the child's layers are new (nothing is shared). For forward Euler the
    child's output differs from the parent's by O(h) over the fixed T = D·h (module
    docstring).
    """
    blocks = check_prolongable(model)
    state = inputs = keras.Input(shape=model.inputs[0].shape[1:], dtype=model.inputs[0].dtype, name="features")
    copies = []  # (new layer, weights)
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if layer in blocks:
            index = int(layer.name[len(BLOCK_PREFIX) :])
            weights = child_weights(layer)
            for child in (2 * index, 2 * index + 1):
                new = clone_layer(layer, half_step_config(layer, f"{BLOCK_PREFIX}{child}"))
                state = new(state)
                copies.append((new, weights))
        else:
            new = clone_layer(layer)
            state = new(state)
            copies.append((new, [keras.ops.convert_to_numpy(w) for w in layer.weights]))
    for new, weights in copies:
        new.set_weights(weights)
    return keras.Model(inputs, state, name=prolonged_name(model.name, len(blocks)))
