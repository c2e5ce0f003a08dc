"""De-identification: report fields from ImageVolume.metadata and de-identified pydicom datasets."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from workbench.core.errors import ExportError
from workbench.export import deid
from workbench.io import read_image

CT_SMALL = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
# identifying values CT_small.dcm holds
PHI = ("CompressedSamples", "1CT1", "ABCD1234", "JFK IMAGING", "CT01_OC0", "20040119", "19970430",
       "1.3.6.1.4.1.5962")


@pytest.fixture(scope="module")
def ct():
    return read_image(CT_SMALL)


def _all_text(ds: Dataset) -> str:
    """Every value of every element at every level, file meta included, as one string."""
    parts: list[str] = []

    def visit(d: Dataset) -> None:
        for elem in d:
            if elem.VR == "SQ":
                for item in elem.value:
                    visit(item)
            elif elem.VR not in ("OB", "OW", "OF", "UN"):
                parts.append(str(elem.value))

    visit(ds)
    if getattr(ds, "file_meta", None) is not None:
        visit(ds.file_meta)
    return "\n".join(parts)


# -- report fields ------------------------------------------------------------------------------------
def test_report_fields_keep_acquisition_facts_and_nothing_identifying(ct):
    fields = deid.deidentify_metadata(ct.metadata, salt="s")
    assert fields["format"] == "DICOM" and fields["Modality"] == "CT"
    assert fields["Manufacturer"] == "GE MEDICAL SYSTEMS" and fields["ManufacturerModelName"] == "RHAPSODE"
    assert fields["PixelSpacing"] == "0.661468 \\ 0.661468" and fields["SliceThickness"] == "5"
    assert fields["Pseudonym"].startswith("ANON-") and len(fields["Pseudonym"]) == 15
    assert fields["Dates"] == "removed" and "StudyDate" not in fields
    text = repr(fields)
    for value in PHI + ("PatientName", "Institution"):
        assert value not in text, value
    assert set(fields) <= set(deid.REPORT_FIELDS) | set(deid.DERIVED_LABELS)
    assert deid.field_label("KVP") == "kVp" and deid.field_label("Pseudonym") == "Patient pseudonym"


def test_pseudonym_is_stable_per_salt_and_differs_between_salts(ct):
    a = deid.deidentify_metadata(ct.metadata, salt="site-a")["Pseudonym"]
    assert deid.deidentify_metadata(ct.metadata, salt="site-a")["Pseudonym"] == a
    assert deid.deidentify_metadata(ct.metadata, salt="site-b")["Pseudonym"] != a
    # the pseudonym depends on the patient, not on the file: same ID elsewhere, same pseudonym
    assert deid.pseudonym("1CT1", salt="site-a") == a and deid.pseudonym("1CT2", salt="site-a") != a


def test_shifted_study_date_moves_back_by_the_patients_offset(ct):
    fields = deid.deidentify_metadata(ct.metadata, salt="s", dates="shift")
    days = deid.date_shift_days("1CT1", salt="s")
    assert 1 <= days <= deid.MAX_SHIFT_DAYS
    assert fields["StudyDate"] == (dt.date(2004, 1, 19) - dt.timedelta(days=days)).isoformat()
    assert fields["Dates"].startswith("shifted")
    with pytest.raises(ValueError, match="dates must be one of"):
        deid.deidentify_metadata(ct.metadata, dates="keep")  # type: ignore[arg-type]


@pytest.mark.parametrize("metadata", [{}, {"format": "PNG"}, {"format": "NIfTI", "descrip": "Jane Doe 1970",
                                                               "affine": [[1.0]]},
                                      {"format": "TIFF", "tiff_axes": "YX", "path": "/data/Doe_Jane.tif"}])
def test_non_dicom_metadata_gives_only_the_format(metadata):
    fields = deid.deidentify_metadata(metadata, salt="s")
    assert fields == ({"format": metadata["format"]} if "format" in metadata else {})


def test_burned_in_annotation_is_flagged(ct):
    meta = dict(ct.metadata)
    meta["dicom"] = {**meta["dicom"], "BurnedInAnnotation": "YES"}
    assert "BurnedInAnnotation" in deid.deidentify_metadata(meta, salt="s")
    assert "BurnedInAnnotation" not in deid.deidentify_metadata(ct.metadata, salt="s")


def test_malformed_values_are_displayed_safely():
    meta = {"format": "DICOM", "dicom": {"Modality": "  MR ", "KVP": 120.0, "ImageType": ["DERIVED", "", "M"],
                                         "PatientName": "", "PatientID": None}}
    fields = deid.deidentify_metadata(meta, salt="s", dates="shift")
    assert fields["Modality"] == "MR" and fields["KVP"] == "120" and fields["ImageType"] == "DERIVED \\ M"
    assert "Pseudonym" not in fields and "StudyDate" not in fields  # no patient, no date: nothing invented


# -- helpers --------------------------------------------------------------------------------------------
def test_every_profile_keyword_is_a_dicom_keyword():
    unknown = [k for k in list(deid.BASIC_PROFILE) + list(deid.REPORT_FIELDS) if tag_for_keyword(k) is None]
    assert unknown == []
    assert set(deid.BASIC_PROFILE.values()) == {"X", "Z", "U"}


@pytest.mark.parametrize("value,days,expected", [
    ("20040119", 19, "20031231"), ("20000301", 1, "20000229"), ("20040119120000.5+0100", 1, "20040118120000.5+0100"),
    ("", 5, ""), ("2004", 5, ""), ("20041340", 5, ""), ("abcdefgh", 1, ""), ("00010101", 1, "")])
def test_shift_date(value, days, expected):
    assert deid.shift_date(value, days) == expected


def test_replacement_uid_is_valid_deterministic_and_salted():
    uid = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
    new = deid.replacement_uid(uid, salt="s")
    assert new == deid.replacement_uid(uid + " ", salt="s") and new != deid.replacement_uid(uid, salt="t")
    assert new.startswith("2.25.") and len(new) <= 64 and pydicom.uid.UID(new).is_valid


def test_installation_salt_is_created_once_and_env_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.delenv(deid.SALT_ENV, raising=False)
    deid._salt_cache.clear()
    salt = deid.installation_salt()
    path = tmp_path / "cfg" / deid.SALT_FILE
    assert path.is_file() and len(salt) == 64
    if os.name == "posix":
        assert path.stat().st_mode & 0o077 == 0  # a secret: the user's only
    deid._salt_cache.clear()
    assert deid.installation_salt() == salt  # read back, not regenerated
    monkeypatch.setenv(deid.SALT_ENV, "shared-site-secret")
    assert deid.installation_salt() == b"shared-site-secret"
    monkeypatch.delenv(deid.SALT_ENV)
    deid._salt_cache.clear()
    path.write_text("\n")
    with pytest.raises(ExportError, match="salt file is empty"):
        deid.installation_salt()
    deid._salt_cache.clear()


# -- datasets -------------------------------------------------------------------------------------------
def test_dataset_copy_has_no_identifying_value_left(ct):
    original = ct.metadata["dicom_header"]
    before = _all_text(original)
    out = deid.deidentify_dataset(original, salt="s")
    assert _all_text(original) == before  # the input is untouched
    text = _all_text(out)
    for value in PHI:
        assert value not in text, value
    assert out.PatientName == out.PatientID == deid.pseudonym("1CT1", salt="s")
    for keyword in ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
                    "ReferringPhysicianName", "ContentDate"):
        assert keyword in out and out[keyword].value in ("", None), keyword  # Z: kept, empty
    for keyword in ("InstitutionName", "StationName", "OtherPatientIDsSequence", "PatientAge", "PatientWeight",
                    "StudyDescription", "SeriesDate", "AcquisitionDate", "InstanceCreationDate", "ImageComments",
                    "AdditionalPatientHistory", "TimezoneOffsetFromUTC", "DataSetTrailingPadding"):
        assert keyword not in out, keyword  # X
    assert "SourceApplicationEntityTitle" not in out.file_meta
    assert not any(elem.tag.is_private for elem in out.iterall())
    assert out.PatientIdentityRemoved == "YES" and out.LongitudinalTemporalInformationModified == "REMOVED"
    assert len(out.DeidentificationMethod) <= 64
    # acquisition facts and class UIDs are kept
    assert out.Modality == "CT" and out.Manufacturer == "GE MEDICAL SYSTEMS" and out.Rows == 128
    assert out.SOPClassUID == original.SOPClassUID == out.file_meta.MediaStorageSOPClassUID
    assert out.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert out.file_meta.ImplementationClassUID == pydicom.uid.PYDICOM_IMPLEMENTATION_UID  # the new writer


def test_dataset_uids_are_replaced_consistently(ct):
    original = ct.metadata["dicom_header"]
    a = deid.deidentify_dataset(original, salt="s")
    b = deid.deidentify_dataset(original, salt="s")
    c = deid.deidentify_dataset(original, salt="t")
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
        assert a[keyword].value != original[keyword].value
        assert a[keyword].value == b[keyword].value != c[keyword].value
        assert a[keyword].value == deid.replacement_uid(original[keyword].value, salt="s")
    assert a.file_meta.MediaStorageSOPInstanceUID == a.SOPInstanceUID  # references still match


def test_dataset_date_shift_keeps_intervals(ct):
    original = ct.metadata["dicom_header"]
    out = deid.deidentify_dataset(original, salt="s", dates="shift")
    days = deid.date_shift_days("1CT1", salt="s")
    assert out.StudyDate == deid.shift_date("20040119", days) and out.StudyTime == "072730"
    assert out.PatientBirthDate == ""  # never shifted: it would still give the age
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    assert "SeriesDate" not in out  # X in the Basic Profile whatever the date mode
    assert "20040119" not in _all_text(out)


def test_catch_all_rules_for_attributes_the_table_misses():
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "12345"
    ds.Modality = "MR"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.SOPInstanceUID = "1.2.3.4.5.6"
    ds.add_new(0x00081048, "PN", "Smith^John")  # Physician(s) of Record: listed (X)
    ds.add_new(0x00321032, "PN", "Miller^Ann")  # Requesting Physician: listed (X)
    ds.add_new(0x0040A075, "PN", "Observer^Paul")  # Verifying Observer Name: not listed -> PN rule
    ds.add_new(0x00181200, "DA", "20200101")  # Date of Last Calibration (X)
    ds.add_new(0x00189074, "DT", "20200101101010")  # Frame Acquisition DateTime: not listed -> date rule
    item = Dataset()
    item.add_new(0x0040A123, "PN", "Nested^Name")  # Person Name inside a sequence
    item.ReferencedSOPInstanceUID = "1.2.3.4.5.6"
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.ReferencedImageSequence = Sequence([item])
    ds.add_new(0x60003000, "OW", b"\x01\x00" * 4)  # overlay bitmap: may hold burned-in text
    ds.add_new(0x60004000, "LT", "Doe Jane overlay")
    ds.add_new(0x00091001, "LO", "private Doe")  # private without creator: still private
    out = deid.deidentify_dataset(ds, salt="s")
    text = _all_text(out)
    for name in ("Doe", "Smith", "Miller", "Observer", "Nested", "12345", "2020", "1.2.3.4.5.6"):
        assert name not in text, name
    assert 0x60003000 not in out and 0x60004000 not in out and 0x00091001 not in out
    ref = out.ReferencedImageSequence[0]
    assert ref.ReferencedSOPInstanceUID == out.SOPInstanceUID  # nested reference mapped the same way
    assert ref.ReferencedSOPClassUID == ds.SOPClassUID
    kept = deid.deidentify_dataset(ds, salt="s", keep_private=True)
    assert 0x00091001 in kept and kept.DeidentificationMethod.endswith("private kept")


def test_deidentified_dataset_writes_and_reads_back(ct, tmp_path):
    out = deid.deidentify_dataset(ct.metadata["dicom_header"], salt="s")
    out.add_new(0x7FE00010, "OW", np.zeros((128, 128), np.int16).tobytes())
    path = tmp_path / "anon.dcm"
    out.save_as(path, enforce_file_format=True)
    back = pydicom.dcmread(path)
    assert back.PatientIdentityRemoved == "YES" and back.pixel_array.shape == (128, 128)
    assert b"CompressedSamples" not in path.read_bytes() and b"JFK" not in path.read_bytes()


def test_dataset_argument_is_checked():
    with pytest.raises(TypeError, match="pydicom Dataset"):
        deid.deidentify_dataset({"PatientName": "x"}, salt="s")
    with pytest.raises(ValueError, match="dates must be one of"):
        deid.deidentify_dataset(Dataset(), salt="s", dates="year")  # type: ignore[arg-type]
    empty = deid.deidentify_dataset(Dataset(), salt="s")  # no patient at all: nothing to pseudonymise
    assert "PatientName" not in empty and empty.PatientIdentityRemoved == "YES"


def test_docs_list_every_handled_attribute():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "REPORTS.md").read_text(encoding="utf-8")
    for keyword in list(deid.BASIC_PROFILE) + list(deid.REPORT_FIELDS):
        tag = tag_for_keyword(keyword)
        assert f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})" in doc or f"| {keyword} |" in doc, keyword
