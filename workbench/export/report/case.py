"""The case report (issue 15 item 6): ONE HTML + PDF for the open case, built from a session snapshot.

It holds the study (de-identified like every report: :func:`.content.image_details`), the reader's name and
free-text findings, the label map and every model result with their statistics (mean, SD, min, max in HU for
CT or the raw values, volume in mL or area in mm², from :func:`workbench.processing.measure_labels`), the
annotation measurements (:func:`workbench.processing.roi.measure_annotations`), the key images the user
picked, the provenance of every model run and the disclaimer. The content is a
:class:`~.content.Report`, rendered by the same :func:`.html.render_html` / :func:`.pdf.render_pdf` as the
per-result reports (which stay as they are: ``predict --report``, ``export --report``).
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ... import __version__
from ...core.errors import ExportError
from ...core.image import ImageVolume
from ...core.results import SegmentationResult, Table, _swatch
from ...processing import LabelStats, measure_labels, to_scalar
from ...processing.roi import intensity_unit, measure_annotations
from ...session.snapshot import Session
from ..deid import DateMode
from .content import DISCLAIMER, FORMATS, MAX_TABLE_ROWS, Picture, Report, _fit, image_details
from .write import write_report_files

ProgressFn = Callable[[int, int], None]


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or not np.isfinite(value):
        return "\u2014"
    return f"{value:,.{digits}f}"


def stats_table(stats: Sequence[LabelStats], image: ImageVolume, colors: dict[int, str], *, note: str = "") -> Table:
    """Per-label statistics as a report table: size (volume in mL for a stack, area in mm² for one slice)
    and intensity mean, SD, min, max (HU for CT, raw values otherwise)."""
    unit = intensity_unit(image)
    three_d = image.n_slices > 1
    columns = ["Label", "Value", "Voxels" if three_d else "Pixels", "Volume (mL)" if three_d else "Area (mm\u00b2)",
               f"Mean ({unit})", f"SD ({unit})", f"Min ({unit})", f"Max ({unit})"]
    rows: list[list[str]] = []
    swatches: list[str | None] = []
    for s in stats[:MAX_TABLE_ROWS]:
        size = (s.volume_mm3 / 1000.0 if s.volume_mm3 is not None else None) if three_d else s.area_mm2
        rows.append([s.name, str(s.label), f"{s.pixels:,}", _fmt(size, 3 if three_d else 1), _fmt(s.mean),
                     _fmt(s.std), _fmt(s.min), _fmt(s.max)])
        swatches.append(_swatch(colors.get(s.label), s.label))
    notes = [note] if note else []
    if not image.spacing_known:
        notes.append("Pixel size unknown: physical sizes are not available.")
    if len(stats) > MAX_TABLE_ROWS:
        notes.append(f"{len(stats) - MAX_TABLE_ROWS} more labels are not shown.")
    return Table(columns, rows, [False, True, True, True, True, True, True, True], swatches, " ".join(notes))


def measurements_table(session: Session) -> Table:
    """The annotation measurements: one row per ruler, angle, ROI and text arrow."""
    rows = []
    for m in measure_annotations(session.annotations, session.image)[:MAX_TABLE_ROWS]:
        value = "note" if m.kind == "text" else m.text
        rows.append([str(m.id), m.title, str(m.z + 1), value, m.label])
    note = f"ROI intensities in {intensity_unit(session.image)}; area is the drawn shape's." \
        if any(a.kind in ("ellipse", "rectangle") for a in session.annotations) else ""
    return Table(["#", "Type", "Slice", "Measurement", "Label"], rows, [True, False, True, False, False], [], note)


def _key_pictures(session: Session) -> list[Picture]:
    image = session.image
    pictures = []
    for n, item in enumerate(session.key_images, start=1):
        where = f"slice {item.z + 1} of {image.n_slices}" if image.n_slices > 1 else ""
        caption = f"Key image {n}" + (f" ({where})" if where else "") + (f": {item.caption}" if item.caption else "")
        pictures.append(Picture(_fit(item.rgb), caption))
    return pictures


def build_case_report(session: Session, *, reader: str = "", findings: str = "", show_name: bool = False,
                      dates: DateMode = "remove", salt: str | bytes | None = None,
                      now: _dt.datetime | None = None, progress: ProgressFn | None = None) -> Report:
    """The content of the case report of ``session``.

    Parameters
    ----------
    session : Session
        A snapshot of the open case (:func:`workbench.session.capture`) or a session read from a file.
    reader : str
        The reader's name, shown with the findings.
    findings : str
        The reader's free-text findings (line breaks kept).
    show_name : bool
        Name the image by its file stem; off by default (file names often hold the patient's name).
    dates, salt
        De-identification options (:func:`workbench.export.deid.deidentify_metadata`).
    now : datetime, optional
        The report date (default: now, local time).
    progress : callable, optional
        ``progress(done, total)`` over the label map and the results measured.

    Returns
    -------
    Report
    """
    from ..prediction import output_stem

    image = session.image
    now = now or _dt.datetime.now().astimezone()
    label = output_stem(image, fallback="image") if show_name else "image 1"
    image_fields, warnings = image_details(image, image_label=label, dates=dates, salt=salt)
    intensities = to_scalar(image.data)
    spacing = tuple(float(s) for s in image.spacing) if image.spacing_known else None
    total = 1 + len(session.results)

    label_data = session.label_data if session.label_data is not None \
        else np.zeros(image.shape[:3], dtype=np.uint16)
    names = {lab.value: lab.name for lab in session.label_table}
    colors = {lab.value: lab.color for lab in session.label_table}
    label_stats = measure_labels(label_data, intensities, spacing=spacing, names=names)
    labels = stats_table(label_stats, image, colors)
    if progress is not None:
        progress(1, total)

    tables: list[tuple[str, Table]] = []
    provenance: list[tuple[str, str]] = []
    sentences: list[str] = []
    for i, result in enumerate(session.results, start=1):
        info = result.info
        title = f"Result {i}: {info.plugin_name} {info.plugin_version} ({info.task})"
        sentence = result.sentence(image)
        sentences.append(sentence)
        if isinstance(result, SegmentationResult):
            stats = measure_labels(result.mask, intensities, spacing=spacing,
                                   names={c.value: c.name for c in result.classes})
            table = stats_table(stats, image, {c.value: c.color for c in result.classes}, note=sentence)
        else:
            table = result.findings(image, max_rows=MAX_TABLE_ROWS)
            table.note = " ".join(t for t in (sentence, table.note) if t)
        tables.append((title, table))
        provenance.append((f"Result {i}", f"{info.plugin_name} ({info.plugin_id}) {info.plugin_version}; "
                                          f"sha256 {info.sha256}; {info.provider}"))
        if info.warnings:
            warnings.append(f"Result {i}: the image is outside what {info.plugin_id} was made for: "
                            f"{'; '.join(info.warnings)}.")
        if progress is not None:
            progress(1 + i, total)
    tables.append(("Measurements", measurements_table(session)))

    provenance += [("Label map", f"{len(label_stats)} label{'s' * (len(label_stats) != 1)}, edited in Workbench"),
                   ("Report date", now.strftime("%Y-%m-%d %H:%M %Z").strip()),
                   ("Software", f"Workbench {__version__}")]
    if not session.results:
        provenance.insert(0, ("Models", "none run on this case"))
    counts = [f"{len(label_stats)} label{'s' * (len(label_stats) != 1)}",
              f"{len(session.results)} model result{'s' * (len(session.results) != 1)}",
              f"{len(session.annotations)} measurement{'s' * (len(session.annotations) != 1)}",
              f"{len(session.key_images)} key image{'s' * (len(session.key_images) != 1)}"]
    summary = ", ".join(counts) + "." + "".join(f" {s}" for s in sentences)
    named = " The image is named by its file name, as the user asked." if show_name else ""
    return Report(
        title="Case report",
        subtitle=f"{label}" + (f" \u00b7 read by {reader}" if reader else ""),
        summary=summary,
        disclaimer=DISCLAIMER,
        intended_use="",
        pictures=_key_pictures(session),
        image_fields=image_fields,
        findings=labels,
        provenance=provenance,
        generated=now.strftime("%Y-%m-%d %H:%M"),
        footer="De-identified report: patient name, IDs, birth date, sex, institution, staff, UIDs and file "
               "paths are not shown; dates are " + ("shifted." if dates == "shift" else "removed.") + named,
        warnings=warnings,
        reader=reader.strip(),
        narrative=findings.strip(),
        findings_title="Labels",
        tables=tables,
        pictures_title="Key images",
    )


def write_case_report(session: Session, out_dir: str | Path, *, reader: str = "", findings: str = "",
                      formats: Sequence[str] = FORMATS, show_name: bool = False, dates: DateMode = "remove",
                      salt: str | bytes | None = None, progress: ProgressFn | None = None) -> dict[str, Path]:
    """Write ``<stem>_case_report.html`` and/or ``.pdf`` into ``out_dir`` (atomically).

    See :func:`build_case_report` for the parameters.

    Returns
    -------
    dict
        ``{"report_html": path, "report_pdf": path}`` for the formats written.

    Raises
    ------
    ExportError
        Unknown format, or a file cannot be written.
    """
    from ...io.writers import output_dir
    from ..prediction import output_stem

    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ExportError(f"report formats must be among {', '.join(FORMATS)}, got {', '.join(bad) or 'none'}")
    folder = output_dir(out_dir)
    report = build_case_report(session, reader=reader, findings=findings, show_name=show_name, dates=dates,
                               salt=salt, progress=progress)
    return write_report_files(report, folder, f"{output_stem(session.image, fallback='image')}_case_report",
                              formats)


__all__ = ["build_case_report", "write_case_report", "stats_table", "measurements_table"]
