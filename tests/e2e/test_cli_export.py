"""`workbench export SESSION ...` end to end: a session saved from a document exports its label map, the
measurements and reports; user errors are one line and exit status 2."""
from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.cli import main
from workbench.core.document import Document
from workbench.core.results import RunInfo, SegmentationClass, SegmentationResult
from workbench.io import read_image
from workbench.session import save_session

_spec = importlib.util.spec_from_file_location("io_fixtures_cli_export",
                                               Path(__file__).parents[1] / "data" / "io_fixtures.py")
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr()


@pytest.fixture
def ct_session(tmp_path) -> tuple[Path, Document]:
    """A synthetic 5-slice CT series with a painted label and a model segmentation, saved as a session."""
    fixtures.write_dicom_series(tmp_path / "ct", n=5, rows=16, cols=12)
    doc = Document(read_image(tmp_path / "ct"))
    mask = np.zeros(doc.image.shape, np.uint16)
    mask[1:3, 4:10, 2:8] = 1
    info = RunInfo("organs", "Organs", "2.0.1", "cd" * 32, "CPUExecutionProvider", "segmentation",
                   slice_indices=[0, 1, 2, 3, 4])
    doc.add_result(SegmentationResult(info, mask, [SegmentationClass(1, "kidney", "#aa5500", pixels=72)]))
    with doc.labels.edit("Brush") as e:
        e.assign((slice(3, 5), slice(12, 15), slice(1, 4)), 2)
    doc.labels.ensure_label(1, "kidney", "#aa5500")
    doc.labels.set_label(2, name="cyst")
    for z in range(doc.labels.shape[0]):  # the label map holds the merged segmentation as the GUI would
        doc.labels.data[z][mask[z] > 0] = 1
    path = save_session(doc, tmp_path / "ct.wbsession", view={"window": [40, 400]})
    return path, doc


def test_export_nifti_measurements_and_report(tmp_path, capsys, ct_session):
    import nibabel as nib

    path, doc = ct_session
    out = tmp_path / "out"
    code, io = run_cli(capsys, "export", path, "--mask", out / "ct_mask.nii.gz", "--measurements", out / "m.csv",
                       "--report", out / "report", "--report-format", "html")
    assert code == 0, io.err
    printed = io.out.split()
    assert str(out / "ct_mask.nii.gz") in printed and str(out / "m.csv") in printed
    nifti = nib.load(out / "ct_mask.nii.gz")
    back = read_image(out / "ct_mask.nii.gz")
    assert np.array_equal(back.data, doc.labels.data)
    # the image geometry: DICOM affine (LPS -> RAS) of the source
    assert np.allclose(nifti.affine, np.asarray(doc.image.metadata["affine"]))
    rows = list(csv.DictReader((out / "m.csv").open()))
    assert [(r["label"], r["name"]) for r in rows] == [("1", "kidney"), ("2", "cyst")]
    assert float(rows[0]["volume_mm3"]) == pytest.approx(72 * 0.7 * 0.8 * 2.5, rel=1e-4)
    prov = json.loads((out / "ct_mask.nii.gz.provenance.json").read_text())
    assert prov["results"][0] == {"task": "segmentation", "plugin_id": "organs", "plugin_name": "Organs",
                                  "plugin_version": "2.0.1", "sha256": "cd" * 32, "provider": "CPUExecutionProvider"}
    assert prov["source"]["path"] == str((tmp_path / "ct").resolve()) and prov["session"] == str(path)
    reports = sorted(p.name for p in (out / "report").iterdir())
    assert reports == ["ct_1_organs_report.html", "ct_labels_report.html"]
    assert "2.0.1" in (out / "report" / "ct_1_organs_report.html").read_text()


def test_export_dicom_seg_reads_back(tmp_path, capsys, ct_session):
    pytest.importorskip("highdicom")
    import pydicom

    from workbench.export.dicom_seg import read_dicom_seg_labels

    path, doc = ct_session
    code, io = run_cli(capsys, "export", path, "--mask", tmp_path / "seg.dcm")
    assert code == 0, io.err
    numbers, names = read_dicom_seg_labels(tmp_path / "seg.dcm", doc.image)
    assert names == {1: "kidney", 2: "cyst"}
    assert np.array_equal(numbers, doc.labels.data)
    ds = pydicom.dcmread(tmp_path / "seg.dcm", stop_before_pixels=True)
    assert ds.Modality == "SEG" and ds.SeriesInstanceUID != doc.image.metadata["SeriesInstanceUID"]
    seg_algo = ds.SegmentSequence[0].SegmentAlgorithmType
    assert seg_algo == "SEMIAUTOMATIC"
    assert ds.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmVersion == "2.0.1"


def test_2d_png_export(tmp_path, capsys):
    import cv2

    src = tmp_path / "img.png"
    cv2.imwrite(str(src), np.full((10, 14), 100, np.uint8))
    doc = Document(read_image(src))
    with doc.labels.edit("b") as e:
        e.assign((slice(0, 1), slice(2, 5), slice(3, 9)), 7)
    session = save_session(doc, tmp_path / "img.wbsession")
    code, io = run_cli(capsys, "export", session, "--mask", tmp_path / "mask.png")
    assert code == 0, io.err
    back = cv2.imread(str(tmp_path / "mask.png"), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint8 and np.array_equal(back, doc.labels.data[0])


@pytest.mark.parametrize("case", ["nothing", "missing_session", "corrupt", "missing_source", "bad_suffix",
                                  "png_for_stack"])
def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, ct_session, case):
    path, _ = ct_session
    args: list = ["export", path, "--mask", tmp_path / "m.nii.gz"]
    expect = ""
    if case == "nothing":
        args, expect = ["export", path], "nothing to export"
    elif case == "missing_session":
        args[1], expect = tmp_path / "nope.wbsession", "no such session file"
    elif case == "corrupt":
        path.write_bytes(path.read_bytes()[:100])
        expect = "not a valid Workbench session"
    elif case == "missing_source":
        for f in (tmp_path / "ct").iterdir():
            f.unlink()
        (tmp_path / "ct").rmdir()
        expect = "source image is missing"
    elif case == "bad_suffix":
        args[3], expect = tmp_path / "m.jpg", "unknown mask format"
    elif case == "png_for_stack":
        args[3], expect = tmp_path / "m.png", "PNG holds one slice"
    code, io = run_cli(capsys, *args)
    assert code == 2
    err = io.err.strip()
    assert err.startswith("workbench: error:") and expect in err and "\n" not in err
    assert "Traceback" not in err


def test_console_entry_point_runs(tmp_path, ct_session):
    path, _ = ct_session
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "export", str(path), "--measurements",
                           str(tmp_path / "m.csv")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "m.csv").is_file() and (tmp_path / "m.csv.provenance.json").is_file()
