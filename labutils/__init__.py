"""Helpers shared by the chapters of the CNN Lab Book.

One module per job; import what you use explicitly, e.g. ``from labutils.train import fit``:

- ``device``: device choice and seeding
- ``mode``: the quick/full run-mode switch
- ``data``: data root, integrity checks and dataset loaders
- ``train``: ``train_one_epoch``, ``evaluate``, ``fit`` and ``History``
- ``metrics``: accuracy and prediction helpers
- ``checkpoint``: safetensors checkpoints with JSON metadata
- ``plots``: learning curves, image grids, confusion matrices, kernels and feature maps
- ``report``: the reproducibility footer printed at the end of every chapter
- ``models``: networks that more than one chapter uses
"""

__version__ = "0.1.0"
