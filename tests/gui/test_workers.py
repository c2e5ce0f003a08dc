"""The base of the GUI's pool jobs (``workers.PoolJob``): every outcome of the work ends in exactly one
terminal signal, delivered in the GUI thread, with a one-line message naming the subject."""
from __future__ import annotations

import logging
import threading
import time

import pytest
import shiboken6

from workbench.core.errors import CancelledError, WorkbenchError
from workbench.gui.qt import QtCore
from workbench.gui.workers import BackgroundJob, CallableJob, LoadJob

TERMINAL = ("finished", "loaded", "failed", "cancelled")
TIMEOUT = 10_000


class _Job(CallableJob):
    """A function job whose messages name a file, like the app's jobs do."""

    @property
    def subject(self) -> str:
        return "scan.png"


class Recorder(QtCore.QObject):
    """Records every signal of a job with the thread its slot ran in (a QObject of the GUI thread, like the
    app's receivers, so Qt queues the pool thread's emissions to it)."""

    def __init__(self, job) -> None:
        super().__init__()
        self.events: list[tuple[str, tuple]] = []
        self.threads: set[int] = set()
        job.progressed.connect(self.on_progressed)
        getattr(job, job.result_signal).connect(self.on_result)
        job.failed.connect(self.on_failed)
        job.cancelled.connect(self.on_cancelled)
        self._result_name = job.result_signal

    def _record(self, name: str, *args) -> None:
        self.events.append((name, args))
        self.threads.add(threading.get_ident())

    @QtCore.Slot(int, int)
    def on_progressed(self, done: int, total: int) -> None:
        self._record("progressed", done, total)

    @QtCore.Slot(object)
    def on_result(self, value) -> None:
        self._record(self._result_name, value)

    @QtCore.Slot(str)
    def on_failed(self, message: str) -> None:
        self._record("failed", message)

    @QtCore.Slot(str)
    def on_cancelled(self, message: str) -> None:
        self._record("cancelled", message)

    def terminal(self) -> list[tuple[str, tuple]]:
        return [event for event in self.events if event[0] in TERMINAL]


@pytest.fixture
def pool():
    pool = QtCore.QThreadPool()
    yield pool
    pool.waitForDone(TIMEOUT)


def _settle(qtbot, job, pool, recorder) -> tuple[str, tuple]:
    """Wait for the job's end; return its one terminal event, after checking nothing else arrives."""
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT)
    assert pool.waitForDone(TIMEOUT)
    qtbot.wait(50)  # anything the worker queued after its terminal signal would be delivered by now
    assert len(recorder.terminal()) == 1, recorder.events
    assert recorder.threads == {threading.main_thread().ident}  # every slot ran in the GUI thread
    return recorder.terminal()[0]


def _start(fn, pool, cls=_Job):
    job = cls(fn)
    recorder = Recorder(job)
    job.start(pool)
    return job, recorder


def test_success_delivers_progress_then_the_result_in_the_gui_thread(qtbot, pool):
    worker_threads = []

    def fn(progress, cancelled):
        worker_threads.append(threading.get_ident())
        progress(1, 2)
        progress(2, 2)
        return 42

    job, recorder = _start(fn, pool)
    assert _settle(qtbot, job, pool, recorder) == ("finished", (42,))
    assert recorder.events[:2] == [("progressed", (1, 2)), ("progressed", (2, 2))]
    assert worker_threads and worker_threads[0] != threading.main_thread().ident  # the work ran in the pool
    assert not job.is_cancelled


def test_workbench_error_fails_with_its_own_message(qtbot, pool):
    def fn(progress, cancelled):
        raise WorkbenchError("bad header", path="scan.png")

    job, recorder = _start(fn, pool)
    assert _settle(qtbot, job, pool, recorder) == ("failed", ("scan.png: bad header",))


def test_unexpected_error_is_logged_and_fails_with_one_line(qtbot, pool, caplog):
    def fn(progress, cancelled):
        raise ValueError("broken\n  on two lines")

    with caplog.at_level(logging.ERROR, logger="workbench.gui.workers"):
        job, recorder = _start(fn, pool)
        event = _settle(qtbot, job, pool, recorder)
    assert event == ("failed", ("scan.png: unexpected error (ValueError: broken on two lines)",))
    records = [r for r in caplog.records if r.name == "workbench.gui.workers"]
    assert len(records) == 1 and records[0].exc_info is not None  # the traceback is in the log
    assert "scan.png: unexpected error" in records[0].getMessage()


def test_memory_error_names_the_subject(qtbot, pool):
    def fn(progress, cancelled):
        raise MemoryError()

    job, recorder = _start(fn, pool)
    assert _settle(qtbot, job, pool, recorder) == ("failed", ("scan.png: not enough memory",))


def test_cancel_before_the_job_runs_skips_the_work(qtbot, pool):
    calls = []
    job = _Job(lambda progress, cancelled: calls.append(1))
    recorder = Recorder(job)
    job.cancel()
    job.start(pool)
    assert _settle(qtbot, job, pool, recorder) == ("cancelled", ("scan.png: cancelled by the user",))
    assert calls == [] and job.is_cancelled


def _wait_for_cancel(started: threading.Event, cancelled) -> None:
    started.set()
    deadline = time.monotonic() + TIMEOUT / 1000
    while not cancelled():
        if time.monotonic() > deadline:
            raise AssertionError("never cancelled")
        time.sleep(0.005)


@pytest.mark.parametrize("raises", [True, False], ids=["raises CancelledError", "returns anyway"])
def test_cancel_while_running_ends_in_cancelled_only(qtbot, pool, raises):
    started = threading.Event()

    def fn(progress, cancelled):
        _wait_for_cancel(started, cancelled)
        if raises:
            raise CancelledError("stopped at slice 3", path="scan.png")
        return "a result nobody wants any more"

    job, recorder = _start(fn, pool)
    assert started.wait(TIMEOUT / 1000)
    assert not job.done
    job.cancel()
    message = "scan.png: stopped at slice 3" if raises else "scan.png: cancelled by the user"
    assert _settle(qtbot, job, pool, recorder) == ("cancelled", (message,))


def test_a_job_deleted_under_its_worker_stops_quietly(qtbot, pool):
    """At shutdown Qt may delete the job while its work runs: nothing to tell, the work is told to stop."""
    started, deleted = threading.Event(), threading.Event()
    seen = []

    def fn(progress, cancelled):
        started.set()
        assert deleted.wait(TIMEOUT / 1000)
        progress(1, 1)  # emits from a deleted QObject
        seen.append(cancelled())
        return 1

    job = _Job(fn)
    job.start(pool)
    assert started.wait(TIMEOUT / 1000)
    shiboken6.delete(job)
    deleted.set()
    assert pool.waitForDone(TIMEOUT)
    assert seen == [True]


def test_load_job_names_the_file(qtbot, pool, tmp_path):
    missing = tmp_path / "missing.png"
    job = LoadJob(missing)
    recorder = Recorder(job)
    job.start(pool)
    name, (message,) = _settle(qtbot, job, pool, recorder)
    assert name == "failed" and str(missing) in message and "\n" not in message

    job = LoadJob(missing)
    recorder = Recorder(job)
    job.cancel()
    job.start(pool)
    assert _settle(qtbot, job, pool, recorder) == ("cancelled", (f"{missing}: reading cancelled by the user",))


def test_background_job_hands_a_cancel_to_on_failed_and_deletes_itself(qtbot, pool):
    context = QtCore.QObject()
    outcomes = []
    job = BackgroundJob(lambda progress, cancelled: 1, context=context,
                        on_finished=lambda value: outcomes.append(("finished", value)),
                        on_failed=lambda message: outcomes.append(("failed", message)))
    job.cancel()
    job.start(pool)
    qtbot.waitUntil(lambda: not shiboken6.isValid(job), timeout=TIMEOUT)  # deleted once the relay forwarded
    assert outcomes == [("failed", "cancelled by the user")]
