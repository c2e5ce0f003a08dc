"""End to end: `workbench predict/batch --report` writes de-identified HTML + PDF reports per image."""
from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx_factory as F
import pydicom
import pytest
from unit.test_export_report import pdf_pages, pdf_text  # PDF helpers (tests/ is on sys.path, see conftest)

from workbench.cli import main

CT_SMALL = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
PATIENT = ("CompressedSamples", "1CT1", "JFK IMAGING")
SEG = {"id": "blobs", "task": "segmentation",
       # CT values are Hounsfield units: window them to [0, 1] so the threshold model finds the body
       "input": {"color": "gray", "resize": "stretch", "size": [64, 64], "intensity": {"window": [-1000, 400]}},
       "output": {"classes": [{"name": "background"}, {"name": "body", "color": "#1f77b4"}]},
       "meta": {"license": "MIT", "intended_use": "research; not for diagnosis"}}


pytestmark = pytest.mark.usefixtures("fresh_session_cache")


@pytest.fixture
def seg_plugin(tmp_path):
    return F.write_plugin(tmp_path / "plugins" / "blobs", F.threshold_segmenter(1, threshold=0.6), SEG)


def _visible(html_text: str) -> str:
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:", html_text)


def test_predict_report_on_a_dicom_file(tmp_path, seg_plugin, capsys):
    # the file name is the patient's name, as clinical exports often are
    dcm = tmp_path / "in" / "Doe_Jane.dcm"
    dcm.parent.mkdir()
    shutil.copy(CT_SMALL, dcm)
    out = tmp_path / "out"
    assert main(["predict", "-m", str(seg_plugin), str(dcm), "-o", str(out), "--report"]) == 0
    result = json.loads((out / "Doe_Jane.json").read_text())
    assert result["report"] == {"html": "Doe_Jane_report.html", "pdf": "Doe_Jane_report.pdf"}
    body = result["segmentation"]["classes"][0]
    assert body["name"] == "body" and body["pixels"] > 1000

    html_text = _visible((out / "Doe_Jane_report.html").read_text(encoding="utf-8"))
    for value in ("blobs", result["plugin"]["sha256"], result["provider"], "Segmentation report", "image 1",
                  "Modality", "GE MEDICAL SYSTEMS", "ANON-", "Research use only", "research; not for diagnosis",
                  f"{body['pixels']:,}"):
        assert value in html_text, value
    for value in PATIENT + ("Doe", "Jane", str(tmp_path)):
        assert value not in html_text, value

    pdf = (out / "Doe_Jane_report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf_pages(pdf) == 1
    text = pdf_text(pdf)
    assert "blobs" in text and result["plugin"]["sha256"][:32] in text and "GE MEDICAL SYSTEMS" in text
    for value in PATIENT + ("Doe", "Jane"):
        assert value not in text, value
    assert "Doe_Jane.dcm: body:" in capsys.readouterr().out


def test_predict_without_report_writes_no_report(tmp_path, seg_plugin):
    out = tmp_path / "out"
    assert main(["predict", "-m", str(seg_plugin), str(CT_SMALL), "-o", str(out)]) == 0
    assert "report" not in json.loads((out / "CT_small.json").read_text())
    assert not list(out.glob("*_report.*"))


def test_batch_report_per_image_names_and_dates(tmp_path, seg_plugin):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(CT_SMALL, folder / "a_ct.dcm")
    img = np.zeros((40, 60), np.uint8)
    img[10:30, 10:50] = 255
    cv2.imwrite(str(folder / "b_scan.png"), img)
    (folder / "c_broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "out"
    assert main(["batch", "-m", str(seg_plugin), str(folder), "-o", str(out), "--report"]) == 2  # one bad file
    rows = {r["image"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert rows["a_ct.dcm"]["report_html"] == "a_ct_report.html" and rows["a_ct.dcm"]["report_pdf"] == "a_ct_report.pdf"
    assert rows["b_scan.png"]["report_pdf"] == "b_scan_report.pdf" and rows["c_broken.png"]["status"] == "error"
    assert not rows["c_broken.png"]["report_html"]
    # images are numbered by their place in the folder listing, not named
    assert "image 1" in (out / "a_ct_report.html").read_text(encoding="utf-8")
    b_html = _visible((out / "b_scan_report.html").read_text(encoding="utf-8"))
    assert "image 2" in b_html and "b_scan" not in b_html and "Pixel size" in b_html
    assert json.loads((out / "b_scan.json").read_text())["report"]["pdf"] == "b_scan_report.pdf"
    assert pdf_pages((out / "b_scan_report.pdf").read_bytes()) == 1

    # opt-in: file stems in the reports, dates shifted instead of removed
    shutil.rmtree(out)
    (folder / "c_broken.png").unlink()
    assert main(["batch", "-m", str(seg_plugin), str(folder), "-o", str(out), "--report", "--report-names",
                 "--report-dates", "shift"]) == 0
    a_html = _visible((out / "a_ct_report.html").read_text(encoding="utf-8"))
    assert "a_ct" in a_html and "image 1" not in a_html
    assert "Study date (shifted)" in a_html and "2004-01-19" not in a_html
    assert "CompressedSamples" not in a_html


def test_bad_report_option_exits_2(tmp_path, seg_plugin, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["predict", "-m", str(seg_plugin), str(CT_SMALL), "-o", str(tmp_path), "--report-dates", "keep"])
    assert exc.value.code == 2 and "invalid choice: 'keep'" in capsys.readouterr().err
