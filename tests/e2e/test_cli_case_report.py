"""`workbench export SESSION --annotations FILE --case-report DIR` (issue 15 items 2 and 6): the annotation
measurements of a saved session as CSV/JSON and its one case report; user errors are one line, exit 2."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from test_cli_export import fixtures, run_cli

from workbench.core.annotations import Angle, RectRoi, annotations_of
from workbench.core.document import Document
from workbench.io import read_image
from workbench.session import save_session


@pytest.fixture
def annotated(tmp_path) -> Path:
    """A 3-slice CT series (HU = stored - 1024) with a rectangle ROI over a 40 HU block and an angle."""
    values = np.full((3, 20, 24), 24, np.int16)
    values[1, 4:12, 6:18] = 1064
    fixtures.write_dicom_series(tmp_path / "ct", n=3, rows=20, cols=24, values=values, shuffle=False)
    doc = Document(read_image(tmp_path / "ct"))
    z = int(np.argmax((doc.image.data > 0).reshape(3, -1).any(axis=1)))
    rows, cols = np.nonzero(doc.image.data[z] > 0)
    store = annotations_of(doc)
    store.add_annotation(RectRoi(0, z, (float(cols.min()), float(rows.min())),
                                 (float(cols.max() + 1), float(rows.max() + 1)), label="=block"))
    store.add_annotation(Angle(0, 0, (10.0, 2.0), (2.0, 2.0), (2.0, 10.0)))
    return save_session(doc, tmp_path / "ct.wbsession")


def test_export_annotations_csv_json_and_the_case_report(annotated, tmp_path, capsys):
    out = tmp_path / "out"
    findings = out.parent / "findings.txt"
    findings.write_text("Block of soft tissue.\nAngle is right.", encoding="utf-8")
    code, io = run_cli(capsys, "export", annotated, "--annotations", out / "m.csv", "--case-report", out / "case",
                       "--reader", "Dr. B", "--findings-file", findings)
    assert code == 0, io.err
    printed = [Path(p).name for p in io.out.split()]
    assert printed == ["m.csv", "m.csv.provenance.json", "ct_case_report.html", "ct_case_report.pdf"]
    rows = list(csv.DictReader((out / "m.csv").open(newline="")))
    assert [(r["type"], r["unit"]) for r in rows] == [("rectangle", "HU"), ("angle", "\u00b0")]
    assert (rows[0]["mean"], rows[0]["std"], rows[0]["pixels"], rows[0]["label"]) == ("40", "0", "96", "'=block")
    assert float(rows[1]["value"]) == pytest.approx(90.0)
    html_text = (out / "case" / "ct_case_report.html").read_text(encoding="utf-8")
    assert "Block of soft tissue." in html_text and "Dr. B" in html_text and "=block" in html_text
    code, io = run_cli(capsys, "export", annotated, "--annotations", out / "m.json")
    assert code == 0, io.err
    doc = json.loads((out / "m.json").read_text(encoding="utf-8"))
    assert [a["type"] for a in doc["annotations"]] == ["rectangle", "angle"]
    assert doc["annotations"][0]["roi"]["mean"] == 40.0


@pytest.mark.parametrize("argv, message", [
    (["--annotations", "m.xlsx"], "use .csv or .json"),
    (["--case-report", "c", "--findings", "x", "--findings-file", "f.txt"], "not both"),
    (["--reader", "Dr. B", "--annotations", "m.csv"], "belong to --case-report"),
    (["--case-report", "c", "--findings-file", "missing.txt"], "missing.txt"),
])
def test_user_errors_are_one_line(annotated, tmp_path, capsys, argv, message):
    argv = [str(tmp_path / a) if a.endswith((".xlsx", ".txt", ".csv")) or a == "c" else a for a in argv]
    code, io = run_cli(capsys, "export", annotated, *argv)
    assert code == 2 and message in io.err and len(io.err.strip().splitlines()) == 1, io.err
