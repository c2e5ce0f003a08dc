"""``workbench pacs`` against a real Orthanc (tests/orthanc_server.py): echo, find at each level, get by
C-GET and C-MOVE, send a SEG and an encapsulated PDF and find them back, DICOMweb search/retrieve/store."""
from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.cli import main


def run(capsys, *argv):
    code = main(["pacs", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_echo_by_name_and_by_address(orthanc, pacs_env, capsys):
    code, out, err = run(capsys, "echo", "test")
    assert code == 0 and "OK" in out and err == ""
    code, out, _ = run(capsys, "echo", orthanc.spec)
    assert code == 0 and out.startswith(f"{orthanc.spec}: OK")


def test_find_at_each_level(orthanc, pacs_env, capsys):
    code, out, _ = run(capsys, "find", "test", "--level", "patient", "--json")
    assert code == 0
    patients = {m["PatientID"]: m for m in json.loads(out)}
    assert {"PAT1", "PAT2"} <= set(patients)  # (other tests may add patients)
    assert patients["PAT1"]["PatientName"] == "Doe^Jane" and patients["PAT1"]["PatientBirthDate"] == "19700101"

    code, out, _ = run(capsys, "find", "test", "--patient-name", "Doe*", "--json")
    studies = json.loads(out)
    assert [s["StudyInstanceUID"] for s in studies] == [orthanc.ct.study_uid]
    assert studies[0]["AccessionNumber"] == "ACC001" and studies[0]["QueryRetrieveLevel"] == "STUDY"

    for args, want in ((("--accession", "ACC002"), orthanc.mr.study_uid),
                       (("--study-date", "20240301-20240331"), orthanc.mr.study_uid),
                       (("--study-date", "-20240131"), orthanc.ct.study_uid),
                       (("--modality", "CT", "--patient-id", "PAT1"), orthanc.ct.study_uid)):
        code, out, _ = run(capsys, "find", "test", *args, "--json")
        assert code == 0 and [s["StudyInstanceUID"] for s in json.loads(out)] == [want], args

    code, out, _ = run(capsys, "find", "test", "--level", "series", "--modality", "MR", "--patient-name", "Roe*",
                       "--json")
    series = json.loads(out)
    assert [s["SeriesInstanceUID"] for s in series] == [orthanc.mr.series_uid]
    assert series[0]["NumberOfSeriesRelatedInstances"] == 4 and series[0]["Modality"] == "MR"

    code, out, err = run(capsys, "find", "test", "--level", "series", "--study", orthanc.ct.study_uid)
    assert code == 0 and orthanc.ct.series_uid in out and "1 match(es)" in err


def test_get_by_c_get_and_c_move(orthanc, pacs_env, tmp_path, capsys):
    from workbench.io import read_image

    code, out, _ = run(capsys, "get", "test", "--study", orthanc.ct.study_uid, "-o", str(tmp_path / "get"))
    assert code == 0, out
    folder = tmp_path / "get" / orthanc.ct.series_uid
    assert f"{folder}: 6 instance(s)" in out
    image = read_image(folder)
    assert image.shape[:3] == (6, 16, 16) and image.modality == "CT"
    # again: already complete, nothing asked for
    code, out, _ = run(capsys, "get", "test", "--study", orthanc.ct.study_uid, "-o", str(tmp_path / "get"))
    assert code == 0 and "6 instance(s)" in out

    code, out, _ = run(capsys, "get", "test", "--study", orthanc.mr.study_uid, "--series", orthanc.mr.series_uid,
                       "-o", str(tmp_path / "move"), "--move")
    assert code == 0, out
    moved = tmp_path / "move" / orthanc.mr.series_uid
    assert len(list(moved.glob("*.dcm"))) == 4 and not list(moved.glob(".*.dcm"))
    assert read_image(moved).shape[:3] == (4, 16, 16)


def test_c_get_writes_the_sources_data_sets_and_refetches_what_a_power_loss_cut_short(orthanc, pacs_env, tmp_path,
                                                                                    capsys):
    import pydicom

    code, out, err = run(capsys, "get", "test", "--study", orthanc.ct.study_uid, "-o", str(tmp_path / "r"))
    assert code == 0, err
    by_uid = {pydicom.dcmread(f).SOPInstanceUID: pydicom.dcmread(f) for f in orthanc.ct.files}
    folder = tmp_path / "r" / orthanc.ct.series_uid
    got = sorted(folder.glob("*.dcm"))
    assert len(got) == len(by_uid)
    for path in got:
        ds = pydicom.dcmread(path)
        source = by_uid[path.stem]
        assert ds.file_meta.MediaStorageSOPInstanceUID == path.stem == ds.SOPInstanceUID
        assert ds.PixelData == source.PixelData and ds.PatientName == source.PatientName
    # nothing is fsynced: what a power loss does to files whose data had not reached the disk (ext4/XFS:
    # shorter or empty), on a series already marked complete -- the next get notices and fetches them again
    cut, emptied, kept = got[0], got[1], got[2:]
    cut.write_bytes(cut.read_bytes()[:1000])
    emptied.write_bytes(b"")
    stamps = {p: p.stat().st_mtime_ns for p in kept}
    code, out, err = run(capsys, "get", "test", "--study", orthanc.ct.study_uid, "-o", str(tmp_path / "r"))
    assert code == 0 and f"{folder}: 6 instance(s)" in out, err
    for path in (cut, emptied):
        assert pydicom.dcmread(path).PixelData == by_uid[path.stem].PixelData
    assert {p: p.stat().st_mtime_ns for p in kept} == stamps  # the intact ones were not fetched again


def test_get_and_find_use_one_lean_association_each(orthanc, pacs_env, tmp_path, capsys, monkeypatch):
    from pynetdicom import AE

    from workbench.pacs import upper

    opened, real = [], upper.Association.request.__func__

    def request(cls, *args, **kwargs):
        opened.append(kwargs["called"])
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(upper.Association, "request", classmethod(request))
    monkeypatch.setattr(AE, "associate", lambda *a, **k: pytest.fail("a pynetdicom association"))
    out_dir = tmp_path / "one"
    code, out, err = run(capsys, "get", "test", "--study", orthanc.ct.study_uid, "-o", str(out_dir))
    assert code == 0 and "6 instance(s)" in out, err
    assert opened == ["ORTHANC"]  # the series search and the C-GET
    folder = out_dir / orthanc.ct.series_uid
    for path in sorted(folder.glob("*.dcm"))[:2]:
        path.unlink()
    opened.clear()
    code, out, err = run(capsys, "get", "test", "--study", orthanc.ct.study_uid, "-o", str(out_dir))
    assert code == 0 and f"{folder}: 6 instance(s)" in out, err
    assert opened == ["ORTHANC"]  # resumed: series search, instance search, C-GET of the two missing
    opened.clear()
    code, out, err = run(capsys, "find", "test", "--level", "series", "--patient-id", "PAT2", "--modality", "MR",
                         "--json")
    assert code == 0 and [s["SeriesInstanceUID"] for s in json.loads(out)] == [orthanc.mr.series_uid], err
    assert opened == ["ORTHANC"]  # the studies, then the series of each


def test_send_seg_and_pdf_and_find_them_back(orthanc, pacs_env, tmp_path, capsys):
    from workbench.export.dicom_pdf import write_encapsulated_pdf
    from workbench.export.dicom_seg import write_dicom_seg
    from workbench.io import read_image

    image = read_image(orthanc.ct.files[0].parent)
    labels = np.zeros(image.shape[:3], np.uint8)
    labels[:, 4:10, 4:10] = 1
    out_dir = tmp_path / "results"
    seg = write_dicom_seg(out_dir / "seg.dcm", labels, image, keep_identity=True)  # to join the CT study
    import pydicom

    pdf = write_encapsulated_pdf(out_dir / "report.dcm", b"%PDF-1.4\n%test\n", pydicom.dcmread(orthanc.ct.files[0]))
    before = {p: p.read_bytes() for p in (seg, pdf)}
    code, out, err = run(capsys, "send", "test", str(out_dir))
    assert code == 0 and "sent 2 file(s)" in out, err
    assert {p: p.read_bytes() for p in (seg, pdf)} == before  # sending only reads
    code, out, _ = run(capsys, "find", "test", "--level", "series", "--study", orthanc.ct.study_uid, "--json")
    modalities = sorted(s["Modality"] for s in json.loads(out))
    assert modalities == ["CT", "DOC", "SEG"]


def test_dicomweb_search_retrieve_store(dicomweb, pacs_env, tmp_path, capsys):
    from orthanc_server import make_series

    code, out, _ = run(capsys, "echo", "web")
    assert code == 0 and "OK" in out
    code, out, _ = run(capsys, "find", "web", "--patient-id", "PAT2", "--json")
    assert [s["StudyInstanceUID"] for s in json.loads(out)] == [dicomweb.mr.study_uid]
    code, out, _ = run(capsys, "find", dicomweb.dicomweb_url, "--level", "patient", "--json")
    assert {"PAT1", "PAT2"} <= {p["PatientID"] for p in json.loads(out)}

    code, out, _ = run(capsys, "get", "web", "--study", dicomweb.mr.study_uid, "-o", str(tmp_path / "wado"))
    assert code == 0, out
    got = sorted((tmp_path / "wado" / dicomweb.mr.series_uid).glob("*.dcm"))
    assert len(got) == 4
    import pydicom

    assert {pydicom.dcmread(p).SOPInstanceUID for p in got} == {pydicom.dcmread(p).SOPInstanceUID
                                                               for p in dicomweb.mr.files}

    extra = make_series(tmp_path / "stow", patient_id="PAT3", patient_name="Poe^Web", modality="CT", n=2)
    code, out, err = run(capsys, "send", "web", *map(str, extra.files))
    assert code == 0 and "sent 2 file(s)" in out, err
    code, out, _ = run(capsys, "find", "web", "--level", "series", "--study", extra.study_uid, "--json")
    assert [s["SeriesInstanceUID"] for s in json.loads(out)] == [extra.series_uid]
    assert sorted(dicomweb.series_instances(extra.series_uid)) == sorted(
        pydicom.dcmread(p).SOPInstanceUID for p in extra.files)
