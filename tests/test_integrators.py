"""Tests for ``resnet_stability.layers.integrators``: the one-step integrators (registered
by name) and the multistep scheme, on numpy states and the scalar ODE y' = A y.

Reference values: the exact solution exp(A t), the orders of accuracy (errors halve, resp.
fall 16x, when h halves), and the multistep formula written out.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from resnet_stability import stability as st
from resnet_stability.layers import INTEGRATORS, get_integrator
from resnet_stability.layers.integrators import EULER, forward_euler, is_forward_euler, multistep, runge_kutta4

A = -1.3  # y' = A y, exact solution exp(A t)


def field(y):
    return A * y


def test_the_integrators_are_registered_by_name():
    assert INTEGRATORS == {"euler": forward_euler, "rk4": runge_kutta4}
    assert get_integrator("rk4") is runge_kutta4 and EULER == "euler"
    with pytest.raises(ValueError, match=r"^unknown integrator 'multistep'; allowed: euler, rk4$"):
        get_integrator("multistep")  # the multistep scheme reads a history: not a one-step integrator


def test_only_the_euler_name_is_forward_euler():
    """Prop. 1's disc and the Euler penalty belong to forward Euler alone."""
    assert is_forward_euler("euler")
    assert not any(is_forward_euler(name) for name in ("rk4", "multistep", "nope"))


def test_one_step_integrators_on_numpy_states():
    """y + h f(y) and the RK4 combination, written out for f(y) = A y on a vector."""
    y, h = np.array([1.0, -2.0, 0.5]), 0.3
    np.testing.assert_array_equal(forward_euler(field, y, h), y + h * A * y)
    z = h * A
    np.testing.assert_allclose(runge_kutta4(field, y, h), y * (1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24), rtol=1e-15)


def integrate_one_step(step, n_steps, t_end=1.0):
    h = t_end / n_steps
    y = 1.0
    for _ in range(n_steps):
        y = step(field, y, h)
    return abs(y - math.exp(A * t_end))


def test_forward_euler_is_first_order():
    ratio = integrate_one_step(forward_euler, 64) / integrate_one_step(forward_euler, 128)
    assert ratio == pytest.approx(2.0, abs=0.1)


def test_runge_kutta4_is_fourth_order():
    ratio = integrate_one_step(runge_kutta4, 64) / integrate_one_step(runge_kutta4, 128)
    assert ratio == pytest.approx(16.0, abs=1.0)


def test_multistep_lm_k0_is_forward_euler():
    rng = np.random.default_rng(1)
    y, y_prev = rng.normal(size=(2, 5, 3))
    alphas, beta = st.lm_coefficients(0.0)
    out = multistep(field, (y, y_prev), 0.3, alphas, beta)
    np.testing.assert_array_equal(out, forward_euler(field, y, 0.3))


def test_multistep_matches_formula():
    y0, y1, y2 = np.array([1.0, 2.0]), np.array([0.5, -1.0]), np.array([3.0, 0.0])
    alphas, beta = st.zeros_coefficients(2.0)
    out = multistep(field, (y0, y1, y2), 0.1, alphas, beta)
    expected = alphas[0] * y0 + alphas[1] * y1 + alphas[2] * y2 + 0.1 * beta * A * y0
    np.testing.assert_allclose(out, expected, rtol=1e-15)


def test_multistep_length_mismatch():
    with pytest.raises(ValueError, match="history"):
        multistep(field, (1.0, 2.0), 0.1, (1.0,), 1.0)

