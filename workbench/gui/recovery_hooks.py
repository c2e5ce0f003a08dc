"""Autosave for crash recovery in the window: the Qt side of :mod:`workbench.session.recovery`.

After every completed operation (an undo step: a brush stroke, a threshold, a model run, an undo/redo;
a new result) a snapshot is written, debounced by :data:`DEBOUNCE_MS` so a burst of operations costs one
write; and every ``Settings.autosave_interval_s`` seconds while there are unsaved changes. The snapshot is
taken on the GUI thread (a copy of the label map, as File > Save does) and written by the store's own
thread. A clean save, a discard or a clean quit deletes the file. On start :meth:`RecoveryHooks.offer_restore`
asks whether to restore the work of an app that did not close cleanly.
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
from pathlib import Path

from ..core.errors import WorkbenchError
from ..session import read_session
from ..session.recovery import RecoveryStore, discard, orphans
from .qt import QtCore, QtWidgets

log = logging.getLogger(__name__)

DEBOUNCE_MS = 300
#: tests and scripts answer the start-up question: "yes" restores, "no" discards, unset asks
ANSWER_ENV = "WORKBENCH_RECOVER"


class RecoveryHooks(QtCore.QObject):
    """Connects the window's document to a :class:`RecoveryStore`."""

    def __init__(self, window, *, folder: Path | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.store = RecoveryStore(folder)
        self.generation = 0
        self._debounce = QtCore.QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.flush)
        self._periodic = QtCore.QTimer(self)
        interval = int(getattr(window.settings, "autosave_interval_s", 60) or 0)
        if interval > 0:
            self._periodic.setInterval(interval * 1000)
            self._periodic.timeout.connect(self._tick)
            self._periodic.start()
        document = window.document
        document.undo.changed.connect(self._changed)
        document.results_changed.connect(self._changed)

    # -- writing ---------------------------------------------------------------------------------------
    def _changed(self, *args) -> None:
        self.generation += 1
        self._debounce.start()

    def _tick(self) -> None:
        if self.store.written_generation < self.generation:
            self.flush()

    def flush(self) -> None:
        """Write a snapshot now when there are unsaved changes (else make sure no stale file stays)."""
        session_ctl = self.window.session
        if self.window.document.image is None or not session_ctl.dirty:
            self.store.clear(self.generation)
            return
        try:
            snapshot = session_ctl._snapshot()
        except WorkbenchError as exc:  # pragma: no cover - _snapshot reports its own errors
            log.warning("no recovery snapshot: %s", exc)
            return
        if snapshot is not None:
            self.store.save(snapshot, self.generation)

    def on_dirty_changed(self, dirty: bool) -> None:
        """Called by the session controller: saved, discarded or a new image means no recovery needed."""
        if not dirty:
            self._debounce.stop()
            self.store.clear(self.generation)

    def close(self) -> None:
        """A clean quit: no recovery file stays behind."""
        self._debounce.stop()
        self._periodic.stop()
        self.store.close(clean=True)

    # -- restoring -------------------------------------------------------------------------------------
    def offer_restore(self) -> bool:
        """If an earlier app died with unsaved work, ask to restore it (newest first); True when a restore
        started. ``WORKBENCH_RECOVER=yes|no`` answers without asking."""
        found = [p for p in orphans(self.store.folder) if p != self.store.path]
        if not found:
            return False
        path = found[0]
        answer = os.environ.get(ANSWER_ENV, "").lower()
        if answer not in ("yes", "no"):
            when = _dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M:%S")
            box = QtWidgets.QMessageBox.question(
                self.window, "Restore unsaved work?",
                f"Workbench did not close cleanly. Restore the unsaved work autosaved at {when}?\n"
                "(No deletes it.)",
                QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.No,
                QtWidgets.QMessageBox.StandardButton.Yes)
            answer = "yes" if box == QtWidgets.QMessageBox.StandardButton.Yes else "no"
        if answer == "no":
            for p in found:
                discard(p)
            return False
        return self.restore_file(path)

    def restore_file(self, path: Path) -> bool:
        """Read the recovery file in a worker and show it as unsaved work (no session path: Save asks where)."""
        window = self.window
        ctl = window.session
        max_pixels = window.settings.max_pixels

        def work(progress, cancelled):
            return read_session(path, max_pixels=max_pixels, progress=progress, cancel=cancelled)

        def done(session) -> None:
            labels = session.label_data
            session.label_data = None
            ctl.restore(session)  # image, label table, results, view -- marked saved ...
            if labels is not None:
                # ... and the recovered label map as one undoable hand edit: restored work is unsaved work
                window.document.labels.replace(labels, "Restored unsaved work")
            ctl.path = None  # the recovery file is ours, not the user's session
            ctl._update_title()
            discard(path)
            window.show_status("Restored the unsaved work of the last session (not saved yet)")

        return ctl._start(work, "Restoring unsaved work", done, cancellable=True, settles_load=True)
