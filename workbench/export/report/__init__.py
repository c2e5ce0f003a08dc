"""Per-image reports of a model result: a self-contained HTML file and a PDF with the same content.

A report shows the picture (overlay, boxes, top classes; before/after for restoration), a table of the
findings, the de-identified header fields (:mod:`workbench.export.deid`), the provenance (plugin id,
version, model sha256, execution provider, timing, date) and the plugin's intended-use disclaimer.

What it never shows: patient name/ID/birth date/sex, institution, people, dates (unless shifted), UIDs,
file paths, and, unless the caller passes ``show_name=True``, the file name (file names of clinical
exports often are the patient's name): the image is "image 1", "image 2"... instead. See docs/REPORTS.md.

The content is built once (:func:`build_report`) and rendered twice (:func:`render_html`,
:func:`render_pdf`), so the two files cannot drift apart. The PDF is drawn with ReportLab (BSD licence)
using the PDF base-14 fonts: text outside Windows-1252 is shown as ``?`` in the PDF (the HTML keeps it).

Modules: :mod:`.content` (the content model and :func:`build_report`), :mod:`.html`, :mod:`.pdf` (the two
renderers), :mod:`.write` (the files on disk), :mod:`.case` (the one case report of a session: study, reader's
findings, labels and results with statistics, measurements, key images; issue 15).
"""
from ...core.results import Table
from .content import DISCLAIMER, FORMATS, MAX_PICTURE_SIDE, MAX_TABLE_ROWS, Picture, Report, build_report
from .html import render_html
from .pdf import render_pdf
from .write import write_report

__all__ = [
    "FORMATS", "DISCLAIMER", "MAX_PICTURE_SIDE", "MAX_TABLE_ROWS", "Picture", "Table", "Report", "build_report",
    "render_html", "render_pdf", "write_report",
]
