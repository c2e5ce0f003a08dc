"""Association outcomes of the lean upper layer (workbench/pacs/upper.py) as the user sees them through
``DimseClient.echo``, against a tiny fake peer on loopback: A-ASSOCIATE-RJ decoding (result, source, reason
bytes; the peer closing right after it, the answer pynetdicom sometimes misread), an association that
accepts nothing, an A-ABORT, and a C-ECHO answered with a status. The real Orthanc cases are in
tests/pacs/test_pacs_faults.py."""
from __future__ import annotations

import socket
import struct
import threading
from io import BytesIO

import pytest
from pydicom.filereader import read_dataset

from workbench.pacs import PacsError, upper
from workbench.pacs.dimse import DimseClient
from workbench.pacs.nodes import Node


def _rj(result: int, source: int, reason: int) -> bytes:
    return struct.pack(">BBIBBBB", upper.PDU_ASSOCIATE_RJ, 0, 4, 0, result, source, reason)


def _ac(results: list[tuple[int, int]]) -> bytes:
    """An A-ASSOCIATE-AC with ``(context id, result)`` per context (implicit VR little endian)."""
    ts = b"1.2.840.10008.1.2"
    items = upper._item(0x10, upper.APPLICATION_CONTEXT.encode())
    for cx_id, result in results:
        items += upper._item(0x21, struct.pack(">BBBB", cx_id, 0, result, 0) + upper._item(0x40, ts))
    items += upper._item(0x50, upper._item(0x51, struct.pack(">I", 16384)))
    body = struct.pack(">HH", 1, 0) + upper._ae("FAKE") + upper._ae("WORKBENCH") + b"\0" * 32 + items
    return struct.pack(">BBI", upper.PDU_ASSOCIATE_AC, 0, len(body)) + body


def _read_pdu(conn: socket.socket) -> tuple[int, bytes]:
    header = b""
    while len(header) < 6:
        chunk = conn.recv(6 - len(header))
        if not chunk:
            return 0, b""
        header += chunk
    kind, _r, length = struct.unpack(">BBI", header)
    body = b""
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            break
        body += chunk
    return kind, body


class FakePeer:
    """Accepts connections on loopback; ``script(conn, requests)`` plays the peer for each (bounded by a
    5 s socket timeout; the thread and the socket are torn down by ``close``)."""

    def __init__(self, script) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.05)  # accept polls, so close() ends the thread at once
        self.stopped = threading.Event()
        self.port = self.server.getsockname()[1]
        self.requests: list[tuple[int, bytes]] = []
        self.script = script
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _addr = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    self.requests.append(_read_pdu(conn))
                    self.script(conn, self.requests)
                except OSError:
                    pass

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.server.close()


@pytest.fixture
def peer():
    peers: list[FakePeer] = []

    def make(script) -> FakePeer:
        peers.append(FakePeer(script))
        return peers[-1]

    yield make
    for p in peers:
        p.close()


def _client(port: int, *, retries: int = 0) -> DimseClient:
    node = Node(name="fake", ae_title="FAKE", host="127.0.0.1", port=port, timeout=3, retries=retries,
                backoff=0)
    return DimseClient(node, our_ae_title="WORKBENCH", sleep=lambda _s: None)


@pytest.mark.parametrize("rj, words", [
    ((1, 1, 7), "association rejected by the PACS (permanent): called AE title not recognised"),
    ((1, 1, 3), "association rejected by the PACS (permanent): calling AE title not recognised"),
    ((2, 3, 1), "association rejected by the PACS's presentation layer (transient): temporary congestion"),
    ((1, 2, 2), "association rejected by the PACS's ACSE (permanent): protocol version not supported"),
    ((1, 1, 9), "association rejected by the PACS (permanent): reason 9"),
])
def test_rejection_then_close_is_reported_as_rejected_with_its_reason(peer, rj, words):
    fake = peer(lambda conn, _r: conn.sendall(_rj(*rj)))  # and the peer closes at once, as Orthanc does
    with pytest.raises(PacsError) as info:
        _client(fake.port, retries=2).echo()
    message = str(info.value)
    assert message == (f"fake (FAKE@127.0.0.1:{fake.port}): {words} (called AE title 'FAKE', our AE title "
                       "'WORKBENCH': check both are configured on the PACS)")
    assert len(fake.requests) == 1, "a rejection is not retried"
    kind, body = fake.requests[0]
    assert kind == upper.PDU_ASSOCIATE_RQ and body[4:20] == b"FAKE".ljust(16) and body[20:36] == b"WORKBENCH".ljust(16)


def test_decode_associate_rj_bytes():
    rejected = upper.decode_associate_rj(_rj(2, 1, 1)[6:])
    assert (rejected.result, rejected.source, rejected.reason) == (2, 1, 1)
    assert str(rejected) == "association rejected by the PACS (transient): no reason given"
    with pytest.raises(upper.PeerGone, match="malformed"):
        upper.decode_associate_rj(b"\0\1")


def test_nothing_accepted_and_abort(peer):
    fake = peer(lambda conn, _r: conn.sendall(_ac([(1, 3)])))  # abstract syntax not supported
    with pytest.raises(PacsError, match=r"^fake \(FAKE@.*\): the PACS accepted none of the requested services$"):
        _client(fake.port, retries=2).echo()
    assert len(fake.requests) == 1
    aborting = peer(lambda conn, _r: conn.sendall(b"\x07\x00" + struct.pack(">I", 4) + b"\0\0\2\0"))
    with pytest.raises(PacsError, match=r"association aborted by the peer after 2 attempts$"):
        _client(aborting.port, retries=1).echo()
    assert len(aborting.requests) == 2, "an abort is retried"


def _echo_peer(status: int):
    def script(conn: socket.socket, requests: list) -> None:
        conn.sendall(_ac([(1, 0)]))
        kind, body = _read_pdu(conn)  # the C-ECHO-RQ: one command PDV
        requests.append((kind, body))
        _length, cx_id, control = struct.unpack_from(">IBB", body)
        command = read_dataset(BytesIO(body[6:]), is_implicit_VR=True, is_little_endian=True)
        rsp = upper.encode_command(upper._element(0x0002, upper.VERIFICATION.encode()),
                                   upper._us(0x0100, upper.C_ECHO_RSP),
                                   upper._us(0x0120, int(command.MessageID)),
                                   upper._us(0x0800, upper.NO_DATA_SET), upper._us(0x0900, status))
        conn.sendall(struct.pack(">BBIIBB", upper.PDU_DATA, 0, len(rsp) + 6, len(rsp) + 2, cx_id, 0x03) + rsp)
        requests.append(_read_pdu(conn))  # A-RELEASE-RQ
        conn.sendall(b"\x06\x00" + struct.pack(">I", 4) + b"\0\0\0\0")
    return script


def test_c_echo_request_and_status(peer):
    fake = peer(_echo_peer(0x0000))
    assert _client(fake.port).echo() > 0
    (_rq, _), (kind, body), (release, _) = fake.requests
    assert kind == upper.PDU_DATA and release == upper.PDU_RELEASE_RQ
    _length, cx_id, control = struct.unpack_from(">IBB", body)
    command = read_dataset(BytesIO(body[6:]), is_implicit_VR=True, is_little_endian=True)
    assert (cx_id, control) == (1, 0x03)
    assert (command.CommandField, command.AffectedSOPClassUID, command.MessageID,
            command.CommandDataSetType) == (0x0030, "1.2.840.10008.1.1", 1, 0x0101)
    assert command.CommandGroupLength == len(body) - 6 - 12
    failing = peer(_echo_peer(0x0110))
    with pytest.raises(PacsError, match=r"C-ECHO failed with status 0x0110 processing failure$"):
        _client(failing.port).echo()


def test_c_move_rq_decodes_with_pydicom():
    data = upper.c_move_rq(4, "1.2.840.10008.5.1.4.1.2.2.2", "WORKBENCH")
    command = read_dataset(BytesIO(data), is_implicit_VR=True, is_little_endian=True)
    assert (command.CommandField, command.MessageID, command.MoveDestination, command.Priority,
            command.CommandDataSetType) == (0x0021, 4, "WORKBENCH", 0, 0)
    assert command.CommandGroupLength == len(data) - 12
