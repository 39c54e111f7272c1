"""resnet_stability: when are ODE-inspired residual networks stable and accurate?

A reproduction-and-beyond of Zhang & Wynter, "Smooth Inter-layer Propagation of
Stabilized Neural Networks for Classification".

- :mod:`resnet_stability.layers`: the blocks as Keras layers (optional members axis)
- :mod:`resnet_stability.models`: ``build_model`` (stem -> blocks -> softmax head)
- :mod:`resnet_stability.data`: the paper's datasets, shipped for offline use
- ``python -m resnet_stability.sweep``: accuracy-vs-h sweeps (many networks at once)
"""

__version__ = "0.1.0"
