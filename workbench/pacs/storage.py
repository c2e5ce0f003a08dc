"""Where retrieved instances land: one folder per series, one file per instance, each written atomically.

A file ``<SOPInstanceUID>.dcm`` exists only once it is complete (temporary ``.<uid>.*.dcm`` beside it, then
``os.replace``), so an interrupted retrieval leaves complete files only, and the next one fetches just what
is missing (:meth:`SeriesFolder.have`). ``.series.json`` marks a series complete. Per-file fsyncs are
deferred to one ``os.sync()`` per retrieval (:class:`~workbench.io.atomic.DeferredSync`): atomicity does not
depend on them, only durability across a power loss, and they would cost more than the network here.
"""
from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import write_file_meta_info

from ..io.atomic import DeferredSync, atomic_path, atomic_write_text
from .errors import PacsError

MARKER = ".series.json"
_UID = re.compile(r"^[0-9.]{1,64}$")


@dataclass(frozen=True)
class Progress:
    """One step of a retrieval or a send: ``done`` of ``total`` instances (``total`` ``None``: not known yet)."""

    done: int
    total: int | None
    message: str
    series_uid: str | None = None


def instance_filename(sop_uid: str) -> str:
    if not _UID.match(sop_uid or ""):
        raise PacsError(f"received an instance with an invalid SOPInstanceUID {sop_uid!r}")
    return f"{sop_uid}.dcm"


class SeriesFolder:
    """The folder of one series; thread-safe (the store handler runs on the association's thread)."""

    def __init__(self, path: str | Path, *, study_uid: str, series_uid: str,
                 deferred: DeferredSync | None = None) -> None:
        self.path = Path(path)
        self.study_uid = study_uid
        self.series_uid = series_uid
        self.deferred = deferred
        self._lock = threading.Lock()
        self.written = 0
        self.errors: list[str] = []
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PacsError(f"cannot create the series folder ({exc.strerror})", path=self.path) from exc
        # a temporary file left by a killed process is not an instance: drop it
        for stray in self.path.glob(".*.dcm"):
            stray.unlink(missing_ok=True)

    def have(self) -> set[str]:
        """SOPInstanceUIDs already stored (complete files only)."""
        return {p.stem for p in self.path.glob("*.dcm") if not p.name.startswith(".")}

    @property
    def complete(self) -> bool:
        return (self.path / MARKER).is_file()

    def _write(self, sop_uid: str, write) -> None:
        target = self.path / instance_filename(sop_uid)

        def commit() -> None:
            with atomic_path(target, suffix=".dcm") as tmp:
                with open(tmp, "wb") as fh:
                    write(fh)

        try:
            self.deferred.run(commit) if self.deferred is not None else commit()
        except OSError as exc:
            with self._lock:
                self.errors.append(f"{target}: {exc.strerror or exc}")
            raise
        with self._lock:
            self.written += 1

    def write_encoded(self, sop_uid: str, file_meta: FileMetaDataset, encoded: bytes) -> None:
        """Store an instance as received (its encoded data set, no decoding: the fast path of C-GET/C-MOVE).

        One ``os.write`` to a temporary file of a name unique to this thread, then ``os.replace``: the
        general :func:`~workbench.io.atomic.atomic_path` (mkstemp, reopen, stat) cost a third of the
        per-instance time of a C-GET of small instances."""
        target = self.path / instance_filename(sop_uid)
        header = BytesIO()
        header.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(header, file_meta, enforce_standard=True)
        tmp = self.path / f".{sop_uid}.{os.getpid()}.{threading.get_ident()}.dcm"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o644)
            try:
                view = memoryview(header.getvalue() + encoded)
                while view:
                    view = view[os.write(fd, view):]
                if self.deferred is None:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            with self._lock:
                self.errors.append(f"{target}: {exc.strerror or exc}")
            raise
        with self._lock:
            self.written += 1

    def write_dataset(self, ds: Dataset) -> None:
        """Store a decoded data set (DICOMweb)."""
        self._write(str(ds.SOPInstanceUID), lambda fh: ds.save_as(fh, enforce_file_format=True))

    def mark_complete(self, *, node: str, instances: int, extra: dict[str, Any] | None = None) -> None:
        atomic_write_text(self.path / MARKER, json.dumps({
            "StudyInstanceUID": self.study_uid, "SeriesInstanceUID": self.series_uid,
            "instances": instances, "node": node, **(extra or {})}, indent=1))


def series_folder_for(root: Path, series_uid: str) -> Path:
    """The folder of a series below a retrieval root (named by its UID: stable, so resumable)."""
    if not _UID.match(series_uid or ""):
        raise PacsError(f"invalid SeriesInstanceUID {series_uid!r}")
    return Path(root) / series_uid
