"""Tests for resnet_stability.stability (root condition, consistency, regions, Prop. 1,
projections) and for the convergence order of its LM and ZeroS coefficients, run with
the multistep integrator (the integrators themselves: ``test_integrators.py``).

Reference values are worked out by hand in the comments (factorisations of ρ), not taken
from the module under test. Everything is numpy on scalars; the projection helpers use
keras.ops and are checked on numpy inputs.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from resnet_stability import stability as st
from resnet_stability.layers.integrators import multistep

A = -1.3  # y' = A y, exact solution exp(A t)


def sorted_moduli(roots):
    return np.sort(np.abs(roots))


# ----------------------------------------------------------------------------- roots


@pytest.mark.parametrize(
    "alphas, moduli",
    [
        ((1.0,), [1.0]),                   # Euler: z − 1
        ((0.5, 0.5), [0.5, 1.0]),          # z² − z/2 − 1/2 = (z − 1)(z + 1/2)
        ((2.0, -1.0), [1.0, 1.0]),         # (z − 1)²
        ((0.0, 1.0), [1.0, 1.0]),          # (z − 1)(z + 1)
        ((3.0, -2.0), [1.0, 2.0]),         # (z − 1)(z − 2)
        ((1.0, 0.0, 0.0), [0.0, 0.0, 1.0]),  # z²(z − 1): trailing zeros give zero roots
    ],
)
def test_characteristic_root_moduli(alphas, moduli):
    roots = st.characteristic_roots(alphas)
    assert roots.shape == (len(alphas),)
    assert np.iscomplexobj(roots)
    np.testing.assert_allclose(sorted_moduli(roots), moduli, atol=1e-7)
    # they are roots of ρ(z) = z^d − Σ α_i z^{d−1−i}
    rho = np.concatenate(([1.0], -np.asarray(alphas)))
    np.testing.assert_allclose(np.polyval(rho, roots), 0.0, atol=1e-12)


def test_roots_sorted_by_decreasing_modulus():
    assert np.all(np.diff(np.abs(st.characteristic_roots((0.5, 0.5)))) <= 0)
    np.testing.assert_allclose(st.characteristic_roots((3.0, -2.0)), [2.0, 1.0], atol=1e-12)


@pytest.mark.parametrize(
    "alphas, stable",
    [
        ((1.0,), True),                 # Euler, simple root 1
        ((0.5, 0.5), True),             # {1, −1/2}
        ((2.0, -1.0), False),           # double root at 1
        ((0.0, 1.0), True),             # {1, −1}, both simple on the circle
        ((3.0, -2.0), False),           # root 2 outside the disc
        ((3.0, -3.0, 1.0), False),      # (z − 1)³: triple root at 1
        ((-1.0, 1.0, 1.0), False),      # (z − 1)(z + 1)²: double root at −1
        ((0.0, 0.0, 0.0, 1.0), True),   # z⁴ − 1: four simple unit roots
        ((-2 / 3, -1 / 9), True),       # (z + 1/3)²: double root inside the disc is fine
        ((1.0, 0.0, 0.0), True),        # z²(z − 1): double root 0 is inside
    ],
)
def test_root_condition(alphas, stable):
    assert st.is_zero_stable(alphas) is stable


def test_double_unit_root_is_detected_although_computed_roots_split():
    # double roots on the unit circle away from 1: ρ(z) = (z² + 1)² = z⁴ + 2 z² + 1,
    # alphas = (0, −2, 0, −1), double roots at ±i (computed as pairs ~1e-8 apart)
    roots = st.characteristic_roots((0.0, -2.0, 0.0, -1.0))
    np.testing.assert_allclose(np.abs(roots), 1.0, atol=1e-6)
    assert st.is_zero_stable((0.0, -2.0, 0.0, -1.0)) is False


@pytest.mark.parametrize("theta, stable", [(1e-3, True), (1e-9, False)])
def test_close_distinct_unit_roots(theta, stable):
    # rho = (z - 1)(z^2 - 2 cos(theta) z + 1): simple roots 1, exp(+-i theta). Unit roots
    # closer than cluster_tol (1e-6) are indistinguishable from a double root: rejected.
    c = math.cos(theta)
    rho = np.polymul([1.0, -1.0], [1.0, -2.0 * c, 1.0])
    alphas = tuple(-rho[1:])
    assert st.is_zero_stable(alphas) is stable


def test_warn_if_not_zero_stable():
    with pytest.warns(st.ZeroStabilityWarning, match=r"root condition"):
        assert st.warn_if_not_zero_stable((2.0, -1.0), name="bad block") is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert st.warn_if_not_zero_stable((0.5, 0.5)) is True


# ----------------------------------------------------------------------------- consistency


def test_euler_is_consistent():
    assert st.is_consistent((1.0,), 1.0)
    assert not st.is_consistent((1.0,), 0.5)
    assert not st.is_consistent((0.9,), 1.0)  # ρ(1) ≠ 0


@pytest.mark.parametrize("k", [-0.5, -0.1, 0.0, 0.3, 1.0])
def test_lm_consistency(k):
    alphas, beta = st.lm_coefficients(k)
    assert alphas == (1.0 - k, k) and beta == 1.0
    # ρ'(1) = 2 − (1 − k) = 1 + k: consistent with β = 1 only at k = 0, always with β = 1 + k
    assert st.is_consistent(alphas, beta) is (k == 0.0)
    assert st.is_consistent(alphas, 1.0 + k)


@pytest.mark.parametrize("lam", [-3.0, -1.5, 0.5, 1.0, 2.0, 10.0, -1.8, 1e3, -1e-2])
def test_zeros_consistent_and_second_order(lam):
    alphas, beta = st.zeros_coefficients(lam)
    assert st.is_consistent(alphas, beta)
    constants = st.error_constants(alphas, beta, count=4)
    np.testing.assert_allclose(constants[:3], 0.0, atol=1e-9 * max(1.0, 1.0 / abs(lam)))
    assert constants[3] == pytest.approx((3 * lam + 1) / (6 * lam), rel=1e-9)
    assert st.order_of_accuracy(alphas, beta) == 2


def test_zeros_coefficients_values():
    alphas, beta = st.zeros_coefficients(1.0)
    assert alphas == pytest.approx((1.5, -1.0, 0.5)) and beta == pytest.approx(1.0)
    alphas, beta = st.zeros_coefficients(-9 / 5)  # ZeroSNet's "optimal" fixed coefficients
    assert alphas == pytest.approx((1 / 3, 5 / 9, 1 / 9)) and beta == pytest.approx(16 / 9)
    # ρ = (z − 1)(z + 1/3)²: parasitic roots both at −1/3
    np.testing.assert_allclose(sorted_moduli(st.characteristic_roots(alphas)), [1 / 3, 1 / 3, 1], atol=1e-6)
    assert st.is_zero_stable(alphas)
    # λ = −1/3 is the only third-order member, and it is not zero-stable
    alphas, beta = st.zeros_coefficients(-1 / 3)
    assert st.order_of_accuracy(alphas, beta) == 3
    assert not st.is_zero_stable(alphas)


def test_error_constants_of_known_schemes():
    np.testing.assert_allclose(st.error_constants((1.0,), 1.0, 3), [0.0, 0.0, 0.5])
    assert st.order_of_accuracy((1.0,), 1.0) == 1
    assert st.order_of_accuracy((0.0, 1.0), 2.0) == 2   # leapfrog
    assert st.order_of_accuracy((0.9,), 1.0) == -1
    assert st.order_of_accuracy((1.0,), 0.5) == 0


# ----------------------------------------------------------------------------- regions


def _lam_grid():
    grid = np.concatenate([
        -np.logspace(-3, 3, 121),
        np.logspace(-3, 3, 121),
        np.linspace(-3.0, 3.0, 241),
    ])
    near_boundary = (np.abs(grid + 1.0) < 1e-3) | (np.abs(grid - 1 / 3) < 1e-3) | (grid == 0.0)
    return grid[~near_boundary]


def test_zeros_region_matches_root_condition():
    grid = _lam_grid()
    claimed = st.zeros_zero_stable_region(grid)
    assert claimed.dtype == bool and claimed.shape == grid.shape
    computed = np.array([st.is_zero_stable(st.zeros_coefficients(lam)[0]) for lam in grid])
    mismatches = grid[claimed != computed]
    assert mismatches.size == 0, f"region claim and root condition disagree at λ = {mismatches}"
    assert claimed.any() and not claimed.all()


def test_zeros_region_boundary_points():
    assert st.zeros_zero_stable_region(1 / 3) is False
    assert st.zeros_zero_stable_region(0.34) is True
    assert st.zeros_zero_stable_region(-1.0) is False  # paper's open interval
    assert st.zeros_zero_stable_region(0.0) is False
    # λ = 1/3: ρ = (z − 1)³, not zero-stable
    assert not st.is_zero_stable(st.zeros_coefficients(1 / 3)[0])
    # λ = −1: leapfrog y_{n+1} = y_{n−1} + 2h f(y_n), ρ = z(z − 1)(z + 1): the root
    # condition holds (marginally) although the paper's open interval excludes it
    alphas, beta = st.zeros_coefficients(-1.0)
    assert alphas == pytest.approx((0.0, 1.0, 0.0)) and beta == pytest.approx(2.0)
    assert st.is_zero_stable(alphas)


def test_lm_region():
    ks = np.linspace(-2.0, 2.0, 401)
    claimed = st.lm_zero_stable_region(ks)
    np.testing.assert_array_equal(claimed, (ks > -1.0) & (ks <= 1.0))
    for k in ks:
        assert st.is_zero_stable(st.lm_coefficients(k)[0]) is bool(st.lm_zero_stable_region(k)), k
    assert st.lm_zero_stable_region(1.0) is True     # roots {1, −1}, simple
    assert st.lm_zero_stable_region(-1.0) is False   # double root at 1
    assert st.lm_zero_stable_region(-0.05) is True   # LM-ResNet init range U[−0.1, 0]


# ----------------------------------------------------------------------------- Prop. 1


def test_euler_stability_statistic():
    assert st.euler_stability_statistic([-1.0, -0.5], 1.0) == pytest.approx(0.5)
    assert st.euler_stability_statistic([-3.0], 1.0) == pytest.approx(2.0)
    assert st.euler_stability_statistic(np.array([1j, -1j]), 0.1) == pytest.approx(math.sqrt(1.01))
    # shrinkage-like Jacobian −KᵀK: eigenvalues ≤ 0, stable iff h ≤ 2 / λ_max(KᵀK)
    rng = np.random.default_rng(0)
    k = rng.normal(size=(4, 4))
    eig = np.linalg.eigvals(-k.T @ k)
    h_max = 2.0 / np.max(np.abs(eig))
    assert st.euler_stability_statistic(eig, 0.99 * h_max) <= 1.0
    assert st.euler_stability_statistic(eig, 1.01 * h_max) > 1.0


# ----------------------------------------------------------------------------- projections


def test_clip_lm_k():
    from keras import ops

    k = np.array([-5.0, -1.0, -0.9995, -0.5, 0.0, 1.0, 3.0])
    out = ops.convert_to_numpy(st.clip_lm_k(k, margin=1e-3))
    np.testing.assert_allclose(out, [-0.999, -0.999, -0.999, -0.5, 0.0, 1.0, 1.0])
    assert all(st.lm_zero_stable_region(out))
    assert float(ops.convert_to_numpy(st.clip_lm_k(-2.0))) == pytest.approx(-0.999)


def test_clips_accept_float32_tensors():
    from keras import ops

    lam = ops.convert_to_tensor(np.array([-2.0, -0.5, 0.1, 0.5], dtype="float32"))
    out = st.clip_zeros_lam(lam)
    assert ops.convert_to_numpy(out).dtype == np.float32
    np.testing.assert_allclose(ops.convert_to_numpy(out), [-2.0, -1.001, 1 / 3 + 1e-3, 0.5], rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(st.clip_lm_k(lam)), [-0.999, -0.5, 0.1, 0.5], rtol=1e-6)


def test_clip_zeros_lam():
    from keras import ops

    margin = 1e-3
    low, high = -1.0 - margin, 1 / 3 + margin
    lam = np.array([-10.0, low, -1.0, -0.5, -1 / 3, 0.0, 0.2, 1 / 3, high, 5.0])
    out = ops.convert_to_numpy(st.clip_zeros_lam(lam, margin=margin))
    expected = [-10.0, low, low, low, high, high, high, high, high, 5.0]
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
    assert all(st.zeros_zero_stable_region(out))
    assert float(ops.convert_to_numpy(st.project_to_zero_stable(-3.0, "lm"))) == pytest.approx(-0.999)
    assert float(ops.convert_to_numpy(st.project_to_zero_stable(0.0, "zeros"))) == pytest.approx(high)
    with pytest.raises(ValueError, match="family"):
        st.project_to_zero_stable(0.9, "adams")
    with pytest.raises(ValueError, match="margin"):
        st.clip_zeros_lam(0.0, margin=-1.0)


# ----------------------------------------------------------------------------- convergence of the schemes


def field(y):
    return A * y


def integrate_multistep(alphas, beta, n_steps, t_end=1.0, exact=lambda t: math.exp(A * t), rate=A):
    """Run y_{n+1} = Σ α_i y_{n−i} + h β f(y_n) with exact starting values; final error."""
    h = t_end / n_steps
    d = len(alphas)
    history = tuple(exact((d - 1 - i) * h) for i in range(d))  # (y_{d−1}, ..., y_0)
    for _ in range(n_steps - d + 1):
        y_next = multistep(lambda y: rate * y, history, h, alphas, beta)
        history = (y_next,) + history[:-1]
    return abs(history[0] - exact(t_end))


@pytest.mark.parametrize("lam", [1.0, -1.8, 3.0])
def test_zeros_scheme_converges_with_global_order_two(lam):
    """ZeroS has local truncation error O(h³) but global error O(h²).

    C_0 = C_1 = C_2 = 0 and C_3 = (3λ + 1)/(6λ) ≠ 0 for zero-stable λ, so one step from
    exact history errs by C_3 h³ y''' (ratio 8 when h halves) while N = T/h such errors
    accumulate to O(h²) (ratio 4). ZeroSNet's "third order" is the former.
    """
    alphas, beta = st.zeros_coefficients(lam)
    errors = [integrate_multistep(alphas, beta, n) for n in (64, 128, 256)]
    assert errors[0] / errors[1] == pytest.approx(4.0, abs=0.15)
    assert errors[1] / errors[2] == pytest.approx(4.0, abs=0.1)

    def local_error(h, t=0.5):
        history = tuple(math.exp(A * (t - i * h)) for i in range(3))
        # L = y(t + h) - (scheme on exact history) = C_3 h^3 y'''(t) + O(h^4)
        return math.exp(A * (t + h)) - multistep(field, history, h, alphas, beta)

    assert local_error(1 / 64) / local_error(1 / 128) == pytest.approx(8.0, abs=0.1)
    c3 = (3 * lam + 1) / (6 * lam)
    h = 1 / 256
    assert local_error(h) == pytest.approx(c3 * h**3 * A**3 * math.exp(A * 0.5), rel=0.02)


def test_lm_with_beta_one_converges_to_rescaled_ode():
    # ρ'(1) = 1 + k, σ(1) = 1: the scheme solves (1 + k) y' = A y, i.e. y = exp(A t / (1 + k))
    k = 0.5
    alphas, beta = st.lm_coefficients(k)
    rate = A / (1 + k)
    errors = [
        integrate_multistep(alphas, beta, n, exact=lambda t: math.exp(rate * t), rate=A)
        for n in (64, 128)
    ]
    assert errors[1] < 1e-2
    assert errors[0] / errors[1] == pytest.approx(2.0, abs=0.15)
    # and it does not converge to the unscaled solution exp(A t)
    assert integrate_multistep(alphas, beta, 128, rate=A) > 1e-2


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "bad, pattern",
    [
        ((), r"alphas"),
        ([], r"alphas"),
        ((1.0, float("nan")), r"alphas\[1\] = nan"),
        ((float("inf"),), r"alphas\[0\] = inf"),
        (np.ones((2, 2)), r"alphas.*shape \(2, 2\)"),
        (("a", 1.0), r"alphas"),
    ],
)
def test_bad_alphas(bad, pattern):
    for function in (st.characteristic_roots, st.is_zero_stable):
        with pytest.raises(ValueError, match=pattern):
            function(bad)
    with pytest.raises(ValueError, match=pattern):
        st.is_consistent(bad, 1.0)


@pytest.mark.parametrize("lam, pattern", [(0.0, "lam=0"), (float("nan"), "lam=nan"), (float("inf"), "lam=inf")])
def test_bad_lambda(lam, pattern):
    with pytest.raises(ValueError, match=pattern):
        st.zeros_coefficients(lam)


def test_other_bad_inputs():
    with pytest.raises(ValueError, match="beta"):
        st.is_consistent((1.0,), float("nan"))
    with pytest.raises(ValueError, match="tol"):
        st.is_zero_stable((1.0,), tol=-1.0)
    with pytest.raises(ValueError, match="h"):
        st.euler_stability_statistic([-1.0], 0.0)
    with pytest.raises(ValueError, match="eigenvalues"):
        st.euler_stability_statistic([], 0.1)
    with pytest.raises(ValueError, match="eigenvalues"):
        st.euler_stability_statistic([np.nan], 0.1)
    with pytest.raises(ValueError, match="k"):
        st.lm_coefficients(float("inf"))
    with pytest.raises(ValueError, match="lam"):
        st.zeros_zero_stable_region(float("nan"))
