"""Model builder: stem -> ``depth`` blocks -> softmax head, blocks chosen by name."""

from __future__ import annotations

import keras

from resnet_stability.layers import MembersDense, StepResidual, get_block
from resnet_stability.layers.blocks import DEFAULT_H_MAX
from resnet_stability.layers.members import MembersLayout, member_seeds, validate_members
from resnet_stability.layers.multistep import run_blocks
from resnet_stability.seeding import derive_seed


def _positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


#: The keyword arguments of ``build_model`` that its starter blocks share with a
#: multistep network's blocks (its field and initialisers; not α, β, λ, k's constraint).
STARTER_KWARGS = ("kernel_initializer", "bias_initializer", "field")


def layer_seeds(seeds: list[int], tag, members: int | None):
    """Seeds for one layer: ``derive_seed(s_m, tag)`` per member (an int without members)."""
    derived = [derive_seed(s, *tag) if isinstance(tag, tuple) else derive_seed(s, tag) for s in seeds]
    return derived[0] if members is None else derived


def build_model(
    input_dim: int,
    n_classes: int,
    block: str = "residual",
    depth: int = 20,
    width: int | None = None,
    h=0.1,
    members: int | None = None,
    seed=None,
    activation="relu",
    name: str | None = None,
    step_sizes=None,
    learn_h: bool = False,
    h_max: float = DEFAULT_H_MAX,
    stability_penalty: float = 0.0,
    **block_kwargs,
) -> keras.Model:
    """Build stem -> ``depth`` blocks of type ``block`` -> softmax head.

    - stem: a linear ``MembersDense`` from ``input_dim`` to ``width``; the identity when
      ``input_dim == width`` (so 2-D data can be watched directly in feature space);
    - ``depth`` blocks named ``block_0`` ... from the block registry
      (:data:`resnet_stability.layers.BLOCKS`), each with step ``h``;
    - head: ``MembersDense(n_classes, activation="softmax")``.

    With ``members=M`` the model maps (batch, M, input_dim) to (batch, M, n_classes):
    M independent networks. The blocks' states are members first, (M, batch, width): a
    ``MembersLayout`` layer named ``members_first`` precedes the first block and one
    named ``batch_first`` follows the last (see :mod:`resnet_stability.layers.members`).
    ``h`` may then hold one value per member, and ``seed`` one int per member; member m equals the standalone model built with seed ``seeds[m]``
    (an int ``seed`` gives member m the seed ``derive_seed(seed, "member", m)``).
    Non-uniform steps: ``step_sizes`` (a sequence of ``depth`` values h_1..h_L, each a
    float or one value per member) replaces the single ``h``. Multistep blocks keep their
    equal-spacing coefficients α, β (derived for equal steps), each block with its own
    h_i: with non-uniform steps that is a different, less accurate scheme; ZeroS drops to
    first order (e.g. for steps that grow or alternate along the network).

    Multistep blocks (``lm``, ``zeros``, ``multistep``) need the history
    y_n, y_{n−1}, … (d = the block's ``history_length`` states): the builder keeps it
    (:func:`~resnet_stability.layers.multistep.run_blocks`) and starts the network with
    d − 1 forward-Euler residual starter blocks (``StepResidual``, same h and ``field``,
    named ``block_0`` …), as ZeroSNet does; block i then receives ``[y_i, y_{i−1}, …]``.
    ``field=`` and ``integrator=`` (names in :data:`~resnet_stability.layers.FIELDS` and
    :data:`~resnet_stability.layers.INTEGRATORS`) replace the block's own, e.g.
    ``build_model(..., block="shrinkage", integrator="rk4")``: RK4 along the shrinkage field.
    Learned step sizes: ``learn_h=True`` makes every block's h (per member) a trainable
    weight h = h_max·σ(θ) in (0, ``h_max``], starting at the given h
    (:mod:`resnet_stability.layers.blocks`); one-step blocks only (a multistep block
    raises ValueError). ``stability_penalty`` μ > 0 (with ``learn_h``) adds each
    block's Euler-stability penalty to the training loss
    (:mod:`resnet_stability.layers.euler_penalty`; forward-Euler integrator only).
    Extra keyword arguments go to every block (e.g. ``kernel_initializer``, ``lam``).
    """
    input_dim = _positive_int("input_dim", input_dim)
    n_classes = _positive_int("n_classes", n_classes, minimum=2)
    depth = _positive_int("depth", depth, minimum=0)
    width = input_dim if width is None else _positive_int("width", width)
    members = validate_members(members)
    block_class = get_block(block)
    learn_h = block_class.check_learn_h(learn_h)
    mu = block_class.check_stability_penalty(stability_penalty, learn_h, block_kwargs.get("integrator"))
    penalty = {"stability_penalty": mu} if mu else {}  # (multistep blocks never get it: mu > 0 needs learn_h)
    seeds = member_seeds(seed, members)
    if step_sizes is None:
        step_sizes = [h] * depth
    elif len(step_sizes) != depth:
        raise ValueError(f"step_sizes has {len(step_sizes)} values but depth={depth}; give one h per block")

    def make(cls, index, kwargs):
        return cls(
            h=step_sizes[index],
            activation=activation,
            members=members,
            seed=layer_seeds(seeds, ("block", index), members),
            name=f"block_{index}",
            learn_h=learn_h,
            h_max=h_max,
            **penalty,
            **kwargs,
        )

    # A block reading d = history_length states is preceded by d − 1 forward-Euler
    # starters; d is an attribute of the built block (Multistep's depends on its alphas),
    # so the last block is made first (and dropped if the network is all starters).
    last = make(block_class, depth - 1, block_kwargs) if depth else None
    starters = min(depth, (last.history_length if last else 1) - 1)
    starter_kwargs = {k: v for k, v in block_kwargs.items() if k in STARTER_KWARGS}
    blocks = [
        make(StepResidual, index, starter_kwargs) if index < starters
        else last if index == depth - 1 else make(block_class, index, block_kwargs)
        for index in range(depth)
    ]

    shape = (input_dim,) if members is None else (members, input_dim)
    inputs = keras.Input(shape=shape, name="features")
    state = inputs
    if input_dim != width:
        state = MembersDense(width, members=members, seed=layer_seeds(seeds, "stem", members), name="stem")(state)
    if members is not None:
        state = MembersLayout(name="members_first")(state)
    state = run_blocks(blocks, state)[-1]  # block i reads [y_i, y_{i-1}, ...]
    if members is not None:
        state = MembersLayout(name="batch_first")(state)
    outputs = MembersDense(
        n_classes, activation="softmax", members=members, seed=layer_seeds(seeds, "head", members), name="head"
    )(state)
    return keras.Model(inputs, outputs, name=name or f"{block}_depth{depth}")
