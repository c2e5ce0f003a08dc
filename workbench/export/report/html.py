"""The self-contained HTML rendering of a :class:`~workbench.export.report.content.Report`."""
from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from typing import Any

from ... import __version__
from ...core.results import Table
from .content import Report

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
.narrative { white-space:pre-wrap; font-size:15px; margin:4px 0 0; }
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


def _table_html(t: Table) -> str:
    """A findings-style table (swatch in the name column) and its note."""
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
    return f'<table class="findings"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{note}'


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
    note = _table_html(report.findings)
    intended = f" Intended use stated by the plugin: {_e(report.intended_use)}." if report.intended_use else ""
    warnings = "".join(f'<p class="warning">{_e(w)}</p>' for w in report.warnings)
    details = "<h2>Image details (de-identified)</h2>"
    if report.pictures_title:  # the case report: details, then the key images
        none = "" if report.pictures else '<p class="note">none picked</p>'
        image_block = f'{details}{_kv_table(report.image_fields, css="kv wide")}' \
                      f'<h2>{_e(report.pictures_title)}</h2><div class="figures">{figs}</div>{none}'
    elif len(report.pictures) == 1:  # picture and details side by side, like the PDF
        image_block = f'<div class="cols"><section><h2>Image</h2><div class="figures">{figs}</div></section>' \
                      f"<section>{details}{_kv_table(report.image_fields)}</section></div>"
    else:
        image_block = f'<h2>Images</h2><div class="figures">{figs}</div>' \
                      f'{details}{_kv_table(report.image_fields, css="kv wide")}'
    extra = "".join(f"<h2>{_e(title)}</h2>{_table_html(table)}" for title, table in report.tables)
    reader = ""
    if report.reader or report.narrative:
        who = f'<p class="note">Reader: {_e(report.reader)}</p>' if report.reader else ""
        reader = f'<h2>Reader\u2019s findings</h2><p class="narrative">{_e(report.narrative) or "none"}</p>{who}'
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
{reader}
<h2>Summary</h2>
<p class="summary">{_e(report.summary)}</p>
{image_block}
<h2>{_e(report.findings_title)}</h2>
{note}
{extra}
<h2>Provenance</h2>
{_kv_table(report.provenance, mono=("Model sha256",), css="kv wide")}
</main>
<footer>{_e(report.footer)} {_e(report.disclaimer)}</footer>
</div>
</body>
</html>
"""
