"""Writing the report files of a result (atomic); the prediction JSON names them (``write_prediction(reports=)``)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...core.errors import ExportError
from ...core.image import ImageVolume
from ...core.results import Result
from ...io.atomic import atomic_write_bytes, atomic_write_text
from ...io.writers import output_dir
from ..deid import DateMode
from .content import FORMATS, Report, build_report
from .html import render_html
from .pdf import render_pdf


# -- writing -----------------------------------------------------------------------------------------
def write_report(result: Result, image: ImageVolume, out_dir: str | Path, stem: str, *,
                 formats: Sequence[str] = FORMATS, plugin_meta: Mapping[str, Any] | None = None,
                 image_label: str = "image 1", show_name: bool = False, dates: DateMode = "remove",
                 salt: str | bytes | None = None) -> dict[str, Path]:
    """Write ``<stem>_report.html`` and/or ``<stem>_report.pdf`` into ``out_dir`` (atomically).

    Parameters
    ----------
    result : Result
        The model result of ``image``.
    image : ImageVolume
    out_dir : str or Path
        Output folder (created).
    stem : str
        File name stem of the outputs (the one the JSON result uses).
    formats : sequence of {"html", "pdf"}
    plugin_meta : mapping, optional
        The plugin's ``meta`` block, for its intended-use statement and licence.
    image_label : str
        How the report names the image when ``show_name`` is false ("image 1", "image 2"...).
    show_name : bool
        Name the image by ``stem`` inside the report. Off by default: file names often contain the
        patient's name.
    dates, salt
        De-identification options (:func:`workbench.export.deid.deidentify_metadata`).

    Returns
    -------
    dict
        ``{"report_html": path, "report_pdf": path}`` for the formats written.

    Raises
    ------
    ExportError
        If a file cannot be written.
    """
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ExportError(f"report formats must be among {', '.join(FORMATS)}, got {', '.join(bad) or 'none'}")
    out_dir = output_dir(out_dir)
    report = build_report(result, image, image_label=stem if show_name else image_label,
                          plugin_meta=plugin_meta, dates=dates, salt=salt)
    return write_report_files(report, out_dir, f"{stem}_report", formats)


def write_report_files(report: Report, out_dir: Path, name: str, formats: Sequence[str]) -> dict[str, Path]:
    """Render ``report`` once per format into ``out_dir/<name>.<fmt>`` (atomically); ``{"report_<fmt>": path}``.

    Raises
    ------
    ExportError
        A file cannot be written.
    """
    written: dict[str, Path] = {}
    for fmt in dict.fromkeys(formats):
        path = out_dir / f"{name}.{fmt}"
        try:
            if fmt == "html":
                atomic_write_text(path, render_html(report))
            else:
                atomic_write_bytes(path, render_pdf(report))
        except OSError as exc:
            raise ExportError(f"cannot write ({exc.strerror or exc})", path=path) from exc
        written[f"report_{fmt}"] = path
    return written
