"""File > Import mask…: bring a model's or a colleague's mask into the label map to correct it (issue 15).

The file is read and aligned to the open image (:func:`workbench.io.mask_import.read_mask`) in a pool thread
(:class:`ImportMaskJob`, a :class:`~workbench.gui.workers.PoolJob`); back in the GUI thread it is written by
:func:`workbench.core.edits.import_mask` as one undo step. Manual labels are kept unless the user, asked
because the mask covers some, chooses to overwrite them. Errors go to the window's one error place.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.edits import import_mask
from ..core.errors import WorkbenchError
from ..io.mask_import import MASK_SUFFIXES, read_mask
from .qt import QtCore, QtGui, QtWidgets, Signal
from .workers import PoolJob

_FILTER = ("Masks (" + " ".join(f"*{s}" for s in MASK_SUFFIXES) + ");;NIfTI (*.nii *.nii.gz);;"
           "DICOM SEG (*.dcm);;PNG / TIFF label image (*.png *.tif *.tiff);;All files (*)")


class ImportMaskJob(PoolJob):
    """Read and align one mask file in a pool thread.

    Signals (delivered in the GUI thread)
    -------------------------------------
    progressed(int, int)
    finished(object)     the :class:`~workbench.io.mask_import.ImportedMask`
    failed(str)
    cancelled(str)
    """

    progressed = Signal(int, int)
    finished = Signal(object)

    def __init__(self, path: Path, image: Any, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.path, self.image = Path(path), image

    @property
    def subject(self) -> str:
        return f"Import of {self.path.name}"

    def work(self, progress, cancelled):
        return read_mask(self.path, self.image)


class ImportMaskAction(QtCore.QObject):
    """The menu action and its job; ``settled(bool)`` tells (tests, scripts) that an import ended."""

    settled = Signal(bool)

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self._job: ImportMaskJob | None = None
        self.action = QtGui.QAction("Import mas&k…", window)
        self.action.setStatusTip("Bring an existing mask into the label map to correct it: PNG/TIFF label "
                                 "image, NIfTI (aligned by its affine) or DICOM SEG of this series")
        self.action.triggered.connect(self.open_dialog)
        window.document.image_changed.connect(self._update)
        self._update()

    def _update(self) -> None:
        self.action.setEnabled(self.window.document.image is not None)

    def open_dialog(self) -> None:
        image = self.window.document.image
        if image is None:
            return
        start = str(image.path.parent) if image.path is not None else str(Path.home())
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self.window, "Import mask", start, _FILTER)
        if path:
            self.import_mask(path)

    def import_mask(self, path: str | Path) -> bool:
        """Read ``path`` in a worker and write it into the label map when it arrives; False if not started."""
        image = self.window.document.image
        if image is None:
            self.window.show_error("Import mask: open an image first")
            return False
        if self._job is not None:
            self.window.show_error(f"Import mask: busy with {self._job.path.name}; try again when it finished")
            return False
        job = ImportMaskJob(Path(path), image, parent=self)
        job.finished.connect(self._on_read)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_failed)
        self._job = job
        self.window.show_status(f"Importing {job.path.name}…", 0)
        job.start()
        return True

    def _settle(self) -> ImportMaskJob | None:
        job = self.sender()
        if job is not self._job:
            return None
        self._job = None
        return job  # type: ignore[return-value]

    def _on_failed(self, message: str) -> None:
        if self._settle() is None:
            return
        self.window.show_error(message)
        self.settled.emit(False)

    def _on_read(self, imported) -> None:
        job = self._settle()
        if job is None:
            return
        document = self.window.document
        if document.image is not job.image or document.labels is None:  # another image was opened meanwhile
            self.window.show_status(f"Import of {job.path.name} dropped: the image changed")
            self.settled.emit(False)
            return
        current = document.labels.data
        covered = int(np.count_nonzero((imported.data > 0) & (current > 0)))
        overwrite = False
        if covered:
            answer = QtWidgets.QMessageBox.question(
                self.window, "Import mask",
                f"The mask covers {covered} labelled pixels. Overwrite those labels?\n"
                "No keeps the labels already drawn and imports the rest.",
                QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.No
                | QtWidgets.QMessageBox.StandardButton.Cancel, QtWidgets.QMessageBox.StandardButton.No)
            if answer == QtWidgets.QMessageBox.StandardButton.Cancel:
                self.window.show_status("Import mask cancelled")
                self.settled.emit(False)
                return
            overwrite = answer == QtWidgets.QMessageBox.StandardButton.Yes
        try:
            mapping = import_mask(document.labels, imported.data, imported.labels, overwrite=overwrite,
                                  name=f"Import mask {job.path.name}")
        except WorkbenchError as exc:
            self.window.show_error(str(exc))
            self.settled.emit(False)
            return
        renumbered = sum(1 for k, v in mapping.items() if k != v)
        parts = [imported.format] + imported.notes
        if renumbered:
            parts.append(f"{renumbered} renumbered to keep the existing labels")
        self.window.show_status(f"Imported {job.path.name}: {len(mapping)} labels ({'; '.join(parts)})", 10000)
        self.settled.emit(True)


def install(main_window) -> ImportMaskAction:
    """Add File > Import mask… above Export mask…."""
    controller = ImportMaskAction(main_window)
    main_window.file_menu.insertAction(main_window.session.export_mask_action, controller.action)
    main_window.import_mask = controller
    return controller
