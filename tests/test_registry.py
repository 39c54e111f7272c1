"""Tests for ``resnet_stability.layers.registry``: blocks, fields and integrators by name.

New entries are registered while the tables are emptied (fixture ``empty_tables``,
which restores them), so the registries the rest of the suite iterates stay as they are.
"""

from __future__ import annotations

import keras
import pytest

from resnet_stability.layers import BLOCKS, FIELDS, INTEGRATORS, registry
from resnet_stability.layers.blocks import OneStepBlock
from resnet_stability.layers.fields import VectorField


@pytest.fixture
def empty_tables():
    """BLOCKS, FIELDS and INTEGRATORS emptied for the duration of a test, then restored."""
    tables = {"BLOCKS": BLOCKS, "FIELDS": FIELDS, "INTEGRATORS": INTEGRATORS}
    saved = {name: dict(table) for name, table in tables.items()}
    for table in tables.values():
        table.clear()
    yield tables
    for name, table in tables.items():
        table.clear()
        table.update(saved[name])


def test_each_decorator_adds_its_entry_under_the_name(empty_tables):
    @registry.register_block("test_block")
    class TestBlock(OneStepBlock):
        pass

    @registry.register_field("test_field")
    class TestField(VectorField):
        pass

    @registry.register_integrator("test_integrator")
    def step(f, y, h):
        return y

    assert empty_tables == {"BLOCKS": {"test_block": TestBlock}, "FIELDS": {"test_field": TestField},
                            "INTEGRATORS": {"test_integrator": step}}
    assert TestBlock.block_name == "test_block" and TestField.field_name == "test_field"
    assert registry.get_block("test_block") is TestBlock
    assert registry.get_field("test_field") is TestField
    assert registry.get_integrator("test_integrator") is step
    # blocks and fields are layers a saved model names: Keras can find them again
    for cls in (TestBlock, TestField):
        assert keras.saving.get_registered_object(f"resnet_stability>{cls.__name__}") is cls


def test_a_name_is_registered_once(empty_tables):
    registry.register_field("taken")(type("First", (VectorField,), {}))
    registry.register_integrator("taken")(lambda f, y, h: y)
    with pytest.raises(ValueError, match=r"^field name 'taken' is already registered to First$"):
        registry.register_field("taken")(type("Second", (VectorField,), {}))
    with pytest.raises(ValueError, match=r"^integrator name 'taken' is already registered to <lambda>$"):
        registry.register_integrator("taken")(lambda f, y, h: y)


def test_the_real_registries_refuse_their_names_again():
    with pytest.raises(ValueError, match=r"^block name 'residual' is already registered to StepResidual$"):
        registry.register_block("residual")(type("Again", (OneStepBlock,), {}))
    with pytest.raises(ValueError, match=r"^integrator name 'euler' is already registered to forward_euler$"):
        registry.register_integrator("euler")(lambda f, y, h: y)


@pytest.mark.parametrize(
    "get, table, kind",
    [(registry.get_block, BLOCKS, "block"), (registry.get_field, FIELDS, "field"),
     (registry.get_integrator, INTEGRATORS, "integrator")],
    ids=["block", "field", "integrator"],
)
@pytest.mark.parametrize("bad", ["nope", None, ["residual"]], ids=repr)
def test_an_unknown_name_lists_the_allowed_ones(get, table, kind, bad):
    allowed = ", ".join(sorted(table))
    with pytest.raises(ValueError, match=rf"^unknown {kind} {bad!r}; allowed: {allowed}$".replace("[", r"\[")):
        get(bad)
