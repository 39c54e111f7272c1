"""A dense layer with an optional members axis (stem and head of every model)."""

from __future__ import annotations

import keras

from resnet_stability.layers.fields import resolve_activation
from resnet_stability.layers.initialization import per_member_initializer
from resnet_stability.layers.members import check_input_shape, member_seeds, normalize_seed, validate_members


@keras.saving.register_keras_serializable(package="resnet_stability")
class MembersDense(keras.layers.Layer):
    """z = σ(x W + b); with ``members=M``, W is (M, n_in, units) and x is (batch, M, n_in).

    Unlike the blocks, it keeps Keras's batch-first layout: it is a members model's stem
    and head, at the model's boundary (see :mod:`resnet_stability.layers.members`).

    Member m's slice is initialised as a standalone (n_in, units) kernel with member
    m's seed, so members and standalone layers start from the same weights.
    """

    def __init__(
        self,
        units,
        activation=None,
        members=None,
        seed=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"units must be an integer >= 1, got {units!r}")
        self.units = units
        self.members = validate_members(members)
        self.activation_fn, self.activation = (
            (None, None) if activation is None else resolve_activation(activation)
        )
        self.seed = normalize_seed(seed)
        self._seeds = member_seeds(seed, self.members)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        n_in = check_input_shape(self.name, input_shape, self.members, members_first=False)
        lead = () if self.members is None else (self.members,)
        self.kernel = self.add_weight(
            name="kernel",
            shape=lead + (n_in, self.units),
            initializer=per_member_initializer(self.kernel_initializer, self._seeds, "kernel", self.members),
        )
        self.bias = self.add_weight(
            name="bias",
            shape=lead + (self.units,),
            initializer=per_member_initializer(self.bias_initializer, self._seeds, "bias", self.members),
        )

    def pre_activation(self, x):
        """x W + b (a softmax head's logits)."""
        if self.members is None:
            return keras.ops.matmul(x, self.kernel) + self.bias
        # one batched matmul members first; consecutive swaps in a model cancel out
        members_first = keras.ops.swapaxes(x, 0, 1)
        z = keras.ops.matmul(members_first, self.kernel) + keras.ops.expand_dims(self.bias, 1)
        return keras.ops.swapaxes(z, 0, 1)

    def call(self, x):
        z = self.pre_activation(x)
        return z if self.activation_fn is None else self.activation_fn(z)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            activation=self.activation,
            members=self.members,
            seed=self.seed,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config
