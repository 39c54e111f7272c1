"""Accuracy-vs-h sweeps: many small networks trained at once, stored cell by cell.

From the shell ``python -m resnet_stability.sweep --dataset wine``; from Python
``resnet_stability.sweep.main(["--dataset", "wine"])``. A sweep is a grid of cells,
one per (dataset, block); a cell trains every (h, trial) network at once. One module a
step, in the order a sweep runs them:

- :mod:`~resnet_stability.sweep.cli`: the command line: flags to specs, run the
  cells, write the outputs;
- :mod:`~resnet_stability.sweep.experiment`: what a sweep trains (``ExperimentSpec``,
  the paper's presets, seeds); :mod:`~resnet_stability.sweep.noise`: the input
  perturbations of its noise-robustness scores;
- :mod:`~resnet_stability.sweep.checks`: one-line checks of its inputs;
- :mod:`~resnet_stability.sweep.schedule`: runs the cells not finished yet, each
  under its lock in :mod:`~resnet_stability.sweep.store` (resumable, validated files);
- :mod:`~resnet_stability.sweep.executors`: where cells run (in process, in processes or
  Ray), each as :func:`~resnet_stability.sweep.runner.run_cells_together` (one cell, or a
  dataset's cells as one members step): load, train, tables;
- :mod:`~resnet_stability.sweep.devices`: the device and its TensorFlow settings;
  :mod:`~resnet_stability.sweep.progress`: the per-cell progress bar;
- :mod:`~resnet_stability.sweep.plan`: each member's h, seeds, split, standardiser
  and batch order;
- :mod:`~resnet_stability.sweep.trainer`: trains and scores the members of a cell as
  ONE members model (its optimiser step: :mod:`~resnet_stability.sweep.train_step`),
  from a batch source: a dataset in memory or
  :mod:`~resnet_stability.sweep.streaming`'s file read in chunks;
- :mod:`~resnet_stability.sweep.records`: a trained cell as tidy tables;
- :mod:`~resnet_stability.sweep.outputs`: the finished cells' tables, figures and
  summary, under the names the store owns (:data:`~resnet_stability.sweep.store.OUTPUTS`).

Importing this package is light (no TensorFlow), so ``--help`` answers at once.
"""


def main(argv=None) -> int:
    """Run the sweep command line on ``argv`` (default: ``sys.argv[1:]``); returns its
    exit code (:func:`resnet_stability.sweep.cli.main`)."""
    from resnet_stability.sweep.cli import main as cli_main

    return cli_main(argv)
