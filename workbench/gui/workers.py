"""Background jobs: slow work off the GUI thread, with progress, cancel and one-line errors.

House rule 5: workers never touch widgets. Every job of the GUI is a :class:`PoolJob`: a ``QObject`` created
in the GUI thread whose :meth:`PoolJob.run` executes in a ``QThreadPool`` thread and reports only through the
object's Qt signals, which Qt queues to the GUI thread (so every slot runs there). The base owns what all
jobs share: the cancel flag, starting in the pool, the ``done`` flag and the ladder that turns the outcome
of :meth:`PoolJob.work` into exactly one terminal signal. Subclasses declare their progress and result
signals and override the message hooks where their wording differs.

:class:`LoadJob` reads an image; :class:`CallableJob` runs any ``fn(progress, cancelled)``.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable

from ..core.errors import CancelledError, WorkbenchError
from .qt import QtCore, Signal

log = logging.getLogger(__name__)

ProgressFn = Callable[..., None]
CancelledFn = Callable[[], bool]


def one_line(exc: BaseException) -> str:
    """``"ValueError: text"`` with every run of white space (newlines too) folded into one space."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


class PoolJob(QtCore.QObject):
    """Base of the GUI's pool jobs: runs :meth:`work` in a pool thread and emits exactly one terminal signal.

    Subclasses declare ``progressed`` (any signature; :meth:`work` gets its emitter) and the result signal
    named by :attr:`result_signal`, and implement :meth:`work`. The outcome maps to signals as follows:

    - the flag was set before the job ran, or :meth:`work` returned while it was set: ``cancelled``
      (:meth:`cancelled_message` of ``None``);
    - :class:`CancelledError`: ``cancelled`` (:meth:`cancelled_message` of the error);
    - any other :class:`WorkbenchError`: ``failed`` (:meth:`error_message`);
    - :class:`MemoryError`: ``failed`` (:meth:`memory_message`);
    - any other exception (a bug): logged with its traceback, ``failed`` (:meth:`unexpected_message`);
    - otherwise the result signal with :meth:`work`'s return value.

    Signals (delivered in the GUI thread)
    -------------------------------------
    failed(message)        one line that names the subject
    cancelled(message)
    """

    failed = Signal(str)
    cancelled = Signal(str)

    #: name of the signal that carries the return value of :meth:`work`
    result_signal = "finished"
    #: what ``cancelled`` says when the flag stopped the job (after the subject)
    cancel_text = "cancelled by the user"
    #: what ``failed`` says on a MemoryError (after the subject)
    memory_text = "not enough memory"

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._cancel = threading.Event()
        self.done = False
        # the terminal signals are emitted from the pool thread; Qt queues them to this object's (GUI)
        # thread, where ``done`` is set by the slot below — tests wait on it
        for signal in (getattr(self, self.result_signal), self.failed, self.cancelled):
            signal.connect(self._mark_done)

    @property
    def subject(self) -> str | None:
        """What the messages name first (a file, a plugin, an action); ``None``: the caller adds it."""
        return None

    def _mark_done(self, *_args) -> None:
        self.done = True

    def cancel(self) -> None:
        """Ask the work to stop at its next check (thread-safe)."""
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def start(self, pool: QtCore.QThreadPool | None = None) -> None:
        """Queue the job on ``pool`` (default: the global pool)."""
        start_in_pool(self, pool)

    # -- the subclass's part ---------------------------------------------------------------------------
    def work(self, progress: ProgressFn, cancelled: CancelledFn) -> Any:
        """The slow part (pool thread): report through ``progress(...)`` (the ``progressed`` signal's
        arguments), poll ``cancelled()``; return the result or raise."""
        raise NotImplementedError

    def _prefixed(self, text: str) -> str:
        return f"{self.subject}: {text}" if self.subject else text

    def cancelled_message(self, exc: CancelledError | None) -> str:
        """The ``cancelled`` message: the error's own, or (``exc`` ``None``) the subject + :attr:`cancel_text`."""
        return str(exc) if exc is not None else self._prefixed(self.cancel_text)

    def error_message(self, exc: WorkbenchError) -> str:
        """The ``failed`` message of an expected error (it already names its file/argument)."""
        return str(exc)

    def memory_message(self) -> str:
        return self._prefixed(self.memory_text)

    def unexpected_message(self, exc: Exception) -> str:
        return self._prefixed(f"unexpected error ({one_line(exc)})")

    # -- the ladder --------------------------------------------------------------------------------------
    def _emit(self, signal, *args) -> None:
        """Emit from the pool thread; a job abandoned at shutdown (its QObject already deleted by the
        application's teardown) has nobody left to tell, which is not an error: stop the work instead."""
        try:
            signal.emit(*args)
        except RuntimeError:
            log.debug("%s of %s outlived its owner; %s not delivered", type(self).__name__, self.subject, args)
            self._cancel.set()

    def _progress(self, *args) -> None:
        self._emit(self.progressed, *args)

    def run(self) -> None:
        """The body of the job (pool thread). Never raises; emits exactly one terminal signal."""
        try:
            value = None if self.is_cancelled else self.work(self._progress, self._cancel.is_set)
        except CancelledError as exc:
            self._emit(self.cancelled, self.cancelled_message(exc))
        except WorkbenchError as exc:
            self._emit(self.failed, self.error_message(exc))
        except MemoryError:
            self._emit(self.failed, self.memory_message())
        except Exception as exc:
            message = self.unexpected_message(exc)
            log.exception("%s (%s)", message, type(self).__name__)
            self._emit(self.failed, message)
        else:
            if self.is_cancelled:  # finished just as the user pressed Cancel: honour the cancel
                self._emit(self.cancelled, self.cancelled_message(None))
            else:
                self._emit(getattr(self, self.result_signal), value)


class CallableJob(PoolJob):
    """Runs ``fn(progress, cancelled) -> value`` in a pool thread.

    Signals (delivered in the GUI thread)
    -------------------------------------
    progressed(done, total)
    finished(value)
    failed(message)
    cancelled(message)
    """

    progressed = Signal(int, int)
    finished = Signal(object)

    def __init__(self, fn: Callable[[Callable[[int, int], None], CancelledFn], Any],
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.fn = fn

    def work(self, progress: ProgressFn, cancelled: CancelledFn) -> Any:
        return self.fn(progress, cancelled)


class LoadJob(PoolJob):
    """Read one file or DICOM folder with :func:`workbench.io.read_image` in a pool thread.

    The reader's own ``progress(done, total)`` and ``cancel() -> bool`` callbacks are used.

    Signals (delivered in the GUI thread)
    -------------------------------------
    progressed(done, total)
    loaded(ImageVolume)
    failed(message)        one line that names the file
    cancelled(message)
    """

    progressed = Signal(int, int)
    loaded = Signal(object)

    result_signal = "loaded"
    cancel_text = "reading cancelled by the user"
    memory_text = "not enough memory to open this image"

    def __init__(self, path: str | Path, *, max_pixels: int | None = None, series_uid: str | None = None,
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self.max_pixels = max_pixels
        self.series_uid = series_uid

    @property
    def subject(self) -> str:
        return str(self.path)

    def work(self, progress: ProgressFn, cancelled: CancelledFn):
        from ..io import read_image

        return read_image(self.path, max_pixels=self.max_pixels, series_uid=self.series_uid,
                          progress=progress, cancel=cancelled)


class _JobRunnable(QtCore.QRunnable):
    """Runs ``job.run()`` in a pool thread and keeps the job alive until it returns."""

    def __init__(self, job) -> None:
        super().__init__()
        self._job = job
        self.setAutoDelete(True)

    def run(self) -> None:
        self._job.run()


def start_in_pool(job, pool: QtCore.QThreadPool | None = None) -> None:
    """Queue ``job.run()`` (a job object of this package) on ``pool`` (default: the global pool)."""
    (pool or QtCore.QThreadPool.globalInstance()).start(_JobRunnable(job))


# -- a callable with callbacks (the docks' background operations) ----------------------------------------
class BackgroundJob(CallableJob):
    """Run ``fn(progress, cancelled)`` in a pool thread; results come back as signals in the GUI thread.

    ``fn`` receives ``progress(done, total)`` and ``cancelled() -> bool`` and returns any object. House
    rule 5: it never touches widgets.

    Signals
    -------
    progressed(done, total)
    finished(result)
    failed(message)
    cancelled(message)     also handed to ``on_failed``: callers get exactly one of their two callbacks
    """

    memory_text = "not enough memory for this operation"

    def __init__(self, fn: Callable[[Callable[[int, int], None], Callable[[], bool]], Any], *,
                 context: QtCore.QObject | None = None,
                 on_finished: Callable[[Any], None] | None = None,
                 on_failed: Callable[[str], None] | None = None,
                 on_progress: Callable[[int, int], None] | None = None) -> None:
        # Owned by the application, deleted (in the GUI thread) once its last signal was delivered: the
        # worker never emits from a deleted object and Python never frees it from the pool thread. The
        # callbacks go through a relay owned by ``context``: when the context widget is destroyed first
        # (window closed mid-job), Qt disconnects the relay and nothing is called.
        self._relay_alive = False  # before the base connects _mark_done, which reads it
        super().__init__(fn, QtCore.QCoreApplication.instance())
        if context is not None:
            relay = _JobRelay(context, self, on_finished, on_failed, on_progress)
            self._relay_alive = True
            relay.destroyed.connect(self._relay_gone)
            self.finished.connect(relay.finished)
            self.failed.connect(relay.failed)
            self.cancelled.connect(relay.failed)
            self.progressed.connect(relay.progressed)

    def _mark_done(self, *_args) -> None:
        self.done = True
        # Deleting the sender cancels its queued signals that were not delivered yet (Qt 6), so while a
        # relay still has to forward the result, the relay deletes the job after forwarding.
        if not self._relay_alive:
            self.deleteLater()

    def _relay_gone(self, *_args) -> None:
        self._relay_alive = False
        if self.done:
            self.deleteLater()


class _JobRelay(QtCore.QObject):
    """Forwards a job's signals to plain callables for as long as its parent (the context) lives."""

    def __init__(self, parent: QtCore.QObject, job: BackgroundJob, on_finished, on_failed, on_progress) -> None:
        super().__init__(parent)
        self._job = job
        self._on_finished, self._on_failed, self._on_progress = on_finished, on_failed, on_progress

    def _done(self) -> None:
        job, self._job = self._job, None
        if job is not None:
            job._relay_alive = False
            job.deleteLater()
        self.deleteLater()

    @QtCore.Slot(object)
    def finished(self, result) -> None:
        try:
            if self._on_finished is not None:
                self._on_finished(result)
        finally:
            self._done()

    @QtCore.Slot(str)
    def failed(self, message: str) -> None:
        try:
            if self._on_failed is not None:
                self._on_failed(message)
        finally:
            self._done()

    @QtCore.Slot(int, int)
    def progressed(self, done: int, total: int) -> None:
        if self._on_progress is not None:
            self._on_progress(done, total)


__all__ = ["PoolJob", "CallableJob", "LoadJob", "BackgroundJob", "start_in_pool", "one_line"]
