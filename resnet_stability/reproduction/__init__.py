"""The reproduction of Zhang & Wynter: the paper's claims checked on committed sweeps.

``python -m resnet_stability.reproduction run [NAME ...]`` reruns experiments into
``reproduction/``; ``python -m resnet_stability.reproduction write`` recomputes the
claims from the committed tables and writes ``REPRODUCTION.md``. One module a part:

- :mod:`~resnet_stability.reproduction.cli`: that command line;
- :mod:`~resnet_stability.reproduction.run`: every experiment as data (the sweep
  commands, the propagation study) and the runs;
- :mod:`~resnet_stability.reproduction.claims`: the paper's claims as paired
  statistics with verdict rules fixed before the runs;
- :mod:`~resnet_stability.reproduction.beyond`: the summaries of the paper's next
  steps (stability against accuracy, learned h, levels);
- :mod:`~resnet_stability.reproduction.document`: REPRODUCTION.md and the offline
  HTML page of the whole reproduction.

Importing this package imports nothing (no TensorFlow).
"""
