"""Analysis of built models: Jacobian spectra and layer-by-layer feature propagation.

Works with models from :func:`resnet_stability.models.build_model` **without a members
axis** (``members=None``); a members model raises ``ValueError``.

- :mod:`.spectra`: states entering each block, eigenvalues of each block's field
  Jacobian, the Prop. 1 statistic max |1 + hλ| and a complex-plane plot of hλ.
- :mod:`.propagation`: states at every layer, per-layer accuracy (the model's own head
  by default), propagation grids and GIFs (Figs 2–7), accuracy vs h on 2-D data (Fig. 8).
"""

from resnet_stability.analysis.propagation import (
    animate_propagation,
    default_layers,
    layer_accuracy,
    plot_accuracy_vs_h_synthetic,
    plot_propagation,
    record_propagation,
)
from resnet_stability.analysis.spectra import (
    block_layers,
    euler_statistic,
    field_jacobian,
    jacobian_spectra,
    layer_states,
    plot_spectra,
)

__all__ = [
    "animate_propagation",
    "block_layers",
    "default_layers",
    "euler_statistic",
    "field_jacobian",
    "jacobian_spectra",
    "layer_accuracy",
    "layer_states",
    "plot_accuracy_vs_h_synthetic",
    "plot_propagation",
    "plot_spectra",
    "record_propagation",
]
