"""Background jobs: reading images off the GUI thread with progress and cancel.

House rule 5: workers never touch widgets. A job runs the Qt-free reader in a ``QThreadPool`` thread and
reports through Qt signals of a ``QObject`` that lives in the GUI thread, so every slot runs there (queued
connections). The reader's own ``progress(done, total)`` and ``cancel() -> bool`` callbacks are used.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from ..core.errors import CancelledError, WorkbenchError
from .qt import QtCore, Signal

log = logging.getLogger(__name__)


class LoadJob(QtCore.QObject):
    """Read one file or DICOM folder with :func:`workbench.io.read_image` in a pool thread.

    Signals (delivered in the GUI thread)
    -------------------------------------
    progressed(done, total)
    loaded(ImageVolume)
    failed(message)        one line that names the file
    cancelled(message)
    """

    progressed = Signal(int, int)
    loaded = Signal(object)
    failed = Signal(str)
    cancelled = Signal(str)

    def __init__(self, path: str | Path, *, max_pixels: int | None = None, series_uid: str | None = None,
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self.max_pixels = max_pixels
        self.series_uid = series_uid
        self._cancel = threading.Event()
        self.done = False
        # the finished/failed signals are emitted from the pool thread; Qt queues them to this object's
        # (GUI) thread, where ``done`` is set by the slot below — tests wait on it
        self.loaded.connect(self._mark_done)
        self.failed.connect(self._mark_done)
        self.cancelled.connect(self._mark_done)

    def _mark_done(self, *_args) -> None:
        self.done = True

    def cancel(self) -> None:
        """Ask the reader to stop at its next check (thread-safe)."""
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def start(self, pool: QtCore.QThreadPool | None = None) -> None:
        """Queue the read on ``pool`` (default: the global pool)."""
        start_in_pool(self, pool)

    def run(self) -> None:
        """The body of the job (runs in the pool thread; emits exactly one of loaded/failed/cancelled)."""
        from ..io import read_image

        try:
            image = read_image(self.path, max_pixels=self.max_pixels, series_uid=self.series_uid,
                               progress=self.progressed.emit, cancel=self._cancel.is_set)
        except CancelledError as exc:
            self.cancelled.emit(str(exc))
        except WorkbenchError as exc:
            self.failed.emit(str(exc))
        except MemoryError:
            self.failed.emit(f"{self.path}: not enough memory to open this image")
        except Exception as exc:  # noqa: BLE001 - a reader bug must not take the app down; logged in full
            log.exception("unexpected error reading %s", self.path)
            self.failed.emit(f"{self.path}: unexpected error ({type(exc).__name__}: {exc})".splitlines()[0])
        else:
            if self._cancel.is_set():
                self.cancelled.emit(f"{self.path}: reading cancelled by the user")
            else:
                self.loaded.emit(image)


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
