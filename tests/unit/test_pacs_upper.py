"""The hand-encoded parts of the lean C-GET/C-STORE path (workbench/pacs/upper.py, storage.file_meta_bytes),
checked against pydicom's own decoder/encoder; the protocol itself is exercised against a real Orthanc in
tests/pacs."""
from __future__ import annotations

from io import BytesIO

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from workbench.pacs import upper
from workbench.pacs.storage import SeriesFolder, file_meta_bytes


def _pydicom_command(data: bytes) -> Dataset:
    return read_dataset(BytesIO(data), is_implicit_VR=True, is_little_endian=True)


def test_command_sets_decode_with_pydicom_and_back():
    uid = generate_uid()
    rsp = _pydicom_command(upper.c_store_rsp(7, CTImageStorage, uid, 0xA700))
    assert rsp.CommandGroupLength == len(upper.c_store_rsp(7, CTImageStorage, uid, 0xA700)) - 12
    assert (rsp.CommandField, rsp.MessageIDBeingRespondedTo, rsp.Status) == (0x8001, 7, 0xA700)
    assert (rsp.AffectedSOPClassUID, rsp.AffectedSOPInstanceUID, rsp.CommandDataSetType) == (CTImageStorage, uid,
                                                                                          0x0101)
    rq = _pydicom_command(upper.c_store_rq(3, CTImageStorage, uid))
    assert (rq.CommandField, rq.MessageID, rq.Priority, rq.CommandDataSetType) == (0x0001, 3, 0, 0)
    get = _pydicom_command(upper.c_get_rq(1, "1.2.840.10008.5.1.4.1.2.2.3"))
    assert (get.CommandField, get.AffectedSOPClassUID) == (0x0010, "1.2.840.10008.5.1.4.1.2.2.3")
    # and our decoder reads what pydicom encodes (a C-GET-RSP with sub-operation counts and a comment)
    ds = Dataset()
    ds.CommandGroupLength = 0
    ds.AffectedSOPClassUID = CTImageStorage
    ds.CommandField = 0x8010
    ds.MessageIDBeingRespondedTo = 1
    ds.CommandDataSetType = 0x0101
    ds.Status = 0xFF00
    ds.ErrorComment = "odd"
    ds.NumberOfRemainingSuboperations = 299
    ds.NumberOfCompletedSuboperations = 1
    buffer = pydicom.filebase.DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    pydicom.filewriter.write_dataset(buffer, ds)
    got = upper.decode_command(buffer.getvalue())
    assert got == {"AffectedSOPClassUID": CTImageStorage, "CommandField": 0x8010, "MessageIDBeingRespondedTo": 1,
                   "CommandDataSetType": 0x0101, "Status": 0xFF00, "ErrorComment": "odd",
                   "NumberOfRemainingSuboperations": 299, "NumberOfCompletedSuboperations": 1}


def _ct(path, uid):
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, uid
    ds.PatientName, ds.Modality = "Test^Upper", "CT"
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = np.arange(16, dtype=np.int16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = CTImageStorage, uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return path


def test_file_meta_and_data_set_offset_round_trip(tmp_path):
    uid = generate_uid()
    original = _ct(tmp_path / "a.dcm", uid).read_bytes()
    offset = upper.data_set_offset(original)
    # our meta + the original's data set bytes = a file pydicom reads back identically
    rebuilt = file_meta_bytes(CTImageStorage, uid, ExplicitVRLittleEndian) + original[offset:]
    (tmp_path / "b.dcm").write_bytes(rebuilt)
    a, b = pydicom.dcmread(tmp_path / "a.dcm"), pydicom.dcmread(tmp_path / "b.dcm")
    assert b.file_meta.MediaStorageSOPInstanceUID == uid and b.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert b.file_meta.FileMetaInformationGroupLength == len(file_meta_bytes(CTImageStorage, uid,
                                                                             ExplicitVRLittleEndian)) - 144
    assert b.PatientName == a.PatientName and b.PixelData == a.PixelData
    assert upper.data_set_offset(rebuilt) == len(rebuilt) - (len(original) - offset)
    with pytest.raises(ValueError, match="preamble"):
        upper.data_set_offset(b"\0" * 200)


def test_instance_writer_commits_or_leaves_nothing(tmp_path):
    folder = SeriesFolder(tmp_path / "s", study_uid="1.2", series_uid="1.2.3")
    uid = generate_uid()
    writer = folder.open_instance(uid, CTImageStorage, ExplicitVRLittleEndian)
    writer.write(b"\x08\x00\x16\x00UI\x00\x00")
    assert folder.have() == set()  # only the temporary file so far
    writer.discard()
    assert not list(folder.path.iterdir())
    writer = folder.open_instance(uid, CTImageStorage, ExplicitVRLittleEndian)
    writer.commit()
    assert folder.have() == {uid} and folder.written == 1
    folder.sync()
    with pytest.raises(Exception, match="invalid SOPInstanceUID"):
        folder.open_instance("../x", CTImageStorage, ExplicitVRLittleEndian)
