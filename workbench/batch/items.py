"""The per-image work of ``workbench batch``, shared by the serial run and the cluster workers.

The serial run reads ahead with :func:`workbench.inference.run.run_many` and hands every finished
inference to :func:`finish_item` on a writer thread; a cluster worker calls :func:`process_one`, which runs
the same steps on one input (:func:`~workbench.inference.run.run_one`, no prefetch thread) and the same
:func:`finish_item`. Either way an input gives the same
files, bytes and summary row (only the timing fields differ).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..core.errors import WorkbenchError
from ..core.settings import Settings
from .plan import ItemOutcome, ItemPlan, OutputOptions


def finish_item(engine: Any, item: Any, plan: ItemPlan, options: OutputOptions, out_dir: Path) -> ItemOutcome:
    """The summary row of one :class:`~workbench.inference.run.BatchItem` and its files, written atomically.

    A read or inference error, or an output that cannot be written, fails this item only: the row says
    ``status=error`` with the one-line reason.
    """
    from ..core.results import DetectionResult
    from ..export.outputs import write_outputs

    row: dict[str, Any] = {"image": plan.name}
    if item.error is not None:
        row.update(status="error", error=str(item.error))
        return ItemOutcome(row)
    result, image = item.result, item.image
    t = result.info.timing_ms
    row.update(status="ok", error="", task=result.info.task, result=result.summary(),
               warnings="; ".join(result.info.warnings),  # outside meta.expects (issue 20)
               provider=result.info.provider, preprocess_ms=round(t.get("preprocess", 0.0), 2),
               inference_ms=round(t.get("inference", 0.0), 2),
               postprocess_ms=round(t.get("postprocess", 0.0), 2))
    outcome = ItemOutcome(row, detections=result if isinstance(result, DetectionResult) else None)
    try:
        written = write_outputs(options, engine.spec.meta, result, image, out_dir, plan.stem, plan.number)
    except WorkbenchError as exc:
        row.update(status="error", error=str(exc))
        return outcome
    row.update({k: v.name for k, v in written.items()})
    return outcome


def read_for(settings: Settings):
    """The image reader of a batch (the settings' pixel limit)."""
    from ..io import read_image

    def reader(path: Path):
        return read_image(path, max_pixels=settings.max_pixels)

    return reader


def process_one(engine: Any, plan: ItemPlan, options: OutputOptions, out_dir: Path, settings: Settings, *,
                client_cwd: str | None = None) -> ItemOutcome:
    """Read, preprocess, run and write one input (what a cluster worker does per task).

    ``plan.source`` is read as listed when this process runs in the client's working directory
    (``client_cwd``), so a relative input path appears in the JSON and in error messages exactly as in
    the serial run; elsewhere it is made absolute against ``client_cwd`` (a shared file system).
    """
    from ..inference.run import run_one

    source = plan.source
    if client_cwd is not None and not source.is_absolute() and os.getcwd() != client_cwd:
        source = Path(client_cwd) / source
    return finish_item(engine, run_one(engine, source, read_for(settings)), plan, options, out_dir)
