"""Sessions (*.wbsession): round trips, damaged files, missing/changed sources, and the exports of a session."""
from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from workbench.core.document import Document
from workbench.core.errors import ExportError, ImageReadError, WorkbenchError
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
from workbench.export.session_exports import export_label_map, export_measurements, export_reports
from workbench.io import read_image
from workbench.session import SessionError, capture, load_session, read_session, save_session, source_fingerprint

_spec = importlib.util.spec_from_file_location("io_fixtures_session",
                                               Path(__file__).parents[1] / "data" / "io_fixtures.py")
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)


def _info(task: str, plugin: str = "test") -> RunInfo:
    return RunInfo(plugin_id=plugin, plugin_name=f"{plugin} model", plugin_version="1.2.3", sha256="ab" * 32,
                   provider="CPUExecutionProvider", task=task, source_path="x", timing_ms={"inference": 1.5},
                   slice_indices=[0, 2])


@pytest.fixture
def stack(tmp_path) -> Path:
    """A (3, 20, 24) uint16 stack."""
    rng = np.random.default_rng(1)
    path = tmp_path / "data" / "stack.npy"
    path.parent.mkdir()
    np.save(path, rng.integers(0, 4000, (3, 20, 24)).astype(np.uint16))
    return path


def _painted_document(path: Path) -> Document:
    doc = Document(read_image(path))
    with doc.labels.edit("Brush") as e:
        e.paint((slice(0, 2), slice(2, 9), slice(3, 11)), np.ones((2, 7, 8), bool), 2)
        e.paint((slice(2, 3), slice(10, 15), slice(0, 4)), np.ones((1, 5, 4), bool), 300)
    doc.labels.set_label(2, name="lesion", color="#ff0000")
    doc.labels.set_label(300, name="bone", color="#00ff00", visible=False)
    doc.labels.ensure_label(7, "unused", "#0000ff")  # in the table, not in the map
    return doc


def _all_results(doc: Document) -> list:
    shape = doc.image.shape
    mask = np.zeros(shape, np.uint16)
    mask[1, 3:6, 4:9] = 1
    seg = SegmentationResult(_info("segmentation", "seg"), mask,
                             [SegmentationClass(1, "organ", "#123456", pixels=15, area_mm2=None)])
    det = DetectionResult(_info("detection", "det"), [Detection(1, "face", 0.875, (1.0, 2.5, 10.0, 12.0), 2),
                                                      Detection(0, "bg", 0.25, (0.0, 0.0, 3.0, 3.0), 0)])
    cls = ClassificationResult(_info("classification", "cls"), np.array([0.1, 0.7, 0.2], np.float32),
                               ["good", "noisy", "blurred"], [ClassScore(1, "noisy", 0.7)],
                               slice_scores=np.array([[0.1, 0.8, 0.1], [0.1, 0.6, 0.3]], np.float32))
    restored = ImageVolume(np.arange(3 * 40 * 48, dtype=np.float32).reshape(3, 40, 48), spacing=(1, 0.5, 0.5),
                           window=(100.0, 50.0), spacing_known=True)
    res = RestorationResult(_info("restoration", "sr"), restored, scale=2,
                            extra={"note": "ok", "array": np.arange(3), "obj": object()})
    return [seg, det, cls, res]


# -- round trips ----------------------------------------------------------------------------------------
def test_round_trip_labels_table_view_and_every_result_type(tmp_path, stack):
    doc = _painted_document(stack)
    for r in _all_results(doc):
        doc.add_result(r)
    view = {"window": [1000.0, 500.0], "slice_index": 2, "invert": True, "label_styles": {"2": {"opacity": 0.3}}}
    out = save_session(doc, tmp_path / "case", view=view)
    assert out.name == "case.wbsession" and out.is_file()

    loaded, loaded_view = load_session(out)
    assert loaded_view == view
    assert loaded.image.shape == doc.image.shape and np.array_equal(loaded.image.data, doc.image.data)
    assert loaded.labels.data.dtype == np.uint16
    assert np.array_equal(loaded.labels.data, doc.labels.data)
    table = {v: (lab.name, lab.color, lab.visible) for v, lab in loaded.labels.labels.items()}
    assert table == {2: ("lesion", "#ff0000", True), 300: ("bone", "#00ff00", False), 7: ("unused", "#0000ff", True)}
    # the undo history is not saved
    assert not loaded.undo.can_undo and not loaded.undo.can_redo

    seg, det, cls, res = loaded.results
    o_seg, o_det, o_cls, o_res = doc.results
    for new, old in zip(loaded.results, doc.results):
        assert type(new) is type(old)
        assert new.info == old.info  # full provenance: id, version, sha256, provider, timing, slices
    assert np.array_equal(seg.mask, o_seg.mask) and seg.classes == o_seg.classes
    assert det.detections == o_det.detections
    assert np.array_equal(cls.scores, o_cls.scores) and cls.labels == o_cls.labels and cls.top == o_cls.top
    assert np.array_equal(cls.slice_scores, o_cls.slice_scores)
    assert res.scale == 2 and np.array_equal(res.image.data, o_res.image.data)
    assert res.image.spacing == (1.0, 0.5, 0.5) and res.image.window == (100.0, 50.0) and res.image.spacing_known
    assert res.extra == {"note": "ok", "array": [0, 1, 2]}  # non-JSON extras are dropped (documented)


def test_empty_label_map_stores_no_array_and_loads_as_zeros(tmp_path, stack):
    doc = Document(read_image(stack))
    out = save_session(doc, tmp_path / "empty.wbsession")
    with zipfile.ZipFile(out) as zf:
        assert "labels.npz" not in zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["schema_version"] == 1 and manifest["labels"]["file"] is None
    assert manifest["source"]["relative"] == "data/stack.npy"
    assert manifest["source"]["shape"] == [3, 20, 24] and manifest["source"]["dtype"] == "uint16"
    loaded, view = load_session(out)
    assert view == {} and not loaded.labels.data.any() and loaded.labels.labels == {}


def test_session_moved_with_its_image_is_found_by_the_relative_path(tmp_path, stack):
    doc = _painted_document(stack)
    out = save_session(doc, tmp_path / "case.wbsession")
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.move(str(tmp_path / "data"), str(moved / "data"))
    shutil.move(str(out), str(moved / "case.wbsession"))
    loaded, _ = load_session(moved / "case.wbsession")
    assert loaded.image.path == (moved / "data" / "stack.npy").resolve()
    assert np.array_equal(loaded.labels.data, doc.labels.data)


def test_failed_save_keeps_the_previous_session(tmp_path, stack):
    doc = _painted_document(stack)
    out = save_session(doc, tmp_path / "case.wbsession")
    before = out.read_bytes()
    doc.results.append(object())  # not a result type: the save fails half-way
    with pytest.raises(SessionError, match="cannot save a result of type object"):
        save_session(doc, out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["case.wbsession"]  # no temp file left


def test_capture_needs_an_image_with_a_source_file():
    with pytest.raises(SessionError, match="no image is open"):
        capture(Document())
    with pytest.raises(SessionError, match="no source file"):
        capture(Document(ImageVolume(np.zeros((4, 4), np.uint8))))


def test_capture_copies_the_label_map(stack):
    doc = _painted_document(stack)
    before = doc.labels.data.copy()
    snap = capture(doc)
    assert np.array_equal(snap.label_data, before) and snap.label_data is not doc.labels.data
    doc.labels.data[:] = 0
    doc.labels.data[-1] = 9  # later edits do not reach the snapshot
    assert np.array_equal(snap.label_data, before)


def test_capture_of_an_empty_label_map_holds_no_array(stack):
    doc = Document(read_image(stack))
    assert capture(doc).label_data is None
    with doc.labels.edit("Brush") as e:  # one labelled slice of three: the others stay zero in the copy
        e.paint((slice(1, 2), slice(0, 3), slice(0, 3)), np.ones((1, 3, 3), bool), 5)
    snap = capture(doc).label_data
    assert snap.sum() == 45 and not snap[0].any() and not snap[2].any()


# -- damaged session files --------------------------------------------------------------------------------
def _one_line_error(exc: WorkbenchError, name: str) -> None:
    text = str(exc)
    assert "\n" not in text and name in text


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "no_manifest", "bad_json", "wrong_format",
                                    "future_schema", "crc"])
def test_damaged_session_is_one_clear_error(tmp_path, stack, damage):
    doc = _painted_document(stack)
    doc.add_result(_all_results(doc)[0])
    out = save_session(doc, tmp_path / "case.wbsession")
    raw = out.read_bytes()
    if damage == "garbage":
        out.write_bytes(b"hello, not a zip" * 10)
    elif damage == "truncated":
        out.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":
        out.write_bytes(b"")
    else:
        with zipfile.ZipFile(out) as zf:
            entries = {n: zf.read(n) for n in zf.namelist()}
        manifest = json.loads(entries["manifest.json"])
        if damage == "no_manifest":
            del entries["manifest.json"]
        elif damage == "bad_json":
            entries["manifest.json"] = b"{not json"
        elif damage == "wrong_format":
            entries["manifest.json"] = json.dumps({"format": "something-else"}).encode()
        elif damage == "future_schema":
            manifest["schema_version"] = 99
            entries["manifest.json"] = json.dumps(manifest).encode()
        with zipfile.ZipFile(out, "w") as zf:
            for n, data in entries.items():
                zf.writestr(n, data)
        if damage == "crc":
            # flip one byte inside the (stored) label npz: the zip CRC check must catch it
            blob = bytearray(out.read_bytes())
            start = bytes(blob).index(entries["labels.npz"][:64]) + 200
            blob[start] ^= 0xFF
            out.write_bytes(bytes(blob))
    with pytest.raises(SessionError) as info:
        read_session(out)
    _one_line_error(info.value, "case.wbsession")
    if damage == "future_schema":
        assert "schema_version 99" in str(info.value)


def test_missing_session_file(tmp_path):
    with pytest.raises(SessionError, match="no such session file"):
        read_session(tmp_path / "nope.wbsession")


# -- the source image -----------------------------------------------------------------------------------
def test_missing_source_names_the_file(tmp_path, stack):
    out = save_session(_painted_document(stack), tmp_path / "case.wbsession")
    stack.unlink()
    with pytest.raises(ImageReadError) as info:
        load_session(out)
    _one_line_error(info.value, "stack.npy")
    assert "missing" in str(info.value)


def test_changed_source_shape_is_refused_even_when_allowed(tmp_path, stack):
    out = save_session(_painted_document(stack), tmp_path / "case.wbsession")
    np.save(stack, np.zeros((2, 20, 24), np.uint16))
    with pytest.raises(ImageReadError) as info:
        load_session(out)
    _one_line_error(info.value, "stack.npy")
    assert "changed" in str(info.value)
    with pytest.raises(ImageReadError, match=r"saved for \(3, 20, 24\)"):
        load_session(out, allow_changed_source=True)


def test_changed_content_same_shape_is_refused_unless_allowed(tmp_path, stack):
    doc = _painted_document(stack)
    out = save_session(doc, tmp_path / "case.wbsession")
    np.save(stack, np.ones((3, 20, 24), np.uint16))  # same size on disk, other pixels
    with pytest.raises(ImageReadError, match="content differs"):
        load_session(out)
    loaded, _ = load_session(out, allow_changed_source=True)
    assert np.array_equal(loaded.labels.data, doc.labels.data)


def test_a_touched_but_identical_source_is_accepted(tmp_path, stack):
    import os

    painted = _painted_document(stack)
    out = save_session(painted, tmp_path / "case.wbsession")
    os.utime(stack, (1_000_000, 1_000_000))  # a copy changes the mtime, not the content
    doc, _view = load_session(out)
    assert doc.image.path == stack and np.array_equal(doc.labels.data, painted.labels.data)
    assert doc.image.data.shape == painted.image.data.shape


def test_fingerprint_of_a_folder_counts_files(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    (folder / "a").write_bytes(b"x" * 10)
    first = source_fingerprint(folder)
    (folder / "b").write_bytes(b"y" * 5)
    second = source_fingerprint(folder)
    assert first["kind"] == "folder" and first["n_files"] == 1 and second["n_files"] == 2
    assert second["size"] == 15 and first["sha256_head"] != second["sha256_head"]


# -- exports ----------------------------------------------------------------------------------------------
def test_export_stack_as_nifti_keeps_values_and_geometry(tmp_path, stack):
    import nibabel as nib

    doc = _painted_document(stack)
    session = read_session(save_session(doc, tmp_path / "case.wbsession"))
    written = export_label_map(session, tmp_path / "out" / "mask.nii.gz")
    assert [p.name for p in written] == ["mask.nii.gz", "mask.nii.gz.provenance.json"]
    back = read_image(written[0])
    assert np.array_equal(back.data, doc.labels.data)
    assert np.allclose(nib.load(written[0]).affine, np.diag([-1.0, -1.0, 1.0, 1.0]))
    prov = json.loads(written[1].read_text())
    assert prov["source"]["path"] == str(stack.resolve()) and prov["session"].endswith("case.wbsession")
    assert prov["source"]["fingerprint"]["size"] == stack.stat().st_size


def test_export_stack_as_tiff_and_png_refused_for_a_stack(tmp_path, stack):
    doc = _painted_document(stack)
    doc.add_result(_all_results(doc)[0])
    session = capture(doc)
    tif = export_label_map(session, tmp_path / "mask.tif")[0]
    assert np.array_equal(read_image(tif).data, doc.labels.data)
    prov = json.loads((tmp_path / "mask.tif.provenance.json").read_text())
    assert prov["results"] == [{"task": "segmentation", "plugin_id": "seg", "plugin_name": "seg model",
                                "plugin_version": "1.2.3", "sha256": "ab" * 32, "provider": "CPUExecutionProvider"}]
    with pytest.raises(ExportError, match="PNG holds one slice"):
        export_label_map(session, tmp_path / "mask.png")
    with pytest.raises(ExportError, match="unknown mask format"):
        export_label_map(session, tmp_path / "mask.jpg")
    with pytest.raises(ExportError, match="needs an image read from DICOM"):
        export_label_map(session, tmp_path / "mask.dcm")


def test_export_2d_png_is_16_bit_when_values_need_it(tmp_path):
    import cv2

    src = tmp_path / "img.png"
    cv2.imwrite(str(src), np.full((12, 16), 80, np.uint8))
    doc = Document(read_image(src))
    with doc.labels.edit("b") as e:
        e.paint((slice(0, 1), slice(1, 4), slice(2, 6)), np.ones((1, 3, 4), bool), 1000)
    out = export_label_map(capture(doc), tmp_path / "mask.png")[0]
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and back.shape == (12, 16) and np.array_equal(back, doc.labels.data[0])


def test_export_measurements_csv(tmp_path, stack):
    doc = _painted_document(stack)
    written = export_measurements(capture(doc), tmp_path / "m.csv")
    rows = list(csv.DictReader(written[0].open()))
    assert [(r["label"], r["name"], r["pixels"]) for r in rows] == [("2", "lesion", "112"), ("300", "bone", "20")]
    expected_mean = doc.image.data[doc.labels.data == 2].mean()
    assert float(rows[0]["mean"]) == pytest.approx(expected_mean, rel=1e-5)
    assert json.loads(written[1].read_text())["export"] == "measurements"


def test_export_reports_of_label_map_and_results(tmp_path, stack):
    doc = _painted_document(stack)
    doc.add_result(_all_results(doc)[1])
    written = export_reports(capture(doc), tmp_path / "rep", formats=("html",))
    assert [p.name for p in written] == ["stack_labels_report.html", "stack_1_det_report.html"]
    html = written[0].read_text()
    assert "lesion" in html and "bone" in html and "Label map" in html
    assert "stack.npy" not in html  # de-identified: no file names
    with pytest.raises(ExportError, match="nothing to report"):
        export_reports(capture(Document(read_image(stack))), tmp_path / "rep2")


def test_dicom_seg_round_trip(tmp_path):
    pytest.importorskip("highdicom")
    from workbench.export.dicom_seg import read_dicom_seg_labels

    fixtures.write_dicom_series(tmp_path / "ct", n=4, rows=16, cols=12)
    doc = Document(read_image(tmp_path / "ct"))
    with doc.labels.edit("b") as e:
        e.paint((slice(1, 3), slice(2, 8), slice(3, 9)), np.ones((2, 6, 6), bool), 5)
        e.paint((slice(3, 4), slice(10, 14), slice(1, 4)), np.ones((1, 4, 3), bool), 9)
    doc.labels.set_label(5, name="liver")
    session = read_session(save_session(doc, tmp_path / "ct.wbsession"))
    out = export_label_map(session, tmp_path / "seg.dcm")[0]
    numbers, names = read_dicom_seg_labels(out, session.image)
    assert names == {1: "liver", 2: "label 9"}
    expected = np.select([doc.labels.data == 5, doc.labels.data == 9], [1, 2], 0)
    assert numbers.shape == (4, 16, 12) and np.array_equal(numbers, expected)
    import pydicom

    from workbench.export.deid import replacement_uid

    # de-identified by default (issue 11): UIDs remapped consistently (study and every referenced instance)
    ds = pydicom.dcmread(out, stop_before_pixels=True)
    assert ds.Modality == "SEG" and ds.PatientIdentityRemoved == "YES"
    assert ds.StudyInstanceUID == replacement_uid(session.image.metadata["StudyInstanceUID"])
    refs = {item.ReferencedSOPInstanceUID for s in ds.ReferencedSeriesSequence for item in s.ReferencedInstanceSequence}
    assert refs == {replacement_uid(u) for u in session.image.metadata["sop_instance_uids"]}
    # keep_identity: the original study and instances, for the source PACS
    kept = export_label_map(session, tmp_path / "seg_id.dcm", keep_identity=True)[0]
    ds = pydicom.dcmread(kept, stop_before_pixels=True)
    assert ds.StudyInstanceUID == session.image.metadata["StudyInstanceUID"]
    refs = {item.ReferencedSOPInstanceUID for s in ds.ReferencedSeriesSequence for item in s.ReferencedInstanceSequence}
    assert refs == set(session.image.metadata["sop_instance_uids"])
    assert "PatientIdentityRemoved" not in ds or ds.PatientIdentityRemoved != "YES"
    with pytest.raises(ExportError, match="empty"):
        export_label_map(capture(Document(session.image)), tmp_path / "empty.dcm")
