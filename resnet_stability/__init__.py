"""resnet_stability: when are ODE-inspired residual networks stable and accurate?

A reproduction-and-beyond of Zhang & Wynter, "Smooth Inter-layer Propagation of
Stabilized Neural Networks for Classification".

- :mod:`resnet_stability.layers`: the blocks as Keras layers (optional members axis)
- :mod:`resnet_stability.models`: ``build_model`` (stem -> blocks -> softmax head)
- :mod:`resnet_stability.data`: the paper's datasets, shipped for offline use
- :mod:`resnet_stability.stability`, :mod:`resnet_stability.analysis`: zero stability of
  multistep schemes; Jacobian spectra and layer-by-layer propagation of trained networks
- :mod:`resnet_stability.sweep` (``python -m resnet_stability.sweep``): accuracy-vs-h
  sweeps (many networks at once); ``python -m resnet_stability.report``: their HTML report
- :mod:`resnet_stability.reproduction`: the paper's claims checked on committed sweeps

Importing this package is light (no TensorFlow). When one of its modules is the first
to import TensorFlow or Keras, that import runs with ``TF_CPP_MIN_LOG_LEVEL`` defaulted
to 2 (a value you set is kept) and file descriptor 2 silenced (:func:`quiet_native_stderr`),
so TensorFlow's C++ start-up lines (CUDA probing on a CPU machine, oneDNN and
CPU-feature notices) are not printed. Python exceptions of that import still propagate.
"""

import contextlib as _contextlib
import os as _os
import sys as _sys

__version__ = "0.1.0"

_QUIET_IMPORTS = ("tensorflow", "keras")


@_contextlib.contextmanager
def quiet_native_stderr():
    """Silence file descriptor 2 for the duration (TensorFlow's C++ start-up lines).

    TensorFlow 2.21 writes "Could not find cuda drivers..." and absl notices straight to
    the process's stderr at import and device discovery, ignoring TF_CPP_MIN_LOG_LEVEL.
    The import hook below and the sweep's device selection
    (:func:`resnet_stability.sweep.devices.select_device`) wrap those two moments so that
    the command line's own output (and its one-line errors) stays readable; Python
    exceptions still propagate after the descriptor is restored.
    """
    _sys.stderr.flush()
    saved = _os.dup(2)
    try:
        with open(_os.devnull, "w") as devnull:
            _os.dup2(devnull.fileno(), 2)
            yield
    finally:
        _sys.stderr.flush()
        _os.dup2(saved, 2)
        _os.close(saved)


class _QuietTensorFlowImport:
    """A ``sys.meta_path`` finder that wraps the first import of TensorFlow or Keras
    made by a ``resnet_stability`` module (see the package docstring), then removes itself."""

    def find_spec(self, name, path=None, target=None):
        if name not in _QUIET_IMPORTS:
            return None
        if any(module in _sys.modules for module in _QUIET_IMPORTS):  # imported already: nothing to quiet
            self._remove()
            return None
        if not _imported_by_this_package():
            return None
        self._remove()
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _QuietLoader(spec.loader)
        return spec

    def _remove(self):
        if self in _sys.meta_path:
            _sys.meta_path.remove(self)


class _QuietLoader:
    """Runs the wrapped loader's ``exec_module`` quietly; the module keeps the original loader."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = self.loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self.loader
        _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with quiet_native_stderr():
            self.loader.exec_module(module)


def _imported_by_this_package() -> bool:
    """True when the innermost importing frame outside importlib is a resnet_stability module."""
    frame = _sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(("importlib", "_frozen_importlib")):
        frame = frame.f_back
    return frame is not None and frame.f_globals.get("__name__", "").startswith("resnet_stability")


if not any(module in _sys.modules for module in _QUIET_IMPORTS):
    _sys.meta_path.insert(0, _QuietTensorFlowImport())
