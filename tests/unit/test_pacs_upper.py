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
    assert not list(folder.path.glob("*.dcm")) and not list(folder.path.glob(".*.dcm"))
    writer = folder.open_instance(uid, CTImageStorage, ExplicitVRLittleEndian)
    writer.commit()
    assert folder.have() == {uid} and folder.written == 1
    with pytest.raises(Exception, match="invalid SOPInstanceUID"):
        folder.open_instance("../x", CTImageStorage, ExplicitVRLittleEndian)


def test_series_folder_trusts_only_files_of_the_size_the_manifest_recorded(tmp_path):
    uids = [generate_uid() for _ in range(3)]
    folder = SeriesFolder(tmp_path / "s", study_uid="1.2", series_uid="1.2.3")
    for uid in uids:
        writer = folder.open_instance(uid, CTImageStorage, ExplicitVRLittleEndian)
        writer.write(b"\x08\x00\x16\x00UI\x00\x00" * 50)
        writer.commit()
    folder.mark_complete(node="n", instances=3)
    assert SeriesFolder(folder.path, study_uid="1.2", series_uid="1.2.3").complete
    # a power loss: one file cut short, one emptied, one manifest line never written
    (folder.path / f"{uids[0]}.dcm").write_bytes(b"\0" * 100)
    (folder.path / f"{uids[1]}.dcm").write_bytes(b"")
    stray = generate_uid()
    _ct(folder.path / f"{stray}.dcm", stray)
    again = SeriesFolder(folder.path, study_uid="1.2", series_uid="1.2.3")
    assert again.have() == {uids[2]} and not again.complete
    assert sorted(p.stem for p in folder.path.glob("*.dcm")) == [uids[2]]  # the untrusted ones are gone
    # a folder of an earlier version (no manifest): its files are adopted as they are
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    _ct(legacy / f"{stray}.dcm", stray)
    assert SeriesFolder(legacy, study_uid="1.2", series_uid="1.2.4").have() == {stray}
    assert SeriesFolder(legacy, study_uid="1.2", series_uid="1.2.4").have() == {stray}


def _pynetdicom_associate_rq(calling, called, max_pdu, contexts, scp_roles) -> bytes:
    """The A-ASSOCIATE-RQ as pynetdicom's PDU classes encode it (what upper.py wrote before)."""
    from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
    from pynetdicom.pdu import A_ASSOCIATE_RQ
    from pynetdicom.pdu_primitives import (
        A_ASSOCIATE,
        ImplementationClassUIDNotification,
        ImplementationVersionNameNotification,
        MaximumLengthNotification,
    )
    from pynetdicom.presentation import PresentationContext, build_role

    primitive = A_ASSOCIATE()
    requested = []
    for index, (abstract, syntaxes) in enumerate(contexts):
        cx = PresentationContext()
        cx.context_id, cx.abstract_syntax, cx.transfer_syntax = 2 * index + 1, abstract, list(syntaxes)
        requested.append(cx)
    primitive.application_context_name = upper.APPLICATION_CONTEXT
    primitive.calling_ae_title, primitive.called_ae_title = calling, called
    primitive.presentation_context_definition_list = requested
    length = MaximumLengthNotification()
    length.maximum_length_received = max_pdu
    impl = ImplementationClassUIDNotification()
    impl.implementation_class_uid = PYNETDICOM_IMPLEMENTATION_UID
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = PYNETDICOM_IMPLEMENTATION_VERSION
    primitive.user_information = [length, impl, version, *(build_role(uid, scp_role=True) for uid in scp_roles)]
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    return pdu.encode()


def test_associate_rq_is_byte_for_byte_pynetdicoms():
    from workbench.pacs.dimse import _retrieval_contexts

    contexts, roles = _retrieval_contexts()
    wanted = tuple((a, tuple(ts)) for a, ts in contexts)
    assert len(wanted) <= 128
    ours = upper._associate_rq("WORKBENCH", "ORTHANC", 1 << 20, wanted, tuple(roles))
    assert ours == _pynetdicom_associate_rq("WORKBENCH", "ORTHANC", 1 << 20, wanted, roles)
    small = ((CTImageStorage, (ExplicitVRLittleEndian,)),)
    assert upper._associate_rq("A", "LONGER_CALLED_AE", 16384, small, ()) == _pynetdicom_associate_rq(
        "A", "LONGER_CALLED_AE", 16384, small, ())


def test_associate_ac_decodes_what_pynetdicom_encodes():
    from pynetdicom.pdu import A_ASSOCIATE_AC
    from pynetdicom.pdu_primitives import A_ASSOCIATE, MaximumLengthNotification
    from pynetdicom.presentation import PresentationContext

    results = []
    for cx_id, result, syntax in ((1, 0, "1.2.840.10008.1.2"), (3, 3, "1.2.840.10008.1.2"),
                                  (5, 0, ExplicitVRLittleEndian)):
        cx = PresentationContext()
        cx.context_id, cx.result, cx.transfer_syntax = cx_id, result, [syntax]
        results.append(cx)
    primitive = A_ASSOCIATE()
    primitive.application_context_name = upper.APPLICATION_CONTEXT
    primitive.calling_ae_title, primitive.called_ae_title = "WORKBENCH", "ORTHANC"
    primitive.result, primitive.result_source, primitive.diagnostic = 0, 1, 1
    primitive.presentation_context_definition_results_list = results
    length = MaximumLengthNotification()
    length.maximum_length_received = 65536
    primitive.user_information = [length]
    pdu = A_ASSOCIATE_AC()
    pdu.from_primitive(primitive)
    encoded = pdu.encode()
    assert upper.decode_associate_ac(encoded[6:]) == (
        {1: (0, "1.2.840.10008.1.2"), 3: (3, "1.2.840.10008.1.2"), 5: (0, ExplicitVRLittleEndian)}, 65536)
    with pytest.raises(upper.PeerGone, match="malformed"):
        upper.decode_associate_ac(encoded[6:80])


class _Wire:
    """A socket stand-in that serves the bytes given (recv_into only)."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)

    def recv_into(self, view) -> int:
        n = min(len(view), len(self.data))
        view[:n] = self.data[:n]
        self.data = self.data[n:]
        return n


def _pdu(*pdvs: tuple[int, int, bytes]) -> bytes:
    import struct

    body = b"".join(struct.pack(">IBB", len(f) + 2, cx, control) + f for cx, control, f in pdvs)
    return struct.pack(">BBI", upper.PDU_DATA, 0, len(body)) + body


def test_read_message_keeps_the_next_messages_start_of_the_same_pdu():
    # two C-FIND-RSPs: the first's identifier and all of the second in one PDU, then the final response
    pending = upper.encode_command(upper._us(0x0100, upper.C_FIND_RSP), upper._us(0x0800, 0x0000),
                                   upper._us(0x0900, 0xFF00))
    final = upper.encode_command(upper._us(0x0100, upper.C_FIND_RSP), upper._us(0x0800, upper.NO_DATA_SET),
                                 upper._us(0x0900, 0x0000))
    wire = _pdu((1, 0x03, pending)) + _pdu((1, 0x00, b"ab"), (1, 0x02, b"cd"), (1, 0x03, pending),
                                           (1, 0x02, b"ef")) + _pdu((1, 0x03, final))
    assoc = upper.Association(_Wire(wire), {}, 16384)
    assert assoc.read_message() == (1, {"CommandField": 0x8020, "CommandDataSetType": 0, "Status": 0xFF00},
                                    b"abcd")
    assert assoc.read_message()[2] == b"ef"
    assert assoc.read_message() == (1, {"CommandField": 0x8020, "CommandDataSetType": 0x0101, "Status": 0}, None)


def test_send_message_fragments_to_the_peers_pdu_size_even_when_the_kernel_takes_part(monkeypatch):
    import socket
    import struct

    a, b = socket.socketpair()
    try:
        taken = []

        class Stingy:  # a send that takes at most 1000 bytes: what a full socket buffer does
            def sendmsg(self, buffers):
                data = b"".join(bytes(x) for x in buffers)[:1000]
                taken.append(len(data))
                a.sendall(data)
                return len(data)

        assoc = upper.Association(Stingy(), {}, 4096)
        command = upper.c_store_rq(1, CTImageStorage, "1.2.3")
        data = bytes(range(256)) * 40  # 10240 bytes: 3 PDUs of <= 4090 + the command's
        assoc.send_message(5, command, data)
        a.close()
        wire = b""
        while chunk := b.recv(65536):
            wire += chunk
    finally:
        b.close()
    assert len(taken) > 10 and sum(taken) == len(wire)
    pdvs, offset = [], 0
    while offset < len(wire):
        kind, _r, length = struct.unpack_from(">BBI", wire, offset)
        assert kind == upper.PDU_DATA and length <= 4096
        pdv_len, cx, control = struct.unpack_from(">IBB", wire, offset + 6)
        pdvs.append((cx, control, wire[offset + 12:offset + 6 + 4 + pdv_len]))
        offset += 6 + length
    assert [c for _cx, c, _f in pdvs] == [0x03, 0x00, 0x00, 0x02] and {cx for cx, _c, _f in pdvs} == {5}
    assert pdvs[0][2] == command and b"".join(f for _cx, _c, f in pdvs[1:]) == data
