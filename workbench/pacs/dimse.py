"""DIMSE transport (pynetdicom): C-ECHO, C-FIND, C-GET, C-MOVE with our own storage SCP, C-STORE.

Every association is bounded by the node's ``timeout`` (TCP connect, negotiation, each reply); a refused
connection or a timeout is retried ``node.retries`` times with exponential backoff, a rejection (wrong AE
title, unknown caller) is not. Retrievals and sends are generators yielding :class:`~.storage.Progress`
per instance and checking ``cancel()`` between replies; a cancel aborts the association.
"""
from __future__ import annotations

import functools
import socket
import threading
import time
from pathlib import Path
from typing import Callable, Generator

from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, StoragePresentationContexts, build_role, evt
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from ..core.errors import CancelledError
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


def _on_open(opened: threading.Event, event) -> None:
    opened.set()
    _no_delay(event)


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

    # -- associations ----------------------------------------------------------------------------------
    def _ae(self) -> AE:
        ae = AE(ae_title=self.our_ae_title)
        t = self.node.timeout
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = t
        ae.connection_timeout = t
        ae.maximum_pdu_size = MAX_PDU
        return ae

    def _associate(self, ae: AE, *, ext_neg=None, handlers=None):
        """An established association, or :class:`PacsError` after the retries."""
        node = self.node
        last: PacsError | None = None
        for attempt in range(node.retries + 1):
            if attempt:
                self._sleep(node.backoff * 2 ** (attempt - 1))
            opened = threading.Event()
            hs = list(handlers or []) + [(evt.EVT_CONN_OPEN, functools.partial(_on_open, opened))]
            t0 = time.monotonic()
            assoc = ae.associate(node.host, node.port, ae_title=node.ae_title, ext_neg=ext_neg,
                                 evt_handlers=hs, max_pdu=MAX_PDU)
            if assoc.is_established:
                return assoc
            if assoc.is_rejected:
                raise PacsError(f"{node.label}: association rejected (called AE title {node.ae_title!r}, "
                                f"our AE title {self.our_ae_title!r}: check both are configured on the PACS)")
            if not opened.is_set():
                last = PacsError(f"{node.label}: cannot connect (connection refused or host unreachable)",
                                 retryable=True)
            elif time.monotonic() - t0 >= node.timeout * 0.9:
                last = PacsError(f"{node.label}: no answer within {node.timeout:g} s", retryable=True)
            elif ae.requested_contexts and not assoc.accepted_contexts:
                raise PacsError(f"{node.label}: the PACS accepted none of the requested services")
            else:
                last = PacsError(f"{node.label}: association aborted by the peer", retryable=True)
        assert last is not None
        raise PacsError(f"{last}" + (f" after {node.retries + 1} attempts" if node.retries else ""),
                        retryable=True)

    # -- C-ECHO ------------------------------------------------------------------------------------------
    def echo(self) -> float:
        """C-ECHO; the round trip in milliseconds (association included)."""
        ae = self._ae()
        ae.add_requested_context(Verification)
        t0 = time.perf_counter()
        assoc = self._associate(ae)
        try:
            status = assoc.send_c_echo()
        finally:
            assoc.release()
        self._check_final(status, "C-ECHO")
        return (time.perf_counter() - t0) * 1000

    def _check_final(self, status: Dataset, what: str) -> int:
        if not status or "Status" not in status:
            raise PacsError(f"{self.node.label}: {what}: no reply (association aborted or timed out)",
                            retryable=True)
        code = int(status.Status)
        if code != 0x0000 and code not in WARNINGS:
            comment = f" ({status.ErrorComment})" if status.get("ErrorComment") else ""
            raise PacsError(f"{self.node.label}: {what} failed with status {status_text(code)}{comment}")
        return code

    # -- C-FIND ------------------------------------------------------------------------------------------
    def find(self, query: Query, *, cancel: CancelFn = _never) -> list[dict]:
        """C-FIND at the query's level; the matches as keyword dicts (see :mod:`.query`)."""
        model = (PatientRootQueryRetrieveInformationModelFind if query.level == "patient"
                 else StudyRootQueryRetrieveInformationModelFind)
        ae = self._ae()
        ae.add_requested_context(model)
        assoc = self._associate(ae)
        matches: list[dict] = []
        try:
            for status, identifier in assoc.send_c_find(query.identifier(), model):
                if cancel():
                    assoc.abort()
                    raise CancelledError(f"{self.node.label}: search cancelled")
                if status and int(status.Status) in PENDING and identifier is not None:
                    matches.append(match_from_dataset(identifier, query.level))
                    continue
                self._check_final(status, "C-FIND")
        finally:
            if assoc.is_established:
                assoc.release()
        return matches

    def instance_uids(self, study_uid: str, series_uid: str) -> list[str]:
        """The SOPInstanceUIDs of a series (IMAGE-level C-FIND)."""
        ds = Dataset()
        ds.QueryRetrieveLevel = "IMAGE"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = ""
        model = StudyRootQueryRetrieveInformationModelFind
        ae = self._ae()
        ae.add_requested_context(model)
        assoc = self._associate(ae)
        uids: list[str] = []
        try:
            for status, identifier in assoc.send_c_find(ds, model):
                if status and int(status.Status) in PENDING and identifier is not None:
                    uids.append(str(identifier.get("SOPInstanceUID", "")))
                    continue
                self._check_final(status, "C-FIND")
        finally:
            if assoc.is_established:
                assoc.release()
        return [u for u in uids if u]

    # -- C-GET / C-MOVE ----------------------------------------------------------------------------------
    def retrieve_series(self, folder: SeriesFolder, *, move: bool = False, cancel: CancelFn = _never
                        ) -> Generator[Progress, None, int]:
        """Fetch the instances of ``folder``'s series that it lacks; yields progress, returns the count.

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
        if have:
            # resume: ask for exactly the missing instances
            missing = [u for u in self.instance_uids(folder.study_uid, folder.series_uid) if u not in have]
            total = len(missing)
            identifiers = [self._identifier(folder, "IMAGE", sop) for sop in missing]
            if not identifiers:
                return 0
        else:
            identifiers = [self._identifier(folder, "SERIES")]
        yield Progress(0, total, f"{self.node.label}: {'C-MOVE' if move else 'C-GET'} series "
                       f"{folder.series_uid}", folder.series_uid)
        start = folder.written
        what = "C-MOVE" if move else "C-GET"

        def on_store(event) -> int:
            try:
                sop = str(event.request.AffectedSOPInstanceUID)
                folder.write_encoded(sop, event.file_meta, event.request.DataSet.getvalue())
            except (OSError, PacsError):
                return 0xA700
            return 0x0000

        handlers = [(evt.EVT_C_STORE, on_store)]
        ae = self._ae()
        scp = None
        if move:
            model = StudyRootQueryRetrieveInformationModelMove
            ae.add_requested_context(model)
            ae.supported_contexts = AllStoragePresentationContexts
            ae.maximum_associations = 4
            try:
                scp = ae.start_server((self.storage_bind, self.storage_port), block=False,
                                      evt_handlers=handlers + [(evt.EVT_CONN_OPEN, _no_delay)])
            except OSError as exc:
                raise PacsError(f"cannot listen for C-MOVE on port {self.storage_port} "
                                f"({exc.strerror or exc}): set another storage port") from exc
            assoc_handlers = None
            ext_neg = None
        else:
            model = StudyRootQueryRetrieveInformationModelGet
            ae.add_requested_context(model)
            # 127 storage contexts + the GET context: the 128 a negotiation allows
            for cx in StoragePresentationContexts[:127]:
                ae.add_requested_context(cx.abstract_syntax)
            ext_neg = [build_role(cx.abstract_syntax, scp_role=True) for cx in StoragePresentationContexts[:127]]
            assoc_handlers = handlers
        try:
            assoc = self._associate(ae, ext_neg=ext_neg, handlers=assoc_handlers)
            try:
                for ds in identifiers:
                    responses = (assoc.send_c_move(ds, self.our_ae_title, model) if move
                                 else assoc.send_c_get(ds, model))
                    for status, _identifier in responses:
                        if cancel():
                            assoc.abort()
                            raise CancelledError(f"{self.node.label}: retrieval cancelled after "
                                                 f"{folder.written - start} instance(s); run it again to resume")
                        if status and int(status.Status) in PENDING:
                            if total is None and "NumberOfRemainingSuboperations" in status:
                                total = (int(status.NumberOfRemainingSuboperations)
                                         + int(status.get("NumberOfCompletedSuboperations", 0) or 0)
                                         + int(status.get("NumberOfFailedSuboperations", 0) or 0)
                                         + int(status.get("NumberOfWarningSuboperations", 0) or 0))
                            yield Progress(folder.written - start, total, f"{what} {folder.written - start}"
                                           f"/{total if total is not None else '?'}", folder.series_uid)
                            continue
                        if not status or "Status" not in status:
                            raise PacsError(f"{self.node.label}: {what} interrupted after "
                                            f"{folder.written - start} instance(s) (association aborted or "
                                            "timed out); the files received are complete: run it again to "
                                            "resume", retryable=True)
                        self._check_final(status, what)
                        failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
                        if failed or folder.errors:
                            detail = folder.errors[0] if folder.errors else f"{failed} sub-operation(s) failed"
                            raise PacsError(f"{self.node.label}: {what}: {detail}")
            finally:
                if assoc.is_established:
                    assoc.release()
        finally:
            if scp is not None:
                scp.shutdown()
        got = folder.written - start
        yield Progress(got, total if total is not None else got, f"{what} done: {got} instance(s)",
                       folder.series_uid)
        return got

    @staticmethod
    def _identifier(folder: SeriesFolder, level: str, sop_uid: str | None = None) -> Dataset:
        ds = Dataset()
        ds.QueryRetrieveLevel = level
        ds.StudyInstanceUID = folder.study_uid
        ds.SeriesInstanceUID = folder.series_uid
        if sop_uid:
            ds.SOPInstanceUID = sop_uid
        return ds

    # -- C-STORE -----------------------------------------------------------------------------------------
    def store(self, files: list[tuple[Path, Dataset]], *, cancel: CancelFn = _never
              ) -> Generator[Progress, None, list[tuple[Path, str]]]:
        """C-STORE ``files`` (path + its header); yields progress; returns the ``(path, reason)`` of each
        file the PACS refused (the others were stored). Local files are only read."""
        ae = self._ae()
        contexts: dict[str, set[str]] = {}
        for _path, header in files:
            contexts.setdefault(str(header.SOPClassUID), set()).add(str(header.file_meta.TransferSyntaxUID))
        if len(contexts) > 128:
            raise PacsError(f"{self.node.label}: more than 128 SOP classes in one send; send fewer files at once")
        for sop_class, syntaxes in contexts.items():
            ae.add_requested_context(sop_class, sorted(syntaxes | {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2"}))
        assoc = self._associate(ae)
        refused: list[tuple[Path, str]] = []
        try:
            for index, (path, _header) in enumerate(files):
                if cancel():
                    assoc.abort()
                    raise CancelledError(f"{self.node.label}: send cancelled after {index} of {len(files)} "
                                         "file(s)")
                try:
                    status = assoc.send_c_store(path)
                except ValueError as exc:  # no accepted context for its SOP class / transfer syntax
                    refused.append((path, " ".join(str(exc).split())))
                    continue
                if not status or "Status" not in status:
                    raise PacsError(f"{self.node.label}: C-STORE interrupted at {path.name} after {index} of "
                                    f"{len(files)} file(s) (association aborted or timed out)", retryable=True)
                code = int(status.Status)
                if code != 0x0000 and code not in WARNINGS:
                    comment = f" ({status.ErrorComment})" if status.get("ErrorComment") else ""
                    refused.append((path, f"status {status_text(code)}{comment}"))
                yield Progress(index + 1, len(files), f"C-STORE {index + 1}/{len(files)}: {path.name}")
        finally:
            if assoc.is_established:
                assoc.release()
        return refused

