"""The per-image files of ``predict`` and ``batch`` (serial or on cluster workers), in one place."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.results import Result


def write_outputs(options: Any, plugin_meta: Any, result: Result, image: Any, out_dir: Path, stem: str,
                  number: int) -> dict[str, Path]:
    """JSON, mask/restored, overlay and, with ``options.report``, the HTML + PDF report (recorded in the
    JSON as ``"report": {"html": ..., "pdf": ...}``).

    ``options`` has the attributes of the command-line flags ``no_overlay``, ``report``, ``report_names``
    and ``report_dates`` (an argparse namespace or :class:`workbench.batch.plan.OutputOptions`);
    ``number`` is the image's 1-based position among the inputs, the report's name for it.
    """
    from .prediction import write_prediction

    reports: dict[str, Path] = {}
    if getattr(options, "report", False):
        from .report import write_report

        # the report first, so the JSON is written once, naming it (never read back and rewritten)
        reports = write_report(result, image, out_dir, stem, plugin_meta=plugin_meta,
                               image_label=f"image {number}", show_name=options.report_names,
                               dates=options.report_dates)
    try:
        written = write_prediction(result, image, out_dir, stem=stem, overlay=not options.no_overlay,
                                   reports=reports)
    except BaseException:  # all or nothing per image (a full disk): no report without its outputs
        for path in reports.values():
            Path(path).unlink(missing_ok=True)
        raise
    written.update(reports)
    return written
