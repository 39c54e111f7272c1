"""Multistep blocks: y_{n+1} = Σ_{i<d} α_i y_{n−i} + h β f(y_n), f a vector field.

A multistep block takes the history ``[y_n, y_{n−1}, …, y_{n−d+1}]`` (a list of d =
``history_length`` tensors) and returns y_{n+1}. ``build_model`` keeps that history
(:func:`run_blocks`, which the spectra analysis shares) and starts the network with
d − 1 forward-Euler starter blocks (as ZeroSNet does), so user code never handles it.
Called on a single tensor y, a block treats the history as constant (y_{n−i} = y),
which for a consistent scheme (Σ α_i = 1) is y + h β f(y).

| name       | class             | coefficients                                             |
|------------|-------------------|----------------------------------------------------------|
| lm         | LinearMultistep   | α = (1 − k, k), β = 1; k trainable per block (LM-ResNet)  |
| zeros      | ZeroS             | ZeroSNet Eq. 10: α(λ), β(λ), third order; λ optional trainable |
| multistep  | Multistep         | any fixed (α, β)                                           |

The field is :class:`TwoLayerField` (f(y) = K2 σ(K1 y + b1) + b2) unless ``field=``
names another; the integrator is :func:`resnet_stability.layers.integrators.multistep`.
LM's k and ZeroS's λ are per-member scalars (``StepBlock.add_member_scalar``) kept
zero-stable by one constraint, :class:`ZeroStableClip` (``"lm"`` or ``"zeros"``).
"""

from __future__ import annotations

import keras

from resnet_stability import stability
from resnet_stability.layers.blocks import StepBlock
from resnet_stability.layers.integrators import multistep
from resnet_stability.layers.members import member_scalars
from resnet_stability.layers.registry import INTEGRATORS, PACKAGE, register_block

#: The multistep blocks' integrator name (their scheme, not one of ``INTEGRATORS``).
MULTISTEP = "multistep"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ZeroStableClip(keras.constraints.Constraint):
    """Keeps a trainable multistep coefficient in its zero-stable region after every update
    (``stability.project_to_zero_stable``):

    - ``family="lm"``: LM-ResNet's k into [−1 + margin, 1] (region (−1, 1]);
    - ``family="zeros"``: ZeroS's λ to the nearest point of (−∞, −1 − margin] ∪
      [1/3 + margin, ∞) (region (−∞, −1) ∪ (1/3, ∞)).
    """

    FAMILIES = ("lm", "zeros")

    def __init__(self, family, margin=1e-3):
        if family not in self.FAMILIES:
            raise ValueError(f"unknown zero-stability family {family!r}; allowed: {', '.join(self.FAMILIES)}")
        self.family = family
        self.margin = margin

    def __call__(self, value):
        return stability.project_to_zero_stable(value, self.family, margin=self.margin)

    def get_config(self):
        return {"family": self.family, "margin": self.margin}


def _newest_shape(input_shape):
    """The shape of y_n from a single shape or a history of shapes (lists after JSON)."""
    if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
        return tuple(input_shape[0])
    return tuple(input_shape)


def run_blocks(blocks, y, **call_kwargs) -> list:
    """Call ``blocks`` in order from the state ``y`` and return every state: y_0 = ``y``,
    y_1, …, y_L (L = len(blocks)); block i gets y_i, or with ``history_length`` d > 1 the
    history ``[y_i, y_{i−1}, …, y_{i−d+1}]`` (newest first). ``call_kwargs`` go to every
    call (e.g. ``training=False``). ``build_model`` wires its network with it (on symbolic
    tensors) and :func:`resnet_stability.analysis.spectra.layer_states` recomputes the
    states with it. ValueError where fewer than d states precede a block (``build_model``
    starts a multistep network with d − 1 one-step starter blocks for that).
    """
    states = [y]
    for block in blocks:
        steps = int(block.history_length)
        if len(states) < steps:
            raise ValueError(
                f"block {block.name!r} needs a history of {steps} states but only {len(states)} "
                "precede it; build multistep models with build_model (it adds starter blocks)"
            )
        history = states[::-1][:steps]  # [y_i, y_{i-1}, ...]
        states.append(block(history[0] if steps == 1 else history, **call_kwargs))
    return states


class MultistepBlock(StepBlock):
    """Base class: subclasses set ``history_length`` (d) and implement ``coefficients()``.

    h stays fixed (``learn_h=True`` is refused): α, β are derived for equal fixed steps.
    The field is chosen by name (``field=``, default ``two_layer``); the integrator is
    always the multistep scheme (``integrator`` is ``"multistep"`` or None)."""

    history_length = 2
    default_integrator = MULTISTEP
    learns_h = False

    @classmethod
    def check_integrator(cls, integrator) -> str:
        if integrator not in (None, MULTISTEP):
            one_step = ", ".join(sorted(INTEGRATORS))
            raise ValueError(
                f"block {cls.label()} steps with the multistep scheme "
                f"(integrator={MULTISTEP!r}); integrator={integrator!r} is for the one-step blocks ({one_step})"
            )
        return MULTISTEP

    def build(self, input_shape):
        super().build(_newest_shape(input_shape))

    def coefficients(self):
        """(alphas, beta): d scalars or per-member columns, and one."""
        raise NotImplementedError

    def call(self, inputs, training=None):
        history = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs] * self.history_length
        if len(history) != self.history_length:
            raise ValueError(f"{self.name}: needs a history of {self.history_length} states, got {len(history)}")
        y = history[0]
        h = self.step_column(y.dtype)
        alphas, beta = self.coefficients()
        return multistep(lambda state: self.field(state, training=training), history, h, alphas, beta)

    def compute_output_shape(self, input_shape):
        return _newest_shape(input_shape)


@register_block("multistep")
class Multistep(MultistepBlock):
    """General explicit multistep block with fixed coefficients (ZeroSNet, Eq. 2).

    y_{n+1} = Σ_{i<d} α_i y_{n−i} + h β f(y_n), ``alphas = (α_0, …, α_{d−1})``.
    Warns (``stability.ZeroStabilityWarning``) when the coefficients fail the root condition.
    """

    def __init__(self, alphas=(1.0,), beta=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alphas = [float(a) for a in alphas]
        self.beta = float(beta)
        self.history_length = len(self.alphas)
        stability.warn_if_not_zero_stable(self.alphas, name="Multistep block", stacklevel=3)

    def coefficients(self):
        return self.alphas, self.beta

    def get_config(self):
        return {**super().get_config(), "alphas": list(self.alphas), "beta": self.beta}


@register_block("lm")
class LinearMultistep(MultistepBlock):
    """LM-ResNet (Lu et al.): u_{n+1} = (1 − k) u_n + k u_{n−1} + h f(u_n).

    k is a trainable scalar per block (per member), initialised U[−0.1, 0]. Zero-stable
    for k ∈ (−1, 1]; ``constrain=True`` clips k into that interval after every update.
    """

    history_length = 2

    def __init__(self, constrain=False, **kwargs):
        super().__init__(**kwargs)
        self.constrain = bool(constrain)

    def build(self, input_shape):
        super().build(input_shape)
        clip = ZeroStableClip("lm") if self.constrain else None
        self.k = self.add_member_scalar("k", keras.initializers.RandomUniform(-0.1, 0.0), constraint=clip)

    def coefficients(self):
        k = member_scalars(self.k, self.members)
        return [1.0 - k, k], 1.0

    def get_config(self):
        return {**super().get_config(), "constrain": self.constrain}


@register_block("zeros")
class ZeroS(MultistepBlock):
    """ZeroSNet's third-order three-step block (Chen, Jin, Shang, Eq. 10).

    α = (3(1+λ)/(4λ), −1/λ, (1+λ)/(4λ)), β = (3λ−1)/(2λ). Zero-stable iff
    λ ∈ (−∞, −1) ∪ (1/3, ∞). ``trainable_lam=True`` learns λ per block (per member),
    kept in the zero-stable region by ``ZeroStableClip("zeros")``.
    """

    history_length = 3

    def __init__(self, lam=1.0, trainable_lam=False, **kwargs):
        super().__init__(**kwargs)
        alphas, _ = stability.zeros_coefficients(lam)  # validates λ
        self.lam = float(lam)
        self.trainable_lam = bool(trainable_lam)
        stability.warn_if_not_zero_stable(alphas, name=f"ZeroS block (lam={self.lam})", stacklevel=3)

    def build(self, input_shape):
        super().build(input_shape)
        if self.trainable_lam:  # starts at λ, cast once from float64
            self.lam_variable = self.add_member_scalar("lam", self.lam, constraint=ZeroStableClip("zeros"))

    def coefficients(self):
        if not self.trainable_lam:
            return stability.zeros_coefficients(self.lam)
        lam = member_scalars(self.lam_variable, self.members)
        return stability.zeros_formula(lam)

    def get_config(self):
        return {**super().get_config(), "lam": self.lam, "trainable_lam": self.trainable_lam}
