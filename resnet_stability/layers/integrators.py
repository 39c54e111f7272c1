"""Integrators: how a block advances the state y along a vector field f with step h.

Each integrator is a plain function ``step(f, y, h) -> y_next`` where ``f(y)`` evaluates
the block's vector field. They know nothing about weights or members; ``h`` is a
scalar or a per-member column that broadcasts against y.
"""

from __future__ import annotations


def forward_euler(f, y, h):
    """y_{n+1} = y_n + h f(y_n). Stable where max |1 + hλ(J_f)| <= 1 (Prop. 1)."""
    return y + h * f(y)


def runge_kutta4(f, y, h):
    """Classic RK4: y + h/6 (k1 + 2 k2 + 2 k3 + k4), all k from the same f (one f per block)."""
    k1 = f(y)
    k2 = f(y + 0.5 * h * k1)
    k3 = f(y + 0.5 * h * k2)
    k4 = f(y + h * k3)
    return y + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
