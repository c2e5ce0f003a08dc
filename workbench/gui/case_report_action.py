"""File > Report… (the one case report), View > Add view to report (key images) and File > Export annotation
measurements… (issue 15 items 2 and 6).

*Add view to report* captures the image area of the canvas as shown (window/level, labels, boxes, annotations)
into the document's :class:`~workbench.core.key_images.KeyImageStore`. *Report…* asks for the reader's name,
the findings, which key images to keep and the output folder (:class:`CaseReportDialog`), snapshots the document
on the GUI thread (:func:`workbench.session.capture`) and builds and writes the HTML + PDF
(:func:`workbench.export.report.case.write_case_report`) in a pool thread (:class:`~.workers.BackgroundJob`).
Errors go to the window's one error place.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import WorkbenchError
from ..core.key_images import KeyImage, key_images_of
from ..session import capture
from .qt import Qt, QtCore, QtGui, QtWidgets, Signal
from .workers import BackgroundJob

ANNOTATION_FILTERS = "CSV (*.csv);;JSON (*.json)"


def capture_view(canvas) -> np.ndarray:
    """The image area of the canvas' main view as shown (labels, boxes, annotations; not the corner text), as
    ``(h, w, 3)`` uint8 RGB."""
    view = canvas.view
    image = canvas.document.image
    viewport = view.viewport()
    rect = viewport.rect()
    if image is not None:
        corners = [view.mapFromScene(view.vb.mapViewToScene(QtCore.QPointF(x, y)))
                   for x, y in ((0, 0), (image.width, 0), (0, image.height), (image.width, image.height))]
        xs, ys = [p.x() for p in corners], [p.y() for p in corners]
        shown = QtCore.QRect(QtCore.QPoint(min(xs), min(ys)), QtCore.QPoint(max(xs), max(ys))).intersected(rect)
        if shown.width() > 1 and shown.height() > 1:
            rect = shown
    # the corner overlay text (issue 15 item 4) may show the series description: a de-identified report's
    # picture must not carry it (slice and W/L are in the caption instead)
    overlay = getattr(canvas, "overlay_text", None)
    hide = bool(getattr(overlay, "enabled", False)) and hasattr(overlay, "set_enabled")
    if hide:
        overlay.set_enabled(False)
    try:
        qimage = viewport.grab(rect).toImage().convertToFormat(QtGui.QImage.Format.Format_RGB888)
    finally:
        if hide:
            overlay.set_enabled(True)
    width, height, stride = qimage.width(), qimage.height(), qimage.bytesPerLine()
    buf = np.frombuffer(qimage.constBits(), np.uint8, count=stride * height).reshape(height, stride)
    return np.ascontiguousarray(buf[:, :width * 3].reshape(height, width, 3))


class CaseReportDialog(QtWidgets.QDialog):
    """Reader's name, findings, the key images to keep, de-identification and the output folder."""

    def __init__(self, parent: QtWidgets.QWidget, store, *, reader: str, folder: Path) -> None:
        super().__init__(parent)
        self.setWindowTitle("Case report")
        self.store = store
        self.reader_edit = QtWidgets.QLineEdit(reader)
        self.reader_edit.setPlaceholderText("Name of the reader")
        self.findings_edit = QtWidgets.QPlainTextEdit()
        self.findings_edit.setPlaceholderText("Findings and impression (free text)")
        self.findings_edit.setMinimumHeight(120)
        self.key_list = QtWidgets.QListWidget()
        self.key_list.setViewMode(QtWidgets.QListView.ViewMode.IconMode)
        self.key_list.setIconSize(QtCore.QSize(120, 90))
        self.key_list.setResizeMode(QtWidgets.QListView.ResizeMode.Adjust)
        self.key_list.setMaximumHeight(150)
        self.remove_button = QtWidgets.QPushButton("Remove key image")
        self.remove_button.clicked.connect(self._remove_selected)
        self.show_name_check = QtWidgets.QCheckBox("Show the file name (not de-identified)")
        self.show_name_check.setToolTip("Off (default): the report calls the image \"image 1\"; file names often "
                                        "hold the patient's name")
        self.folder_edit = QtWidgets.QLineEdit(str(folder))
        browse = QtWidgets.QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        folder_row = QtWidgets.QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        form = QtWidgets.QFormLayout()
        form.addRow("Reader", self.reader_edit)
        form.addRow("Findings", self.findings_edit)
        form.addRow("Key images", self.key_list)
        form.addRow("", self.remove_button)
        form.addRow("", self.show_name_check)
        form.addRow("Folder", folder_row)
        self.buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                                  | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).setText("Write report")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(form)
        hint = QtWidgets.QLabel("Add key images with View \u25b8 Add view to report. The report holds the "
                                "labels and model results with statistics, the measurements and the provenance.")
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        layout.addWidget(self.buttons)
        self.resize(620, 560)
        store.changed.connect(self._fill)
        self._fill()

    def _fill(self) -> None:
        self.key_list.clear()
        for n, item in enumerate(self.store.items, start=1):
            rgb = np.ascontiguousarray(item.rgb)
            qimage = QtGui.QImage(rgb.data, rgb.shape[1], rgb.shape[0], rgb.strides[0],
                                  QtGui.QImage.Format.Format_RGB888).copy()
            entry = QtWidgets.QListWidgetItem(QtGui.QIcon(QtGui.QPixmap.fromImage(qimage)), f"{n}: {item.caption}")
            entry.setToolTip(item.caption)
            self.key_list.addItem(entry)
        self.remove_button.setEnabled(bool(self.store.items))

    def _remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.key_list.selectedIndexes()}, reverse=True)
        for row in rows or ([len(self.store.items) - 1] if self.store.items else []):
            self.store.remove(row)

    def _browse(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Write the case report into", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def values(self) -> dict[str, Any]:
        return {"reader": self.reader_edit.text().strip(), "findings": self.findings_edit.toPlainText(),
                "show_name": self.show_name_check.isChecked(), "folder": Path(self.folder_edit.text().strip())}


class CaseReportActions(QtCore.QObject):
    """The actions and their jobs; ``settled(bool)`` tells (tests, scripts) that a write ended."""

    settled = Signal(bool)

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.store = key_images_of(window.document)
        self.last_files: list[Path] = []
        self.dialog: CaseReportDialog | None = None
        self._job: BackgroundJob | None = None

        self.add_view_action = QtGui.QAction("Add view to re&port", window)
        self.add_view_action.setShortcut(QtGui.QKeySequence("Ctrl+K"))
        self.add_view_action.setToolTip("Add the view as shown (with labels and annotations) to the case report")
        self.add_view_action.setStatusTip(self.add_view_action.toolTip())
        self.add_view_action.triggered.connect(self.add_view)
        self.report_action = QtGui.QAction("&Report…", window)
        self.report_action.setStatusTip("One HTML + PDF report of this case: reader's findings, labels and results "
                                        "with statistics, measurements, key images")
        self.report_action.triggered.connect(self.report_dialog)
        self.export_action = QtGui.QAction("Export annotation measurements…", window)
        self.export_action.setStatusTip("Rulers, angles, ROIs and text arrows as CSV or JSON")
        self.export_action.triggered.connect(self.export_dialog)
        window.document.image_changed.connect(self._update)
        self._update()

    @property
    def reader(self) -> str:
        """The reader's name the dialog offers: the last one entered, kept in the settings file."""
        return str(getattr(self.window.settings, "report_reader", "") or "")

    def remember_reader(self, name: str) -> None:
        """Keep ``name`` for the next report, also after a restart (saved with the settings)."""
        name = name.strip()[:200]
        if name != self.reader:
            self.window.settings.report_reader = name
            self.window._save_settings()  # the window's one settings writer (atomic, errors in the banner)

    def _update(self) -> None:
        has_image = self.window.document.image is not None
        for action in (self.add_view_action, self.report_action, self.export_action):
            action.setEnabled(has_image)

    @property
    def is_busy(self) -> bool:
        return self._job is not None

    def _default_dir(self) -> Path:
        image = self.window.document.image
        return image.path.parent if image is not None and image.path is not None else Path.home()

    # -- key images -------------------------------------------------------------------------------
    def add_view(self) -> KeyImage | None:
        """Capture the view as shown into the key images."""
        window = self.window
        if window.document.image is None:
            return None
        z = window.view_state.slice_index
        center, width = window.view_state.window
        image = window.document.image
        where = f"slice {z + 1}, " if image.n_slices > 1 else ""
        item = self.store.add(KeyImage(capture_view(window.canvas), z, f"{where}W/L {width:.0f}/{center:.0f}"))
        window.show_status(f"View added to the report ({len(self.store.items)} key image"
                           f"{'s' * (len(self.store.items) != 1)})")
        return item

    # -- the report -------------------------------------------------------------------------------
    def report_dialog(self) -> CaseReportDialog | None:
        """Open the dialog (non-modal, so the view stays usable); OK writes the report."""
        if self.window.document.image is None:
            return None
        if self.dialog is not None:
            self.dialog.raise_()
            return self.dialog
        dialog = CaseReportDialog(self.window, self.store, reader=self.reader, folder=self._default_dir())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._accepted(dialog))
        dialog.finished.connect(lambda _r: setattr(self, "dialog", None))
        self.dialog = dialog
        dialog.open()
        return dialog

    def _accepted(self, dialog: CaseReportDialog) -> None:
        v = dialog.values()
        self.remember_reader(v["reader"])
        self.write_report(v["folder"], reader=v["reader"], findings=v["findings"], show_name=v["show_name"])

    def write_report(self, folder: str | Path, *, reader: str = "", findings: str = "",
                     show_name: bool = False) -> bool:
        """Snapshot the case now and write its report into ``folder`` in a pool thread."""
        from ..export.report.case import write_case_report

        def work(progress, _cancelled):
            return list(write_case_report(session, folder, reader=reader, findings=findings, show_name=show_name,
                                          progress=progress).values())

        def done(files) -> None:
            self._job = None
            self.last_files = list(files)
            self.window.show_status(f"Case report written to {Path(folder)}")
            self.settled.emit(True)

        session = self._snapshot()
        if session is None:
            return False
        return self._start(work, done, "case report")

    # -- annotation measurements ------------------------------------------------------------------
    def export_dialog(self) -> None:
        image = self.window.document.image
        if image is None:
            return
        stem = image.path.stem if image.path is not None else "image"
        path, chosen = QtWidgets.QFileDialog.getSaveFileName(
            self.window, "Export annotation measurements", str(self._default_dir() / f"{stem}_annotations.csv"),
            ANNOTATION_FILTERS)
        if path:
            if not path.lower().endswith((".csv", ".json")):
                path += ".json" if "json" in chosen.lower() else ".csv"
            self.export_annotations(path)

    def export_annotations(self, path: str | Path) -> bool:
        """Write the annotation measurements (CSV or JSON by suffix, plus provenance) in a pool thread."""
        from ..export.session_exports import export_annotations

        target = Path(path)

        def done(files) -> None:
            self._job = None
            self.last_files = list(files)
            self.window.show_status(f"Measurements written to {target}")
            self.settled.emit(True)

        session = self._snapshot()
        if session is None:
            return False
        return self._start(lambda _p, _c: export_annotations(session, target), done, target.name)

    # -- jobs -------------------------------------------------------------------------------------
    def _snapshot(self):
        try:
            return capture(self.window.document)
        except WorkbenchError as exc:
            self.window.show_error(str(exc))
            return None

    def _start(self, work, done, what: str) -> bool:
        if self._job is not None:
            self.window.show_error(f"{what}: busy with the previous export; try again when it finished")
            return False

        def failed(message: str) -> None:
            self._job = None
            self.window.show_error(message)
            self.settled.emit(False)

        self._job = BackgroundJob(work, context=self, on_finished=done, on_failed=failed)
        self.window.show_status(f"Writing the {what}…", 0)
        self._job.start()
        return True


def _menu(window, title: str) -> QtWidgets.QMenu | None:
    from .shell import menus_by_title

    return menus_by_title(window).get(title)


def install(window) -> CaseReportActions:
    """Add File > Report…, File > Export annotation measurements… and View > Add view to report; the
    Measurements dock gets an *Add view to report* button. Returns the actions (``window.case_report``)."""
    actions = CaseReportActions(window)
    window.case_report = actions
    file_menu = window.file_menu
    before = getattr(window, "send_pacs_action", None) or window.quit_action
    file_menu.insertAction(before, actions.report_action)
    file_menu.insertAction(before, actions.export_action)
    view_menu = _menu(window, "View")
    if view_menu is not None:
        view_menu.addSeparator()
        view_menu.addAction(actions.add_view_action)
    else:
        window.addAction(actions.add_view_action)
    dock = getattr(window, "docks", {}).get("MeasurementsDock")
    section = getattr(getattr(dock, "panel", None), "rulers", None)
    if section is not None:
        section.add_action_button(actions.add_view_action)
    return actions


__all__ = ["CaseReportActions", "CaseReportDialog", "capture_view", "install"]
