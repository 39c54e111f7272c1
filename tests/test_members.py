"""Tests for ``resnet_stability.layers.members``: the members axis helpers.

Expected values are written out here (numpy products per member, the derived seeds);
the block and model batteries check the helpers at work in every layer.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from resnet_stability.layers.members import (
    MembersLayout,
    as_member_column,
    check_input_shape,
    member_rows,
    member_scalars,
    member_seeds,
    member_values,
    members_matmul,
    members_matmul_transposed,
    validate_members,
)
from resnet_stability.seeding import derive_seed


def test_validate_members():
    assert validate_members(None) is None and validate_members(np.int64(4)) == 4
    for bad in (0, -1, 2.0, True, "2"):
        with pytest.raises(ValueError, match=r"members must be None or an integer >= 1"):
            validate_members(bad)


def test_member_seeds_derive_from_an_int_and_keep_a_list():
    assert member_seeds(5, None) == [5]
    assert member_seeds(5, 3) == [derive_seed(5, "member", m) for m in range(3)]
    assert member_seeds([1, 2, 3], 3) == [1, 2, 3]
    assert len(set(member_seeds(None, 4))) == 4
    with pytest.raises(ValueError, match=r"seed has 2 values but members=3"):
        member_seeds([1, 2], 3)


def test_member_values_take_one_float_or_one_per_member():
    assert member_values("h", 0.5, None) == 0.5 and member_values("h", 0.5, 3) == 0.5
    assert member_values("h", np.array([0.1, 0.2]), 2) == [0.1, 0.2]
    with pytest.raises(ValueError, match=r"h has 2 values but members=None"):
        member_values("h", [0.1, 0.2], None)
    with pytest.raises(ValueError, match=r"h must be a float or one float per member, got 'x'"):
        member_values("h", "x", None)


def test_columns_and_rows_broadcast_against_members_first_states():
    state = np.ones((3, 4, 2))  # (M, batch, width)
    column = np.asarray(as_member_column([1.0, 2.0, 3.0], 3, "float64"))
    assert column.shape == (3, 1, 1) and (state * column)[2, 0, 0] == 3.0
    assert np.asarray(as_member_column(0.5, None, "float32")).shape == ()
    assert tuple(member_scalars(tf.constant([1.0, 2.0, 3.0]), 3).shape) == (3, 1, 1)
    assert tuple(member_rows(tf.ones((3, 2)), 3).shape) == (3, 1, 2)


def test_products_per_member_never_mix_members(rng):
    x, kernel = rng.normal(size=(3, 4, 5)), rng.normal(size=(3, 5, 2))
    expected = np.stack([x[m] @ kernel[m] for m in range(3)])
    np.testing.assert_allclose(members_matmul(x, kernel, 3), expected, atol=1e-12)
    back = rng.normal(size=(3, 4, 2))
    np.testing.assert_allclose(members_matmul_transposed(back, kernel, 3),
                               np.stack([back[m] @ kernel[m].T for m in range(3)]), atol=1e-12)
    np.testing.assert_allclose(members_matmul_transposed(back[0], kernel[0], None), back[0] @ kernel[0].T, atol=1e-12)


def test_input_shapes_are_checked_against_the_layout():
    assert check_input_shape("b", (None, 5), None) == 5
    assert check_input_shape("b", (3, None, 5), 3) == 5
    assert check_input_shape("d", (None, 3, 5), 3, members_first=False) == 5
    with pytest.raises(ValueError, match=r"b: members=3 needs input shape \(3, batch, width\) \(members first\)"):
        check_input_shape("b", (None, 3, 5), 3)
    with pytest.raises(ValueError, match=r"b: the last \(width\) axis of the input must be known"):
        check_input_shape("b", (None, None), None)


def test_members_layout_swaps_batch_and_members(rng):
    x = rng.normal(size=(4, 3, 2)).astype("float32")
    layout = MembersLayout()
    np.testing.assert_array_equal(np.asarray(layout(x)), np.swapaxes(x, 0, 1))
    np.testing.assert_array_equal(np.asarray(layout(layout(x))), x)
    assert layout.compute_output_shape((None, 3, 2)) == (3, None, 2)
