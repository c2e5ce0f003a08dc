"""The session of one main window (:class:`SessionController`): the session file, the dirty flag, Save /
Save as / Open session, the unsaved-changes prompt on close, and the pool job that reads or writes.

The work is the Qt-free :mod:`workbench.session`; this module only asks for file names, snapshots the
document on the GUI thread (so editing can go on) and runs the reading/writing in a ``QThreadPool`` thread
(house rule 5) with the status-bar progress of the main window. Errors go through ``window.show_error``.

Dirty tracking is the document's: "unsaved changes" means the undo history is not at its clean point
(:meth:`workbench.core.undo.UndoStack.mark_clean`, set by a finished save, an open, or Discard on quit);
undoing back to the saved state is clean again. Label renames and recolours are undo steps, so they count.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from ..core.errors import WorkbenchError
from ..core.results import RestorationResult
from ..session import SESSION_SUFFIX, Session, apply_session, capture, read_session, write_session
from .export_actions import ExportActions
from .qt import QtCore, QtGui, QtWidgets, Signal
from .view_state import apply_view, view_to_dict
from .workers import CallableJob

log = logging.getLogger(__name__)


SESSION_FILTER = f"Workbench session (*{SESSION_SUFFIX})"


# -- a job in the thread pool -----------------------------------------------------------------------------
class SessionJob(CallableJob):
    """Runs ``fn(progress, cancelled) -> value`` in a pool thread; emits exactly one of ``finished``,
    ``failed`` or ``cancelled`` (delivered in the GUI thread: the job object lives there)."""

    def __init__(self, fn: Callable[[Callable[[int, int], None], Callable[[], bool]], Any], description: str,
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(fn, parent)
        self.description = description
        self.on_done: Callable[[Any], Any] = lambda _value: None
        self.settles_load = False
        self.cancellable = False

    @property
    def subject(self) -> str:
        return self.description


class SessionController(ExportActions, QtCore.QObject):
    """Session file, dirty flag and the File-menu actions of one main window.

    Signals
    -------
    job_settled(bool)
        A save/open/export job finished: ``True`` on success, ``False`` on error or cancel.
    """

    job_settled = Signal(bool)

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.path: Path | None = None
        self._job: SessionJob | None = None
        self._restoring = False
        document = window.document
        document.undo.changed.connect(self._on_history_changed)
        document.image_changed.connect(self._on_image_changed)

    # -- state ------------------------------------------------------------------------------------------
    @property
    def is_busy(self) -> bool:
        return self._job is not None

    @property
    def dirty(self) -> bool:
        """Anything unsaved (title mark, quit asks): the history is not at its clean point."""
        document = self.window.document
        return document.image is not None and not document.undo.is_clean

    @property
    def hand_edited(self) -> bool:
        """Unsaved edits made by hand (opening another image asks)."""
        return self.dirty and self.window.document.undo.has_hand_edits

    def _on_history_changed(self) -> None:
        self._update_title()

    def _on_image_changed(self) -> None:
        if not self._restoring:
            self.path = None
        self._update_title()

    def _mark_saved(self, savepoint=None) -> None:
        self.window.document.undo.mark_clean(savepoint)
        self._update_title()

    def _update_title(self) -> None:
        hooks = getattr(self.window, "recovery", None)  # crash recovery: clean = no recovery file needed
        if hooks is not None:
            hooks.on_dirty_changed(self.dirty)
        image = self.window.document.image
        if image is None:
            self.window.setWindowTitle("Workbench")
            return
        name = f"{self.path.name} ({image.display_name})" if self.path is not None else image.display_name
        self.window.setWindowTitle(f"{name}[*] — Workbench")
        self.window.setWindowModified(self.dirty)

    # -- menu -------------------------------------------------------------------------------------------
    def install(self, menu: QtWidgets.QMenu, before: QtGui.QAction | None) -> None:
        """Add the session and export actions to ``menu`` above ``before``."""
        def action(text: str, slot, shortcut=None, tip: str = "") -> QtGui.QAction:
            act = QtGui.QAction(text, self.window)
            if shortcut is not None:
                act.setShortcut(QtGui.QKeySequence(shortcut))
            if tip:
                act.setStatusTip(tip)
                act.setToolTip(tip)
            act.triggered.connect(slot)
            menu.insertAction(before, act)
            return act

        self.open_action = action("Open &session…", self.open_dialog, None,
                                  "Open a saved session: the image with its labels, results and view")
        menu.insertSeparator(before)
        self.save_action = action("&Save session", self.save, QtGui.QKeySequence.StandardKey.Save,
                                  "Save the labels, label table, model results and view (not the undo history)")
        self.save_as_action = action("Save session &as…", self.save_as, "Ctrl+Shift+S")
        menu.insertSeparator(before)
        self.export_mask_action = action("&Export mask…", self.export_mask_dialog, "Ctrl+E",
                                         "Write the whole label map: PNG (2D), NIfTI / TIFF (stacks), DICOM SEG")
        # issue 11: DICOM SEG is de-identified unless the user asks for the identity (sending it back to the PACS)
        self.keep_identity_action = action("Keep patient identity in DICOM SEG", lambda: None, None,
                                           "Off (default): the SEG is de-identified (PS3.15 basic profile). On: "
                                           "patient/study identity and original UIDs, for the source PACS")
        self.keep_identity_action.setCheckable(True)
        from ..core.site import site_policy

        self.keep_identity_action.setEnabled(not site_policy().always_deidentify)  # issue 20: site policy
        self.export_csv_action = action("Export &measurements CSV…", self.export_measurements_dialog, None,
                                        "Per-label pixels, area/volume and intensity statistics")
        self.export_report_action = action("Export &report…", self.export_report_dialog, None,
                                           "De-identified HTML + PDF reports of the label map and the model results")
        menu.insertSeparator(before)
        self.window.document.image_changed.connect(self._update_actions)
        self._update_actions()

    def _update_actions(self) -> None:
        has_image = self.window.document.image is not None
        for act in (self.save_action, self.save_as_action, self.export_mask_action, self.export_csv_action,
                    self.export_report_action):
            act.setEnabled(has_image)

    # -- jobs ---------------------------------------------------------------------------------------------
    def _start(self, fn, description: str, on_done: Callable[[Any], Any], *, cancellable: bool = False,
               settles_load: bool = False) -> bool:
        window = self.window
        if self._job is not None:
            window.show_error(f"{description}: busy with {self._job.description}; try again when it finished")
            return False
        job = SessionJob(fn, description, self)
        job.on_done = on_done
        job.settles_load = settles_load  # an open: also report through window.load_settled
        job.cancellable = cancellable
        # bound slots of this QObject (GUI thread): Qt queues the worker's emissions to them
        job.progressed.connect(self._on_progress)
        job.finished.connect(self._on_finished)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_cancelled)
        self._job = job
        window.progress.setRange(0, 0)
        window.progress.show()
        window.cancel_button.setVisible(cancellable)
        window.show_status(f"{description}…", 0)
        job.start()
        return True

    def cancel(self) -> None:
        """Cancel an open under way (a save or export runs to the end: its write is atomic and short)."""
        if self._job is not None and self._job.cancellable:
            self._job.cancel()

    def _on_progress(self, done: int, total: int) -> None:
        if self.sender() is self._job and total > 0:
            self.window.progress.setRange(0, total)
            self.window.progress.setValue(min(done, total))

    def _settle(self) -> SessionJob | None:
        job = self.sender()
        if job is None or job is not self._job:
            return None
        self._job = None
        if not self.window.is_loading:
            self.window.progress.hide()
            self.window.cancel_button.hide()
        job.deleteLater()
        return job

    def _emit(self, job: SessionJob, ok: bool) -> None:
        if job.settles_load:
            self.window.load_settled.emit(ok)
        self.job_settled.emit(ok)

    def _on_finished(self, value) -> None:
        job = self._settle()
        if job is None:
            return
        if job.is_cancelled:
            self.window.show_status(f"{job.description}: cancelled by the user")
            self._emit(job, False)
            return
        job.on_done(value)
        self._emit(job, True)

    def _on_failed(self, message: str) -> None:
        job = self._settle()
        if job is not None:
            self.window.show_error(message)
            self._emit(job, False)

    def _on_cancelled(self, message: str) -> None:
        job = self._settle()
        if job is not None:
            self.window.show_status(message)
            self._emit(job, False)

    def _snapshot(self) -> Session | None:
        try:
            session = capture(self.window.document,
                              view=view_to_dict(self.window.view_state, self.window.document.results))
        except WorkbenchError as exc:
            self.window.show_error(str(exc))
            return None
        session.path = self.path
        return session

    def _default_dir(self) -> Path:
        from ..core.site import site_policy

        site_dir = site_policy().export_dir()  # issue 20: the site file's export folder comes first
        if site_dir is not None and site_dir.is_dir():
            return site_dir
        image = self.window.document.image
        if self.path is not None:
            return self.path.parent
        if image is not None and image.path is not None:
            return image.path.parent  # beside the file; for a DICOM folder beside it, not inside the series
        return Path.home()

    def _stem(self) -> str:
        from ..export.prediction import output_stem

        image = self.window.document.image
        return output_stem(image, fallback="image") if image is not None else "image"

    # -- save ---------------------------------------------------------------------------------------------
    def save(self) -> bool:
        """Save to the current session file (asks for a name the first time). Returns False if not started."""
        if self.path is None:
            return self.save_as()
        return self.save_to(self.path)

    def save_as(self) -> bool:
        if self.window.document.image is None:
            return False
        default = self.path or self._default_dir() / f"{self._stem()}{SESSION_SUFFIX}"
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self.window, "Save session", str(default), SESSION_FILTER)
        if not path:
            return False
        return self.save_to(path)

    def save_to(self, path: str | Path, then: Callable[[], None] | None = None) -> bool:
        """Snapshot the document now and write the session file in a worker; ``then`` runs after success."""
        session = self._snapshot()
        if session is None:
            return False
        target = Path(path)
        if not target.name.lower().endswith(SESSION_SUFFIX):
            target = target.with_name(target.name + SESSION_SUFFIX)
        savepoint = self.window.document.undo.savepoint()

        def work(progress, _cancelled):
            return write_session(session, target, progress=progress)

        def done(written: Path) -> None:
            self.path = Path(written)
            # edits made while the worker wrote are not in the file: they stay unsaved
            self._mark_saved(savepoint)
            self.window._remember_recent(self.path)
            self.window.show_status(f"Session saved to {self.path}")
            if then is not None:
                then()

        return self._start(work, f"Saving {target.name}", done)

    # -- open ---------------------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self.window, "Open session", str(self._default_dir()),
                                                        f"{SESSION_FILTER};;All files (*)")
        if path:
            self.open_session(path)

    def open_session(self, path: str | Path) -> bool:
        """Read a session (and its source image) in a worker, then show it; the open document stays until
        the session is ready, and stays if reading fails."""
        if not self.maybe_save(then=lambda: self.open_session(path), replacing=True):
            return False
        window = self.window
        window.cancel_load()  # the newest request wins
        path = Path(path)
        max_pixels = window.settings.max_pixels

        def work(progress, cancelled):
            return read_session(path, max_pixels=max_pixels, progress=progress, cancel=cancelled)

        def done(session: Session) -> None:
            self.restore(session)
            window._remember_recent(path)
            window.show_status(f"Opened session {path}")

        return self._start(work, f"Opening {path.name}", done, cancellable=True, settles_load=True)

    def restore(self, session: Session) -> None:
        """Show ``session`` in the window's document (GUI thread): image, labels, results, view."""
        window = self.window
        document = window.document
        self._restoring = True
        try:
            window.banner.hide()
            window.last_error = None
            # the saved label map already holds what was merged: restoring adds no result again
            apply_session(document, session)
            restorations = [r for r in document.results if isinstance(r, RestorationResult)]
            if restorations:  # as after a run; the saved view below may choose another or none
                window.view_state.set_compare("swipe", restoration=restorations[0])
            skipped = apply_view(window.view_state, session.view, document.results)
            if skipped:
                log.warning("%s: ignored malformed view settings %s", session.path, ", ".join(skipped))
            self.path = session.path
        finally:
            self._restoring = False
        self._mark_saved()

    # -- unsaved changes ------------------------------------------------------------------------------------
    def maybe_save(self, then: Callable[[], None] | None = None, *, replacing: bool = False) -> bool:
        """Before the document is replaced or the window closed: True to go ahead now.

        With unsaved changes asks Save / Discard / Cancel. Save starts the save in a worker and returns
        False; ``then`` (e.g. closing the window, opening the next image) runs once the save succeeded.
        ``replacing``: the document is about to be replaced by another image. Only edits made by hand ask
        then: unsaved model results alone do not (running the plugin again reproduces them, and a
        drop-look-drop triage with "run on drop" must not ask at every image). Discard leaves the changes
        marked unsaved until the new image arrives, so a failed or cancelled load keeps both the edits and
        the prompt before they are lost.
        """
        if not self.dirty or (replacing and not self.hand_edited):
            return True
        if self._job is not None:
            self.window.show_status(f"Busy: {self._job.description}")
            return False
        buttons = (QtWidgets.QMessageBox.StandardButton.Save | QtWidgets.QMessageBox.StandardButton.Discard
                   | QtWidgets.QMessageBox.StandardButton.Cancel)
        name = self.path.name if self.path is not None else self.window.document.image.display_name
        before = "opening another image" if replacing else "closing it"
        answer = QtWidgets.QMessageBox.question(
            self.window, "Unsaved changes",
            f"The labels or results of {name} have changed since they were last saved.\n"
            f"Save the session before {before}?", buttons, QtWidgets.QMessageBox.StandardButton.Save)
        if answer == QtWidgets.QMessageBox.StandardButton.Discard:
            if not replacing:
                self._mark_saved()
            return True
        if answer != QtWidgets.QMessageBox.StandardButton.Save:
            return False
        if self.path is not None:
            self.save_to(self.path, then=then)
            return False
        default = self._default_dir() / f"{self._stem()}{SESSION_SUFFIX}"
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self.window, "Save session", str(default), SESSION_FILTER)
        if path:
            self.save_to(path, then=then)
        return False

    def close_window(self) -> None:
        """File > Quit: ask about unsaved changes, then close the window.

        The window asks only for a user's close (this action, or the window manager's close button: a
        spontaneous close event); ``window.close()`` from code (tests, ``--screenshot``) never shows a
        modal box.
        """
        if self.maybe_save(then=self.window.close):
            self.window.close()
