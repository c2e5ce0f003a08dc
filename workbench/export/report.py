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
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .. import __version__
from ..core.errors import ExportError
from ..core.image import ImageVolume
from ..core.labels import color_to_rgb, default_color
from ..inference.results import (ClassificationResult, DetectionResult, RestorationResult, Result,
                                 SegmentationResult)
from ..io.atomic import atomic_write_bytes, atomic_write_text
from .deid import DateMode, deidentify_metadata, field_label
from .overlay import _with_window, display_rgb, render_overlay

FORMATS = ("html", "pdf")
DISCLAIMER = "Research use only \u2014 not for diagnosis."
MAX_PICTURE_SIDE = 1600  # px; larger pictures are downscaled (INTER_AREA) to keep reports small
MAX_TABLE_ROWS = 200  # findings rows shown; the JSON result holds all of them
_TASK_TITLES = {"segmentation": "Segmentation", "detection": "Detection", "classification": "Classification",
                "restoration": "Restoration"}

# ReportLab keeps module-level state (font metrics caches, the platypus paragraph-fragment cache) that
# is not documented as thread-safe; batch writes from two threads, so PDF rendering is serialised.
# It is pure Python and holds the GIL anyway: the lock costs no parallelism.
_PDF_LOCK = threading.Lock()


# -- content model -----------------------------------------------------------------------------------
@dataclass
class Picture:
    """An 8-bit RGB picture with a caption."""

    rgb: np.ndarray
    caption: str
    _png: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def png(self) -> bytes:
        """PNG bytes (encoded once: the HTML and the PDF embed the same file). A grey picture is stored
        as one channel: a third of the pixels for PNG, PDF Flate and the viewer."""
        if self._png is None:
            rgb = self.rgb
            gray = np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
            ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., 0]) if gray
                                   else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            if not ok:
                raise ExportError("cannot encode the report picture as PNG")
            self._png = buf.tobytes()
        return self._png


@dataclass
class Table:
    """Findings as rows of text; ``swatches`` holds an optional ``#rrggbb`` per row (class colours);
    ``numeric`` flags right-aligned columns."""

    columns: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    swatches: list[str | None] = field(default_factory=list)
    note: str = ""


@dataclass
class Report:
    """Everything a report shows, already de-identified and formatted as text."""

    title: str
    subtitle: str
    summary: str
    disclaimer: str
    intended_use: str
    pictures: list[Picture]
    image_fields: list[tuple[str, str]]
    findings: Table
    provenance: list[tuple[str, str]]
    generated: str
    footer: str
    warnings: list[str] = field(default_factory=list)


# -- building ----------------------------------------------------------------------------------------
def build_report(result: Result, image: ImageVolume, *, image_label: str = "image 1",
                 plugin_meta: Mapping[str, Any] | None = None, dates: DateMode = "remove",
                 salt: str | bytes | None = None, now: _dt.datetime | None = None) -> Report:
    """The de-identified content of the report of one image.

    Parameters
    ----------
    result : Result
        The model result of ``image``.
    image : ImageVolume
        The image the model ran on.
    image_label : str
        What the report calls the image ("image 1"; the file stem only when the user asked for names).
    plugin_meta : mapping, optional
        The plugin's ``meta`` block (``intended_use``, ``license``).
    dates, salt
        De-identification options, see :func:`workbench.export.deid.deidentify_metadata`.
    now : datetime, optional
        The report date (default: now, local time).

    Returns
    -------
    Report
    """
    info = result.info
    meta = dict(plugin_meta or {})
    now = now or _dt.datetime.now().astimezone()
    fields = deidentify_metadata(image.metadata, salt=salt, dates=dates)
    warnings: list[str] = []
    if "BurnedInAnnotation" in fields:
        warnings.append("The file declares burned-in annotation: the pictures may show identifying text.")
    image_fields: list[tuple[str, str]] = [("Image", image_label)]
    if "format" in fields:
        image_fields.append((field_label("format"), str(fields.pop("format"))))
    dims = f"{image.width} \u00d7 {image.height} px"
    if image.n_slices > 1:
        dims += f" \u00d7 {image.n_slices} slices"
    if image.is_color:
        dims += f", {image.channels} channels"
    image_fields.append(("Size", dims))
    if image.spacing_known:
        dz, dy, dx = image.spacing
        spacing = f"{_num(dx)} \u00d7 {_num(dy)} mm"
        if image.n_slices > 1:
            spacing += f" \u00d7 {_num(dz)} mm"
        image_fields.append(("Voxel size" if image.n_slices > 1 else "Pixel size", spacing))
    else:
        image_fields.append(("Pixel size", "unknown (areas in pixels only)"))
    image_fields += [(field_label(k), str(v)) for k, v in fields.items() if k != "PixelSpacing"]

    timing = info.timing_ms
    total = sum(float(timing.get(k, 0.0)) for k in ("preprocess", "inference", "postprocess"))
    timing_text = ", ".join(f"{k} {float(v):.1f}" for k, v in timing.items()) + f" (total {total:.1f} ms)" \
        if timing else "not recorded"
    provenance: list[tuple[str, str]] = [
        ("Plugin", f"{info.plugin_name} ({info.plugin_id})"),
        ("Plugin version", info.plugin_version),
        ("Model sha256", info.sha256),
        ("Execution provider", info.provider),
        ("Timing (ms)", timing_text),
    ]
    if image.n_slices > 1:
        provenance.append(("Slices run", _ranges(info.slice_indices, image.n_slices)))
    if meta.get("license"):
        provenance.append(("Model licence", str(meta["license"])))
    provenance += [("Report date", now.strftime("%Y-%m-%d %H:%M %Z").strip()),
                   ("Software", f"Workbench {__version__}")]

    intended = str(meta.get("intended_use") or "").strip()
    return Report(
        title=f"{_TASK_TITLES.get(info.task, info.task.title())} report",
        subtitle=f"{info.plugin_name} {info.plugin_version} \u00b7 {image_label}",
        summary=_summary(result, image),
        disclaimer=DISCLAIMER,
        intended_use=intended,
        pictures=_pictures(result, image),
        image_fields=image_fields,
        findings=_findings(result, image),
        provenance=provenance,
        generated=now.strftime("%Y-%m-%d %H:%M"),
        footer="De-identified report: patient name, IDs, birth date, sex, institution, staff, UIDs and file "
               "paths are not shown; dates are " + ("shifted." if dates == "shift" else "removed."),
        warnings=warnings,
    )


def _num(value: float) -> str:
    return f"{value:.4g}"


def _ranges(indices: Sequence[int], n: int) -> str:
    """1-based slice numbers as compact ranges: ``1-12, 15 (13 of 40)``."""
    idx = sorted(set(int(i) for i in indices))
    if not idx:
        return "none"
    parts: list[str] = []
    start = prev = idx[0]
    for i in idx[1:] + [None]:  # type: ignore[list-item]
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(f"{start + 1}" if start == prev else f"{start + 1}\u2013{prev + 1}")
        if i is not None:
            start = prev = i
    return f"{', '.join(parts)} ({len(idx)} of {n})"


def _summary(result: Result, image: ImageVolume) -> str:
    if isinstance(result, SegmentationResult):
        found = [c for c in result.classes if c.pixels]
        if not found:
            return "Nothing segmented."
        unit = "voxels" if image.n_slices > 1 else "px"
        parts = []
        for c in found:
            part = f"{c.name} {c.pixels:,} {unit}"
            if c.area_mm2 is not None and image.n_slices == 1:
                part += f" ({c.area_mm2:,.1f} mm\u00b2)"
            parts.append(part)
        return f"{len(found)} class{'es' if len(found) != 1 else ''} found: " + "; ".join(parts) + "."
    if isinstance(result, DetectionResult):
        n = len(result.detections)
        if not n:
            return "No detections."
        counts: dict[str, int] = {}
        for d in result.detections:
            counts[d.label] = counts.get(d.label, 0) + 1
        return f"{n} detection{'s' if n != 1 else ''}: " + ", ".join(f"{k} \u00d7 {v}" for k, v in counts.items()) + "."
    if isinstance(result, ClassificationResult):
        if not result.top:
            return "No class scores."
        t = result.top[0]
        return f"Top class: {t.label} (score {t.score:.3f})."
    if isinstance(result, RestorationResult):
        r = result.image
        return f"Restored image: {image.width} \u00d7 {image.height} \u2192 {r.width} \u00d7 {r.height} px" + \
            (f" (scale \u00d7{result.scale})." if result.scale != 1 else ".")
    return type(result).__name__


def _fit(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    side = max(h, w)
    if side <= MAX_PICTURE_SIDE:
        return rgb
    f = MAX_PICTURE_SIDE / side
    return cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def _slice_note(image: ImageVolume, index: int) -> str:
    return f" (slice {index + 1} of {image.n_slices})" if image.n_slices > 1 else ""


def _pictures(result: Result, image: ImageVolume) -> list[Picture]:
    ran = result.info.slice_indices or [0]
    if isinstance(result, RestorationResult):
        index = ran[0]
        before = display_rgb(image, index)
        after = display_rgb(_with_window(result.image, image), 0)
        note = _slice_note(image, index)
        return [Picture(_fit(before), f"Before{note}"), Picture(_fit(after), f"After{note}")]
    overlay = render_overlay(result, image)
    # render_overlay picks the most informative slice; find which one for the caption
    index = ran[0]
    if image.n_slices > 1:
        if isinstance(result, SegmentationResult):
            index = max(ran, key=lambda i: (int(np.count_nonzero(result.mask[i])), -i))
        elif isinstance(result, DetectionResult) and result.detections:
            per = {i: 0 for i in ran}
            for d in result.detections:
                per[d.slice_index] = per.get(d.slice_index, 0) + 1
            index = max(per, key=lambda k: per[k])
    caption = {SegmentationResult: "Segmentation overlay", DetectionResult: "Detections",
               ClassificationResult: "Image with the top classes"}.get(type(result), "Result")
    return [Picture(_fit(overlay), caption + _slice_note(image, index))]


def _hex(color: str | None, value: int) -> str:
    try:
        r, g, b = color_to_rgb(color or default_color(value))
    except ValueError:
        r, g, b = color_to_rgb(default_color(value))
    return f"#{r:02x}{g:02x}{b:02x}"


def _findings(result: Result, image: ImageVolume) -> Table:
    stack = image.n_slices > 1
    if isinstance(result, SegmentationResult):
        total = max(1, image.n_slices * image.height * image.width)
        voxel = image.voxel_volume_mm3
        columns = ["Class", "Value", "Voxels" if stack else "Pixels", "% of image"]
        numeric = [False, True, True, True]
        if stack:
            columns.append("Volume (mm\u00b3)")
        else:
            columns.append("Area (mm\u00b2)")
        numeric.append(True)
        rows, swatches = [], []
        for c in result.classes:
            if stack:
                size = f"{c.pixels * voxel:,.1f}" if voxel is not None else "\u2014"
            else:
                size = f"{c.area_mm2:,.2f}" if c.area_mm2 is not None else "\u2014"
            rows.append([c.name, str(c.value), f"{c.pixels:,}", f"{100.0 * c.pixels / total:.2f}", size])
            swatches.append(_hex(c.color, c.value))
        note = "" if image.spacing_known else "Pixel size unknown: physical sizes are not available."
        return Table(columns, rows, numeric, swatches, note)
    if isinstance(result, DetectionResult):
        columns = ["#", "Label", "Score", "Box x1, y1, x2, y2 (px)", "Size (px)"]
        numeric = [True, False, True, False, True]
        if stack:
            columns.append("Slice")
            numeric.append(True)
        rows, swatches = [], []
        for k, d in enumerate(result.detections[:MAX_TABLE_ROWS], start=1):
            x1, y1, x2, y2 = d.box
            row = [str(k), d.label, f"{d.score:.3f}", ", ".join(f"{v:.0f}" for v in d.box),
                   f"{x2 - x1:.0f} \u00d7 {y2 - y1:.0f}"]
            if stack:
                row.append(str(d.slice_index + 1))
            rows.append(row)
            swatches.append(_hex(None, d.index + 1))  # the overlay's box colour
        note = ""
        if len(result.detections) > MAX_TABLE_ROWS:
            note = f"First {MAX_TABLE_ROWS} of {len(result.detections)} detections; the JSON result lists all."
        return Table(columns, rows, numeric, swatches, note)
    if isinstance(result, ClassificationResult):
        rows = [[str(k), t.label, f"{t.score:.4f}"] for k, t in enumerate(result.top[:MAX_TABLE_ROWS], start=1)]
        note = "Multi-label: each score is independent (sigmoid)." if result.multi_label else ""
        if result.slice_scores is not None and len(result.slice_scores) > 1:
            note = (note + " " if note else "") + f"Scores are the mean over {len(result.slice_scores)} slices."
        return Table(["Rank", "Class", "Score"], rows, [True, False, True], [], note)
    if isinstance(result, RestorationResult):
        r = result.image
        rows = [["Input size", f"{image.width} \u00d7 {image.height} px"],
                ["Output size", f"{r.width} \u00d7 {r.height} px"],
                ["Scale", f"\u00d7{result.scale}"],
                ["Output value type", str(r.data.dtype)]]
        return Table(["Property", "Value"], rows, [False, False], [], "")
    raise TypeError(f"no report for {type(result).__name__}")


# -- HTML --------------------------------------------------------------------------------------------
_CSS = """
:root { --ink:#1d2733; --muted:#5b6878; --line:#d5dbe3; --head:#0f3557; --band:#f3f6f9; }
* { box-sizing:border-box; }
body { margin:0; background:#e9edf2; color:var(--ink);
       font:14px/1.45 "Segoe UI", "Helvetica Neue", Arial, "Liberation Sans", sans-serif; }
.page { max-width:900px; margin:24px auto; background:#fff; box-shadow:0 1px 4px rgba(0,0,0,.12); }
header { background:var(--head); color:#fff; padding:18px 28px 14px; display:flex;
         justify-content:space-between; align-items:flex-end; }
header h1 { margin:0; font-size:22px; font-weight:600; letter-spacing:.2px; }
header .sub { margin-top:2px; color:#c9d7e6; font-size:13px; }
header .date { text-align:right; font-size:12px; color:#c9d7e6; }
.disclaimer { margin:0; padding:9px 28px; background:#fff4d6; border-bottom:1px solid #ecd48c;
              color:#6b4e00; font-size:13px; }
.disclaimer b { text-transform:uppercase; letter-spacing:.4px; }
.warning { margin:0; padding:8px 28px; background:#fde8e8; color:#8a1c1c; font-size:13px; }
main { padding:18px 28px 8px; }
h2 { font-size:13px; text-transform:uppercase; letter-spacing:.8px; color:var(--muted);
     border-bottom:1px solid var(--line); padding-bottom:4px; margin:22px 0 10px; }
.summary { font-size:16px; margin:4px 0 0; }
.figures { display:flex; gap:14px; flex-wrap:wrap; justify-content:center; }
figure { margin:0; flex:1 1 0; min-width:220px; text-align:center; }
figure img { display:block; width:100%; height:auto; max-height:520px; object-fit:contain; }
figcaption { color:var(--muted); font-size:12px; margin-top:4px; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { padding:5px 8px; border-bottom:1px solid var(--line); vertical-align:top; text-align:left; }
th { background:var(--band); font-weight:600; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
table.kv th { width:40%; background:none; font-weight:normal; color:var(--muted); }
table.kv.wide th { width:24%; }
.mono { font-family:"Cascadia Mono", Consolas, "DejaVu Sans Mono", monospace; font-size:12px;
        word-break:break-all; }
.swatch { display:inline-block; width:11px; height:11px; border-radius:2px; margin-right:6px;
          vertical-align:-1px; border:1px solid rgba(0,0,0,.25); }
.note { color:var(--muted); font-size:12px; margin:6px 0 0; }
.cols { display:grid; grid-template-columns:11fr 9fr; gap:0 24px; align-items:start; }
main > h2:first-child { margin-top:4px; }
footer { padding:12px 28px 18px; color:var(--muted); font-size:11.5px; border-top:1px solid var(--line);
         margin-top:18px; }
@media (max-width:700px) { .cols { grid-template-columns:1fr; } }
@media print { body { background:#fff; } .page { box-shadow:none; margin:0; max-width:none; }
               header, .disclaimer, th { -webkit-print-color-adjust:exact; print-color-adjust:exact; } }
"""


_NUM = ' class="num"'
_MONO = ' class="mono"'


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _kv_table(pairs: Sequence[tuple[str, str]], mono: Sequence[str] = (), css: str = "kv") -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td{_MONO if k in mono else ''}>{_e(v)}</td></tr>" for k, v in pairs)
    return f'<table class="{css}">{rows}</table>'


def render_html(report: Report) -> str:
    """A self-contained HTML document (inline CSS, pictures as ``data:image/png;base64`` URIs).

    Parameters
    ----------
    report : Report

    Returns
    -------
    str
    """
    figs = "".join(
        f'<figure><img alt="{_e(p.caption)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.png()).decode("ascii")}"><figcaption>{_e(p.caption)}</figcaption></figure>'
        for p in report.pictures)
    t = report.findings
    head = "".join(f'<th{_NUM if num else ""}>{_e(c)}</th>' for c, num in zip(t.columns, t.numeric))
    body = []
    for i, row in enumerate(t.rows):
        cells = []
        for j, (cell, num) in enumerate(zip(row, t.numeric)):
            swatch = ""
            if j == (1 if t.columns[0] == "#" else 0) and i < len(t.swatches) and t.swatches[i]:
                swatch = f'<span class="swatch" style="background:{_e(t.swatches[i])}"></span>'
            cells.append(f'<td{_NUM if num else ""}>{swatch}{_e(cell)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(t.columns)}" class="note">none</td></tr>')
    note = f'<p class="note">{_e(t.note)}</p>' if t.note else ""
    intended = f" Intended use stated by the plugin: {_e(report.intended_use)}." if report.intended_use else ""
    warnings = "".join(f'<p class="warning">{_e(w)}</p>' for w in report.warnings)
    details = "<h2>Image details (de-identified)</h2>"
    if len(report.pictures) == 1:  # picture and details side by side, like the PDF
        image_block = f'<div class="cols"><section><h2>Image</h2><div class="figures">{figs}</div></section>' \
                      f"<section>{details}{_kv_table(report.image_fields)}</section></div>"
    else:
        image_block = f'<h2>Images</h2><div class="figures">{figs}</div>' \
                      f'{details}{_kv_table(report.image_fields, css="kv wide")}'
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="Workbench {_e(__version__)}">
<title>{_e(report.title)} \u2014 {_e(report.subtitle)}</title>
<style>{_CSS}</style>
</head>
<body>
<div class="page">
<header>
  <div><h1>{_e(report.title)}</h1><div class="sub">{_e(report.subtitle)}</div></div>
  <div class="date">Workbench<br>{_e(report.generated)}</div>
</header>
<p class="disclaimer"><b>{_e(report.disclaimer)}</b>{intended}</p>
{warnings}
<main>
<h2>Summary</h2>
<p class="summary">{_e(report.summary)}</p>
{image_block}
<h2>Findings</h2>
<table class="findings"><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>
{note}
<h2>Provenance</h2>
{_kv_table(report.provenance, mono=("Model sha256",), css="kv wide")}
</main>
<footer>{_e(report.footer)} {_e(report.disclaimer)}</footer>
</div>
</body>
</html>
"""


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
    from reportlab.platypus import (Image, Paragraph, SimpleDocTemplate, Spacer,
                                    Table as RLTable, TableStyle)

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

    story += section("Summary")
    story.append(Paragraph(_pdf_text(report.summary), summary))

    details_title = "Image details (de-identified)"
    if len(report.pictures) == 1:
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

    t = report.findings
    story += section("Findings")
    swatch_col = 1 if t.columns and t.columns[0] == "#" else 0
    data = [[Paragraph(_pdf_text(c), cell_num_head if num else cell_head) for c, num in zip(t.columns, t.numeric)]]
    for i, row in enumerate(t.rows):
        out = []
        for j, (value, num) in enumerate(zip(row, t.numeric)):
            text = _pdf_text(value)
            if j == swatch_col and i < len(t.swatches) and t.swatches[i]:
                text = f'<font name="ZapfDingbats" color="{t.swatches[i]}">n</font>&nbsp;{text}'  # n: a filled square
            out.append(Paragraph(text, cell_num if num else cell))
        data.append(out)
    if not t.rows:
        data.append([Paragraph("none", small)] + [""] * (len(t.columns) - 1))
    weights = _column_weights(t)
    findings = RLTable(data, colWidths=[width * w for w in weights], repeatRows=1)
    style = [("BACKGROUND", (0, 0), (-1, 0), band), ("LINEBELOW", (0, 0), (-1, -1), 0.5, line),
             ("VALIGN", (0, 0), (-1, -1), "TOP"), ("TOPPADDING", (0, 0), (-1, -1), 3),
             ("BOTTOMPADDING", (0, 0), (-1, -1), 3)]
    if not t.rows:
        style.append(("SPAN", (0, 1), (-1, 1)))
    findings.setStyle(TableStyle(style))
    story.append(findings)
    if t.note:
        story += [Spacer(1, 3), Paragraph(_pdf_text(t.note), small)]

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
    raw = []
    for c, num in zip(t.columns, t.numeric):
        longest = max([len(c)] + [len(r[len(raw)]) for r in t.rows[:50]])
        short = num and c in ("#", "Rank", "Value", "Slice")  # small integers: keep these columns narrow
        raw.append(5 if short else min(max(longest, 8 if num else 14), 40))
    s = sum(raw)
    return [r / s for r in raw]


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
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the output folder ({exc.strerror or exc})", path=out_dir) from exc
    report = build_report(result, image, image_label=stem if show_name else image_label,
                          plugin_meta=plugin_meta, dates=dates, salt=salt)
    written: dict[str, Path] = {}
    for fmt in dict.fromkeys(formats):
        path = out_dir / f"{stem}_report.{fmt}"
        try:
            if fmt == "html":
                atomic_write_text(path, render_html(report))
            else:
                atomic_write_bytes(path, render_pdf(report))
        except OSError as exc:
            raise ExportError(f"cannot write ({exc.strerror or exc})", path=path) from exc
        written[f"report_{fmt}"] = path
    return written


def attach_report(json_path: str | Path, written: Mapping[str, Path]) -> None:
    """Add ``"report": {"html": name, "pdf": name}`` to a ``predict`` JSON result (rewritten atomically).

    Raises
    ------
    ExportError
        If the JSON file cannot be read or written.
    """
    json_path = Path(json_path)
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
        data["report"] = {k.removeprefix("report_"): Path(v).name for k, v in written.items()}
        atomic_write_text(json_path, json.dumps(data, indent=2))
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot add the report to the JSON result ({getattr(exc, 'strerror', None) or exc})",
                          path=json_path) from exc
