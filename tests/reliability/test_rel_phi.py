"""PHI (issue 11, item 6): distinctive identifiers seeded in every attribute of the PS3.15 basic profile, in
the file names and in the folder path; every de-identified export path runs and every byte it writes is
searched (PDF streams inflated, text extracted with pypdf). The local records that name the input by
design (``<stem>.json`` results, ``*.provenance.json`` sidecars, ``summary.csv``; docs/EXPORT.md,
"What names the patient") are listed and excluded explicitly."""
from __future__ import annotations

import re
import zlib
from pathlib import Path

import onnx_factory as F
import pytest
from rel_helpers import fixtures, run_cli

from workbench.core.document import Document
from workbench.export.deid import BASIC_PROFILE
from workbench.inference.session import clear_session_cache
from workbench.io import read_image
from workbench.session import save_session

FOLDER_MARK = "PHIFOLDERSMITH"
FILE_MARK = "PHIFILEDOE"
TEXT_MARK = "PHIX"
UID_ROOT = "1.2.999.4242."
DATE_MARK = "18880808"
NUMBER_MARK = "98765.4321"
LOCAL_RECORDS = (".provenance.json", "summary.csv")


def _value(vr: str, k: int):
    if vr == "PN":
        return f"{TEXT_MARK}{k}^NAME"
    if vr in ("LO", "SH", "LT", "ST", "UT", "UC", "CS", "AE"):
        return f"{TEXT_MARK}{k}"[:16]
    if vr == "DA":
        return DATE_MARK
    if vr == "DT":
        return DATE_MARK + "101010"
    if vr == "TM":
        return "101010"
    if vr == "UI":
        return f"{UID_ROOT}{k}"
    if vr in ("DS",):
        return NUMBER_MARK
    if vr == "AS":
        return "088Y"
    return None


def _seed(ds) -> list[str]:
    """Set every basic-profile attribute we can give a value; returns the keywords seeded."""
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    seeded = []
    for k, keyword in enumerate(sorted(BASIC_PROFILE)):
        tag = tag_for_keyword(keyword)
        if tag is None or keyword in ("SOPInstanceUID", "MediaStorageSOPInstanceUID", "SeriesInstanceUID",
                                      "StudyInstanceUID", "FrameOfReferenceUID", "DataSetTrailingPadding"):
            continue  # the series needs its own consistent UIDs: seeded by the fixture below
        vr = dictionary_VR(tag).split(" or ")[0]
        if vr == "SQ":
            from pydicom.dataset import Dataset

            item = Dataset()
            item.CodeMeaning = f"{TEXT_MARK}SQ{k}"
            item.add_new(0x0040A123, "PN", f"{TEXT_MARK}SQ{k}^X")  # PersonName
            ds.add_new(tag, "SQ", [item])
            seeded.append(keyword)
            continue
        value = _value(vr, k)
        if value is None:
            continue
        if keyword == "SourceApplicationEntityTitle":
            continue  # file meta, set below
        if keyword == "PatientSex":
            value = "O"  # an enumerated value: a marker would make the header invalid
        ds.add_new(tag, vr, value)
        seeded.append(keyword)
    return seeded


@pytest.fixture
def phi_series(tmp_path):
    import pydicom

    folder = tmp_path / f"{FOLDER_MARK}^John" / "CT"
    uid = lambda k: f"{UID_ROOT}77.{k}"  # noqa: E731
    paths, _ = fixtures.write_dicom_series(folder, n=3, rows=16, cols=12, series_uid=uid(1), study_uid=uid(2))
    renamed = []
    for k, p in enumerate(paths):
        ds = pydicom.dcmread(p)
        seeded = _seed(ds)
        ds.SOPInstanceUID = uid(100 + k)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.FrameOfReferenceUID = uid(3)
        ds.file_meta.SourceApplicationEntityTitle = f"{TEXT_MARK}AE"
        target = p.with_name(f"{FILE_MARK}_{k}.dcm")
        ds.save_as(target)
        p.unlink()
        renamed.append(target)
    assert len(seeded) > 150  # nearly the whole profile carries a marker
    return folder, renamed


def _plain_bytes(path: Path) -> list[bytes]:
    data = path.read_bytes()
    chunks = [data]
    if path.suffix == ".pdf":
        for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
            try:
                chunks.append(zlib.decompress(m.group(1)))
            except zlib.error:
                chunks.append(m.group(1))
        from pypdf import PdfReader

        reader = PdfReader(str(path))
        chunks += [page.extract_text().encode() for page in reader.pages]
        chunks.append(repr(reader.metadata).encode())
    if path.name.endswith(".gz"):
        import gzip

        chunks.append(gzip.decompress(data))
    return chunks


def _leaks(path: Path) -> list[str]:
    found = []
    for chunk in _plain_bytes(path):
        for mark in (FOLDER_MARK, FILE_MARK, TEXT_MARK, UID_ROOT, DATE_MARK, NUMBER_MARK):
            if mark.encode() in chunk or mark.encode("utf-16-le") in chunk:
                found.append(mark)
    return sorted(set(found))


def test_every_export_path_is_free_of_the_seeded_identifiers(capsys, tmp_path, phi_series):
    clear_session_cache()
    folder, _files = phi_series
    doc = Document(read_image(folder))
    with doc.labels.edit("Brush") as e:
        e.assign((slice(0, 2), slice(2, 8), slice(2, 6)), 1)
    doc.labels.set_label(1, name="lesion")
    session = save_session(doc, tmp_path / "case.wbsession")
    out = tmp_path / "exports"
    for option, target in (("--mask", out / "seg.dcm"), ("--mask", out / "mask.nii.gz"), ("--mask", out / "mask.tif"),
                           ("--measurements", out / "m.csv"), ("--report", out / "report")):
        code, _, err = run_cli(capsys, "export", session, option, target)
        assert code == 0, err
    seg = {"id": "seg", "task": "segmentation",
           "input": {"color": "gray", "resize": "stretch", "size": [16, 16], "intensity": {"window": "dicom"}},
           "output": {"classes": [{"name": "background"}, {"name": "thing"}]}}
    plugin = F.write_plugin(tmp_path / "plugins" / "seg", F.threshold_segmenter(1, size=[16, 16]), seg)
    restore = {"id": "den", "task": "restoration",
               "input": {"color": "gray", "resize": "stretch", "size": [16, 16], "intensity": {"scale": 0.001}},
               "output": {"range": [0, 1]}}
    restorer = F.write_plugin(tmp_path / "plugins" / "den", F.affine([1, 1, 16, 16], 1.0, 0.0), restore)
    for p in (plugin, restorer):
        code, _, err = run_cli(capsys, "predict", "-m", p, folder, "--report", "-o", out / f"predict_{p.name}")
        assert code == 0, err
        code, _, err = run_cli(capsys, "batch", "-m", p, folder.parent, "-r", "--report", "-o", out / f"batch_{p.name}")
        assert code == 0, err
    written = [p for p in out.rglob("*") if p.is_file()]
    kinds = {p.suffix for p in written}
    assert {".dcm", ".gz", ".tif", ".csv", ".html", ".pdf", ".png"} <= kinds, kinds
    checked, leaks = 0, {}
    for path in written:
        if path.name.endswith(LOCAL_RECORDS) or (path.suffix == ".json" and not path.name.endswith("_report.json")):
            # local records: they name the input by design (DESIGN.md section 3) -- never the DICOM identity
            found = [m for m in _leaks(path) if m not in (FOLDER_MARK, FILE_MARK)]
            if found:
                leaks[str(path)] = found
            continue
        checked += 1
        found = _leaks(path)
        if found:
            leaks[str(path)] = found
    assert checked >= 15, sorted(p.name for p in written)
    assert not leaks, leaks
    # the test can fail: the sources themselves carry every marker
    assert set(_leaks(_files[0])) >= {TEXT_MARK, UID_ROOT, DATE_MARK, NUMBER_MARK}


def test_keep_identity_keeps_it(capsys, tmp_path, phi_series):
    import pydicom

    folder, _ = phi_series
    doc = Document(read_image(folder))
    with doc.labels.edit("Brush") as e:
        e.assign((slice(0, 2), slice(2, 8), slice(2, 6)), 1)
    session = save_session(doc, tmp_path / "case.wbsession")
    code, _, err = run_cli(capsys, "export", session, "--mask", tmp_path / "seg.dcm", "--keep-identity")
    assert code == 0, err
    ds = pydicom.dcmread(tmp_path / "seg.dcm", stop_before_pixels=True)
    assert str(ds.PatientName).startswith(TEXT_MARK) and ds.StudyInstanceUID.startswith(UID_ROOT)
