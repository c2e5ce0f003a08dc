"""``workbench batch``: one model plugin over a folder of images, serial or on a Dask cluster.

- :mod:`.plan` -- the work list: one :class:`~.plan.ItemPlan` per input file (its output stem and
  number are fixed before anything runs, so every mode and every resumed run names outputs alike).
- :mod:`.items` -- the per-image work every mode calls: :func:`~.items.finish_item` (summary row + atomic
  outputs) and :func:`~.items.process_one` (read + preprocess + run + finish).
- :mod:`.resume` -- the run record (``.workbench-batch.json``) and which inputs a ``--resume`` skips.
- :mod:`.cluster` -- the distributed path (``--workers N`` / ``--scheduler ADDRESS``, optional extra
  ``cluster``): a worker plugin holding one ONNX Runtime session per worker process.
"""
