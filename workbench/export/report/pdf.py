"""The PDF rendering of a :class:`~workbench.export.report.content.Report` with ReportLab."""
from __future__ import annotations

import html
import io
import threading
from collections.abc import Sequence
from typing import Any

from ... import __version__
from ...core.errors import ExportError
from ...core.results import Table
from .content import Picture, Report

# ReportLab keeps module-level state (font metrics caches, the platypus paragraph-fragment cache) that
# is not documented as thread-safe; batch writes from two threads, so PDF rendering is serialised.
# It is pure Python and holds the GIL anyway: the lock costs no parallelism.
_PDF_LOCK = threading.Lock()

# -- PDF ---------------------------------------------------------------------------------------------
_PDF_SUBSTITUTES = str.maketrans({"\u2192": "->", "\u2190": "<-", "\u2264": "<=", "\u2265": ">=",
                                   "\u2212": "-", "\u00a0": " "})


def _pdf_plain(text: Any) -> str:
    """``text`` limited to Windows-1252, the encoding of the PDF base-14 fonts: a few common symbols are
    spelt out, anything else outside it becomes ``?``."""
    return str(text).translate(_PDF_SUBSTITUTES).encode("cp1252", errors="replace").decode("cp1252")


def _pdf_text(text: Any) -> str:
    """Escaped for ReportLab's paragraph markup, limited to what the base-14 fonts can draw."""
    return html.escape(_pdf_plain(text), quote=False)


def render_pdf(report: Report) -> bytes:
    """The report as an A4 PDF (ReportLab platypus); same content as :func:`render_html`.

    Parameters
    ----------
    report : Report

    Returns
    -------
    bytes

    Raises
    ------
    ExportError
        If ReportLab is not installed.
    """
    try:
        from reportlab import rl_config
    except ImportError as exc:  # a dependency of the package; only a broken install lacks it
        raise ExportError("PDF reports need the 'reportlab' package, which is not installed; "
                          "install it or write HTML reports only") from exc
    with _PDF_LOCK:
        # ReportLab wraps every stream in ASCII85 by default, encoded in pure Python (no _rl_accel wheel):
        # 1.2 s for a 512x512 RGB picture here. Binary Flate streams are valid PDF, 20% smaller and fast.
        saved = rl_config.useA85
        rl_config.useA85 = 0
        try:
            return _render_pdf(report)
        finally:
            rl_config.useA85 = saved


def _render_pdf(report: Report) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table as RLTable, TableStyle

    ink, muted, line = colors.HexColor("#1d2733"), colors.HexColor("#5b6878"), colors.HexColor("#d5dbe3")
    head_bg, band = colors.HexColor("#0f3557"), colors.HexColor("#f3f6f9")
    base = ParagraphStyle("base", fontName="Helvetica", fontSize=9, leading=11.5, textColor=ink)
    small = ParagraphStyle("small", parent=base, fontSize=8, leading=10, textColor=muted)
    mono = ParagraphStyle("mono", parent=base, fontName="Courier", fontSize=7.5, leading=9.5)
    title = ParagraphStyle("title", parent=base, fontName="Helvetica-Bold", fontSize=17, leading=21,
                           textColor=colors.white)
    sub = ParagraphStyle("sub", parent=base, fontSize=9.5, leading=12, textColor=colors.HexColor("#c9d7e6"))
    h2 = ParagraphStyle("h2", parent=base, fontName="Helvetica-Bold", fontSize=8.5, leading=11, textColor=muted,
                        spaceBefore=9, spaceAfter=4)
    summary = ParagraphStyle("summary", parent=base, fontSize=11, leading=14)
    caption = ParagraphStyle("caption", parent=small, alignment=TA_CENTER)
    cell = ParagraphStyle("cell", parent=base, fontSize=8.5, leading=10.5)
    cell_head = ParagraphStyle("cellhead", parent=cell, fontName="Helvetica-Bold")
    cell_num = ParagraphStyle("cellnum", parent=cell, alignment=2)
    cell_num_head = ParagraphStyle("cellnumhead", parent=cell_head, alignment=2)

    page_w = A4[0]
    margin = 16 * mm
    # SimpleDocTemplate's frame pads 6 pt on each side: full-width tables must fit inside that
    width = page_w - 2 * margin - 12

    def section(text: str, col_w: float = width) -> list:
        return [_section_title(text, h2, line, col_w), Spacer(1, 4)]

    def kv(pairs: Sequence[tuple[str, str]], col_w: float, key_frac: float) -> RLTable:
        rows = [[Paragraph(_pdf_text(k), ParagraphStyle("k", parent=cell, textColor=muted)),
                 Paragraph(_pdf_text(v), mono if k == "Model sha256" else cell)] for k, v in pairs]
        tbl = RLTable(rows, colWidths=[col_w * key_frac, col_w * (1 - key_frac)])
        tbl.setStyle(TableStyle([("LINEBELOW", (0, 0), (-1, -1), 0.5, line), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                                 ("LEFTPADDING", (0, 0), (-1, -1), 3), ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                                 ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5)]))
        return tbl

    def figure_table(pictures: Sequence[Picture], avail_w: float, max_h: float) -> RLTable:
        n = len(pictures)
        gap = 5 * mm
        slot_w = (avail_w - gap * (n - 1)) / n
        cells, caps = [], []
        for pic in pictures:
            h, w = pic.rgb.shape[:2]
            scale = min(slot_w / w, max_h / h)
            cells.append(Image(io.BytesIO(pic.png()), width=w * scale, height=h * scale))
            caps.append(Paragraph(_pdf_text(pic.caption), caption))
        tbl = RLTable([cells, caps], colWidths=[slot_w + (gap if i < n - 1 else 0) for i in range(n)])
        tbl.setStyle(TableStyle([("ALIGN", (0, 0), (-1, -1), "CENTER"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                                 ("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0)]))
        return tbl

    story: list = []
    header = RLTable([[Paragraph(_pdf_text(report.title), title),
                       Paragraph(f"Workbench<br/>{_pdf_text(report.generated)}",
                                 ParagraphStyle("hd", parent=sub, alignment=2))],
                      [Paragraph(_pdf_text(report.subtitle), sub), ""]],
                     colWidths=[width * 0.72, width * 0.28])
    header.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), head_bg), ("SPAN", (1, 0), (1, 1)),
                                ("VALIGN", (0, 0), (-1, -1), "BOTTOM"), ("LEFTPADDING", (0, 0), (-1, -1), 10),
                                ("RIGHTPADDING", (0, 0), (-1, -1), 10), ("TOPPADDING", (0, 0), (-1, 0), 9),
                                ("BOTTOMPADDING", (0, -1), (-1, -1), 8)]))
    story.append(header)
    intended = f" Intended use stated by the plugin: {_pdf_text(report.intended_use)}." if report.intended_use else ""
    banner = RLTable([[Paragraph(f"<b>{_pdf_text(report.disclaimer.upper())}</b>{intended}",
                                 ParagraphStyle("ban", parent=base, textColor=colors.HexColor("#6b4e00")))]],
                     colWidths=[width])
    banner.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#fff4d6")),
                                ("LINEBELOW", (0, 0), (-1, -1), 0.6, colors.HexColor("#ecd48c")),
                                ("LEFTPADDING", (0, 0), (-1, -1), 10), ("TOPPADDING", (0, 0), (-1, -1), 5),
                                ("BOTTOMPADDING", (0, 0), (-1, -1), 6)]))
    story.append(banner)
    for w in report.warnings:
        warn = RLTable([[Paragraph(_pdf_text(w), ParagraphStyle("w", parent=base,
                                                                 textColor=colors.HexColor("#8a1c1c")))]],
                       colWidths=[width])
        warn.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#fde8e8")),
                                  ("LEFTPADDING", (0, 0), (-1, -1), 10)]))
        story.append(warn)

    if report.reader or report.narrative:
        story += section("Reader\u2019s findings")
        narrative = _pdf_text(report.narrative or "none").replace("\n", "<br/>")
        story.append(Paragraph(narrative, summary))
        if report.reader:
            story += [Spacer(1, 3), Paragraph(f"Reader: {_pdf_text(report.reader)}", small)]

    story += section("Summary")
    story.append(Paragraph(_pdf_text(report.summary), summary))

    details_title = "Image details (de-identified)"
    if report.pictures_title:  # the case report: details, then the key images two per row
        story += section(details_title)
        story.append(kv(report.image_fields, width, 0.3))
        story += section(report.pictures_title)
        if not report.pictures:
            story.append(Paragraph("none picked", small))
        for start in range(0, len(report.pictures), 2):
            story += [figure_table(report.pictures[start:start + 2], width, 95 * mm), Spacer(1, 4)]
    elif len(report.pictures) == 1:
        # picture left, de-identified details right: one page for the usual report
        gap = 7 * mm
        left, right = width * 0.57, width * 0.43 - gap
        side = RLTable([[_section_title("Image", h2, line, left), _section_title(details_title, h2, line, right)],
                        [figure_table(report.pictures, left, 95 * mm), kv(report.image_fields, right, 0.42)]],
                       colWidths=[left + gap, right])
        side.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                                  ("RIGHTPADDING", (0, 0), (0, -1), gap), ("RIGHTPADDING", (1, 0), (1, -1), 0),
                                  ("TOPPADDING", (0, 1), (-1, 1), 5)]))
        story.append(side)
    else:
        story += section("Images")
        story.append(figure_table(report.pictures, width, 80 * mm))
        story += section(details_title)
        story.append(kv(report.image_fields, width, 0.3))

    def table_flow(t: Table) -> list:
        swatch_col = 1 if t.columns and t.columns[0] == "#" else 0
        data = [[Paragraph(_pdf_text(c), cell_num_head if num else cell_head)
                 for c, num in zip(t.columns, t.numeric)]]
        for i, row in enumerate(t.rows):
            out = []
            for j, (value, num) in enumerate(zip(row, t.numeric)):
                text = _pdf_text(value)
                if j == swatch_col and i < len(t.swatches) and t.swatches[i]:
                    # "n" in ZapfDingbats: a filled square
                    text = f'<font name="ZapfDingbats" color="{t.swatches[i]}">n</font>&nbsp;{text}'
                out.append(Paragraph(text, cell_num if num else cell))
            data.append(out)
        if not t.rows:
            data.append([Paragraph("none", small)] + [""] * (len(t.columns) - 1))
        weights = _column_weights(t)
        tbl = RLTable(data, colWidths=[width * w for w in weights], repeatRows=1)
        style = [("BACKGROUND", (0, 0), (-1, 0), band), ("LINEBELOW", (0, 0), (-1, -1), 0.5, line),
                 ("VALIGN", (0, 0), (-1, -1), "TOP"), ("TOPPADDING", (0, 0), (-1, -1), 3),
                 ("BOTTOMPADDING", (0, 0), (-1, -1), 3)]
        if not t.rows:
            style.append(("SPAN", (0, 1), (-1, 1)))
        tbl.setStyle(TableStyle(style))
        flow: list = [tbl]
        if t.note:
            flow += [Spacer(1, 3), Paragraph(_pdf_text(t.note), small)]
        return flow

    story += section(report.findings_title)
    story += table_flow(report.findings)
    for title_text, table in report.tables:
        story += section(title_text)
        story += table_flow(table)

    story += section("Provenance")
    story.append(kv(report.provenance, width, 0.25))

    def on_page(canvas, doc) -> None:
        canvas.saveState()
        canvas.setStrokeColor(line)
        canvas.setLineWidth(0.5)
        x0, x1 = margin + 6, page_w - margin - 6  # aligned with the frame's content
        canvas.line(x0, 12.5 * mm, x1, 12.5 * mm)
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(muted)
        canvas.drawString(x0, 8.5 * mm, _pdf_plain(report.footer))
        canvas.drawString(x0, 5.5 * mm, _pdf_plain(report.disclaimer))
        canvas.drawRightString(x1, 8.5 * mm, f"page {doc.page}")
        canvas.restoreState()

    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=margin, rightMargin=margin, topMargin=margin,
                            bottomMargin=17 * mm, title=f"{report.title} - {report.subtitle}",
                            author="", subject="De-identified model report", creator=f"Workbench {__version__}",
                            producer=f"Workbench {__version__} (ReportLab)")
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buf.getvalue()


def _section_title(text: str, style: Any, line: Any, col_w: float) -> Any:
    """A capitalised section heading with a rule below (PDF), as a one-cell table ``col_w`` wide."""
    from reportlab.platypus import Paragraph, Table as RLTable, TableStyle

    rule = RLTable([[Paragraph(_pdf_text(text.upper()), style)]], colWidths=[col_w])
    rule.setStyle(TableStyle([("LINEBELOW", (0, 0), (-1, -1), 0.6, line), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                              ("BOTTOMPADDING", (0, 0), (-1, -1), 2), ("TOPPADDING", (0, 0), (-1, -1), 6)]))
    return rule


def _column_weights(t: Table) -> list[float]:
    """Relative column widths: text columns get more room than numbers."""
    raw: list[float] = []
    for c, num in zip(t.columns, t.numeric):
        longest = max([len(c)] + [len(r[len(raw)]) for r in t.rows[:50]])
        short = num and c in ("#", "Rank", "Value", "Slice")  # small integers: keep these columns narrow
        raw.append(max(5, len(c) + 1) if short else min(max(longest, 8 if num else 14), 40))
    s = sum(raw)
    return [r / s for r in raw]
