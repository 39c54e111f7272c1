"""Stability analysis of the residual blocks: forward Euler (Prop. 1) and multistep schemes.

Everything here is plain numpy except the two projection helpers at the end, which use
``keras.ops`` (imported lazily) so that a Keras constraint can call them on variables.

Convention for multistep blocks
-------------------------------
A general explicit multistep block with ``d`` history states is (ZeroSNet, Chen, Jin &
Shang, Eq. 2)::

    y_{n+1} = Σ_{i=0}^{d-1} α_i y_{n-i} + h β f(y_n),      alphas = (α_0, ..., α_{d-1}).

Written as a linear multistep method ρ(E) y_{n-d+1} = h σ(E) f_{n-d+1} (E the shift
operator), its characteristic polynomials are

    ρ(z) = z^d − Σ_{i=0}^{d-1} α_i z^{d-1-i}        (first characteristic polynomial)
    σ(z) = β z^{d-1}                                 (second; only f(y_n) is used).

Facts checked here:

* **Root condition / zero stability** (Dahlquist): the block is zero-stable iff every root of
  ρ lies in the closed unit disc and every root on the unit circle is simple.
* **Consistency**: ρ(1) = 0 and ρ'(1) = σ(1), i.e. Σ α_i = 1 and
  d − Σ α_i (d−1−i) = β. Consistent + zero-stable <=> convergent (Dahlquist equivalence).
  A method with ρ(1) = 0 but ρ'(1) ≠ σ(1) converges to the solution of the *time-rescaled*
  ODE ρ'(1) y' = σ(1) f(y) instead.
* **Order** (:func:`error_constants`): with y(t_n − i h) expanded about t_n, the local
  truncation error L = y(t_{n+1}) − Σ α_i y(t_{n−i}) − h β y'(t_n) = Σ_q C_q h^q y^{(q)}(t_n),
  C_0 = 1 − Σ α_i, C_1 = 1 + Σ i α_i − β, C_q = (1 − Σ α_i (−i)^q) / q! for q >= 2.
  Classical order p means C_0 = ... = C_p = 0: local truncation error O(h^{p+1}), global
  error O(h^p) for a zero-stable method.

Schemes:

* Forward Euler (Zhang & Wynter Eq. 7 with h): alphas = (1,), beta = 1; ρ(z) = z − 1.
* LM-ResNet (Lu, Zhong, Li & Dong, "Beyond finite layer neural networks", LM-architecture):
  u_{n+1} = (1 − k) u_n + k u_{n−1} + h f(u_n), alphas = (1 − k, k), beta = 1;
  ρ(z) = z² − (1−k) z − k = (z − 1)(z + k).
* ZeroS (ZeroSNet Eq. 10, Thms 1–3): alphas = (3(1+λ)/(4λ), −1/λ, (1+λ)/(4λ)),
  beta = (3λ−1)/(2λ), λ ≠ 0.

References: Zhang & Wynter, "Smooth inter-layer propagation of stabilized neural networks
for classification", Prop. 1; Chen, Jin & Shang, "Zero stability well predicts performance
of convolutional neural networks" (ZeroSNet), Eq. 2, Eq. 10, Thms 1–3; Lu et al.,
LM-ResNet; Hairer, Nørsett & Wanner, *Solving ODEs I*, Sec. III.2–III.4 (root condition,
order conditions, Dahlquist's equivalence theorem).
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

__all__ = [
    "ZeroStabilityWarning",
    "characteristic_roots",
    "clip_lm_k",
    "clip_zeros_lam",
    "error_constants",
    "euler_stability_statistic",
    "is_consistent",
    "is_zero_stable",
    "lm_coefficients",
    "lm_zero_stable_region",
    "order_of_accuracy",
    "project_to_zero_stable",
    "warn_if_not_zero_stable",
    "zeros_coefficients",
    "zeros_zero_stable_region",
]

#: Test inputs per network at which a sweep takes the Prop. 1 statistic (``euler_max``):
#: in memory a seeded sample of each member's own test rows, streamed the first rows of
#: the first test window (:mod:`resnet_stability.sweep.trainer`).
STABILITY_SAMPLE = 64

#: Default distance below which two computed roots are treated as one multiple root.
#: A double root of a polynomial with O(1) coefficients is computed (by np.roots, i.e. the
#: companion-matrix eigenvalues) as two roots about sqrt(machine eps) ~ 1.5e-8 apart; a
#: root of multiplicity m splits by ~eps^(1/m). 1e-6 separates a split double root from
#: genuinely distinct roots with a wide margin on both sides.
CLUSTER_TOL = 1e-6


class ZeroStabilityWarning(UserWarning):
    """Multistep coefficients fail the root condition: the block is not zero-stable."""


# ----------------------------------------------------------------------------- validation


def _show(value) -> str:
    """A one-line repr for error messages (numpy arrays as nested lists)."""
    if isinstance(value, np.ndarray):
        return repr(value.tolist())
    return repr(value)


def _check_alphas(alphas) -> np.ndarray:
    try:
        array = np.asarray(alphas, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"alphas must be a non-empty 1-D sequence of finite real numbers; got alphas={_show(alphas)}"
        ) from error
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            "alphas must be a non-empty 1-D sequence of finite real numbers "
            f"(α_0, ..., α_(d-1)); got alphas={_show(alphas)} with shape {array.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(
            "alphas must be finite real numbers; got alphas="
            f"{_show(alphas)} (alphas[{bad[0]}] = {float(array[bad[0]])})"
        )
    return array


def _check_real(name: str, value, *, allow_array: bool = False) -> float | np.ndarray:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a finite real number, got {name}={value!r}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a finite real number, got {name}={value!r}") from error
    if array.ndim and not allow_array:
        raise ValueError(f"{name} must be a real scalar, got {name}={value!r} with shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {name}={value!r}")
    return float(array) if array.ndim == 0 else array


def _check_tol(name: str, value) -> float:
    value = _check_real(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {name}={value!r}")
    return value


# ----------------------------------------------------------------------------- root condition


def characteristic_roots(alphas) -> np.ndarray:
    """The d complex roots of ρ(z) = z^d − Σ_{i=0}^{d-1} α_i z^{d-1-i}.

    ρ is the first characteristic polynomial of y_{n+1} = Σ α_i y_{n−i} + h β f(y_n)
    (ZeroSNet Eq. 2): the roots are the growth factors of the scheme applied to y' = 0.

    Args:
        alphas: (α_0, ..., α_{d−1}), a non-empty 1-D sequence of finite reals.

    Returns:
        complex array of shape (d,), roots counted with multiplicity (zero roots included
        when trailing α's vanish), sorted by decreasing modulus.

    Raises:
        ValueError: alphas empty, not 1-D, or with a non-finite entry (named in the message).
    """
    alphas = _check_alphas(alphas)
    roots = np.roots(np.concatenate(([1.0], -alphas))).astype(np.complex128)
    return roots[np.argsort(-np.abs(roots), kind="stable")]


def _clusters(roots: np.ndarray, radius: float) -> list[np.ndarray]:
    """Single-linkage groups of roots whose chains of pairwise distances are <= radius."""
    parent = list(range(len(roots)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(roots)):
        for j in range(i + 1, len(roots)):
            if abs(roots[i] - roots[j]) <= radius:
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(roots)):
        groups.setdefault(find(i), []).append(i)
    return [roots[idx] for idx in groups.values()]


def is_zero_stable(alphas, tol: float = 1e-9, *, cluster_tol: float = CLUSTER_TOL) -> bool:
    """The root condition for ρ(z) = z^d − Σ α_i z^{d−1−i} (Dahlquist; ZeroSNet Thm 1).

    Zero stable <=> every root z of ρ has |z| <= 1, and every root with |z| = 1 is simple.

    Numerically: the computed roots are first grouped into clusters, two roots belonging to
    the same cluster when they are within ``cluster_tol`` (default 1e-6) of each other
    (single linkage). A cluster of m roots stands for one root of multiplicity m at the
    cluster mean (the mean of a split multiple root is accurate to ~eps, far better than
    the individual roots, which split by ~eps^(1/m): ~1.5e-8 for a double root). Then

    * any cluster with |mean| > 1 + tol fails the condition;
    * any cluster with | |mean| − 1 | <= tol ("on the unit circle") and m >= 2 fails.

    Distinct roots on the unit circle closer than ``cluster_tol`` are therefore reported as
    a multiple root (conservative: such a scheme is zero-stable only in exact arithmetic).

    Examples: Euler (1,) (root 1, simple) -> True; (2, −1) (double root 1) -> False;
    (0, 1) (roots ±1, simple) -> True; (3, −2) (roots 1, 2) -> False.

    Args:
        alphas: (α_0, ..., α_{d−1}).
        tol: tolerance on the modulus, >= 0.
        cluster_tol: distance below which computed roots count as one multiple root, >= 0.
    """
    tol = _check_tol("tol", tol)
    cluster_tol = _check_tol("cluster_tol", cluster_tol)
    roots = characteristic_roots(alphas)
    for cluster in _clusters(roots, cluster_tol):
        modulus = abs(cluster.mean())
        if modulus > 1.0 + tol:
            return False
        if abs(modulus - 1.0) <= tol and len(cluster) > 1:
            return False
    return True


def warn_if_not_zero_stable(alphas, *, name: str = "multistep block", tol: float = 1e-9,
                            stacklevel: int = 2) -> bool:
    """Issue a :class:`ZeroStabilityWarning` when ``alphas`` fail the root condition.

    For blocks to call on construction (DESIGN.md: "a multistep block with coefficients that
    fail it should warn"). Returns :func:`is_zero_stable` of ``alphas``.
    """
    stable = is_zero_stable(alphas, tol)
    if not stable:
        moduli = ", ".join(f"{abs(r):.6g}" for r in characteristic_roots(alphas))
        warnings.warn(
            f"{name}: alphas={tuple(float(a) for a in _check_alphas(alphas))} fail the root "
            f"condition (root moduli {moduli}); the block is not zero-stable",
            ZeroStabilityWarning,
            stacklevel=stacklevel,
        )
    return stable


# ----------------------------------------------------------------------------- consistency, order


def is_consistent(alphas, beta, tol: float = 1e-9) -> bool:
    """Consistency of y_{n+1} = Σ α_i y_{n−i} + h β f(y_n): ρ(1) = 0 and ρ'(1) = σ(1).

    With ρ(z) = z^d − Σ α_i z^{d−1−i} and, for this explicit one-evaluation scheme,
    σ(z) = β z^{d−1}:

        ρ(1) = 1 − Σ α_i = 0      and      ρ'(1) = d − Σ α_i (d−1−i) = β = σ(1).

    Both are checked to within ``tol`` scaled by the size of the terms
    (tol · max(1, Σ|α_i|) and tol · max(1, Σ|α_i|(d−1−i), |β|)).

    Examples: Euler (alphas=(1,), beta=1); LM-ResNet (1−k, k) with beta = 1 + k (with the
    published beta = 1 it is consistent only at k = 0; otherwise it is consistent with the
    rescaled ODE (1+k) y' = f(y)); ZeroS for every λ ≠ 0.
    """
    alphas = _check_alphas(alphas)
    beta = _check_real("beta", beta)
    tol = _check_tol("tol", tol)
    d = alphas.size
    weights = np.arange(d - 1, -1, -1, dtype=np.float64)  # d-1-i
    rho_1 = 1.0 - alphas.sum()
    rho_prime_1 = d - np.dot(alphas, weights)
    scale0 = max(1.0, np.abs(alphas).sum())
    scale1 = max(1.0, np.dot(np.abs(alphas), weights), abs(beta))
    return bool(abs(rho_1) <= tol * scale0 and abs(rho_prime_1 - beta) <= tol * scale1)


def error_constants(alphas, beta, count: int = 5) -> np.ndarray:
    """C_0, ..., C_{count−1} of the local truncation error of y_{n+1} = Σ α_i y_{n−i} + h β f(y_n).

    L(h) = y(t_n + h) − Σ α_i y(t_n − i h) − h β y'(t_n) = Σ_q C_q h^q y^{(q)}(t_n), with

        C_0 = 1 − Σ α_i,   C_1 = 1 + Σ i α_i − β,   C_q = (1 − Σ α_i (−i)^q) / q!  (q >= 2).

    C_0 = C_1 = 0 is consistency (:func:`is_consistent`). For ZeroS,
    C_0 = C_1 = C_2 = 0 and C_3 = (3λ + 1)/(6λ).
    """
    alphas = _check_alphas(alphas)
    beta = _check_real("beta", beta)
    if not isinstance(count, numbers.Integral) or isinstance(count, bool) or count < 1:
        raise ValueError(f"count must be an integer >= 1, got count={count!r}")
    lags = -np.arange(alphas.size, dtype=np.float64)  # y_{n-i} sits at t_n + (-i) h
    constants = np.empty(count)
    for q in range(count):
        constants[q] = (1.0 - np.dot(alphas, lags**q)) / math.factorial(q)
    if count > 1:
        constants[1] -= beta
    return constants


def order_of_accuracy(alphas, beta, tol: float = 1e-9, max_order: int = 10) -> int:
    """Classical order p: the largest p with C_0 = ... = C_p = 0 (each |C_q| <= tol).

    Returns −1 when C_0 ≠ 0 and 0 when consistent only to C_0 = 0 (so p >= 1 <=> consistent).
    Local truncation error O(h^{p+1}); global error O(h^p) if zero-stable. Capped at
    ``max_order``.
    """
    tol = _check_tol("tol", tol)
    constants = error_constants(alphas, beta, count=max_order + 1)
    scale = max(1.0, float(np.abs(_check_alphas(alphas)).sum()), abs(float(beta)))
    order = -1
    for c in constants:
        if abs(c) > tol * scale:
            break
        order += 1
    return order


# ----------------------------------------------------------------------------- schemes


def zeros_coefficients(lam) -> tuple[tuple[float, float, float], float]:
    """ZeroS scheme (ZeroSNet Eq. 10): y_{n+1} = α_0 y_n + α_1 y_{n−1} + α_2 y_{n−2} + h β f(y_n).

        α = (3(1+λ)/(4λ), −1/λ, (1+λ)/(4λ)),     β = (3λ − 1)/(2λ),     λ ≠ 0.

    Every λ gives a consistent scheme (Σα = 1, ρ'(1) = β), and C_2 = 0 too: the local
    truncation error is O(h³) with leading term (3λ+1)/(6λ) h³ y'''. This is the sense in
    which ZeroSNet calls the scheme third order; as a linear multistep method its classical
    order is 2 (global error O(h²)) for every λ ≠ −1/3, and λ = −1/3 (classical order 3)
    is not zero-stable. λ = −9/5 gives α = (1/3, 5/9, 1/9), β = 16/9, where the two
    parasitic roots coincide at −1/3 (the smallest possible largest parasitic modulus).

    Returns:
        (alphas, beta) as Python floats.

    Raises:
        ValueError: λ = 0 or λ not a finite real number.
    """
    lam = _check_real("lam", lam)
    if lam == 0.0:
        raise ValueError("lam must be nonzero (the ZeroS coefficients divide by λ), got lam=0")
    return zeros_formula(lam)


def zeros_formula(lam):
    """The ZeroS coefficients of :func:`zeros_coefficients` without validation, so ``lam``
    may be a float, an array or a tensor (a trainable λ inside a layer)."""
    alphas = (3.0 * (1.0 + lam) / (4.0 * lam), -1.0 / lam, (1.0 + lam) / (4.0 * lam))
    beta = (3.0 * lam - 1.0) / (2.0 * lam)
    return alphas, beta


def zeros_zero_stable_region(lam):
    """ZeroSNet's closed-form zero-stability region: λ ∈ (−∞, −1) ∪ (1/3, ∞) (Thms 2–3).

    Derivation: ρ(z) = z³ − α_0 z² − α_1 z − α_2 = (z − 1)(z² + p z + q) with
    p = (λ − 3)/(4λ), q = (1 + λ)/(4λ); the quadratic's roots lie in the open unit disc iff
    |q| < 1 and |p| < 1 + q (Schur–Cohn), which gives exactly λ < −1 or λ > 1/3.

    Boundary points: at λ = 1/3, ρ = (z − 1)³ (not zero-stable). At λ = −1 the scheme is the
    leapfrog rule y_{n+1} = y_{n−1} + 2h f(y_n), ρ = z(z − 1)(z + 1): both unit roots are
    simple, so the root condition *does* hold there (marginally; the parasitic root −1 never
    decays). This function follows the paper's open interval and returns False at −1;
    :func:`is_zero_stable` returns True there.

    Args:
        lam: a finite real number or array of them (λ = 0 is outside the region).

    Returns:
        bool for a scalar, a bool array for an array.
    """
    lam = _check_real("lam", lam, allow_array=True)
    inside = (np.asarray(lam) < -1.0) | (np.asarray(lam) > 1.0 / 3.0)
    return bool(inside) if np.ndim(inside) == 0 else inside


def lm_coefficients(k) -> tuple[tuple[float, float], float]:
    """LM-ResNet (Lu et al.): u_{n+1} = (1 − k) u_n + k u_{n−1} + h f(u_n).

    Returns (alphas, beta) = ((1 − k, k), 1.0). ρ(z) = (z − 1)(z + k); ρ'(1) = 1 + k, so
    with β = 1 the scheme is consistent only for k = 0 and otherwise approximates the
    rescaled ODE (1 + k) u' = f(u).
    """
    k = _check_real("k", k)
    return (1.0 - k, k), 1.0


def lm_zero_stable_region(k):
    """Root condition for LM-ResNet: zero-stable iff k ∈ (−1, 1].

    ρ(z) = z² − (1−k) z − k = (z − 1)(z + k) has roots 1 and −k. It needs |−k| <= 1, and
    when |k| = 1 the unit roots must be simple: k = 1 gives roots {1, −1} (simple, allowed);
    k = −1 gives a double root at 1 (excluded).

    Args:
        k: a finite real number or array of them.

    Returns:
        bool for a scalar, a bool array for an array.
    """
    k = np.asarray(_check_real("k", k, allow_array=True))
    inside = (k > -1.0) & (k <= 1.0)
    return bool(inside) if np.ndim(inside) == 0 else inside


# ----------------------------------------------------------------------------- Prop. 1


def euler_stability_statistic(eigenvalues, h) -> float:
    """max_j |1 + h λ_j| over the given (complex) eigenvalues (Zhang & Wynter, Prop. 1).

    For y_{i+1} = y_i + h f_i(y_i) with J_i the Jacobian of f_i at y_i, the perturbation
    growth factor of one step is governed by the eigenvalues of I + h J_i; forward Euler is
    stable where this statistic is <= 1, i.e. every h λ(J_i) lies in the disc |1 + z| <= 1.

    Args:
        eigenvalues: non-empty array-like of finite (complex) numbers, any shape.
        h: step size, a finite real number > 0.
    """
    try:
        values = np.asarray(eigenvalues, dtype=np.complex128).ravel()
    except (TypeError, ValueError) as error:
        raise ValueError(f"eigenvalues must be finite numbers, got eigenvalues={eigenvalues!r}") from error
    if values.size == 0:
        raise ValueError(f"eigenvalues must be non-empty, got eigenvalues={eigenvalues!r}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"eigenvalues must be finite, got eigenvalues={eigenvalues!r}")
    h = _check_real("h", h)
    if h <= 0:
        raise ValueError(f"h must be > 0, got h={h!r}")
    return float(np.max(np.abs(1.0 + h * values)))


# ----------------------------------------------------------------------------- projections


def _check_margin(margin) -> float:
    margin = _check_tol("margin", margin)
    return margin


def clip_lm_k(k, margin: float = 1e-3):
    """Project an LM-ResNet coefficient k into [−1 + margin, 1] (its zero-stable region (−1, 1]).

    Uses ``keras.ops.clip``, so it accepts numpy arrays, Python floats and Keras/backend
    tensors (e.g. inside a ``keras.constraints.Constraint``); returns a backend tensor.

    Args:
        k: a real scalar, array or tensor.
        margin: distance kept from the excluded end point −1; 0 <= margin < 2.
    """
    from keras import ops

    margin = _check_margin(margin)
    if margin >= 2.0:
        raise ValueError(f"margin must be < 2 so that [-1 + margin, 1] is non-empty, got margin={margin!r}")
    k = ops.convert_to_tensor(k)
    if not _is_float_dtype(k.dtype):
        k = ops.cast(k, "float32")
    return ops.clip(k, -1.0 + margin, 1.0)


def clip_zeros_lam(lam, margin: float = 1e-3):
    """Nearest point of (−∞, −1 − margin] ∪ [1/3 + margin, ∞) to λ (ZeroS's stable region).

    Values already in the set are returned unchanged; values in the gap
    (−1 − margin, 1/3 + margin) go to the nearer end point, ties (λ exactly at the gap's
    midpoint −1/3) to the larger one, 1/3 + margin. λ = 0 (invalid for ZeroS) is mapped to
    1/3 + margin. NaN propagates.

    Uses ``keras.ops.where`` so it accepts numpy arrays, Python floats and Keras/backend
    tensors; returns a backend tensor.

    Args:
        lam: a real scalar, array or tensor.
        margin: distance kept from the boundary points −1 and 1/3; >= 0.
    """
    from keras import ops

    margin = _check_margin(margin)
    lam = ops.convert_to_tensor(lam)
    if not _is_float_dtype(lam.dtype):
        lam = ops.cast(lam, "float32")
    low = -1.0 - margin
    high = 1.0 / 3.0 + margin
    middle = 0.5 * (low + high)
    in_gap = ops.logical_and(ops.greater(lam, low), ops.less(lam, high))
    low_t = ops.cast(ops.full_like(lam, low), lam.dtype)
    high_t = ops.cast(ops.full_like(lam, high), lam.dtype)
    nearest = ops.where(ops.less(lam, middle), low_t, high_t)
    return ops.where(in_gap, nearest, lam)


def project_to_zero_stable(value, family: str, margin: float = 1e-3):
    """Dispatch: ``family="lm"`` -> :func:`clip_lm_k`, ``family="zeros"`` -> :func:`clip_zeros_lam`."""
    projections = {"lm": clip_lm_k, "zeros": clip_zeros_lam}
    if family not in projections:
        raise ValueError(f"family must be one of {sorted(projections)}, got family={family!r}")
    return projections[family](value, margin=margin)


def _is_float_dtype(dtype) -> bool:
    name = getattr(dtype, "name", str(dtype))
    return "float" in str(name)
