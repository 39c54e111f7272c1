"""The members training step (``resnet_stability.sweep.train_step``): packing, constraints,
sharding, divergence masking, and Keras's cross-entropy on a members model.

Expected values come from plain Keras: standalone models trained with
``optimizer.apply`` per variable (which applies each variable's constraint), in float64
so that members and standalone networks agree to 1e-9.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from resnet_stability.models import build_model
from resnet_stability.sweep.train_step import MembersTrainStep, Packing, per_member_loss

ATOL = 1e-9


def test_packing_round_trip_keeps_every_member_row_together():
    variables = [tf.Variable(np.arange(3 * 2 * 2, dtype="float32").reshape(3, 2, 2)),
                 tf.Variable(100 + np.arange(3, dtype="float32").reshape(3, 1)),
                 tf.Variable(200 + np.arange(9, dtype="float32").reshape(3, 3))]
    packing = Packing(variables, members=3)
    packed = packing.pack([v.value() for v in variables]).numpy()
    assert packed.shape == (3, 4 + 1 + 3) and packing.size == 8
    # row m holds member m's numbers, variable after variable (written out by hand for m = 1)
    np.testing.assert_array_equal(packed[1], [4, 5, 6, 7, 101, 203, 204, 205])
    for variable, value in zip(variables, packing.unpack(tf.constant(packed))):
        np.testing.assert_array_equal(value.numpy(), variable.numpy())
    assert Packing([], members=3).pack([]).shape == (3, 0) and Packing([], 3).unpack(None) == []


def test_norm_clipping_optimisers_are_refused():
    model = build_model(3, 2, "residual", depth=1, width=3, members=2, seed=[1, 2])
    with pytest.raises(ValueError, match="clipnorm.*element-wise"):
        MembersTrainStep(model, lambda: keras.optimizers.Adam(clipnorm=1.0), lambda b: b)
    with pytest.raises(ValueError, match="unknown xla mode 'fast'"):
        MembersTrainStep(model, keras.optimizers.Adam, lambda b: b, xla="fast")


def _data(members, batch=6, width=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, members, width))
    y = rng.integers(0, 2, size=(batch, members))
    return x.astype(keras.config.floatx()), y.astype("int32")


def _standalone_steps(model, batches, lr):
    """Plain Keras: one model, ``optimizer.apply`` per variable (constraints included)."""
    optimizer = keras.optimizers.Adam(lr)
    optimizer.build(model.trainable_variables)
    for x, y in batches:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, model(x, training=True)))
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)


@pytest.mark.parametrize("block, kwargs, name", [("lm", {"constrain": True}, "k"),
                                                   ("zeros", {"trainable_lam": True}, "lam")])
def test_constrained_variables_are_optimised_separately_and_stay_constrained(float64, block, kwargs, name):
    """LM's k and ZeroS's λ keep their constraint under a huge learning rate, exactly as
    Keras applies it to a standalone model."""
    members, seeds, lr = 3, [5, 6, 7], 5.0
    batches = [_data(members, seed=s) for s in range(4)]
    model = build_model(3, 2, block, depth=4, width=3, h=[0.1, 0.5, 1.0], members=members, seed=seeds, **kwargs)
    step = MembersTrainStep(model, lambda: keras.optimizers.Adam(lr), lambda batch: batch, xla="off")
    assert step.shards[0]._separate, "the constrained variables should not be packed"
    for x, y in batches:
        step((tf.constant(x), tf.constant(y)))
    step.write_back()
    for m, (h, seed) in enumerate(zip([0.1, 0.5, 1.0], seeds)):
        alone = build_model(3, 2, block, depth=4, width=3, h=h, seed=seed, **kwargs)
        _standalone_steps(alone, [(x[:, m], y[:, m]) for x, y in batches], lr)
        for mine, theirs in zip(model.variables, alone.variables):
            np.testing.assert_allclose(mine.numpy()[m], theirs.numpy(), atol=ATOL, err_msg=mine.path)
    constrained = [v.numpy() for v in model.variables if v.name == name]
    assert constrained
    if block == "lm":  # zero-stable interval (-1, 1] (with the constraint's margin)
        assert all(np.all((k > -1) & (k <= 1)) for k in constrained)
    else:  # λ in (-inf, -1) or (1/3, inf)
        assert all(np.all((lam < -1) | (lam > 1 / 3)) for lam in constrained)


@pytest.mark.parametrize("xla", ["off", "update"])
def test_shards_step_like_one_model(float64, xla):
    """Members split over shards (3 + 2) take exactly the steps of one 5-member model."""
    h, seeds = [0.1, 0.3, 0.5, 0.7, 0.9], [1, 2, 3, 4, 5]
    batches = [_data(5, seed=s) for s in range(3)]
    whole = build_model(3, 2, "batchnorm", depth=3, width=3, h=h, members=5, seed=seeds)
    parts = [build_model(3, 2, "batchnorm", depth=3, width=3, h=h[:3], members=3, seed=seeds[:3]),
             build_model(3, 2, "batchnorm", depth=3, width=3, h=h[3:], members=2, seed=seeds[3:])]
    steps = [MembersTrainStep(models, lambda: keras.optimizers.Adam(0.05), lambda batch: batch, xla=xla)
             for models in (whole, parts)]
    for x, y in batches:
        losses = [step((tf.constant(x), tf.constant(y)))[0].numpy() for step in steps]
        np.testing.assert_allclose(losses[0], losses[1], atol=ATOL)
    for step in steps:
        step.write_back()
    for target, *sources in zip(whole.variables, *(model.variables for model in parts)):
        joined = np.concatenate([source.numpy() for source in sources])
        np.testing.assert_allclose(target.numpy(), joined, atol=ATOL, err_msg=target.path)
        assert np.max(np.abs(joined - target.numpy())) < ATOL


def test_a_diverging_member_is_restored_and_frozen_while_its_shard_mates_train_on():
    """Member 1 (h = 1e4) blows up; members 0 and 2 in the same shard train as if alone."""
    h, seeds = [0.1, 1e4, 0.2], [1, 2, 3]
    batches = [_data(3, width=4, seed=s) for s in range(4)]
    model = build_model(4, 2, "residual", depth=3, width=4, h=h, members=3, seed=seeds)
    step = MembersTrainStep(model, lambda: keras.optimizers.SGD(0.5), lambda batch: batch)
    history = []
    for x, y in batches:
        losses, ok = step((tf.constant(x), tf.constant(y)))
        history.append((losses.numpy(), ok.numpy()))
        step.write_back()
        if not ok.numpy()[1] and "frozen" not in locals():
            frozen = [v.numpy()[1].copy() for v in model.variables]
    assert not step.alive()[1] and step.alive()[[0, 2]].all()
    assert history[-1][0][1] == 0.0  # a dead member's loss counts as 0
    for value, variable in zip(frozen, model.variables):  # frozen since it died
        np.testing.assert_array_equal(variable.numpy()[1], value)
        assert np.isfinite(variable.numpy()).all()
    healthy = build_model(4, 2, "residual", depth=3, width=4, h=[0.1, 0.2], members=2, seed=[1, 3])
    alone = MembersTrainStep(healthy, lambda: keras.optimizers.SGD(0.5), lambda batch: batch)
    for x, y in batches:
        alone((tf.constant(x[:, [0, 2]]), tf.constant(y[:, [0, 2]])))
    alone.write_back()
    for mine, theirs in zip(model.variables, healthy.variables):
        np.testing.assert_allclose(mine.numpy()[[0, 2]], theirs.numpy(), atol=1e-6, err_msg=mine.path)


def test_keras_cross_entropy_reads_the_logits_of_a_members_model():
    """The head's softmax is a members model's last operation, so Keras computes the loss
    from its logits, as for a standalone model: a probability that underflows to 0 gives
    its true loss, not the clipped -log(1e-7) = 16.1."""
    members = build_model(3, 2, "residual", depth=1, width=3, members=2, seed=[4, 5])
    alone = build_model(3, 2, "residual", depth=1, width=3, seed=4)
    for model in (members, alone):  # logits exactly (100, -100): p(class 1) = e^-200 = 0 in float32
        head = model.get_layer("head")
        head.kernel.assign(np.zeros(head.kernel.shape, "float32"))
        head.bias.assign(np.broadcast_to(np.array([100.0, -100.0], "float32"), head.bias.shape))
    x = np.ones((1, 2, 3), "float32")
    y = np.array([[1, 1]], "int32")
    members_loss = tf.function(lambda x, y: per_member_loss(y, members(x)))(x, y).numpy()
    alone_loss = tf.function(lambda x, y: keras.losses.sparse_categorical_crossentropy(y, alone(x)))(x[:, 0], y[:, 0])
    np.testing.assert_allclose(float(alone_loss[0]), 200.0, rtol=1e-5)  # the true loss, far beyond the clip
    np.testing.assert_allclose(members_loss, [200.0, 200.0], rtol=1e-5)


def _snapshot(step, model):
    """(weights, statistics) of every member after a step, from the models' own variables."""
    step.write_back()
    return ([v.numpy().copy() for v in model.trainable_variables],
            [v.numpy().copy() for v in model.non_trainable_variables])


def test_a_diverged_members_batch_norm_statistics_are_put_back():
    """Step 2 feeds member 1 features of size 1e20: its loss (~5e19) and updated weights
    stay finite in float32 but its batch variance overflows, so its moving statistics
    would become infinite. It dies there, and from then on its moving statistics (and
    weights) are exactly those after step 1, the step before; members 0 and 2 update
    theirs at every step."""
    model = build_model(4, 2, "batchnorm", depth=2, width=4, h=[0.1, 0.5, 0.2], members=3, seed=[1, 2, 3])
    step = MembersTrainStep(model, lambda: keras.optimizers.SGD(0.1), lambda batch: batch)
    batches = [_data(3, width=4, seed=s) for s in range(4)]
    huge_x = batches[2][0].copy()
    huge_x[:, 1] *= 1e20
    batches[2] = (huge_x, batches[2][1])
    # the diverging step's loss is finite: divergence shows only in the statistics
    probe = keras.models.clone_model(model)
    probe.set_weights(model.get_weights())
    assert np.isfinite(per_member_loss(batches[2][1], probe(huge_x, training=True)).numpy()).all()

    snapshots = [_snapshot(step, model)]
    for k, (x, y) in enumerate(batches):
        losses, ok = step((tf.constant(x), tf.constant(y)))
        np.testing.assert_array_equal(ok.numpy(), [True, k < 2, True])
        snapshots.append(_snapshot(step, model))
    assert model.non_trainable_variables
    (_, after_step_0), (weights_before, stats_before) = snapshots[1], snapshots[2]  # after steps 0 and 1
    assert all(np.any(a[1] != b[1]) for a, b in zip(after_step_0, stats_before)), "statistics move every step"
    for weights, stats in snapshots[3:]:  # after the diverging step 2 and after step 3
        for value, before in zip(stats, stats_before):
            np.testing.assert_array_equal(value[1], before[1])
        for value, before in zip(weights, weights_before):
            np.testing.assert_array_equal(value[1], before[1])
    for (_, older), (_, newer) in zip(snapshots[2:], snapshots[3:]):  # the others train on
        for a, b in zip(older, newer):
            assert np.all(np.any(a[[0, 2]] != b[[0, 2]], axis=-1)) and np.isfinite(b).all()
    assert not step.alive()[1]


def test_a_dead_member_stays_dead_even_when_later_steps_would_be_finite():
    """Member 1 gets infinite features in step 0 (NaN loss) and ordinary ones afterwards,
    on which its (restored, initial) weights give a finite loss. Once dead it stays dead:
    ``alive`` stays False, its loss reads 0 and its weights never change again."""
    model = build_model(4, 2, "residual", depth=2, width=4, h=[0.1, 0.5, 0.2], members=3, seed=[1, 2, 3])
    initial = [v.numpy().copy() for v in model.trainable_variables]
    step = MembersTrainStep(model, lambda: keras.optimizers.SGD(0.1), lambda batch: batch)
    batches = [_data(3, width=4, seed=s) for s in range(4)]
    bad_x = batches[0][0].copy()
    bad_x[:, 1] = np.inf
    batches[0] = (bad_x, batches[0][1])
    for k, (x, y) in enumerate(batches):
        if k > 0:  # member 1's own network would give a finite loss on this batch
            assert np.isfinite(per_member_loss(y, model(x)).numpy()[1])
        losses, ok = step((tf.constant(x), tf.constant(y)))
        assert not ok.numpy()[1] and ok.numpy()[[0, 2]].all()
        assert losses.numpy()[1] == 0.0 and not step.alive()[1]
        step.write_back()
        for variable, value in zip(model.trainable_variables, initial):
            np.testing.assert_array_equal(variable.numpy()[1], value[1], err_msg=variable.path)
    for variable, value in zip(model.trainable_variables, initial):  # the others moved
        assert np.all(np.any((variable.numpy() != value)[[0, 2]].reshape(2, -1), axis=1)), variable.path


def test_load_diverged_gives_what_the_diverging_step_produced_and_write_back_the_last_finite():
    """Member 1 meets an infinite feature in step 1: its gradient, hence its updated
    weights, are NaN. ``load_diverged`` puts exactly those values into the model (member 1
    only); ``write_back`` puts back its weights after step 0; members 0 and 2 are the
    same either way."""
    model = build_model(4, 2, "residual", depth=2, width=4, h=[0.1, 0.5, 0.2], members=3, seed=[1, 2, 3])
    step = MembersTrainStep(model, lambda: keras.optimizers.SGD(0.1), lambda batch: batch)
    batches = [_data(3, width=4, seed=s) for s in range(3)]
    bad = batches[1][0].copy()
    bad[0, 1, 0] = np.inf
    batches[1] = (bad, batches[1][1])
    step((tf.constant(batches[0][0]), tf.constant(batches[0][1])))
    step.write_back()
    after_step_0 = [v.numpy().copy() for v in model.variables]
    for x, y in batches[1:]:
        step((tf.constant(x), tf.constant(y)))
    assert list(step.alive()) == [True, False, True]
    step.write_back()
    last_finite = [v.numpy().copy() for v in model.variables]
    step.load_diverged()
    diverged = [v.numpy().copy() for v in model.variables]
    for a, b, c in zip(after_step_0, last_finite, diverged):
        np.testing.assert_array_equal(b[1], a[1])  # frozen at its values after step 0
        np.testing.assert_array_equal(c[[0, 2]], b[[0, 2]])  # the live members are unchanged
    assert any(not np.isfinite(c[1]).all() for c in diverged), "the diverged network should hold its NaN update"
    step.write_back()
    for value, variable in zip(last_finite, model.variables):
        np.testing.assert_array_equal(variable.numpy(), value)


def test_a_shorter_last_batch_does_not_trace_the_step_again(float64):
    """The step is traced once for every batch size (an epoch's last batch is often
    shorter; a second trace of a depth-100 network cost ~17 s), and the shorter batch
    still trains each member exactly as a standalone network."""
    members, seeds, lr = 2, [3, 4], 0.05
    batches = [_data(members, batch=6, seed=0), _data(members, batch=4, seed=1), _data(members, batch=6, seed=2)]
    model = build_model(3, 2, "batchnorm", depth=2, width=3, h=[0.3, 0.9], members=members, seed=seeds)
    step = MembersTrainStep(model, lambda: keras.optimizers.Adam(lr), lambda batch: batch, xla="off")
    for x, y in batches:
        step((tf.constant(x), tf.constant(y)))
    assert step._step.tracing_count() == 1
    step.write_back()
    for m, (h, seed) in enumerate(zip([0.3, 0.9], seeds)):
        alone = build_model(3, 2, "batchnorm", depth=2, width=3, h=h, seed=seed)
        _standalone_steps(alone, [(x[:, m], y[:, m]) for x, y in batches], lr)
        for mine, theirs in zip(model.variables, alone.variables):
            np.testing.assert_allclose(mine.numpy()[m], theirs.numpy(), atol=ATOL, err_msg=mine.path)


def test_the_members_predictor_is_traced_once_for_any_number_of_rows():
    """Scoring calls the predictor with chunks of different sizes (train rows, test rows,
    the last chunk of each); it is traced once, and row r of the output is member m's
    prediction for row r of its input column alone."""
    from resnet_stability.sweep.trainer import members_predictor

    model = build_model(3, 2, "residual", depth=2, width=3, h=[0.3, 0.9], members=2, seed=[3, 4])
    predict = members_predictor([model])
    x5, _ = _data(2, batch=5)
    out5, out2 = predict(tf.constant(x5)).numpy(), predict(tf.constant(x5[:2])).numpy()
    assert predict.tracing_count() == 1
    np.testing.assert_allclose(out2, out5[:2], atol=1e-6)
    alone = build_model(3, 2, "residual", depth=2, width=3, h=0.9, seed=4)
    np.testing.assert_allclose(out5[:, 1], alone(x5[:, 1]).numpy(), atol=1e-6)
