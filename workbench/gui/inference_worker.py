"""Running a model plugin off the GUI thread, with progress and cancel.

House rule 5: the worker never touches widgets. :class:`InferenceJob` is a
:class:`~workbench.gui.workers.PoolJob` (a ``QObject`` created in the GUI thread whose :meth:`run` executes in a
``QThreadPool`` thread and reports only through Qt signals, which Qt queues to the GUI thread). Everything slow
happens in the worker: the session is created there on the first run of a plugin (checksum, ONNX Runtime
load, graph check, warm-up), then the Qt-free generator :func:`workbench.inference.run.Engine.execute` is
drained, checking the job's cancel flag between slices and tiles.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..core.errors import CancelledError, WorkbenchError
from ..core.image import ImageVolume
from ..core.settings import Settings
from ..inference.spec import PluginSpec
from .qt import QtCore, Signal
from .workers import PoolJob, one_line


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


class InferenceJob(PoolJob):
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

    def __init__(self, request: RunRequest, settings: Settings, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.request = request
        # a copy: the user may change settings (threads, provider) while the worker reads them
        self.settings = settings.model_copy(deep=True)
        self.seconds = 0.0
        self.provider: str | None = None

    @property
    def subject(self) -> str:
        return self.request.describe()

    def work(self, progress, cancelled):
        """Create (or reuse) the session, then drain the engine's generator (pool thread)."""
        from ..inference.run import Engine

        request = self.request
        t0 = time.perf_counter()
        try:
            engine = Engine(request.spec, provider=self.settings.provider, settings=self.settings)
            self.provider = engine.provider
            self._emit(self.session_ready, engine.provider)
            gen = engine.execute(request.image, request.slices, cancel=cancelled)
            while True:
                try:
                    done, total, message = next(gen)
                except StopIteration as stop:
                    return stop.value
                progress(int(done), int(total), str(message))
        finally:
            # set before the terminal signal is emitted: its slot reads it
            self.seconds = time.perf_counter() - t0

    # the engine's CancelledError carries no name; with several runs queued the user must see which stopped
    def cancelled_message(self, exc: CancelledError | None) -> str:
        return f"{self.subject}: {self.cancel_text}"

    def error_message(self, exc: WorkbenchError) -> str:
        message = str(exc)
        # run-time errors name the image ("scan.png: does not fit the model input"); with several
        # plugins running on drop the user must also learn which plugin it was
        if str(self.request.spec.folder) not in message:
            message = f"{self.request.spec.name}: {message}"
        return message

    def memory_message(self) -> str:
        return f"{self.request.spec.name}: not enough memory to run this model on this image"

    def unexpected_message(self, exc: Exception) -> str:
        return f"{self.request.spec.manifest_path}: unexpected error while running ({one_line(exc)})"


__all__ = ["InferenceJob", "RunRequest"]
