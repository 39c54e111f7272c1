"""Prolongation (resnet_stability.multilevel): depth D, step h -> depth 2D, step h/2.

Multi-level training in a sweep (``--levels``) is in ``test_trainer.py``,
``test_experiment.py`` and ``test_cli.py``."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from resnet_stability.layers.blocks import OneStepBlock
from resnet_stability.models import build_model
from resnet_stability.multilevel import model_blocks, prolong

ONE_STEP = ["batchnorm", "residual", "rk4", "shrinkage"]


def final_state(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """The state after the last block (before the head), batch first."""
    last = model_blocks(model)[-1]
    members = getattr(last, "members", None)
    out = keras.Model(model.inputs[0], last.output)(x, training=False)
    out = keras.ops.convert_to_numpy(out)
    return out if members is None else np.swapaxes(out, 0, 1)


def inputs(rng, members, n=16, dim=4):
    shape = (n, dim) if members is None else (n, members, dim)
    return rng.normal(size=shape)


@pytest.mark.parametrize("block", ONE_STEP)
def test_children_hold_the_parent_weights(block, members, rng, perturb_weights):
    """Blocks 2i and 2i+1 hold exactly block i's weights (BN moving statistics too),
    with h halved; stem and head are copied."""
    h = 0.2 if members is None else [0.1, 0.2, 0.4]
    parent = perturb_weights(build_model(4, 3, block=block, depth=3, width=5, h=h, members=members, seed=7))
    child = prolong(parent)
    assert len(model_blocks(child)) == 6 and child.name == f"{block}_depth6"
    for i, block_layer in enumerate(model_blocks(parent)):
        for c in (2 * i, 2 * i + 1):
            new = child.get_layer(f"block_{c}")
            assert isinstance(new, OneStepBlock) and new is not block_layer
            np.testing.assert_array_equal(new.step_size, np.asarray(h) / 2)
            for a, b in zip(new.weights, block_layer.weights, strict=True):
                np.testing.assert_array_equal(a.numpy(), b.numpy())
    for name in ("stem", "head"):
        for a, b in zip(child.get_layer(name).weights, parent.get_layer(name).weights, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    x = inputs(rng, members)
    assert child(x).shape == parent(x).shape


def test_learned_h_halves(members):
    """learn_h: the child's θ' = logit(h/(2 h_max)), so both children start at h/2."""
    h = 0.3 if members is None else [0.1, 0.3, 0.8]
    parent = build_model(4, 3, depth=2, width=5, h=h, members=members, seed=3, learn_h=True, h_max=1.0)
    parent.get_layer("block_1").h_logit.assign(parent.get_layer("block_1").h_logit.numpy() - 0.5)  # "trained"
    child = prolong(parent)
    for i, block in enumerate(model_blocks(parent)):
        for c in (2 * i, 2 * i + 1):
            new = child.get_layer(f"block_{c}")
            assert new.learn_h and new.h_max == block.h_max
            np.testing.assert_allclose(new.step_size, block.step_size / 2, rtol=1e-6)


def test_two_half_steps_match_numpy(float64, rng):
    """Parent residual block i and its two children against numpy:
    z = y + (h/2) f(y), y' = z + (h/2) f(z), f(y) = K2ᵀ... in Keras's row layout:
    f(y) = tanh(y K1 + b1) K2 + b2."""
    h = 0.3
    parent = build_model(3, 2, depth=1, h=h, seed=5, activation="tanh")
    for variable in parent.get_layer("block_0").weights:
        variable.assign(rng.normal(size=variable.shape))
    k1, b1, k2, b2 = (w.numpy() for w in parent.get_layer("block_0").weights)

    def f(y):
        return np.tanh(y @ k1 + b1) @ k2 + b2

    y = rng.normal(size=(5, 3))
    z = y + h / 2 * f(y)
    expected = z + h / 2 * f(z)
    child = prolong(parent)
    np.testing.assert_allclose(final_state(child, y), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(final_state(parent, y), y + h * f(y), rtol=1e-12, atol=1e-12)


def prolongation_gap(model, x) -> float:
    """max |state after the last block| difference between ``model`` and ``prolong(model)``."""
    return float(np.max(np.abs(final_state(prolong(model), x) - final_state(model, x))))


def test_gap_shrinks_quadratically_at_fixed_depth(float64, rng):
    """Forward Euler, fixed D = 4, h = 0.2, 0.1, 0.05 (same weights: same seed).

    One parent step y + h f(y) against two half steps:
        z = y + (h/2) f(y),  z + (h/2) f(z) = y + h f(y) + (h/2)(f(z) − f(y))
    and f(z) − f(y) = J f(y)·(h/2) f(y) + O(h²), so one block's gap is
    (h²/4) J f f + O(h³). D blocks add D such gaps, each carried through the
    remaining blocks by maps I + h J = I + O(h): the output gap is
    ≈ D (h²/4)·|J f f| = O(h²) at fixed D. Halving h divides it by ≈ 4; smooth σ (tanh)
    so J exists everywhere; asserted ratio in [3, 5]."""
    x = inputs(rng, None)
    gaps = [
        prolongation_gap(build_model(4, 3, depth=4, h=h, seed=11, activation="tanh"), x) for h in (0.2, 0.1, 0.05)
    ]
    ratios = np.array(gaps[:-1]) / np.array(gaps[1:])
    assert np.all((ratios > 3) & (ratios < 5)), (gaps, ratios)


def test_gap_shrinks_linearly_at_fixed_time(float64, rng):
    """Forward Euler on ONE ODE over fixed T = D·h = 0.8: the base network (D = 4,
    h = 0.2) and its prolongations (D = 8, 16 at h = 0.1, 0.05) all integrate
    y' = f(y, θ(t)) with the same piecewise-constant θ(t). prolong(model_k) −
    model_k is the difference of two Euler solutions of that ODE with steps h_k and
    h_k/2: global errors C·h_k + O(h_k²) and C·h_k/2 + O(h_k²), so the gap is
    ≈ C·h_k/2 = O(h): it halves with h (T/h blocks, each with a local gap O(h²)).
    Asserted ratio in [1.6, 2.4]."""
    x = inputs(rng, None)
    model = build_model(4, 3, depth=4, h=0.2, seed=11, activation="tanh")
    gaps = []
    for _ in range(3):
        gaps.append(prolongation_gap(model, x))
        model = prolong(model)
    ratios = np.array(gaps[:-1]) / np.array(gaps[1:])
    assert np.all((ratios > 1.6) & (ratios < 2.4)), (gaps, ratios)


def test_members_prolong_like_standalone(float64, rng):
    """Member m of the prolonged members model = the prolonged standalone member m."""
    seeds, h = [1, 2, 3], [0.1, 0.2, 0.3]
    together = prolong(build_model(4, 3, depth=2, width=5, h=h, members=3, seed=seeds))
    x = inputs(rng, 3)
    out = together(x).numpy()
    for m in range(3):
        alone = prolong(build_model(4, 3, depth=2, width=5, h=h[m], seed=seeds[m]))
        np.testing.assert_allclose(out[:, m], alone(x[:, m]).numpy(), rtol=1e-10, atol=1e-12)


def test_children_keep_the_field_and_integrator_names(rng, perturb_weights):
    """A block chosen by field and integrator names (shrinkage stepped with RK4) is rebuilt
    from its config as itself: same class and names, h/2, the parent's weights; so the
    child's two RK4 half steps approximate the parent's RK4 step (O(h⁵) per block)."""
    parent = perturb_weights(build_model(4, 3, block="shrinkage", depth=2, width=5, h=0.2, seed=7, integrator="rk4"))
    child = prolong(parent)
    for new in model_blocks(child):
        assert type(new).__name__ == "Shrinkage" and (new.field_name, new.integrator_name) == ("shrinkage", "rk4")
        assert new.get_config()["h"] == 0.1
    for i, old in enumerate(model_blocks(parent)):
        for a, b in zip(child.get_layer(f"block_{2 * i}").weights, old.weights, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    x = inputs(rng, None)
    assert np.max(np.abs(final_state(child, x) - final_state(parent, x))) < 1e-3


@pytest.mark.parametrize("block", ["lm", "zeros"])
def test_multistep_refused(block):
    with pytest.raises(ValueError, match="multistep blocks"):
        prolong(build_model(4, 3, block=block, depth=3))
