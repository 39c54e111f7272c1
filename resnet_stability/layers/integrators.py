"""Integrators: how a block advances the state y along a vector field f with step h.

Each one-step integrator is a plain function ``step(f, y, h) -> y_next`` where ``f(y)``
evaluates the block's vector field, registered by name in :data:`INTEGRATORS`
(``OneStepBlock(integrator=name)``). They know nothing about weights or members; ``h`` is
a scalar or a per-member column that broadcasts against y. A new one joins with one
decorator line, ``@register_integrator("name")``, and then works with every field:
``build_model(..., block="shrinkage", integrator="name")``.
Only ``"euler"`` (:data:`EULER`) has Prop. 1's stability disc |1 + hλ| <= 1, so the
Euler-stability penalty and statistic apply to blocks with that integrator only.

:func:`multistep` is the multistep blocks' scheme (it reads a history of states, not one
state) and is not registered.
"""

from __future__ import annotations

from resnet_stability.layers.registry import INTEGRATORS, register_integrator

#: The forward-Euler integrator's name: the only one whose stability region is Prop. 1's disc.
EULER = "euler"


def is_forward_euler(integrator: str) -> bool:
    """True for the forward-Euler integrator's name (Prop. 1 and the Euler penalty apply)."""
    return INTEGRATORS.get(integrator) is forward_euler


@register_integrator(EULER)
def forward_euler(f, y, h):
    """y_{n+1} = y_n + h f(y_n). Stable where max |1 + hλ(J_f)| <= 1 (Prop. 1)."""
    return y + h * f(y)


@register_integrator("rk4")
def runge_kutta4(f, y, h):
    """Classic RK4: y + h/6 (k1 + 2 k2 + 2 k3 + k4), all k from the same f (one f per block)."""
    k1 = f(y)
    k2 = f(y + 0.5 * h * k1)
    k3 = f(y + 0.5 * h * k2)
    k4 = f(y + h * k3)
    return y + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def multistep(f, history, h, alphas, beta):
    """One explicit multistep step (ZeroSNet Eq. 2): Σ_i α_i y_{n−i} + h β f(y_n).

    y_{n+1} = Σ_{i=0}^{d−1} α_i y_{n−i} + h β f(y_n),  history = (y_n, y_{n−1}, ..., y_{n−d+1}),
    alphas = (α_0, ..., α_{d−1}). Only the newest state is passed through f. Examples:
    alphas = (1,), beta = 1 is forward Euler; (1 − k, k), beta = 1 is LM-ResNet; the ZeroS
    coefficients come from :func:`resnet_stability.stability.zeros_coefficients`.
    Coefficients may be Python floats or (e.g. trainable) tensors; states may be numpy
    arrays or Keras tensors; h broadcasts against y as in the one-step integrators.
    """
    history = tuple(history)
    alphas = tuple(alphas)
    if not history or len(history) != len(alphas):
        raise ValueError(
            f"multistep needs one history state per coefficient: got {len(history)} states "
            f"and alphas of length {len(alphas)} (alphas={alphas!r})"
        )
    combination = alphas[0] * history[0]
    for alpha, state in zip(alphas[1:], history[1:]):
        combination = combination + alpha * state
    return combination + h * beta * f(history[0])
