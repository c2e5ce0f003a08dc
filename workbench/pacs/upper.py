"""A lean DICOM association for bulk retrieval: one thread, one blocking socket, no per-PDU hand-offs.

pynetdicom runs every association as three threads (its upper-layer reactor, the association, the caller)
that pass each PDU and each DIMSE message through queues and poll them with short sleeps, and it decodes
and re-encodes every command set with pydicom. That is ~3 ms of Python and several thread wake-ups per
received instance: a C-GET of 300 CT slices ran at a third of DCMTK's ``getscu`` (docs/BENCHMARKS.md).
This module does the C-GET data phase the way ``getscu`` does: read a PDU, write its data set fragments
straight into the instance's temporary file, answer the C-STORE with a pre-built response.

What it reuses from pynetdicom: the A-ASSOCIATE-RQ/-AC/-RJ PDU encoders and decoders (presentation
contexts, user information, role selection). What it does itself, because that is the hot path: the
P-DATA-TF framing (PS3.8 9.3.5), the few command sets a C-GET exchanges (PS3.7 9.3 and E.1: implicit VR
little endian, a handful of US/UI elements), A-RELEASE and A-ABORT (fixed 10-byte PDUs).
"""
from __future__ import annotations

import functools
import socket
import struct
from dataclasses import dataclass
from typing import Iterator, Sequence

from pydicom.uid import UID

PDU_ASSOCIATE_RQ, PDU_ASSOCIATE_AC, PDU_ASSOCIATE_RJ = 0x01, 0x02, 0x03
PDU_DATA, PDU_RELEASE_RQ, PDU_RELEASE_RP, PDU_ABORT = 0x04, 0x05, 0x06, 0x07
#: the application context name of DICOM (PS3.7 A.2.1)
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
#: command fields (PS3.7 E.1)
C_STORE_RQ, C_STORE_RSP, C_GET_RQ, C_GET_RSP = 0x0001, 0x8001, 0x0010, 0x8010
NO_DATA_SET = 0x0101
_ABORT = b"\x07\x00" + struct.pack(">I", 4) + b"\x00\x00\x00\x00"       # source 0: service user
_RELEASE_RQ = b"\x05\x00" + struct.pack(">I", 4) + b"\x00\x00\x00\x00"
_RELEASE_RP = b"\x06\x00" + struct.pack(">I", 4) + b"\x00\x00\x00\x00"
# implicit VR little endian command elements we read: tag -> (keyword, is_int)
_COMMAND_TAGS = {
    0x0002: ("AffectedSOPClassUID", False), 0x0100: ("CommandField", True), 0x0110: ("MessageID", True),
    0x0120: ("MessageIDBeingRespondedTo", True), 0x0800: ("CommandDataSetType", True),
    0x0900: ("Status", True), 0x0902: ("ErrorComment", False), 0x1000: ("AffectedSOPInstanceUID", False),
    0x1020: ("NumberOfRemainingSuboperations", True), 0x1021: ("NumberOfCompletedSuboperations", True),
    0x1022: ("NumberOfFailedSuboperations", True), 0x1023: ("NumberOfWarningSuboperations", True),
}


class PeerGone(Exception):
    """The peer aborted, released or closed the connection mid-operation (``reason`` says which)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Rejected(Exception):
    """The peer rejected the association (A-ASSOCIATE-RJ)."""


class NothingAccepted(Exception):
    """The peer accepted the association but none of the presentation contexts."""


@dataclass(frozen=True)
class Context:
    """An accepted presentation context."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str


@functools.lru_cache(maxsize=16)
def _associate_rq(calling: str, called: str, max_pdu: int, contexts: tuple[tuple[str, tuple[str, ...]], ...],
                  scp_roles: tuple[str, ...]) -> bytes:
    """The encoded A-ASSOCIATE-RQ (pynetdicom's encoder; cached: 128 contexts take ~50 ms to build)."""
    from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
    from pynetdicom.pdu import A_ASSOCIATE_RQ
    from pynetdicom.pdu_primitives import (
        A_ASSOCIATE,
        ImplementationClassUIDNotification,
        ImplementationVersionNameNotification,
        MaximumLengthNotification,
    )
    from pynetdicom.presentation import PresentationContext, build_role

    requested = []
    for index, (abstract, syntaxes) in enumerate(contexts):
        cx = PresentationContext()
        cx.context_id = 2 * index + 1
        cx.abstract_syntax = UID(abstract)
        cx.transfer_syntax = [UID(ts) for ts in syntaxes]
        requested.append(cx)
    primitive = A_ASSOCIATE()
    primitive.application_context_name = UID(APPLICATION_CONTEXT)
    primitive.calling_ae_title = calling
    primitive.called_ae_title = called
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


def _element(tag: int, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\x00"
    return struct.pack("<HHI", 0x0000, tag, len(value)) + value


def _us(tag: int, value: int) -> bytes:
    return struct.pack("<HHIH", 0x0000, tag, 2, value)


def encode_command(*elements: bytes) -> bytes:
    """A command set (group 0000, implicit VR little endian) with its CommandGroupLength first."""
    body = b"".join(elements)
    return struct.pack("<HHII", 0x0000, 0x0000, 4, len(body)) + body


def c_get_rq(message_id: int, sop_class: str) -> bytes:
    """The command set of a C-GET-RQ (a data set, the identifier, follows)."""
    return encode_command(_element(0x0002, sop_class.encode()), _us(0x0100, C_GET_RQ), _us(0x0110, message_id),
                          _us(0x0700, 0), _us(0x0800, 0x0000))


def c_store_rq(message_id: int, sop_class: str, sop_instance: str) -> bytes:
    """The command set of a C-STORE-RQ (the data set follows)."""
    return encode_command(_element(0x0002, sop_class.encode()), _us(0x0100, C_STORE_RQ), _us(0x0110, message_id),
                          _us(0x0700, 0), _us(0x0800, 0x0000), _element(0x1000, sop_instance.encode()))


def c_store_rsp(message_id: int, sop_class: str, sop_instance: str, status: int) -> bytes:
    """The command set of a C-STORE-RSP."""
    return encode_command(_element(0x0002, sop_class.encode()), _us(0x0100, C_STORE_RSP),
                          _us(0x0120, message_id), _us(0x0800, NO_DATA_SET), _us(0x0900, status),
                          _element(0x1000, sop_instance.encode()))


def data_set_offset(data: bytes | memoryview) -> int:
    """Where the data set of a DICOM file (``data``: its bytes) starts: after the preamble, ``DICM`` and
    the file meta group (explicit VR little endian, PS3.10 7.1), with or without its group length.

    Raises
    ------
    ValueError
        Not a DICOM file with a preamble.
    """
    view = memoryview(data)
    if bytes(view[128:132]) != b"DICM":
        raise ValueError("no DICOM preamble")
    offset = 132
    while offset + 8 <= len(view):
        group, _elem = struct.unpack_from("<HH", view, offset)
        if group != 0x0002:
            break
        vr = bytes(view[offset + 4:offset + 6])
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN"):
            (length,) = struct.unpack_from("<I", view, offset + 8)
            offset += 12 + length
        else:
            (length,) = struct.unpack_from("<H", view, offset + 6)
            offset += 8 + length
    return offset


def decode_command(data: bytes | bytearray | memoryview) -> dict:
    """The elements of a command set we use, as ``{keyword: int | str}`` (the others are skipped)."""
    out: dict = {}
    view = memoryview(data)
    offset, end = 0, len(view)
    while offset + 8 <= end:
        group, tag, length = struct.unpack_from("<HHI", view, offset)
        offset += 8
        value = view[offset:offset + length]
        offset += length
        entry = _COMMAND_TAGS.get(tag) if group == 0x0000 else None
        if entry is None:
            continue
        keyword, is_int = entry
        if is_int:
            out[keyword] = int.from_bytes(value[:2], "little") if length >= 2 else 0
        else:
            out[keyword] = bytes(value).rstrip(b"\x00 ").decode("ascii", "replace")
    return out


class Association:
    """An established association over a blocking socket (every wait bounded by ``timeout``)."""

    def __init__(self, sock: socket.socket, contexts: dict[int, Context], peer_max_pdu: int) -> None:
        self.sock = sock
        self.contexts = contexts
        # 0 = no limit (PS3.8 D.1); our P-DATA-TF framing needs a bound: 16 KB, the DCMTK default
        self.peer_max_pdu = peer_max_pdu or 16384
        self._buffer = bytearray(1 << 20)
        self._header = bytearray(6)
        self.closed = False

    # -- negotiation -------------------------------------------------------------------------------------
    @classmethod
    def request(cls, host: str, port: int, *, calling: str, called: str, timeout: float, max_pdu: int,
                contexts: Sequence[tuple[str, Sequence[str]]], scp_roles: Sequence[str] = ()) -> "Association":
        """Connect and negotiate.

        Raises
        ------
        OSError
            The TCP connection failed (refused, unreachable); ``TimeoutError`` on no answer.
        Rejected, NothingAccepted, PeerGone
            The negotiation failed.
        """
        from pynetdicom.pdu import A_ASSOCIATE_AC

        wanted = tuple((str(abstract), tuple(map(str, syntaxes))) for abstract, syntaxes in contexts)
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            # DIMSE is request/response with small command PDUs: Nagle + delayed ACK would add ~40 ms a message
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(timeout)
            sock.sendall(_associate_rq(calling, called, max_pdu, wanted, tuple(scp_roles)))
            assoc = cls(sock, {}, 0)
            kind, body = assoc.read_pdu()
            if kind == PDU_ASSOCIATE_RJ:
                raise Rejected("association rejected")
            if kind != PDU_ASSOCIATE_AC:
                raise PeerGone("aborted" if kind == PDU_ABORT else f"unexpected PDU type 0x{kind:02X}")
            ac = A_ASSOCIATE_AC()
            ac.decode(bytes(assoc._header) + bytes(body))
            answer = ac.to_primitive()
            for result in answer.presentation_context_definition_results_list:
                index = (int(result.context_id or 0) - 1) // 2
                if (int(result.context_id or 0) % 2 and 0 <= index < len(wanted) and result.result == 0x00
                        and result.transfer_syntax):
                    assoc.contexts[result.context_id] = Context(result.context_id, wanted[index][0],
                                                                str(result.transfer_syntax[0]))
            assoc.peer_max_pdu = int(answer.maximum_length_received or 0) or 16384
            if not assoc.contexts:
                assoc.abort()
                raise NothingAccepted("no presentation context accepted")
            return assoc
        except BaseException:
            sock.close()
            raise

    def context_for(self, abstract_syntax: str) -> Context | None:
        return next((cx for cx in self.contexts.values() if cx.abstract_syntax == abstract_syntax), None)

    # -- PDUs --------------------------------------------------------------------------------------------
    def _recv_exact(self, view: memoryview) -> None:
        while view:
            n = self.sock.recv_into(view)
            if not n:
                raise PeerGone("closed")
            view = view[n:]

    def read_pdu(self) -> tuple[int, memoryview]:
        """The next PDU's type and body (a view into a buffer reused by the next call)."""
        self._recv_exact(memoryview(self._header))
        kind, _reserved, length = struct.unpack(">BBI", self._header)
        if length > len(self._buffer):
            self._buffer = bytearray(length)
        body = memoryview(self._buffer)[:length]
        self._recv_exact(body)
        return kind, body

    def send_message(self, context_id: int, command: bytes, data: bytes | memoryview | None = None) -> None:
        """Send a DIMSE message: its command set, then its data set, each fragmented to the peer's PDU size
        (one PDV per PDU; the data set is sent from ``data`` without copying it)."""
        room = self.peer_max_pdu - 6  # PDV item header: 4 bytes length, context ID, control header
        for payload, kind in ((command, 0x01), (data, 0x00)):
            if payload is None:
                continue
            view = memoryview(payload)
            for start in range(0, max(len(view), 1), room):
                chunk = view[start:start + room]
                control = kind | (0x02 if start + room >= len(view) else 0x00)
                head = struct.pack(">BBIIBB", PDU_DATA, 0, len(chunk) + 6, len(chunk) + 2, context_id, control)
                if len(chunk) < 4096:
                    self.sock.sendall(head + chunk)
                else:
                    self.sock.sendall(head)
                    self.sock.sendall(chunk)

    def read_command(self) -> tuple[int, dict]:
        """The next complete command set (a reply), as ``(context_id, elements)``; data set fragments
        before it are skipped (a C-STORE or C-ECHO reply has none)."""
        command = bytearray()
        while True:
            for cx_id, control, fragment in self.pdvs():
                if control & 0x01:
                    command += fragment
                    if control & 0x02:
                        return cx_id, decode_command(command)

    def pdvs(self) -> Iterator[tuple[int, int, memoryview]]:
        """``(context_id, control_header, fragment)`` of each PDV of the next P-DATA-TF PDU.

        Raises
        ------
        PeerGone
            The peer sent an A-ABORT, an A-RELEASE-RQ or closed the connection instead.
        """
        kind, body = self.read_pdu()
        if kind != PDU_DATA:
            if kind == PDU_RELEASE_RQ:
                self.sock.sendall(_RELEASE_RP)
                raise PeerGone("released")
            raise PeerGone("aborted" if kind == PDU_ABORT else f"unexpected PDU type 0x{kind:02X}")
        offset, end = 0, len(body)
        while offset + 6 <= end:
            length, context_id, control = struct.unpack_from(">IBB", body, offset)
            yield context_id, control, body[offset + 6:offset + 4 + length]
            offset += 4 + length

    # -- the end -----------------------------------------------------------------------------------------
    def release(self) -> None:
        """A-RELEASE (waits for the peer's reply up to the timeout), then close."""
        if self.closed:
            return
        try:
            self.sock.sendall(_RELEASE_RQ)
            while True:
                kind, _body = self.read_pdu()
                if kind in (PDU_RELEASE_RP, PDU_ABORT):
                    break
        except (OSError, PeerGone):
            pass
        finally:
            self.close()

    def abort(self) -> None:
        """A-ABORT, then close (never raises)."""
        if self.closed:
            return
        try:
            self.sock.sendall(_ABORT)
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
