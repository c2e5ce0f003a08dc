"""Running a model plugin off the GUI thread, with progress and cancel.

House rule 5: the worker never touches widgets. :class:`InferenceJob` is a ``QObject`` created in the GUI
thread; its :meth:`run` executes in a ``QThreadPool`` thread and reports only through Qt signals, which Qt
queues to the GUI thread. Everything slow happens in the worker: the session is created there on the first
run of a plugin (checksum, ONNX Runtime load, graph check, warm-up), then the Qt-free generator
:func:`workbench.inference.run.Engine.execute` is drained, checking a ``threading.Event`` between slices and
tiles.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from ..core.errors import CancelledError, WorkbenchError
from ..core.image import ImageVolume
from ..core.settings import Settings
from ..inference.spec import PluginSpec
from .qt import QtCore, Signal
from .workers import start_in_pool

log = logging.getLogger(__name__)


@dataclass
class RunRequest:
    """What to run: a plugin on (some slices of) one image.

    ``slices`` ``None`` means every slice; ``reason`` says why it runs (``"button"``, ``"drop"``) and only
    changes the messages.
    """

    spec: PluginSpec
    image: ImageVolume
    slices: list[int] | None = None
    reason: str = "button"

    def describe(self) -> str:
        """``"Quality on slice 4"``, ``"Quality on the whole stack"`` or ``"Quality"`` (2D)."""
        if self.image.n_slices == 1:
            return self.spec.name
        if self.slices is None:
            return f"{self.spec.name} on the whole stack"
        if len(self.slices) == 1:
            return f"{self.spec.name} on slice {self.slices[0] + 1}"
        return f"{self.spec.name} on {len(self.slices)} slices"


class InferenceJob(QtCore.QObject):
    """One plugin run in a pool thread; emits exactly one of ``finished``, ``failed``, ``cancelled``.

    Signals (delivered in the GUI thread)
    -------------------------------------
    session_ready(str)            the provider actually used (``session.get_providers()[0]``)
    progressed(int, int, str)     done, total, message
    finished(object)              the Result
    failed(str)                   one line naming the plugin/file and the problem
    cancelled(str)
    """

    session_ready = Signal(str)
    progressed = Signal(int, int, str)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal(str)

    def __init__(self, request: RunRequest, settings: Settings, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.request = request
        # a copy: the user may change settings (threads, provider) while the worker reads them
        self.settings = settings.model_copy(deep=True)
        self._cancel = threading.Event()
        self.done = False
        self.seconds = 0.0
        self.provider: str | None = None
        for signal in (self.finished, self.failed, self.cancelled):
            signal.connect(self._mark_done)

    def _mark_done(self, *_args) -> None:
        self.done = True

    def cancel(self) -> None:
        """Ask the run to stop at its next slice/tile (thread-safe)."""
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def start(self, pool: QtCore.QThreadPool | None = None) -> None:
        """Queue the run on ``pool`` (default: the global pool)."""
        start_in_pool(self, pool)

    def _emit(self, signal, *args) -> None:
        """Emit from the pool thread; a job abandoned at shutdown (its QObject already deleted by the
        application's teardown) has nobody left to tell, which is not an error."""
        try:
            signal.emit(*args)
        except RuntimeError:
            log.debug("inference job of %s outlived its window; %s not delivered", self.request.spec.id, args)
            self._cancel.set()

    def run(self) -> None:
        """The body of the job (pool thread). Never raises."""
        from ..inference.run import Engine

        request = self.request
        t0 = time.perf_counter()
        try:
            if self._cancel.is_set():
                raise CancelledError()
            engine = Engine(request.spec, provider=self.settings.provider, settings=self.settings)
            self.provider = engine.provider
            self._emit(self.session_ready, engine.provider)
            gen = engine.execute(request.image, request.slices, cancel=self._cancel)
            while True:
                try:
                    done, total, message = next(gen)
                except StopIteration as stop:
                    result = stop.value
                    break
                self._emit(self.progressed, int(done), int(total), str(message))
        except CancelledError:
            self.seconds = time.perf_counter() - t0
            self._emit(self.cancelled, f"{request.describe()}: cancelled by the user")
        except WorkbenchError as exc:
            self.seconds = time.perf_counter() - t0
            message = str(exc)
            # run-time errors name the image ("scan.png: does not fit the model input"); with several
            # plugins running on drop the user must also learn which plugin it was
            if str(request.spec.folder) not in message:
                message = f"{request.spec.name}: {message}"
            self._emit(self.failed, message)
        except MemoryError:
            self.seconds = time.perf_counter() - t0
            self._emit(self.failed, f"{request.spec.name}: not enough memory to run this model on this image")
        except Exception as exc:  # noqa: BLE001 - an engine bug must not take the app down; logged in full
            log.exception("unexpected error running plugin %s", request.spec.id)
            self.seconds = time.perf_counter() - t0
            text = " ".join(f"{type(exc).__name__}: {exc}".split())
            self._emit(self.failed, f"{request.spec.manifest_path}: unexpected error while running ({text})")
        else:
            self.seconds = time.perf_counter() - t0
            if self._cancel.is_set():  # finished just as the user pressed Cancel: honour the cancel
                self._emit(self.cancelled, f"{request.describe()}: cancelled by the user")
            else:
                self._emit(self.finished, result)



__all__ = ["InferenceJob", "RunRequest"]
