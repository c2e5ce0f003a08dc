"""Crash recovery: the unsaved work of a running app, written as a session file in the user data dir.

Every running app instance owns one recovery file, ``<data dir>/recovery/<pid>-<token>.wbsession``, and
holds an exclusive lock on its ``.lock`` beside it for as long as it lives. :meth:`RecoveryStore.save`
rewrites the session atomically (temp file + ``os.replace``, :func:`workbench.session.write_session`), so a
kill -9 at any moment leaves either the previous complete file or the new one. A clean save or quit calls
:meth:`RecoveryStore.clear`. On the next start :func:`orphans` lists the recovery files whose lock nobody
holds (their app died) -- newest first -- for the GUI to offer restoring; the kernel releases the lock of a
killed process, so a live second instance's file is never offered.

Bounded: one file per instance, at most :data:`MAX_ORPHANS` orphans kept (older ones and any older than
:data:`MAX_AGE_DAYS` are deleted when a store starts).

Writes run on one background thread (the GUI only takes the snapshot, a copy of the label map); a newer
snapshot queued while one is being written replaces the older one, so the file is never more than one
write behind the last completed operation.
"""
from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Callable

from ..core.settings import data_dir
from .snapshot import SESSION_SUFFIX, Session
from .write import write_session

log = logging.getLogger("workbench.session")

MAX_ORPHANS = 5
MAX_AGE_DAYS = 14


def recovery_dir() -> Path:
    return data_dir() / "recovery"


def _lock(fh) -> bool:
    """Take an exclusive, non-blocking lock on an open file; False when another process holds it."""
    try:
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except ImportError:  # Windows: msvcrt locks a byte range
        import msvcrt

        try:
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            return True
        except OSError:
            return False
    except OSError:
        return False


def orphans(folder: Path | None = None) -> list[Path]:
    """Recovery files left by apps that did not close cleanly (their lock is free), newest first."""
    folder = folder or recovery_dir()
    found: list[tuple[float, Path]] = []
    if not folder.is_dir():
        return []
    for path in folder.glob(f"*{SESSION_SUFFIX}"):
        lock = path.with_suffix(".lock")
        try:
            with open(lock, "a+b") as fh:
                free = _lock(fh)  # released again when the file closes
        except OSError:
            continue
        if free:
            try:
                found.append((path.stat().st_mtime, path))
            except OSError:
                continue
    return [p for _, p in sorted(found, reverse=True)]


def discard(path: Path) -> None:
    """Delete a recovery file and its lock (after restoring it, or when the user declined)."""
    for p in (path, path.with_suffix(".lock")):
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot delete %s: %s", p, exc)


def _prune(folder: Path) -> None:
    now = time.time()
    for k, path in enumerate(orphans(folder)):
        try:
            old = now - path.stat().st_mtime > MAX_AGE_DAYS * 86400
        except OSError:
            continue
        if k >= MAX_ORPHANS or old:
            discard(path)


class RecoveryStore:
    """The recovery file of this app instance.

    Parameters
    ----------
    folder : Path, optional
        Default :func:`recovery_dir`.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or recovery_dir()
        self.folder.mkdir(parents=True, exist_ok=True)
        _prune(self.folder)
        stem = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.path = self.folder / f"{stem}{SESSION_SUFFIX}"
        self._lock_file = open(self.folder / f"{stem}.lock", "a+b")  # held until close(): "this app lives"
        _lock(self._lock_file)
        self._cond = threading.Condition()
        self._pending: tuple[int, Session] | None = None
        self._written = 0  # generation of the last snapshot on disk
        self._cleared_at = 0
        self._closed = False
        self.on_written: Callable[[int], None] | None = None
        self._thread = threading.Thread(target=self._loop, name="workbench-recovery", daemon=True)
        self._thread.start()

    @property
    def written_generation(self) -> int:
        with self._cond:
            return self._written

    def save(self, session: Session, generation: int) -> None:
        """Queue ``session`` (a :func:`~workbench.session.capture` snapshot) for writing; returns at once.
        ``generation`` numbers the snapshots: an older one never overwrites a newer one."""
        with self._cond:
            if self._closed or generation <= max(self._written, self._cleared_at):
                return
            if self._pending is None or generation > self._pending[0]:
                self._pending = (generation, session)
            self._cond.notify()

    def wait_written(self, generation: int, timeout: float = 30.0) -> bool:
        """Block until the snapshot ``generation`` (or a newer one) is on disk (tests, quit)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._written < generation and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return self._written >= generation

    def clear(self, generation: int = 0) -> None:
        """The work is saved (or deliberately discarded): delete the recovery file; snapshots up to
        ``generation`` still queued are dropped."""
        with self._cond:
            self._cleared_at = max(self._cleared_at, generation)
            if self._pending is not None and self._pending[0] <= generation:
                self._pending = None
        for p in (self.path,):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("cannot delete %s: %s", p, exc)

    def close(self, *, clean: bool = True) -> None:
        """Stop the writer; ``clean`` (a normal quit) also deletes the file and the lock."""
        with self._cond:
            self._closed = True
            self._pending = None
            self._cond.notify_all()
        self._thread.join(timeout=30)
        if clean:
            self.clear()
        try:
            self._lock_file.close()
        except OSError:
            pass
        if clean:
            try:
                self.path.with_suffix(".lock").unlink()
            except OSError:
                pass

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                generation, session = self._pending  # type: ignore[misc]
                self._pending = None
            try:
                write_session(session, self.path)
            except Exception as exc:  # noqa: BLE001 - a failed autosave must never take the app down
                log.warning("recovery file %s not written: %s", self.path, exc)
                continue
            with self._cond:
                if generation <= self._cleared_at:  # saved cleanly while we wrote: not needed
                    try:
                        self.path.unlink()
                    except OSError:
                        pass
                    continue
                self._written = max(self._written, generation)
                self._cond.notify_all()
            if self.on_written is not None:
                self.on_written(generation)
