"""Reports: de-identified HTML + PDF per image, for every task."""
from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pydicom
import pytest

from workbench.core.errors import ExportError
from workbench.core.image import ImageVolume
from workbench.core.results import (
    ClassificationResult,
    ClassScore,
    Detection,
    DetectionResult,
    RestorationResult,
    RunInfo,
    SegmentationClass,
    SegmentationResult,
)
from workbench.export import report as R
from workbench.export.report.content import _ranges
from workbench.io import read_image

CT_SMALL = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
SHA = "0123456789abcdef" * 4
META = {"intended_use": "research; not for diagnosis", "license": "MIT"}
PHI = ("CompressedSamples", "1CT1", "JFK", "CT01_OC0", "20040119", "1.3.6.1.4.1.5962", "CT_small")


def _info(task, path):
    return RunInfo("ct-organs", "CT organs", "2.1.0", SHA, "CPUExecutionProvider", task, str(path),
                   {"preprocess": 1.25, "inference": 15.5, "postprocess": 0.75}, [0])


@pytest.fixture(scope="module")
def ct():
    return read_image(CT_SMALL)


def _seg(image, classes=(("liver", "#ff7f0e"), ("lesion", "#d62728"))):
    mask = np.zeros(image.shape[:3], np.uint16)
    mask[0, 30:80, 40:90] = 1
    mask[0, 60:70, 60:100] = 2
    area = image.pixel_area_mm2
    cls = [SegmentationClass(v, n, c, int((mask == v).sum()), (mask == v).sum() * area if area else None)
           for v, (n, c) in enumerate(classes, start=1)]
    return SegmentationResult(_info("segmentation", image.path), mask, cls)


def _visible_html(text: str) -> str:
    """The HTML without its embedded pictures (base64 can contain any short letter sequence)."""
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:", text)


def _pdf(data: bytes):
    import pypdf

    return pypdf.PdfReader(io.BytesIO(data))


def pdf_text(data: bytes) -> str:
    """The text of every page of a PDF (pypdf's extraction) and its document information values."""
    reader = _pdf(data)
    info = [str(v) for v in (reader.metadata or {}).values()]
    return "\n".join([page.extract_text() for page in reader.pages] + info)


def pdf_pages(data: bytes) -> int:
    return len(_pdf(data).pages)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.seen: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.seen.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag not in ("meta", "br", "img", "link"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()


def _parse(html_text: str) -> _Tags:
    tags = _Tags()
    tags.feed(html_text)
    tags.close()
    assert tags.stack == [], tags.stack  # every element closed, properly nested
    return tags


# -- segmentation on a DICOM file --------------------------------------------------------------------
def test_dicom_segmentation_report_is_deidentified_html_and_pdf(ct, tmp_path):
    written = R.write_report(_seg(ct), ct, tmp_path / "out", "CT_small", plugin_meta=META, salt="s")
    assert set(written) == {"report_html", "report_pdf"}
    assert written["report_html"].name == "CT_small_report.html" and written["report_pdf"].name == "CT_small_report.pdf"
    html_text = written["report_html"].read_text(encoding="utf-8")
    visible = _visible_html(html_text)
    # provenance
    for value in ("ct-organs", "2.1.0", SHA, "CPUExecutionProvider", "inference 15.5", "total 17.5 ms", "MIT"):
        assert value in visible, value
    # disclaimer and the plugin's intended use
    assert "Research use only" in visible and "research; not for diagnosis" in visible
    # de-identified header fields
    from workbench.export.deid import pseudonym

    for value in ("Modality", "CT", "GE MEDICAL SYSTEMS", "RHAPSODE", pseudonym("1CT1", salt="s"), "image 1",
                  "0.6615 \u00d7 0.6615 mm"):
        assert value in visible, value
    # findings
    assert "liver" in visible and "2,200" in visible and "#ff7f0e" in visible
    for value in PHI:
        assert value not in visible, value
    tags = _parse(html_text)
    assert len(tags.images) == 1 and tags.images[0].startswith("data:image/png;base64,")
    assert "script" not in tags.seen and "link" not in tags.seen  # self-contained, nothing fetched
    assert not re.search(r"(src|href)=\"(?!data:)", html_text)

    pdf = written["report_pdf"].read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF") and pdf_pages(pdf) == 1
    text = pdf_text(pdf)
    for value in ("ct-organs", SHA[:32], "CPUExecutionProvider", "GE MEDICAL SYSTEMS", "liver", "RESEARCH USE ONLY"):
        assert value in text, value
    for value in PHI:
        assert value not in text, value


def test_pdf_parses_with_pypdf(ct, tmp_path):
    pypdf = pytest.importorskip("pypdf")
    path = R.write_report(_seg(ct), ct, tmp_path, "x", formats=("pdf",), plugin_meta=META, salt="s")["report_pdf"]
    reader = pypdf.PdfReader(str(path))
    assert len(reader.pages) == 1
    text = " ".join(page.extract_text() for page in reader.pages)
    assert "ct-organs" in text and "CPUExecutionProvider" in text and "CompressedSamples" not in text
    info = reader.metadata
    assert "CT_small" not in str(info.title) and "Workbench" in str(info.creator)


def test_show_name_and_shifted_dates(ct, tmp_path):
    written = R.write_report(_seg(ct), ct, tmp_path, "CT_small", formats=("html",), show_name=True,
                             dates="shift", salt="s")
    assert set(written) == {"report_html"}
    visible = _visible_html(written["report_html"].read_text(encoding="utf-8"))
    assert "CT_small" in visible and "image 1" not in visible
    assert "Study date (shifted)" in visible and "2004-01-19" not in visible
    assert "dates are shifted" in visible
    # no plugin meta: the fixed disclaimer is still there
    assert "Research use only" in visible and "Intended use stated" not in visible


def test_burned_in_annotation_warning(ct, tmp_path):
    image = ImageVolume(ct.data, spacing=ct.spacing, spacing_known=True, modality="US",
                        metadata={"format": "DICOM", "dicom": {"Modality": "US", "BurnedInAnnotation": "YES",
                                                               "PatientID": "99"}})
    report = R.build_report(_seg(image), image, salt="s")
    assert report.warnings and "burned-in" in report.warnings[0]
    assert "burned-in" in R.render_html(report) and "burned-in" in pdf_text(R.render_pdf(report))


# -- other tasks -------------------------------------------------------------------------------------
def _rgb(h=60, w=80):
    data = np.zeros((1, h, w, 3), np.uint8)
    data[0, 10:40, 20:60] = (200, 120, 40)
    return ImageVolume(data, path=Path("/clinic/Doe_Jane_2024.png"), metadata={"format": "PNG"})


def test_detection_report_lists_boxes(tmp_path):
    image = _rgb()
    dets = [Detection(0, "face", 0.987, (20.0, 10.0, 60.0, 40.0)), Detection(1, "hand", 0.51, (2.0, 3.0, 9.0, 12.0))]
    result = DetectionResult(_info("detection", image.path), dets)
    report = R.build_report(result, image, image_label="image 3", salt="s")
    assert report.findings.rows[0] == ["1", "face", "0.987", "20, 10, 60, 40", "40 \u00d7 30"]
    assert report.summary == "2 detections: face \u00d7 1, hand \u00d7 1."
    assert ("Pixel size", "unknown (areas in pixels only)") in report.image_fields
    written = R.write_report(result, image, tmp_path, "Doe_Jane_2024", salt="s")
    visible = _visible_html(written["report_html"].read_text(encoding="utf-8"))
    assert "face" in visible and "0.987" in visible and "Doe" not in visible and "clinic" not in visible
    pdf = pdf_text(written["report_pdf"].read_bytes())
    assert "face" in pdf and "0.987" in pdf and "Doe" not in pdf and "clinic" not in pdf
    empty = R.build_report(DetectionResult(_info("detection", None), []), image, salt="s")
    assert empty.summary == "No detections." and empty.findings.rows == []
    assert "none" in R.render_html(empty) and pdf_pages(R.render_pdf(empty)) == 1


def test_many_detections_are_capped_with_a_note():
    image = _rgb()
    dets = [Detection(0, "cell", 0.9, (1.0, 1.0, 3.0, 3.0)) for _ in range(R.MAX_TABLE_ROWS + 5)]
    report = R.build_report(DetectionResult(_info("detection", None), dets), image, salt="s")
    assert len(report.findings.rows) == R.MAX_TABLE_ROWS and "JSON" in report.findings.note
    pdf = R.render_pdf(report)
    assert pdf_pages(pdf) >= 3  # the table flows over pages, with its header repeated
    assert pdf_text(pdf).count("Box x1, y1, x2, y2") >= 3


def test_classification_report_shows_top_k(tmp_path):
    image = _rgb()
    top = [ClassScore(2, "blurred", 0.91), ClassScore(0, "good", 0.06), ClassScore(1, "noisy", 0.03)]
    result = ClassificationResult(_info("classification", image.path), np.array([0.06, 0.03, 0.91]),
                                  ["good", "noisy", "blurred"], top)
    report = R.build_report(result, image, salt="s")
    assert report.summary == "Top class: blurred (score 0.910)."
    assert [r[1] for r in report.findings.rows] == ["blurred", "good", "noisy"]
    assert report.title == "Classification report"
    assert "blurred" in pdf_text(R.render_pdf(report))


def test_restoration_report_has_before_and_after(tmp_path):
    image = ImageVolume(np.tile(np.arange(40, dtype=np.uint16) * 1000, (30, 1)), spacing=(1, 0.5, 0.5),
                        spacing_known=True, metadata={"format": "TIFF"})
    restored = ImageVolume(np.tile(np.arange(80, dtype=np.uint16) * 500, (60, 1)))
    result = RestorationResult(_info("restoration", None), restored, scale=2)
    report = R.build_report(result, image, salt="s")
    assert [p.caption for p in report.pictures] == ["Before", "After"]
    assert report.pictures[1].rgb.shape == (60, 80, 3)
    assert "(scale \u00d72)" in report.summary
    html_text = R.render_html(report)
    assert len(_parse(html_text).images) == 2 and "Images</h2>" in html_text
    assert pdf_pages(R.render_pdf(report)) == 1


def test_volume_segmentation_names_the_slice_and_volume(tmp_path):
    data = np.zeros((5, 20, 30), np.int16)
    image = ImageVolume(data, spacing=(2.0, 0.5, 0.5), spacing_known=True, metadata={"format": "NIfTI"})
    mask = np.zeros(data.shape, np.uint16)
    mask[3, 5:10, 5:10] = 1
    info = _info("segmentation", None)
    info.slice_indices = [0, 1, 2, 3, 4]
    result = SegmentationResult(info, mask, [SegmentationClass(1, "tumour", "", 25, 6.25)])
    report = R.build_report(result, image, salt="s")
    assert report.pictures[0].caption == "Segmentation overlay (slice 4 of 5)"
    assert report.findings.columns[-1] == "Volume (mm\u00b3)" and report.findings.rows[0][-1] == "12.5"
    assert ("Slices run", "1\u20135 (5 of 5)") in report.provenance
    assert report.findings.swatches[0].startswith("#")  # no colour in the result: the palette's


def test_ranges():
    assert _ranges([0, 1, 2, 5, 7, 8], 10) == "1\u20133, 6, 8\u20139 (6 of 10)"
    assert _ranges([], 3) == "none"


def test_non_latin_labels_and_big_images(tmp_path):
    image = ImageVolume(np.random.default_rng(0).integers(0, 255, (1700, 50), dtype=np.uint8),
                        metadata={"format": "PNG"})
    mask = np.zeros(image.shape, np.uint16)
    mask[0, 100:400, 10:40] = 1
    result = SegmentationResult(_info("segmentation", None), mask,
                                [SegmentationClass(1, "\u809d\u81d3 <liver> & co", "#00ff00", 90000, None)])
    report = R.build_report(result, image, salt="s")
    assert max(report.pictures[0].rgb.shape[:2]) == R.MAX_PICTURE_SIDE
    html_text = R.render_html(report)
    assert "\u809d\u81d3 &lt;liver&gt; &amp; co" in html_text  # escaped, Unicode kept
    pdf = R.render_pdf(report)  # no error: characters the PDF fonts lack become "?"
    assert "?? <liver> & co" in pdf_text(pdf)  # markup characters drawn, not interpreted


def test_bad_formats_and_unwritable_folder(ct, tmp_path):
    with pytest.raises(ExportError, match="report formats"):
        R.write_report(_seg(ct), ct, tmp_path, "x", formats=("docx",))
    with pytest.raises(ExportError, match="report formats"):
        R.write_report(_seg(ct), ct, tmp_path, "x", formats=())
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ExportError, match="cannot create the output folder"):
        R.write_report(_seg(ct), ct, blocker / "sub", "x", salt="s")


def test_the_prediction_json_names_the_reports_written_before_it(ct, tmp_path):
    from workbench.export.prediction import write_prediction

    reports = R.write_report(_seg(ct), ct, tmp_path, "a", salt="s")
    written = write_prediction(_seg(ct), ct, tmp_path, stem="a", overlay=False, reports=reports)
    data = json.loads(written["json"].read_text())
    assert data["task"] == "segmentation"
    assert data["report"] == {"html": "a_report.html", "pdf": "a_report.pdf"}
    assert all((tmp_path / name).is_file() for name in data["report"].values())
    plain = write_prediction(_seg(ct), ct, tmp_path / "b", stem="a", overlay=False)
    assert "report" not in json.loads(plain["json"].read_text())
