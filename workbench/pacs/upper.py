"""A lean DICOM association for every SCU operation (C-ECHO, C-FIND, C-GET, C-MOVE, C-STORE): one thread,
one blocking socket, no per-PDU hand-offs.

pynetdicom runs every association as three threads (its upper-layer reactor, the association, the caller)
that pass each PDU and each DIMSE message through queues and poll them with short sleeps, and it decodes
and re-encodes every command set with pydicom. That is ~3 ms of Python and several thread wake-ups per
received instance: a C-GET of 300 CT slices ran at a third of DCMTK's ``getscu`` (docs/BENCHMARKS.md).
This module does the C-GET data phase the way ``getscu`` does: read a PDU, write its data set fragments
straight into the instance's temporary file, answer the C-STORE with a pre-built response.

It does all of it itself, because all of it is on the path of every retrieval: the A-ASSOCIATE-RQ, -AC
and -RJ (PS3.8 9.3.2-4: presentation contexts, maximum length, role selection, the reject's result, source
and reason; pynetdicom's PDU classes took ~40 ms per association for the 122 contexts of a retrieval), the
P-DATA-TF framing (PS3.8 9.3.5), the few command sets a C-ECHO, C-FIND, C-GET, C-MOVE or C-STORE exchanges
(PS3.7 9.3 and E.1: implicit VR little endian, a handful of US/UI/AE elements), A-RELEASE and A-ABORT (fixed
10-byte PDUs). The identifiers of C-FIND, C-GET and C-MOVE are encoded and decoded by pydicom. Reading the
RJ ourselves also fixed a race: pynetdicom's reactor sometimes reported Orthanc's RJ, followed at once by a
close, as "nothing accepted" (docs/PACS.md).
"""
from __future__ import annotations

import functools
import socket
import struct
from dataclasses import dataclass
from typing import Iterator, Sequence

PDU_ASSOCIATE_RQ, PDU_ASSOCIATE_AC, PDU_ASSOCIATE_RJ = 0x01, 0x02, 0x03
PDU_DATA, PDU_RELEASE_RQ, PDU_RELEASE_RP, PDU_ABORT = 0x04, 0x05, 0x06, 0x07
#: the application context name of DICOM (PS3.7 A.2.1)
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
#: command fields (PS3.7 E.1)
C_STORE_RQ, C_STORE_RSP, C_GET_RQ, C_GET_RSP = 0x0001, 0x8001, 0x0010, 0x8010
C_FIND_RQ, C_FIND_RSP = 0x0020, 0x8020
C_MOVE_RQ, C_MOVE_RSP, C_ECHO_RQ, C_ECHO_RSP = 0x0021, 0x8021, 0x0030, 0x8030
#: the Verification SOP class (C-ECHO, PS3.4 A.4)
VERIFICATION = "1.2.840.10008.1.1"
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


#: A-ASSOCIATE-RJ reasons by source (PS3.8 9.3.4): 1 the called service user (the PACS application), 2 its
#: ACSE, 3 its presentation layer
_RJ_SOURCES = {1: "the PACS", 2: "the PACS's ACSE", 3: "the PACS's presentation layer"}
_RJ_REASONS = {
    (1, 1): "no reason given", (1, 2): "application context name not supported",
    (1, 3): "calling AE title not recognised", (1, 7): "called AE title not recognised",
    (2, 1): "no reason given", (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion", (3, 2): "local limit exceeded",
}


class Rejected(Exception):
    """The peer rejected the association (A-ASSOCIATE-RJ): ``result`` (1 permanent, 2 transient),
    ``source`` and ``reason`` as the PDU gives them (PS3.8 9.3.4); ``str()`` says them in words."""

    def __init__(self, result: int, source: int, reason: int) -> None:
        self.result, self.source, self.reason = result, source, reason
        kind = {1: "permanent", 2: "transient"}.get(result, f"result {result}")
        who = _RJ_SOURCES.get(source, f"source {source}")
        why = _RJ_REASONS.get((source, reason), f"reason {reason}")
        super().__init__(f"association rejected by {who} ({kind}): {why}")


def decode_associate_rj(body: bytes | memoryview) -> Rejected:
    """The :class:`Rejected` an A-ASSOCIATE-RJ body says (PS3.8 9.3.4: reserved, result, source, reason;
    after the 6-byte header).

    Raises
    ------
    PeerGone
        The PDU is shorter than its 4 bytes.
    """
    if len(body) < 4:
        raise PeerGone("malformed A-ASSOCIATE-RJ")
    return Rejected(body[1], body[2], body[3])


class NothingAccepted(Exception):
    """The peer accepted the association but none of the presentation contexts."""


@dataclass(frozen=True)
class Context:
    """An accepted presentation context."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str


def _item(kind: int, value: bytes) -> bytes:
    """A PDU item or sub-item: type, reserved, 2-byte length (PS3.8 9.3)."""
    return struct.pack(">BBH", kind, 0, len(value)) + value


def _ae(title: str) -> bytes:
    return title.encode("ascii", "replace")[:16].ljust(16, b" ")


@functools.lru_cache(maxsize=16)
def _associate_rq(calling: str, called: str, max_pdu: int, contexts: tuple[tuple[str, tuple[str, ...]], ...],
                  scp_roles: tuple[str, ...]) -> bytes:
    """The encoded A-ASSOCIATE-RQ (PS3.8 9.3.2), byte for byte what pynetdicom's encoder writes (its
    classes took ~20 ms to build one with 128 contexts; tests/unit/test_pacs_upper.py compares the two)."""
    from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

    items = [_item(0x10, APPLICATION_CONTEXT.encode())]
    for index, (abstract, syntaxes) in enumerate(contexts):
        body = struct.pack(">BBBB", 2 * index + 1, 0, 0, 0) + _item(0x30, abstract.encode())
        items.append(_item(0x20, body + b"".join(_item(0x40, ts.encode()) for ts in syntaxes)))
    user = [_item(0x51, struct.pack(">I", max_pdu)), _item(0x52, str(PYNETDICOM_IMPLEMENTATION_UID).encode()),
            _item(0x55, PYNETDICOM_IMPLEMENTATION_VERSION.encode())]
    for uid in scp_roles:  # SCU role 0, SCP role 1: the peer may send us C-STOREs of this class (C-GET)
        user.append(_item(0x54, struct.pack(">H", len(uid)) + uid.encode() + b"\x00\x01"))
    items.append(_item(0x50, b"".join(user)))
    body = struct.pack(">HH", 1, 0) + _ae(called) + _ae(calling) + b"\x00" * 32 + b"".join(items)
    return struct.pack(">BBI", PDU_ASSOCIATE_RQ, 0, len(body)) + body


def decode_associate_ac(body: bytes | memoryview) -> tuple[dict[int, tuple[int, str]], int]:
    """The presentation context results (``{context ID: (result, transfer syntax)}``) and the peer's
    maximum PDU length (0: none given) of an A-ASSOCIATE-AC body (PS3.8 9.3.3, after the 6-byte header).

    Raises
    ------
    PeerGone
        The PDU is malformed.
    """
    view = memoryview(body)
    results: dict[int, tuple[int, str]] = {}
    max_pdu = 0
    offset = 68  # version, reserved, called and calling AE titles, 32 reserved bytes
    try:
        while offset + 4 <= len(view):
            kind, _r, length = struct.unpack_from(">BBH", view, offset)
            if offset + 4 + length > len(view):
                raise IndexError("item beyond the PDU")
            value = view[offset + 4:offset + 4 + length]
            offset += 4 + length
            if kind == 0x21 and length >= 4:  # presentation context (AC): id, -, result, -, one TS sub-item
                syntax = ""
                if length >= 8 and value[4] == 0x40:
                    (ts_len,) = struct.unpack_from(">H", value, 6)
                    syntax = bytes(value[8:8 + ts_len]).rstrip(b"\x00 ").decode("ascii", "replace")
                results[value[0]] = (value[2], syntax)
            elif kind == 0x50:
                sub = 0
                while sub + 4 <= len(value):
                    sub_kind, _r, sub_len = struct.unpack_from(">BBH", value, sub)
                    if sub_kind == 0x51 and sub_len == 4:
                        (max_pdu,) = struct.unpack_from(">I", value, sub + 4)
                    sub += 4 + sub_len
    except (struct.error, IndexError) as exc:
        raise PeerGone("malformed A-ASSOCIATE-AC") from exc
    return results, max_pdu


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


def c_find_rq(message_id: int, sop_class: str) -> bytes:
    """The command set of a C-FIND-RQ (a data set, the identifier, follows)."""
    return encode_command(_element(0x0002, sop_class.encode()), _us(0x0100, C_FIND_RQ), _us(0x0110, message_id),
                          _us(0x0700, 0), _us(0x0800, 0x0000))


def c_echo_rq(message_id: int) -> bytes:
    """The command set of a C-ECHO-RQ (no data set)."""
    return encode_command(_element(0x0002, VERIFICATION.encode()), _us(0x0100, C_ECHO_RQ), _us(0x0110, message_id),
                          _us(0x0800, NO_DATA_SET))


def c_move_rq(message_id: int, sop_class: str, destination: str) -> bytes:
    """The command set of a C-MOVE-RQ to the AE title ``destination`` (a data set, the identifier, follows)."""
    return encode_command(_element(0x0002, sop_class.encode()), _us(0x0100, C_MOVE_RQ), _us(0x0110, message_id),
                          _element(0x0600, _ae(destination)), _us(0x0700, 0), _us(0x0800, 0x0000))


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
        # PDVs of the last PDU that :meth:`read_message` did not need yet (the next message's start)
        self._pending: list[tuple[int, int, bytes]] = []
        self._message_id = 0
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
                raise decode_associate_rj(body)
            if kind != PDU_ASSOCIATE_AC:
                raise PeerGone("aborted" if kind == PDU_ABORT else f"unexpected PDU type 0x{kind:02X}")
            results, peer_max = decode_associate_ac(body)
            for context_id, (result, syntax) in results.items():
                index = (context_id - 1) // 2
                if context_id % 2 and 0 <= index < len(wanted) and result == 0x00 and syntax:
                    assoc.contexts[context_id] = Context(context_id, wanted[index][0], syntax)
            assoc.peer_max_pdu = peer_max or 16384
            if not assoc.contexts:
                assoc.abort()
                raise NothingAccepted("no presentation context accepted")
            return assoc
        except BaseException:
            sock.close()
            raise

    def next_message_id(self) -> int:
        """A fresh MessageID for a request on this association (1, 2, ...)."""
        self._message_id = self._message_id % 0xFFFF + 1
        return self._message_id

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
        (one PDV per PDU; the data set is sent from ``data`` without copying it, the PDU headers and
        fragments of a message handed to the kernel in a few ``sendmsg`` calls, not two per PDU)."""
        room = self.peer_max_pdu - 6  # PDV item header: 4 bytes length, context ID, control header
        buffers: list[bytes | memoryview] = []
        for payload, kind in ((command, 0x01), (data, 0x00)):
            if payload is None:
                continue
            view = memoryview(payload)
            for start in range(0, max(len(view), 1), room):
                chunk = view[start:start + room]
                control = kind | (0x02 if start + room >= len(view) else 0x00)
                buffers.append(struct.pack(">BBIIBB", PDU_DATA, 0, len(chunk) + 6, len(chunk) + 2, context_id,
                                           control))
                buffers.append(chunk)
        self._send_buffers(buffers)

    def _send_buffers(self, buffers: list[bytes | memoryview]) -> None:
        sendmsg = getattr(self.sock, "sendmsg", None)
        if sendmsg is None:  # Windows
            for buffer in buffers:
                self.sock.sendall(buffer)
            return
        index = 0
        while index < len(buffers):
            # a socket with a timeout is non-blocking underneath: a send may take only part of the batch
            sent = sendmsg(buffers[index:index + 512])
            while sent:
                size = len(buffers[index])
                if sent >= size:
                    sent -= size
                    index += 1
                else:
                    buffers[index] = memoryview(buffers[index])[sent:]
                    sent = 0

    def read_command(self) -> tuple[int, dict]:
        """The next complete command set (a reply), as ``(context_id, elements)``; a data set that comes
        with it is read and dropped (a C-STORE or C-ECHO reply has none)."""
        context_id, command, _data = self.read_message()
        return context_id, command

    def read_message(self) -> tuple[int, dict, bytes | None]:
        """The next complete DIMSE message: ``(context_id, command elements, data set bytes or None)``."""
        command = bytearray()
        data = bytearray()
        message: tuple[int, dict] | None = None
        while True:
            items = list(self.pdvs())
            for index, (cx_id, control, fragment) in enumerate(items):
                done: tuple[int, dict, bytes | None] | None = None
                if control & 0x01:
                    command += fragment
                    if control & 0x02:
                        elements = decode_command(command)
                        if elements.get("CommandDataSetType", NO_DATA_SET) == NO_DATA_SET:
                            done = (cx_id, elements, None)
                        else:
                            message = (cx_id, elements)
                elif message is not None:
                    data += fragment
                    if control & 0x02:
                        done = (message[0], message[1], bytes(data))
                if done is not None:
                    # copies: the views point into the PDU buffer the next read reuses
                    self._pending = [(c, k, bytes(f)) for c, k, f in items[index + 1:]]
                    return done

    def pdvs(self) -> Iterator[tuple[int, int, memoryview]]:
        """``(context_id, control_header, fragment)`` of each PDV of the next P-DATA-TF PDU.

        Raises
        ------
        PeerGone
            The peer sent an A-ABORT, an A-RELEASE-RQ or closed the connection instead.
        """
        if self._pending:
            pending, self._pending = self._pending, []
            for cx_id, control, fragment in pending:
                yield cx_id, control, memoryview(fragment)
            return
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
