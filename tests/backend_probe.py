"""Every block's numbers under one Keras backend, for ``test_backends.py`` to compare.

Run as ``KERAS_BACKEND=jax python tests/backend_probe.py OUT.npz``. For every registered
block, standalone and with 2 members: a depth-2 model whose weights are set from a
fixed numpy generator (not the backend's initialisers, which draw differently per
backend), its inference and training-mode outputs, then one SGD step
(``train_on_batch``); writes the outputs, the loss, every weight after the step
(moving statistics included) and the step's largest weight change to ``OUT.npz``.
"""

from __future__ import annotations

import sys

import numpy as np

BATCH, INPUTS, WIDTH, CLASSES, DEPTH = 8, 5, 4, 3, 2


def _weight_values(model, rng) -> list[np.ndarray]:
    """Fixed values for every weight: normal(0, 0.5), moving variances in [0.5, 1.5]."""
    values = []
    for weight in model.weights:
        shape = tuple(weight.shape)
        if "variance" in weight.path:
            values.append(rng.uniform(0.5, 1.5, size=shape).astype("float32"))
        else:
            values.append((0.5 * rng.normal(size=shape)).astype("float32"))
    return values


def probe() -> dict[str, np.ndarray]:
    import keras

    from resnet_stability.layers import BLOCKS
    from resnet_stability.models import build_model

    data = np.random.default_rng(0)
    x = data.normal(size=(BATCH, INPUTS)).astype("float32")
    y = data.integers(0, CLASSES, size=BATCH)
    numbers = {}
    for name in sorted(BLOCKS):
        for members in (None, 2):
            if members is None:
                model = build_model(INPUTS, CLASSES, block=name, depth=DEPTH, width=WIDTH, h=0.3, seed=1)
                inputs, targets = x, y
            else:
                model = build_model(INPUTS, CLASSES, block=name, depth=DEPTH, width=WIDTH, h=[0.2, 0.4],
                                    members=members, seed=[1, 2])
                inputs, targets = np.stack([x, x[::-1]], axis=1), np.stack([y, y[::-1]], axis=1)
            initial = _weight_values(model, np.random.default_rng(1))
            model.set_weights(initial)
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
            key = f"{name}/members={members}"
            numbers[f"{key}/inference"] = keras.ops.convert_to_numpy(model(inputs, training=False))
            numbers[f"{key}/training"] = keras.ops.convert_to_numpy(model(inputs, training=True))  # updates moving statistics
            numbers[f"{key}/loss"] = np.asarray(model.train_on_batch(inputs, targets), dtype="float32")
            after = [keras.ops.convert_to_numpy(weight) for weight in model.weights]
            for weight, value in zip(model.weights, after):
                numbers[f"{key}/{weight.path}"] = value
            numbers[f"{key}/largest_update"] = np.float32(max(np.max(np.abs(a - b)) for a, b in zip(after, initial)))
    return numbers


if __name__ == "__main__":
    np.savez(sys.argv[1], **probe())
