"""A few small cells trained by the sweep's engine under one Keras backend, and their
comparison with another backend's, for ``test_engines.py`` (and a GPU machine).

``KERAS_BACKEND=jax python tests/engine_probe.py OUT.npz`` trains every case of
:func:`cases` and writes their numbers; ``test_engines.py`` calls :func:`cell_numbers`
in its own (TensorFlow) process for the same cases and :func:`compare`s them.
``... OUT.npz --compare EXPECTED.npz`` compares in the probe's process instead (exit
status 1 on a difference): a machine without TensorFlow checks its JAX engine against
numbers TensorFlow computed elsewhere (``benchmarks/gpu/check_jax_gpu.sh``).

The cases train in float64 (see ``conftest.float64``: kernels of different backends
round differently; in float32 a ReLU near 0 can flip and Adam amplify it), all but
``overflow-float32``. The members' initial weights are drawn with numpy, so both
backends start from the same networks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # helpers, as pytest puts it there

SGD = dict(optimizer="sgd", lr=0.1)
#: name -> (block, make_spec overrides, train_cell keyword arguments and "floatx")
SPECIAL_CASES = {
    # Adam: TensorFlow's Keras turns its Python-float constants (β1, β2, ε) into float32
    # tensors before casting them to float64, JAX keeps them float64: the two backends'
    # Adam steps differ by ~1e-7 relative even in float64 (LOOSE_ATOL)
    "residual-adam": ("residual", {}, {}),
    # h = 1000 diverges in the first epochs (test_trainer's DIVERGE_SPEC); two shards: the
    # healthy and diverging members in different members models
    "diverging": ("residual", dict(h_values=(0.1, 1000.0), trials=2, depth=3, width=8, epochs=3, optimizer="sgd",
                                   lr=0.1), dict(shards=2)),
    # the first update overflows float32 weights while the loss before it is finite: the
    # members die in step 1 by the weights' check, their initial weights kept
    "overflow-float32": ("residual", dict(h_values=(10.0, 30.0), optimizer="sgd", lr=1e36), dict(floatx="float32")),
    "learned-h-penalty": ("residual", dict(learn_h=True, h_max=2.0, stability_penalty=0.1, **SGD), {}),
    "noise-levels": ("shrinkage", dict(noise_levels=(0.0, 0.3), noise_kinds=("gaussian",), levels=2, **SGD), {}),
}
WEIGHT_RTOL = 1e-9  # of a variable's largest magnitude (diverged weights reach ~1e62)
FLOAT32_WEIGHT_RTOL = 1e-5  # the same, for float32 weights
STAT_ATOL = 1e-7  # final loss and the Prop. 1 statistic
#: Cases whose backends differ beyond float64 rounding, and by how much (absolute): Adam
#: (above); batch norm, whose statistics Keras 3.15's ``ops.mean`` reduces at float32
#: precision under JAX even in float64 (a (76, 2, 5) mean off by 2.6e-8, ``jnp.mean`` by
#: 6e-17): both agree to ~1e-6 after 20 steps, where a step that lost Adam's state or a
#: statistic's update would be ~lr off.
LOOSE_ATOL = {"residual-adam": 2e-5, "batchnorm": 1e-6}


def cases() -> dict:
    """Every registered block with SGD (the generic battery), then :data:`SPECIAL_CASES`."""
    from resnet_stability.layers import BLOCKS

    return {**{block: (block, SGD, {}) for block in sorted(BLOCKS)}, **SPECIAL_CASES}


def cell_numbers(case) -> dict[str, np.ndarray]:
    """Train case ``case`` (a name of :func:`cases`) on the 95 Wine rows of
    ``conftest.wine95``; every trained weight and every per-member number of the result."""
    import keras
    from helpers import make_spec

    from resnet_stability.data import load_dataset, subsample_rows
    from resnet_stability.sweep.trainer import train_cell

    block, overrides, options = cases()[case]
    options = dict(options)
    floatx = options.pop("floatx", "float64")
    keras.config.set_floatx(floatx)
    keras.config.set_dtype_policy(floatx)
    dataset = subsample_rows(load_dataset("wine"), 95, seed=0)
    result = train_cell(dataset, make_spec(blocks=(block,), **overrides), block, **options)
    numbers = {f"weight/{v.path}": keras.ops.convert_to_numpy(v) for v in result.model.variables}
    for name in ("test_accuracy", "train_accuracy", "test_accuracy_last_finite", "final_loss", "diverged",
                 "diverged_epoch", "euler_max", "euler_stable_share", "level_accuracy"):
        value = getattr(result, name)
        if value is not None:
            numbers[name] = np.asarray(value)
    for (kind, level), value in result.noise_accuracy.items():
        numbers[f"noise/{kind}/{level}"] = value
    numbers["shards"] = np.asarray(len(result.shards))
    return numbers


def compare(case: str, mine: dict, expected: dict) -> None:
    """AssertionError unless ``mine`` (one case's :func:`cell_numbers`) matches
    ``expected``: weights to :data:`WEIGHT_RTOL` of their magnitude (float32 ones to
    :data:`FLOAT32_WEIGHT_RTOL`), the final loss and
    statistic to :data:`STAT_ATOL` (both :data:`LOOSE_ATOL` where the case has one),
    accuracies, divergence flags and epochs exactly. The shard count may differ."""
    assert sorted(mine) == sorted(expected), f"{case}: different numbers {sorted(set(mine) ^ set(expected))}"
    loose = LOOSE_ATOL.get(case)
    assert any(key.startswith("weight/") for key in expected)
    for key, value in expected.items():
        if key == "shards":
            continue
        if key.startswith("weight/"):
            rtol = FLOAT32_WEIGHT_RTOL if value.dtype == np.float32 else WEIGHT_RTOL
            atol = loose or rtol * max(1.0, float(np.max(np.abs(np.nan_to_num(value)))))
        elif key in ("final_loss", "euler_max", "euler_stable_share"):
            atol = loose or STAT_ATOL
        else:  # accuracies (counts / n), divergence flags and epochs: exactly
            np.testing.assert_array_equal(mine[key], value, err_msg=f"{case}: {key}")
            continue
        np.testing.assert_allclose(mine[key], value, rtol=0, atol=atol, err_msg=f"{case}: {key}")


def split(numbers: dict) -> dict[str, dict]:
    """``{"case/key": value}`` (the probe's file) -> ``{case: {key: value}}``."""
    per_case = {}
    for key, value in numbers.items():
        case, _, name = key.partition("/")
        per_case.setdefault(case, {})[name] = value
    return per_case


def main(argv: list[str]) -> int:
    import jax

    from resnet_stability.sweep.devices import select_device

    jax.config.update("jax_enable_x64", True)  # float64 arrays (else JAX keeps float32)
    # the device and its settings as the sweep chooses them (a GPU if there is one); on an
    # H200 without them, the float32 case's products ran in TF32 and differed from
    # TensorFlow's by 1 %, and a second run differed from the first
    print(f"device: {select_device('auto').description}", file=sys.stderr)
    numbers = {f"{case}/{key}": value for case in cases() for key, value in cell_numbers(case).items()}
    np.savez(argv[0], **numbers)
    if len(argv) == 3 and argv[1] == "--compare":
        with np.load(argv[2]) as stored:
            expected = split(dict(stored))
        failed = 0
        for case, mine in split(numbers).items():
            try:
                compare(case, mine, expected[case])
                print(f"{case}: same members")
            except AssertionError as error:
                failed += 1
                print(f"{case}: DIFFERENT\n{error}")
        print(f"{len(expected) - failed} of {len(expected)} cases the same")
        return 1 if failed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
