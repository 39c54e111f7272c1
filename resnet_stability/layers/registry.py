"""Registries by name: blocks, vector fields and integrators.

``build_model`` and the sweep choose blocks by name through :data:`BLOCKS`; a block
chooses its vector field and its integrator by name through :data:`FIELDS` and
:data:`INTEGRATORS` (``field=`` and ``integrator=``, defaults from the block). Each
joins with one decorator line::

    @register_block("residual")
    class StepResidual(OneStepBlock): ...

    @register_field("shrinkage")
    class ShrinkageField(VectorField): ...

    @register_integrator("rk4")
    def runge_kutta4(f, y, h): ...

Blocks and fields are Keras layers and are made Keras-serialisable too (their configs
name their class; a block's config names its field and integrator).
"""

from __future__ import annotations

import keras

PACKAGE = "resnet_stability"

#: block name -> block class (``resnet_stability.layers.blocks``, ``.multistep``)
BLOCKS: dict[str, type] = {}
#: field name -> :class:`~resnet_stability.layers.fields.VectorField` subclass
FIELDS: dict[str, type] = {}
#: integrator name -> ``step(f, y, h) -> y_next`` (``resnet_stability.layers.integrators``)
INTEGRATORS: dict[str, object] = {}


def _register(table: dict, kind: str, name: str, attribute: str | None = None):
    """A decorator adding its argument to ``table`` under ``name`` (refusing a name twice);
    a class also gets ``attribute`` = ``name`` and is made Keras-serialisable."""

    def add(entry):
        if name in table:
            taken = getattr(table[name], "__name__", table[name])
            raise ValueError(f"{kind} name {name!r} is already registered to {taken}")
        if attribute is not None:
            entry = keras.saving.register_keras_serializable(package=PACKAGE)(entry)
            setattr(entry, attribute, name)
        table[name] = entry
        return entry

    return add


def _lookup(table: dict, kind: str, name: str):
    try:
        return table[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown {kind} {name!r}; allowed: {', '.join(sorted(table))}") from None


def register_block(name: str):
    """Class decorator: add a block class under ``name`` (its ``block_name``) and make it
    Keras-serialisable."""
    return _register(BLOCKS, "block", name, attribute="block_name")


def register_field(name: str):
    """Class decorator: add a vector field class under ``name`` (its ``field_name``) and
    make it Keras-serialisable."""
    return _register(FIELDS, "field", name, attribute="field_name")


def register_integrator(name: str):
    """Function decorator: add a one-step integrator ``step(f, y, h) -> y_next`` under ``name``."""
    return _register(INTEGRATORS, "integrator", name)


def get_block(name: str) -> type:
    """The block class registered under ``name``; ValueError listing the names otherwise."""
    return _lookup(BLOCKS, "block", name)


def get_field(name: str) -> type:
    """The vector field class registered under ``name``; ValueError listing the names otherwise."""
    return _lookup(FIELDS, "field", name)


def get_integrator(name: str):
    """The integrator registered under ``name``; ValueError listing the names otherwise."""
    return _lookup(INTEGRATORS, "integrator", name)
