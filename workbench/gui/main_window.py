"""The main window: canvas, docks from the panel registry, menus, loading with progress/cancel, errors."""
from __future__ import annotations

import logging
from pathlib import Path

from .. import __version__
from ..core.document import Document
from ..core.errors import WorkbenchError
from ..core.results import RestorationResult, SegmentationResult
from ..core.settings import Settings, config_dir
from ..io.settings_file import save_settings
from . import case_report_action, import_mask_action, import_model_dialog
from .canvas import CanvasWidget
from .display import slice_position_text
from .explain_action import install_explain
from .mpr import build_view_area
from .panels import PANEL_FACTORIES
from .qt import Qt, QtCore, QtGui, QtWidgets, Signal, pg
from .session_controller import SessionController
from .settings_dialog import SettingsDialog
from .shell import install_shell
from .theme import apply_theme, canvas_background
from .view_state import ViewState
from .workers import LoadJob

log = logging.getLogger(__name__)

MAX_RECENT = 10
LAYOUT_VERSION = 2  # 2: toolbar, docks tabbed in one column (issue 15): older saved layouts start fresh
IMAGE_FILTER = ("Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.dcm *.nii *.nii.gz *.npy *.wbsession);;"
                "DICOM (*.dcm *);;Workbench session (*.wbsession);;All files (*)")
_AREAS = {"left": Qt.DockWidgetArea.LeftDockWidgetArea, "right": Qt.DockWidgetArea.RightDockWidgetArea,
          "bottom": Qt.DockWidgetArea.BottomDockWidgetArea, "top": Qt.DockWidgetArea.TopDockWidgetArea}


class ErrorBanner(QtWidgets.QFrame):
    """A non-modal, dismissable one-line error strip above the canvas."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.label = QtWidgets.QLabel()
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setWordWrap(True)
        close = QtWidgets.QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.hide()

    def show_message(self, message: str) -> None:
        self.label.setText(message)
        self.show()


class MainWindow(QtWidgets.QMainWindow):
    """The Workbench window.

    Panels reach the app through ``document``, ``view_state``, ``canvas``, ``settings``, ``show_error`` and
    ``show_status`` (see :mod:`workbench.gui.panels`).

    Signals
    -------
    load_settled(bool)
        A load finished: ``True`` if the image was opened, ``False`` on error or cancel.
    """

    load_settled = Signal(bool)

    def __init__(self, settings: Settings | None = None, *, restore_layout: bool = True,
                 persist: bool = True) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self._persist = persist
        self.document = Document(undo_max_bytes=self.settings.undo_max_mb * 1024 * 1024)
        self.view_state = ViewState()
        self.last_error: str | None = None
        self._job: LoadJob | None = None
        self.setWindowTitle("Workbench")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.setWindowIcon(QtGui.QIcon(str(Path(__file__).resolve().parents[2] / "assets" / "icons"
                                           / "workbench.svg")))

        self.canvas = CanvasWidget(self.document, self.view_state, self)
        self._set_canvas_background()
        self.banner = ErrorBanner(self)
        self.slice_slider = QtWidgets.QSlider(Qt.Orientation.Horizontal)
        self.slice_slider.setToolTip("Slice (Page Up / Page Down, Ctrl + wheel)")
        self.slice_slider.valueChanged.connect(self.view_state.set_slice)
        self.slice_label = QtWidgets.QLabel()
        self.slice_label.setMinimumWidth(170)
        self.slice_bar = QtWidgets.QFrame()
        self.slice_bar.setObjectName("sliceBar")
        bar = QtWidgets.QHBoxLayout(self.slice_bar)
        bar.setContentsMargins(10, 3, 10, 3)
        bar.addWidget(self.slice_slider, 1)
        bar.addWidget(self.slice_label)
        self.slice_bar.hide()
        self.empty_hint = QtWidgets.QLabel("Drop an image, a DICOM file or a DICOM folder here\n"
                                           "or use File ▸ Open (Ctrl+O)")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setObjectName("hint")
        font = self.empty_hint.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        self.empty_hint.setFont(font)
        self.stack = QtWidgets.QStackedWidget()
        self.stack.addWidget(self.empty_hint)
        self.view_area = build_view_area(self, self.canvas)  # axial/coronal/sagittal views (issue 15)
        self.stack.addWidget(self.view_area)
        central = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.slice_bar)
        self.setCentralWidget(central)

        self._build_status_bar()
        self.docks: dict[str, QtWidgets.QDockWidget] = {}
        self._build_docks()
        self._build_menus()
        import_model_dialog.install(self)  # File > Import model… (issue 13)

        self.document.image_changed.connect(self._on_image_changed)
        self.document.results_changed.connect(self._on_results_changed)
        self.document.result_added.connect(self._on_result_added)
        # the document merges new segmentations into the label map with the policy the Results dock shows
        self.document.segmentation_policy = self.view_state.segmentation_policy
        self.view_state.segmentation_policy_changed.connect(
            lambda: setattr(self.document, "segmentation_policy", self.view_state.segmentation_policy))
        self.document.undo.changed.connect(self._update_undo_actions)
        # sessions and exports (File menu); connected after the handlers above so it titles the window last
        self.session = SessionController(self)
        # crash recovery (issue 11): autosave of unsaved work; off for screenshots and test windows
        self.recovery = None
        if persist:
            from .recovery_hooks import RecoveryHooks

            self.recovery = RecoveryHooks(self)
        self.session.install(self.file_menu, self.quit_action)
        self.export_action = self.session.export_mask_action
        self.send_pacs_action = QtGui.QAction("Send to P&ACS…", self)  # with the exports, above Quit
        self.send_pacs_action.setStatusTip("Send the label map (DICOM SEG) and report (PDF) to a PACS node")
        self.send_pacs_action.triggered.connect(self.send_to_pacs_dialog)
        self.file_menu.insertAction(self.quit_action, self.send_pacs_action)
        import_mask_action.install(self)  # File > Import mask… (issue 15)
        case_report_action.install(self)  # File > Report…, View > Add view to report (issue 15)
        self.view_state.slice_changed.connect(lambda _z: self._update_slice_bar())
        self.canvas.cursor_moved.connect(self.cursor_label.setText)
        self._update_undo_actions()
        install_explain(self)  # issue 17: the Explain section (heat maps) of the Results dock
        install_shell(self)  # issue 15: toolbar, dock layout + View > Reset layout, overlay text, Help
        self.resize(1400, 900)
        if restore_layout:
            self._restore_layout()

    # -- construction -----------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.cursor_label = QtWidgets.QLabel()
        self.cursor_label.setObjectName("cursorReadout")
        self.progress = QtWidgets.QProgressBar()
        self.progress.setMaximumWidth(180)
        self.progress.setMaximumHeight(16)
        self.progress.hide()
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop loading")
        self.cancel_button.clicked.connect(self.cancel_load)
        self.cancel_button.hide()
        status.addWidget(self.cursor_label, 1)
        status.addPermanentWidget(self.progress)
        status.addPermanentWidget(self.cancel_button)

    def _build_docks(self) -> None:
        for factory in PANEL_FACTORIES:
            dock = factory(self)
            area = _AREAS.get(str(dock.property("default_area") or "right"), _AREAS["right"])
            # a dock with property tabify=False (Models) is split above the others, never tabbed with them
            same_area = [d for d in self.docks.values()
                         if self.dockWidgetArea(d) == area and d.property("tabify") is not False]
            self.addDockWidget(area, dock)
            if same_area and area == _AREAS["right"] and dock.property("tabify") is not False:
                self.tabifyDockWidget(same_area[-1], dock)
            self.docks[dock.objectName()] = dock
        left = [d for d in self.docks.values() if self.dockWidgetArea(d) == _AREAS["left"]]
        right = [d for d in self.docks.values() if self.dockWidgetArea(d) == _AREAS["right"]]
        if left:
            self.resizeDocks(left, [330] * len(left), Qt.Orientation.Horizontal)
        if right:
            self.resizeDocks(right[:1], [360], Qt.Orientation.Horizontal)
            ([d for d in right if d.property("tabify") is not False] or right)[0].raise_()
        bottom = [d for d in self.docks.values() if self.dockWidgetArea(d) == _AREAS["bottom"]]
        if bottom:  # the image keeps most of the height
            self.resizeDocks(bottom, [200] * len(bottom), Qt.Orientation.Vertical)

    def _action(self, menu: QtWidgets.QMenu, text: str, slot, shortcut=None, tip: str | None = None,
                checkable: bool = False) -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        if shortcut is not None:
            shortcuts = shortcut if isinstance(shortcut, list) else [shortcut]
            action.setShortcuts([QtGui.QKeySequence(s) for s in shortcuts])
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu("&File")
        self.open_action = self._action(m, "&Open…", self.open_dialog, QtGui.QKeySequence.StandardKey.Open)
        self._action(m, "Open &folder…", self.open_folder_dialog, "Ctrl+Shift+O",
                     "Open a folder of DICOM files as one series")
        self.recent_menu = m.addMenu("Open &recent")
        self._fill_recent_menu()
        self.pacs_action = self._action(m, "&PACS…", self.pacs_dialog, None,
                                        "Search a PACS, retrieve studies into the local cache and open them")
        m.addSeparator()
        # session and export actions are inserted above Quit by SessionController.install
        self.file_menu = m
        self.quit_action = self._action(m, "&Quit", lambda: self.session.close_window(),
                                        QtGui.QKeySequence.StandardKey.Quit)

        m = bar.addMenu("&Edit")
        self.undo_action = self._action(m, "&Undo", self.undo, QtGui.QKeySequence.StandardKey.Undo)
        self.redo_action = self._action(m, "&Redo", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
        m.addSeparator()
        self._action(m, "&Settings…", self.settings_dialog, "Ctrl+,")

        m = bar.addMenu("&View")
        self.zoom_fit_action = self._action(m, "Zoom to &fit", self.canvas.zoom_to_fit, ["Ctrl+0", "F"])
        self._action(m, "&Actual pixels (1:1)", self.canvas.zoom_one_to_one, "Ctrl+1")
        self._action(m, "Zoom &in", lambda: self.canvas.zoom_by(0.8), QtGui.QKeySequence.StandardKey.ZoomIn)
        self._action(m, "Zoom &out", lambda: self.canvas.zoom_by(1.25), QtGui.QKeySequence.StandardKey.ZoomOut)
        m.addSeparator()
        self._action(m, "&Next slice", lambda: self.view_state.step_slice(1), "PgDown")
        self._action(m, "&Previous slice", lambda: self.view_state.step_slice(-1), "PgUp")
        m.addSeparator()
        self.invert_action = self._action(m, "&Invert", lambda c: self.view_state.set_invert(c), "I",
                                          checkable=True)
        self.view_state.invert_changed.connect(self._sync_invert_action)
        self.view_state.reloaded.connect(lambda: self._sync_invert_action(self.view_state.invert))
        self._action(m, "&Reset window", lambda: self.view_state.apply_preset("Default"), "R")
        m.addSeparator()
        self.view_area.add_layout_menu(m)
        themes = m.addMenu("&Theme")
        group = QtGui.QActionGroup(self)
        for theme in ("dark", "light"):
            action = self._action(themes, theme.capitalize(), lambda _c=False, t=theme: self.set_theme(t),
                                  checkable=True)
            action.setChecked(theme == self.settings.theme)
            group.addAction(action)
        panels = m.addMenu("&Panels")
        for dock in self.docks.values():
            panels.addAction(dock.toggleViewAction())

        m = bar.addMenu("&Help")
        self._action(m, "&About Workbench", self.about)

    def _set_canvas_background(self) -> None:
        colour = canvas_background(self.settings.theme)
        self.canvas.view.setBackground(colour)
        self.canvas.side_view.setBackground(colour)

    # -- messages ---------------------------------------------------------------------------------
    def show_error(self, message: str) -> None:
        """The one place errors are shown: the banner above the canvas and the status bar."""
        self.last_error = message
        log.warning("%s", message)
        self.banner.show_message(message)
        self.statusBar().showMessage(message, 15000)

    def show_status(self, message: str, timeout_ms: int = 6000) -> None:
        self.statusBar().showMessage(message, timeout_ms)

    # -- opening ----------------------------------------------------------------------------------
    @property
    def is_loading(self) -> bool:
        """An image load, or a session open/save/export, is under way."""
        return self._job is not None or (hasattr(self, "session") and self.session.is_busy)

    def open_paths(self, paths: list[str | Path]) -> None:
        """Open the first of ``paths`` (one image per document); a folder opens as a DICOM series."""
        paths = [Path(p) for p in paths]
        if not paths:
            return
        if len(paths) > 1:
            self.show_status(f"One image at a time: opening {paths[0].name}, ignoring {len(paths) - 1} more")
        self.open_path(paths[0])

    def open_path(self, path: str | Path) -> None:
        """Start reading ``path`` in a worker; the open document stays until the new image is ready.

        A ``.wbsession`` file opens as a session (image, labels, results, view). Unsaved edits of the
        open document are never dropped silently: Save / Discard / Cancel first."""
        if str(path).lower().endswith(".wbsession"):
            self.session.open_session(path)
            return
        if not self.session.maybe_save(then=lambda: self.open_path(path), replacing=True):
            return
        self.session.cancel()  # an open session still being read: the newest request wins
        if self._job is not None:
            self._job.cancel()  # the newest request wins; the old job's result is ignored
        job = LoadJob(path, max_pixels=self.settings.max_pixels, parent=self)
        job.progressed.connect(self._on_progress)
        job.loaded.connect(self._on_loaded)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_cancelled)
        self._job = job
        self.progress.setRange(0, 0)  # busy until the reader reports a total
        self.progress.show()
        self.cancel_button.show()
        self.show_status(f"Opening {Path(path).name}…", 0)
        job.start()

    def cancel_load(self) -> None:
        if self._job is not None:
            self._job.cancel()
        self.session.cancel()  # a session being opened (saves and exports are not cancellable)

    def _finish_job(self) -> LoadJob | None:
        job = self.sender()
        if job is not self._job:
            return None  # a superseded load
        self._job = None
        self.progress.hide()
        self.cancel_button.hide()
        job.deleteLater()
        return job

    def _on_progress(self, done: int, total: int) -> None:
        if self.sender() is not self._job:
            return
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))

    def _on_loaded(self, image) -> None:
        job = self._finish_job()
        if job is None:
            return
        if job.is_cancelled:  # finished reading just before the user pressed Cancel: honour the cancel
            self.show_status(f"{job.path}: opening cancelled by the user")
            self.load_settled.emit(False)
            return
        self.banner.hide()
        self.last_error = None
        self.document.set_image(image)
        self._remember_recent(job.path)
        self.show_status(f"Opened {job.path}")
        self.load_settled.emit(True)

    def _on_failed(self, message: str) -> None:
        if self._finish_job() is None:
            return
        self.show_error(message)
        self.load_settled.emit(False)

    def _on_cancelled(self, message: str) -> None:
        if self._finish_job() is None:
            return
        self.show_status(message)
        self.load_settled.emit(False)

    def pacs_dialog(self):
        from .pacs_dialog import open_pacs_dialog

        return open_pacs_dialog(self)

    def send_to_pacs_dialog(self):
        from .pacs_send import open_send_dialog

        return open_send_dialog(self)

    def open_dialog(self) -> None:
        files, _ = QtWidgets.QFileDialog.getOpenFileNames(self, "Open image", self._last_dir(), IMAGE_FILTER)
        if files:
            self.open_paths(files)

    def open_folder_dialog(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Open DICOM folder", self._last_dir())
        if folder:
            self.open_path(folder)

    def _last_dir(self) -> str:
        return str(Path(self.settings.recent_files[0]).parent) if self.settings.recent_files else str(Path.home())

    # -- drag and drop ----------------------------------------------------------------------------
    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QtGui.QDragMoveEvent) -> None:  # noqa: N802
        self.dragEnterEvent(event)

    def dropEvent(self, event: QtGui.QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        if import_model_dialog.handle_drop(self, paths):  # a dropped .onnx opens the import dialog
            return
        self.open_paths(paths)

    # -- recent files -----------------------------------------------------------------------------
    def _remember_recent(self, path: Path) -> None:
        entry = str(Path(path).resolve())
        recent = [entry] + [p for p in self.settings.recent_files if p != entry]
        self.settings.recent_files = recent[:MAX_RECENT]
        self._fill_recent_menu()
        self._save_settings()

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_files:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _c=False, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(self.settings.recent_files))

    def _save_settings(self) -> None:
        if not self._persist:
            return
        try:
            save_settings(self.settings)
        except OSError as exc:
            self.show_error(f"settings not saved: {exc}")

    # -- document events --------------------------------------------------------------------------
    def _on_image_changed(self) -> None:
        image = self.document.image
        self.view_state.reset(image)
        self.stack.setCurrentWidget(self.view_area if image is not None else self.empty_hint)
        self.setWindowTitle(f"{image.display_name} — Workbench" if image is not None else "Workbench")
        n = image.n_slices if image is not None else 1
        self.slice_slider.blockSignals(True)
        self.slice_slider.setRange(0, n - 1)
        self.slice_slider.setValue(self.view_state.slice_index)
        self.slice_slider.blockSignals(False)
        self.slice_bar.setVisible(n > 1)
        self._update_slice_bar()
        self.export_action.setEnabled(image is not None)

    def _update_slice_bar(self) -> None:
        z = self.view_state.slice_index
        self.slice_slider.blockSignals(True)
        self.slice_slider.setValue(z)
        self.slice_slider.blockSignals(False)
        self.slice_label.setText(slice_position_text(self.document.image, z))

    def _on_result_added(self, result) -> None:
        """A model run added ``result`` (inside its undo step; the document already merged a segmentation)."""
        if isinstance(result, SegmentationResult) and self.document.segmentation_policy is not None:
            self.show_status(f"Segmentation of {result.info.plugin_name} written into the label map "
                             f"({self.document.segmentation_policy})")
        elif isinstance(result, RestorationResult):
            self.view_state.show_restoration(result)  # the new result is the one shown (issue 15 item 5)
        if not isinstance(result, RestorationResult) and self.view_state.compare_mode != "off":
            self.view_state.set_compare("off")  # a new result is shown on the image, not on a compare view

    def _on_results_changed(self) -> None:
        results = self.document.results
        if self.view_state.restoration is not None and not any(r is self.view_state.restoration
                                                               for r in results):
            others = [r for r in results if isinstance(r, RestorationResult)]
            if others:
                self.view_state.set_compare(restoration=others[-1])
            else:
                self.view_state.clear_restoration()

    def apply_segmentation(self, result: SegmentationResult, policy: str | None = None) -> None:
        """Write a segmentation result into the editable label map as one undo step.

        ``policy`` (default: the view state's): see :func:`workbench.core.edits.merge_segmentation`.
        """
        policy = policy or self.view_state.segmentation_policy
        try:
            self.document.apply_segmentation(result, policy)
        except WorkbenchError as exc:
            self.show_error(str(exc))
            return
        self.show_status(f"Segmentation of {result.info.plugin_name} written into the label map ({policy})")

    # -- edit -------------------------------------------------------------------------------------
    def undo(self) -> None:
        name = self.document.undo.undo()
        if name:
            self.show_status(f"Undid {name}")

    def redo(self) -> None:
        name = self.document.undo.redo()
        if name:
            self.show_status(f"Redid {name}")

    def _update_undo_actions(self) -> None:
        undo = self.document.undo
        self.undo_action.setEnabled(undo.can_undo)
        self.redo_action.setEnabled(undo.can_redo)
        self.undo_action.setText(f"&Undo {undo.undo_name}" if undo.can_undo else "&Undo")
        self.redo_action.setText(f"&Redo {undo.redo_name}" if undo.can_redo else "&Redo")

    def _sync_invert_action(self, inverted: bool) -> None:
        self.invert_action.blockSignals(True)
        self.invert_action.setChecked(bool(inverted))
        self.invert_action.blockSignals(False)

    # -- export -----------------------------------------------------------------------------------
    def export_mask_dialog(self) -> None:
        """File > Export mask: the whole label map (see :class:`~.session_controller.SessionController`)."""
        self.session.export_mask_dialog()

    def export_mask(self, path: str | Path) -> None:
        """Write the whole label map to ``path`` now, on this thread (PNG for 2D, TIFF/NIfTI for stacks,
        .dcm SEG); the menu action writes in a worker instead."""
        self.session.export_mask_now(path)

    # -- settings, theme, about -------------------------------------------------------------------
    def settings_dialog(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted and dialog.result_settings is not None:
            theme_changed = dialog.result_settings.theme != self.settings.theme
            self.settings = dialog.result_settings
            self._save_settings()
            if theme_changed:
                self.set_theme(self.settings.theme)

    def set_theme(self, theme: str) -> None:
        app = QtWidgets.QApplication.instance()
        apply_theme(app, theme, self)
        self.settings.theme = theme
        self._set_canvas_background()
        self._save_settings()

    def about(self) -> None:
        from PySide6 import __version__ as pyside_version

        QtWidgets.QMessageBox.about(
            self, "About Workbench",
            f"<h3>Workbench {__version__}</h3>"
            "<p>Desktop image analysis: DICOM, NIfTI and raster viewer with ONNX model plugins and "
            "classic segmentation tools.</p>"
            f"<p>PySide6 {pyside_version} · pyqtgraph {pg.__version__}</p>"
            "<p>Research use; not for diagnosis.</p>")

    # -- layout persistence -----------------------------------------------------------------------
    def _qsettings(self) -> QtCore.QSettings:
        # an ini beside settings.json: tests (WORKBENCH_CONFIG_DIR) never touch the user's registry
        return QtCore.QSettings(str(config_dir() / "window.ini"), QtCore.QSettings.Format.IniFormat)

    def _restore_layout(self) -> None:
        qs = self._qsettings()
        geometry = qs.value("geometry")
        state = qs.value("state")
        if isinstance(geometry, QtCore.QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QtCore.QByteArray):
            self.restoreState(state, LAYOUT_VERSION)

    def save_layout(self) -> None:
        if not self._persist:
            return
        qs = self._qsettings()
        qs.setValue("geometry", self.saveGeometry())
        qs.setValue("state", self.saveState(LAYOUT_VERSION))
        qs.sync()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802
        # unsaved changes: Save / Discard / Cancel -- for the user's close (window manager, File > Quit asks
        # before calling close()); close() from code never opens a modal box
        if event.spontaneous() and not self.session.maybe_save(then=self.close):
            event.ignore()
            return
        if self._job is not None:
            self._job.cancel()
        self.save_layout()
        if self.recovery is not None:
            self.recovery.close()  # a clean quit: nothing to recover
        super().closeEvent(event)

