"""DIMSE transport: C-ECHO, C-FIND, C-GET, C-MOVE and C-STORE over :mod:`.upper` (one lean association,
shared by a retrieval's C-FINDs and C-GETs within :meth:`DimseClient.session`); pynetdicom only runs the
storage SCP that takes a C-MOVE's instances.

Every association is bounded by the node's ``timeout`` (TCP connect, negotiation, each reply); a refused
connection or a timeout is retried ``node.retries`` times with exponential backoff, a rejection (wrong AE
title, unknown caller) is not. Retrievals and sends are generators yielding :class:`~.storage.Progress`
per instance and checking ``cancel()`` between replies; a cancel aborts the association.
"""
from __future__ import annotations

import functools
import socket
import time
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Callable, Generator, Iterator

from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AE, AllStoragePresentationContexts, StoragePresentationContexts, dsutils, evt
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from ..core.errors import CancelledError
from . import upper
from .errors import PacsError
from .nodes import DEFAULT_AE_TITLE, Node
from .query import Query, match_from_dataset
from .storage import Progress, SeriesFolder

CancelFn = Callable[[], bool]
PENDING = (0xFF00, 0xFF01)
WARNINGS = (0x0001, 0xB000, 0xB006, 0xB007)
#: our receive PDU size: fewer, larger PDUs cut the per-PDU Python cost on big instances
MAX_PDU = 1 << 20
#: seconds pynetdicom's reactor sleeps when idle during our associations (see _no_delay)
RUN_LOOP_DELAY = 0.0001
#: the transfer syntaxes we accept instances in (pynetdicom's defaults; the PACS converts others)
STORE_SYNTAXES = [str(ImplicitVRLittleEndian), str(ExplicitVRLittleEndian), str(DeflatedExplicitVRLittleEndian),
                  str(ExplicitVRBigEndian)]
_STATUS_TEXT = {
    0xA700: "out of resources", 0xA701: "out of resources (matches)", 0xA702: "out of resources (sub-operations)",
    0xA801: "move destination unknown", 0xA900: "identifier does not match SOP class",
    0xC000: "unable to process", 0x0122: "SOP class not supported", 0x0110: "processing failure",
    0x0211: "unrecognized operation", 0xFE00: "cancelled", 0xB000: "sub-operations failed",
}


def status_text(code: int) -> str:
    text = _STATUS_TEXT.get(code)
    if text is None and 0xC000 <= code <= 0xCFFF:
        text = "cannot understand"
    return f"0x{code:04X}" + (f" {text}" if text else "")


def _never() -> bool:
    return False


def _no_delay(event) -> None:
    """Turn Nagle's algorithm off on a new association's socket: DIMSE is request/response with small
    command PDUs, and Nagle + the peer's delayed ACK cost up to ~40 ms per message (10x the transfer of a
    small instance over loopback). pynetdicom leaves the socket option alone.

    Also shorten the idle sleep of pynetdicom's reactor (``DULServiceProvider._run_loop_delay``, 1 ms by
    default): it processes one PDU per loop and sleeps whenever a loop found nothing, so every PDU of a
    transfer waited up to 1 ms -- ~5 ms per instance, the bulk of a C-GET. 0.1 ms costs a few % of a core
    while an association is open (only during a transfer)."""
    try:
        event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):
        pass
    if hasattr(event.assoc.dul, "_run_loop_delay"):
        event.assoc.dul._run_loop_delay = RUN_LOOP_DELAY


def _expect(reply: dict, command_field: int) -> None:
    """The reply must be a ``command_field`` response; anything else ends the association."""
    field = reply.get("CommandField")
    if field != command_field:
        raise upper.PeerGone(f"unexpected DIMSE command 0x{field or 0:04X}")


class DimseClient:
    """Talks to one DIMSE node as ``our_ae_title``.

    ``storage_port``/``storage_bind``: where our storage SCP listens during a C-MOVE (the PACS must know
    our AE title at that address).
    """

    def __init__(self, node: Node, *, our_ae_title: str = DEFAULT_AE_TITLE, storage_port: int = 11113,
                 storage_bind: str = "0.0.0.0", sleep: Callable[[float], None] = time.sleep) -> None:
        self.node = node
        self.our_ae_title = node.calling_ae_title(our_ae_title)
        self.storage_port = storage_port
        self.storage_bind = storage_bind
        self._sleep = sleep
        self._session: _Session | None = None

    # -- associations ----------------------------------------------------------------------------------
    def _ae(self) -> AE:
        """The pynetdicom AE of our C-MOVE storage SCP (the SCU side negotiates in :meth:`_associate_upper`)."""
        ae = AE(ae_title=self.our_ae_title)
        t = self.node.timeout
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = t
        ae.connection_timeout = t
        ae.maximum_pdu_size = MAX_PDU
        return ae

    # -- C-ECHO ------------------------------------------------------------------------------------------
    def echo(self) -> float:
        """C-ECHO over :mod:`.upper`; the round trip in milliseconds (association included)."""
        t0 = time.perf_counter()
        assoc = self._associate_upper([(upper.VERIFICATION, [ImplicitVRLittleEndian, ExplicitVRLittleEndian])], ())
        ok = False
        try:
            cx = assoc.context_for(upper.VERIFICATION)
            assert cx is not None  # the only context asked for: NothingAccepted otherwise
            assoc.send_message(cx.context_id, upper.c_echo_rq(assoc.next_message_id()))
            _cx, reply = assoc.read_command()
            _expect(reply, upper.C_ECHO_RSP)
            ok = True
        except (OSError, upper.PeerGone) as exc:
            raise PacsError(f"{self.node.label}: C-ECHO: no reply (association aborted or timed out)",
                            retryable=True) from exc
        finally:
            assoc.release() if ok else assoc.abort()
        self._check_reply(reply, "C-ECHO")
        return (time.perf_counter() - t0) * 1000

    # -- one association for a whole retrieval -----------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator["DimseClient"]:
        """Within it, C-FINDs and C-GETs share one :mod:`.upper` association (opened by the first, released
        at the end; a failed operation aborts it and the next one opens another): a retrieval's series
        search, its instance search on resume and its C-GETs cost one negotiation, not one each."""
        if self._session is not None:  # nested: the outer one owns it
            yield self
            return
        self._session = _Session()
        try:
            yield self
        finally:
            session, self._session = self._session, None
            if session.assoc is not None:
                session.assoc.release()

    @contextmanager
    def _lean(self, contexts: list[tuple[str, list[str]]], scp_roles: list[str]) -> Iterator[upper.Association]:
        """An :mod:`.upper` association for one operation: the session's (opened with every context a
        retrieval needs) or a new one with just ``contexts``, released after it; on any exception it is
        aborted (and the session forgets it)."""
        session = self._session
        if session is not None:
            if session.assoc is None or session.assoc.closed:
                session.assoc = self._associate_upper(*_retrieval_contexts())
            assoc = session.assoc
        else:
            assoc = self._associate_upper(contexts, scp_roles)
        ok = False
        try:
            yield assoc
            ok = True
        finally:
            if not ok:
                assoc.abort()
                if session is not None:
                    session.assoc = None
            elif session is None:
                assoc.release()

    # -- C-FIND ------------------------------------------------------------------------------------------
    def find(self, query: Query, *, cancel: CancelFn = _never) -> list[dict]:
        """C-FIND at the query's level; the matches as keyword dicts (see :mod:`.query`)."""
        model = str(PatientRootQueryRetrieveInformationModelFind if query.level == "patient"
                    else StudyRootQueryRetrieveInformationModelFind)
        return [match_from_dataset(identifier, query.level)
                for identifier in self._c_find(query.identifier(), model, cancel)]

    def _c_find(self, identifier: Dataset, model: str, cancel: CancelFn) -> list[Dataset]:
        """The identifiers of a C-FIND's pending responses, over :mod:`.upper` (cancel aborts)."""
        out: list[Dataset] = []
        with self._lean([(model, [ImplicitVRLittleEndian])], []) as assoc:
            cx = assoc.context_for(model)
            if cx is None:
                raise PacsError(f"{self.node.label}: the PACS does not offer C-FIND ({model})")
            try:
                assoc.send_message(cx.context_id, upper.c_find_rq(assoc.next_message_id(), model),
                                   dsutils.encode(identifier, True, True))
                while True:
                    if cancel():
                        raise CancelledError(f"{self.node.label}: search cancelled")
                    _cx, reply, data = assoc.read_message()
                    _expect(reply, upper.C_FIND_RSP)
                    if reply.get("Status") in PENDING:
                        if data:
                            decoded = dsutils.decode(BytesIO(data), True, True)
                            if decoded is not None:
                                out.append(decoded)
                        continue
                    self._check_reply(reply, "C-FIND")
                    return out
            except (OSError, upper.PeerGone) as exc:
                raise PacsError(f"{self.node.label}: C-FIND: no reply (association aborted or timed out)",
                                retryable=True) from exc

    def instance_uids(self, study_uid: str, series_uid: str) -> list[str]:
        """The SOPInstanceUIDs of a series (IMAGE-level C-FIND)."""
        return [str(m["SOPInstanceUID"]) for m in self.instances(study_uid, series_uid)]

    def instances(self, study_uid: str, series_uid: str) -> list[dict]:
        """``{"SOPInstanceUID", "InstanceNumber"}`` of each instance of a series (IMAGE-level C-FIND;
        InstanceNumber ``None`` where the PACS has none)."""
        ds = Dataset()
        ds.QueryRetrieveLevel = "IMAGE"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = ""
        ds.InstanceNumber = None
        out: list[dict] = []
        for identifier in self._c_find(ds, str(StudyRootQueryRetrieveInformationModelFind), _never):
            uid = str(identifier.get("SOPInstanceUID", "") or "")
            number = identifier.get("InstanceNumber")
            if uid:
                out.append({"SOPInstanceUID": uid,
                            "InstanceNumber": int(number) if number not in (None, "") else None})
        return out

    # -- C-GET / C-MOVE ----------------------------------------------------------------------------------
    def retrieve_series(self, folder: SeriesFolder, *, move: bool = False, cancel: CancelFn = _never,
                        only: list[str] | None = None) -> Generator[Progress, None, int]:
        """Fetch the instances of ``folder``'s series that it lacks (or just the ``only`` SOPInstanceUIDs);
        yields progress, returns the count.

        C-GET runs over :mod:`.upper` (one thread, the data sets streamed to disk); so does the C-MOVE request,
        whose instances pynetdicom's storage SCP takes on the associations the PACS opens.

        Raises
        ------
        PacsError
            Refused, rejected, aborted mid-way (the files written so far stay, complete), or a failure
            status; the message says how many instances arrived.
        CancelledError
            ``cancel()`` became true.
        """
        have = folder.have()
        identifiers: list[Dataset]
        total: int | None = None
        if only is not None:
            missing = [u for u in only if u not in have]
            total = len(missing)
            if not missing:
                return 0
            identifiers = [self._identifier(folder, "IMAGE", missing[i:i + 1000])
                           for i in range(0, len(missing), 1000)]
        elif have:
            # resume: ask for exactly the missing instances (one identifier: a UID list, PS3.4 C.4.3.1.3)
            missing = [u for u in self.instance_uids(folder.study_uid, folder.series_uid) if u not in have]
            total = len(missing)
            if not missing:
                return 0
            identifiers = [self._identifier(folder, "IMAGE", missing[i:i + 1000])
                           for i in range(0, len(missing), 1000)]
        else:
            identifiers = [self._identifier(folder, "SERIES")]
        what = "C-MOVE" if move else "C-GET"
        yield Progress(0, total, f"{self.node.label}: {what} series {folder.series_uid}", folder.series_uid)
        start = folder.written
        responses = self._move_responses(folder, identifiers) if move else self._get_responses(folder, identifiers)
        try:
            for status in responses:
                if cancel():
                    responses.close()  # aborts the association
                    raise CancelledError(f"{self.node.label}: retrieval cancelled after "
                                         f"{folder.written - start} instance(s); run it again to resume")
                code = status.get("Status")
                if code is None and status:  # an instance stored
                    yield Progress(folder.written - start, total, f"{what} {folder.written - start}"
                                   f"/{total if total is not None else '?'}", folder.series_uid)
                    continue
                if code in PENDING:
                    if total is None and "NumberOfRemainingSuboperations" in status:
                        total = sum(int(status.get(k, 0) or 0) for k in (
                            "NumberOfRemainingSuboperations", "NumberOfCompletedSuboperations",
                            "NumberOfFailedSuboperations", "NumberOfWarningSuboperations"))
                    yield Progress(folder.written - start, total, f"{what} {folder.written - start}"
                                   f"/{total if total is not None else '?'}", folder.series_uid)
                    continue
                if code is None:
                    raise PacsError(f"{self.node.label}: {what} interrupted after "
                                    f"{folder.written - start} instance(s) (association aborted or "
                                    "timed out); the files received are complete: run it again to "
                                    "resume", retryable=True)
                self._check_code(code, status.get("ErrorComment"), what)
                failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
                if failed or folder.errors:
                    detail = folder.errors[0] if folder.errors else f"{failed} sub-operation(s) failed"
                    raise PacsError(f"{self.node.label}: {what}: {detail}")
        finally:
            responses.close()
        got = folder.written - start
        yield Progress(got, total if total is not None else got, f"{what} done: {got} instance(s)",
                       folder.series_uid)
        return got

    def _check_reply(self, reply: dict, what: str) -> None:
        """:meth:`_check_code` of a final response's command set (no Status at all counts as a failure)."""
        code = reply.get("Status")
        self._check_code(int(code) if code is not None else 0xC000, reply.get("ErrorComment"), what)

    def _check_code(self, code: int, comment: str | None, what: str) -> None:
        if code != 0x0000 and code not in WARNINGS:
            raise PacsError(f"{self.node.label}: {what} failed with status {status_text(code)}"
                            + (f" ({comment})" if comment else ""))

    def _associate_upper(self, contexts, scp_roles) -> upper.Association:
        """An established :class:`upper.Association`, or :class:`PacsError` after the retries: a refused
        connection, a timeout or an abort is retried ``node.retries`` times with backoff; a rejection or no
        accepted context is reported at once (asking again gets the same answer).

        Every SCU operation negotiates here (no pynetdicom association: its reactor sometimes reported
        Orthanc's A-ASSOCIATE-RJ, followed at once by a close, as "not established, not rejected, nothing
        accepted"; a blocking read of the PDU cannot miss it)."""
        node = self.node
        last: PacsError | None = None
        assert node.host is not None and node.port is not None and node.ae_title is not None
        for attempt in range(node.retries + 1):
            if attempt:
                self._sleep(node.backoff * 2 ** (attempt - 1))
            try:
                return upper.Association.request(node.host, node.port, calling=self.our_ae_title,
                                                 called=node.ae_title, timeout=node.timeout, max_pdu=MAX_PDU,
                                                 contexts=contexts, scp_roles=scp_roles)
            except upper.Rejected as exc:
                raise PacsError(self._rejected_text(exc)) from None
            except upper.NothingAccepted:
                raise PacsError(f"{node.label}: the PACS accepted none of the requested services") from None
            except TimeoutError:
                last = PacsError(f"{node.label}: no answer within {node.timeout:g} s", retryable=True)
            except upper.PeerGone:
                last = PacsError(f"{node.label}: association aborted by the peer", retryable=True)
            except OSError:
                last = PacsError(f"{node.label}: cannot connect (connection refused or host unreachable)",
                                 retryable=True)
        assert last is not None
        raise PacsError(f"{last}" + (f" after {node.retries + 1} attempts" if node.retries else ""),
                        retryable=True)

    def _rejected_text(self, rejected: upper.Rejected) -> str:
        return (f"{self.node.label}: {rejected} (called AE title {self.node.ae_title!r}, our AE title "
                f"{self.our_ae_title!r}: check both are configured on the PACS)")

    def _get_responses(self, folder: SeriesFolder, identifiers: list[Dataset]) -> Iterator[dict]:
        """C-GET over :mod:`.upper`: yields each C-GET-RSP's status (a dict), ``{"stored": 1}`` after each
        instance written, ``{}`` if the association broke or timed out. Closing it early aborts the
        association."""
        model = str(StudyRootQueryRetrieveInformationModelGet)
        try:
            with self._lean(*_retrieval_contexts()) as assoc:
                cx = assoc.context_for(model)
                if cx is None:
                    raise PacsError(f"{self.node.label}: the PACS does not offer C-GET (study root)")
                for ds in identifiers:
                    assoc.send_message(cx.context_id, upper.c_get_rq(assoc.next_message_id(), model),
                                       dsutils.encode(ds, True, True))
                    last: dict = {}
                    for last in _get_exchange(assoc, folder):
                        yield last
                    if last.get("Status") is None:
                        raise _Interrupted  # aborts the association
                    if last["Status"] not in PENDING and last["Status"] != 0x0000 \
                            and last["Status"] not in WARNINGS:
                        raise _Interrupted  # a failure status: the caller raises; this association is done
        except (OSError, upper.PeerGone):  # timeout, reset, abort: the caller says "interrupted"
            yield {}
        except _Interrupted:
            pass

    def _move_responses(self, folder: SeriesFolder, identifiers: list[Dataset]) -> Iterator[dict]:
        """C-MOVE (over :mod:`.upper`) to our storage SCP (pynetdicom's, which takes the instances on the
        associations the PACS opens): the same items as :meth:`_get_responses`."""
        def on_store(event) -> int:
            try:
                folder.write_encoded(str(event.request.AffectedSOPInstanceUID), None,
                                     event.request.DataSet.getbuffer(),
                                     sop_class_uid=str(event.request.AffectedSOPClassUID),
                                     transfer_syntax=str(event.context.transfer_syntax))
            except (OSError, PacsError):
                return 0xA700
            return 0x0000

        ae = self._ae()
        model = str(StudyRootQueryRetrieveInformationModelMove)
        ae.supported_contexts = AllStoragePresentationContexts
        ae.maximum_associations = 4
        try:
            scp = ae.start_server((self.storage_bind, self.storage_port), block=False,
                                  evt_handlers=[(evt.EVT_C_STORE, on_store), (evt.EVT_CONN_OPEN, _no_delay)])
        except OSError as exc:
            raise PacsError(f"cannot listen for C-MOVE on port {self.storage_port} "
                            f"({exc.strerror or exc}): set another storage port") from exc
        try:
            # the C-MOVE itself over .upper, on an association of its own (a session's has no C-MOVE context)
            assoc = self._associate_upper([(model, [ImplicitVRLittleEndian])], ())
            finished = False
            try:
                cx = assoc.context_for(model)
                assert cx is not None  # the only context asked for: NothingAccepted otherwise
                for ds in identifiers:
                    assoc.send_message(cx.context_id, upper.c_move_rq(assoc.next_message_id(), model,
                                                                      self.our_ae_title),
                                       dsutils.encode(ds, True, True))
                    while True:
                        try:
                            _cx, reply, _data = assoc.read_message()
                        except (OSError, upper.PeerGone):
                            reply = {}
                        if reply.get("CommandField") != upper.C_MOVE_RSP or reply.get("Status") is None:
                            yield {}  # timeout, reset, abort: the caller says "interrupted"
                            return
                        yield reply
                        if reply["Status"] not in PENDING:
                            break
                finished = True
            finally:
                assoc.release() if finished else assoc.abort()
        finally:
            scp.shutdown()

    @staticmethod
    def _identifier(folder: SeriesFolder, level: str, sop_uids: list[str] | None = None) -> Dataset:
        ds = Dataset()
        ds.QueryRetrieveLevel = level
        ds.StudyInstanceUID = folder.study_uid
        ds.SeriesInstanceUID = folder.series_uid
        if sop_uids:
            ds.SOPInstanceUID = sop_uids if len(sop_uids) > 1 else sop_uids[0]
        return ds

    # -- C-STORE -----------------------------------------------------------------------------------------
    def store(self, files: list[tuple[Path, Dataset]], *, cancel: CancelFn = _never
              ) -> Generator[Progress, None, list[tuple[Path, str]]]:
        """C-STORE ``files`` (path + its header) over :mod:`.upper`, each sent as its file's bytes (no
        decoding, no re-encoding); yields progress; returns the ``(path, reason)`` of each file the PACS
        refused (the others were stored). Local files are only read.

        One presentation context per (SOP class, transfer syntax) of the files, so each goes in its own
        encoding; a pair the PACS does not accept refuses those files, not the send.
        """
        pairs: list[tuple[str, str]] = []
        for _path, header in files:
            pair = (str(header.SOPClassUID), str(header.file_meta.TransferSyntaxUID))
            if pair not in pairs:
                pairs.append(pair)
        if len(pairs) > 128:
            raise PacsError(f"{self.node.label}: more than 128 kinds of SOP class and transfer syntax in one "
                            "send; send fewer files at once")
        assoc = self._associate_upper([(sop, [ts]) for sop, ts in pairs], ())
        by_pair = {(cx.abstract_syntax, cx.transfer_syntax): cx.context_id for cx in assoc.contexts.values()}
        refused: list[tuple[Path, str]] = []
        finished = False
        try:
            for index, (path, header) in enumerate(files):
                if cancel():
                    raise CancelledError(f"{self.node.label}: send cancelled after {index} of {len(files)} "
                                         "file(s)")
                sop, ts = str(header.SOPClassUID), str(header.file_meta.TransferSyntaxUID)
                context_id = by_pair.get((sop, ts))
                if context_id is None:
                    refused.append((path, f"the PACS accepts no {sop} in transfer syntax {ts}"))
                    continue
                try:
                    data = path.read_bytes()
                    offset = upper.data_set_offset(data)
                except (OSError, ValueError) as exc:
                    refused.append((path, f"cannot read it ({getattr(exc, 'strerror', None) or exc})"))
                    continue
                try:
                    assoc.send_message(context_id, upper.c_store_rq(index + 1, sop, str(header.SOPInstanceUID)),
                                       memoryview(data)[offset:])
                    _cx, reply = assoc.read_command()
                except (OSError, upper.PeerGone) as exc:
                    raise PacsError(f"{self.node.label}: C-STORE interrupted at {path.name} after {index} of "
                                    f"{len(files)} file(s) (association aborted or timed out)",
                                    retryable=True) from exc
                code = int(reply.get("Status", 0xC000))
                if code != 0x0000 and code not in WARNINGS:
                    comment = f" ({reply['ErrorComment']})" if reply.get("ErrorComment") else ""
                    refused.append((path, f"status {status_text(code)}{comment}"))
                yield Progress(index + 1, len(files), f"C-STORE {index + 1}/{len(files)}: {path.name}")
            finished = True
        finally:
            assoc.release() if finished else assoc.abort()
        return refused


class _Interrupted(Exception):
    """Internal: leave a C-GET's association aborted."""


class _Session:
    """The association a :meth:`DimseClient.session` shares (``None`` until the first operation)."""

    def __init__(self) -> None:
        self.assoc: upper.Association | None = None


@functools.lru_cache(maxsize=1)
def _retrieval_contexts() -> tuple[list[tuple[str, list[str]]], list[str]]:
    """The contexts of a retrieval's association: C-FIND and C-GET (study root), and the storage SOP
    classes the PACS may send us (with the SCP role): 2 + 120, within the 128 a negotiation allows."""
    storage = [str(cx.abstract_syntax) for cx in StoragePresentationContexts[:126]]
    contexts = [(str(StudyRootQueryRetrieveInformationModelFind), [str(ImplicitVRLittleEndian)]),
                (str(StudyRootQueryRetrieveInformationModelGet), [str(ImplicitVRLittleEndian)])]
    return contexts + [(uid, STORE_SYNTAXES) for uid in storage], storage


def _get_exchange(assoc: upper.Association, folder: SeriesFolder) -> Iterator[dict]:
    """One C-GET's messages after its request: the peer's C-STORE-RQs (each data set streamed into its
    file, answered by a C-STORE-RSP) until the final C-GET-RSP. Yields the C-GET-RSP statuses and
    ``{"stored": 1}`` after each instance; the caller handles broken connections."""
    command = bytearray()
    request: dict | None = None
    context_id = 0
    writer = None
    status = 0x0000
    try:
        while True:
            for cx_id, control, fragment in assoc.pdvs():
                if control & 0x01:  # command fragment
                    command += fragment
                    if not control & 0x02:
                        continue
                    message = upper.decode_command(command)
                    command = bytearray()
                    field = message.get("CommandField")
                    if field == upper.C_GET_RSP:
                        yield message
                        if message.get("Status") not in PENDING:
                            return
                    elif field == upper.C_STORE_RQ:
                        request, context_id, status, writer = message, cx_id, 0x0000, None
                        cx = assoc.contexts.get(cx_id)
                        if cx is None:
                            status = 0x0122
                        else:
                            try:
                                writer = folder.open_instance(str(message.get("AffectedSOPInstanceUID", "")),
                                                              str(message.get("AffectedSOPClassUID", "")),
                                                              cx.transfer_syntax)
                            except PacsError as exc:
                                folder._error(str(exc))
                                status = 0xC000
                            except OSError:
                                status = 0xA700
                        if message.get("CommandDataSetType") == upper.NO_DATA_SET:
                            _answer_store(assoc, context_id, request, writer, 0xC000)
                            request = writer = None
                    else:
                        raise upper.PeerGone(f"unexpected DIMSE command 0x{field or 0:04X}")
                elif request is not None:  # data set fragment of the current C-STORE-RQ
                    if writer is not None:
                        try:
                            writer.write(fragment)
                        except OSError:
                            writer, status = None, 0xA700
                    if control & 0x02:
                        _answer_store(assoc, context_id, request, writer, status)
                        request = writer = None
                        yield {"stored": 1}
    finally:
        if writer is not None:
            writer.discard()


def _answer_store(assoc: upper.Association, context_id: int, request: dict, writer, status: int) -> None:
    """Answer a C-STORE-RQ, then rename its file into place.

    The answer goes first: the PACS prepares its next instance while we close and rename (~0.1-0.5 ms per
    instance off the round trip). Success is answered once every byte was written to the temporary file
    (a full disk fails a write, and the answer is then 0xA700); a rename that fails after that is recorded
    in ``folder.errors`` and the instance is missing, which the retrieval reports (``run it again``).
    """
    if writer is None and status == 0x0000:
        status = 0xC000
    assoc.send_message(context_id, upper.c_store_rsp(int(request.get("MessageID", 0)),
                                                     str(request.get("AffectedSOPClassUID", "")),
                                                     str(request.get("AffectedSOPInstanceUID", "")), status))
    if writer is not None:
        if status == 0x0000:
            try:
                writer.commit()
            except OSError:
                pass  # recorded in folder.errors by the writer
        else:
            writer.discard()
