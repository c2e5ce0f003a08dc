"""The case report (issue 15 item 6): one HTML + PDF for a session with the study (de-identified), the reader's
findings, the labels and results with statistics, the measurements, key images and the provenance."""
from __future__ import annotations

import numpy as np
import pytest
from test_export_report import CT_SMALL, PHI, SHA, _parse, _visible_html, pdf_text

from workbench.core.annotations import EllipseRoi, Ruler, TextArrow, annotations_of
from workbench.core.document import Document
from workbench.core.errors import WorkbenchError
from workbench.core.key_images import KeyImage, key_images_of
from workbench.core.results import RunInfo, SegmentationClass, SegmentationResult
from workbench.export.report.case import build_case_report, write_case_report
from workbench.io import read_image
from workbench.session import capture, load_session, save_session


@pytest.fixture
def case(tmp_path):
    """CT_small with a hand label, a model segmentation, three annotations and one key image."""
    import shutil

    src = tmp_path / "CT_small.dcm"
    shutil.copy(CT_SMALL, src)
    doc = Document(read_image(src))
    image = doc.image
    with doc.labels.edit("Brush") as e:
        mask = np.zeros(image.shape[:3], bool)
        mask[0, 20:40, 30:60] = True
        e.paint((slice(0, 1), slice(0, 128), slice(0, 128)), mask[:, :128, :128], 1)
    doc.labels.set_label(1, name="nodule")
    seg = np.zeros(image.shape[:3], np.uint16)
    seg[0, 60:90, 50:80] = 1
    info = RunInfo("ct-organs", "CT organs", "2.1.0", SHA, "CPUExecutionProvider", "segmentation", str(src),
                   {"inference": 12.0}, [0])
    doc.add_result(SegmentationResult(info, seg, [SegmentationClass(1, "liver", "#ff7f0e", int(seg.sum()))]))
    store = annotations_of(doc)
    store.add(0, (10.0, 10.0), (50.0, 10.0))
    store.add_annotation(EllipseRoi(0, 0, (30.0, 20.0), (60.0, 40.0), label="ROI one"))
    store.add_annotation(TextArrow(0, 0, (40.0, 30.0), (5.0, 5.0), label="look here"))
    rgb = np.zeros((90, 120, 3), np.uint8)
    rgb[20:70, 30:90] = (255, 212, 0)
    key_images_of(doc).add(KeyImage(rgb, 0, "nodule with ROI"))
    return doc


def test_case_report_holds_findings_statistics_measurements_key_image_and_no_phi(case, tmp_path):
    session = capture(case)
    findings = "Solitary nodule, 18 mm.\nNo effusion."
    files = write_case_report(session, tmp_path / "out", reader="Dr. A. Reader", findings=findings)
    assert sorted(files) == ["report_html", "report_pdf"]
    assert files["report_html"].name == "CT_small_case_report.html"

    html_text = files["report_html"].read_text(encoding="utf-8")
    tags = _parse(html_text)
    assert len(tags.images) == 1 and tags.images[0].startswith("data:image/png;base64,")
    visible = _visible_html(html_text)
    for expected in ("Case report", "Reader\u2019s findings", "Solitary nodule, 18 mm.", "No effusion.",
                     "Dr. A. Reader", "Labels", "nodule", "Result 1: CT organs 2.1.0 (segmentation)", "liver",
                     "Measurements", "ROI one", "look here", "Key image 1: nodule with ROI",
                     "Research use only", "image 1", SHA):
        assert expected in visible, expected
    for phi in PHI:
        assert phi not in visible, phi

    # the label's statistics are those of numpy over its voxels (HU)
    image = session.image
    hu = image.data[0][session.label_data[0] == 1].astype(np.float64)
    report = build_case_report(session, reader="Dr. A. Reader", findings=findings)
    row = report.findings.rows[0]
    assert report.findings.columns[4:] == ["Mean (HU)", "SD (HU)", "Min (HU)", "Max (HU)"]
    assert row[0] == "nodule" and row[2] == f"{hu.size:,}"
    assert row[4:] == [f"{hu.mean():,.1f}", f"{hu.std():,.1f}", f"{hu.min():,.1f}", f"{hu.max():,.1f}"]
    assert row[3] == f"{hu.size * image.pixel_area_mm2:,.1f}"  # area in mm² of one slice
    ruler = Ruler(1, 0, (10.0, 10.0), (50.0, 10.0))
    measurements = dict(report.tables)["Measurements"]
    assert measurements.rows[0] == ["1", "Ruler", "1", f"{ruler.length_mm(image.spacing):.1f} mm", ""]
    assert "mean" in measurements.rows[1][3] and measurements.rows[2][3:] == ["note", "look here"]

    text = pdf_text(files["report_pdf"].read_bytes())
    for expected in ("CASE REPORT", "Solitary nodule, 18 mm.", "No effusion.", "Dr. A. Reader", "MEASUREMENTS",
                     "ROI one", "look here", "Key image 1", "KEY IMAGES", "liver", "Research use only"):
        assert expected.lower() in text.lower(), expected
    for phi in PHI:
        assert phi not in text, phi
    import io

    import pypdf

    pages = pypdf.PdfReader(io.BytesIO(files["report_pdf"].read_bytes())).pages
    assert sum(len(page.images) for page in pages) == 1  # the key image


def test_key_images_round_trip_through_the_session_and_an_empty_case_reports_none(case, tmp_path):
    save_session(case, tmp_path / "c.wbsession")
    back, _view = load_session(tmp_path / "c.wbsession")
    [item] = back.key_images.items
    np.testing.assert_array_equal(item.rgb, case.key_images.items[0].rgb)
    assert (item.z, item.caption) == (0, "nodule with ROI")

    empty = Document(read_image(tmp_path / "CT_small.dcm"))
    report = build_case_report(capture(empty))
    assert report.pictures == [] and report.findings.rows == [] and not report.narrative
    assert report.summary.startswith("0 labels, 0 model results, 0 measurements, 0 key images")
    text = pdf_text(write_case_report(capture(empty), tmp_path / "e", formats=("pdf",))["report_pdf"].read_bytes())
    assert "none picked" in text


def test_adding_and_removing_a_key_image_are_undo_steps(case):
    store, undo = case.key_images, case.undo
    first = store.items[0]
    second = store.add(KeyImage(np.zeros((4, 4, 3), np.uint8), 0, "second"))
    assert undo.undo_name == "Add key image 2" and not undo.is_clean
    store.remove(0)
    assert store.items == [second]
    undo.undo()
    assert store.items == [first, second]
    undo.undo()
    assert store.items == [first]
    undo.redo()
    assert store.items == [first, second]
    with pytest.raises(WorkbenchError, match="uint8"):
        KeyImage(np.zeros((4, 4), np.float32), 0)


def test_show_name_names_the_image(case):
    report = build_case_report(capture(case), show_name=True)
    assert report.image_fields[0] == ("Image", "CT_small") and "file name" in report.footer
