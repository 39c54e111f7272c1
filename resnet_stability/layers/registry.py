"""The block registry: block name -> layer class.

``build_model`` and the sweep choose blocks by name through :data:`BLOCKS`. A new
block joins with one decorator line::

    @register_block("residual")
    class StepResidual(OneStepBlock): ...
"""

from __future__ import annotations

import keras

BLOCKS: dict[str, type] = {}


def register_block(name: str):
    """Class decorator: add a block class under ``name`` and make it Keras-serialisable."""

    def add(cls):
        if name in BLOCKS:
            raise ValueError(f"block name {name!r} is already registered to {BLOCKS[name].__name__}")
        cls = keras.saving.register_keras_serializable(package="resnet_stability")(cls)
        cls.block_name = name
        BLOCKS[name] = cls
        return cls

    return add


def get_block(name: str) -> type:
    """The block class registered under ``name``; ValueError listing the names otherwise."""
    try:
        return BLOCKS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown block {name!r}; allowed: {', '.join(sorted(BLOCKS))}") from None
