"""Measurements dock: per-label statistics in physical units, CSV export and the ROI histogram.

The numbers come from :func:`workbench.processing.measure_labels` (the same function as ``workbench
measure``). They are recomputed, debounced, after the label map changes, in a background job on a copy of the
label map (measuring a 2048² slice takes seconds: never on the GUI thread), and only while the dock is
visible; a hidden dock catches up when it is shown.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.errors import WorkbenchError
from ...export.measurements import write_csv
from ...processing import LabelStats, measure_labels, roi_histogram
from ..qt import Qt, QtCore, QtGui, QtWidgets, Signal, pg
from ..tools.editing import known_spacing, scalar_volume
from ..workers import BackgroundJob
from .base import make_dock
from .rulers_section import RulersSection

DEBOUNCE_MS = 400


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if not np.isfinite(value):
            return "—"
        return f"{value:.{digits}g}" if abs(value) < 1e6 else f"{value:.4e}"
    return str(value)


class MeasurePanel(QtWidgets.QWidget):
    """Per-label table, CSV export and the intensity histogram of the selected label.

    Signals
    -------
    measured()
        The table was refreshed from a finished measurement.
    """

    measured = Signal()

    def __init__(self, main_window) -> None:
        super().__init__(main_window)
        self._mw = main_window
        self._labels = None
        self._job: BackgroundJob | None = None
        self._dirty = True
        self._generation = 0
        self.stats: list[LabelStats] = []
        self.last_error: str | None = None

        self.table = QtWidgets.QTableWidget(0, 0)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.itemSelectionChanged.connect(self._on_selection)

        self.export_button = QtWidgets.QPushButton("Export CSV…")
        self.export_button.setToolTip("Write the table as CSV (one row per label, physical units)")
        self.export_button.clicked.connect(self.export_dialog)
        self.refresh_button = QtWidgets.QPushButton("Refresh")
        self.refresh_button.setToolTip("Measure again now")
        self.refresh_button.clicked.connect(self.refresh_now)
        self.state_label = QtWidgets.QLabel()
        self.state_label.setObjectName("hint")

        self.hist_plot = pg.PlotWidget(background=None)
        self.hist_plot.setMenuEnabled(False)
        self.hist_plot.setMouseEnabled(x=False, y=False)
        self.hist_plot.hideButtons()
        self.hist_plot.getAxis("left").setWidth(36)
        self.hist_plot.setMinimumHeight(110)
        self.hist_curve = pg.PlotDataItem(stepMode="center", fillLevel=0, brush=(255, 160, 60, 110),
                                          pen=pg.mkPen((255, 180, 90), width=1))
        self.hist_plot.addItem(self.hist_curve)
        self.hist_title = QtWidgets.QLabel("Select a label to see its intensity histogram")
        self.hist_title.setObjectName("hint")
        self.hist_title.setWordWrap(True)

        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.export_button)
        buttons.addStretch(1)
        buttons.addWidget(self.state_label)
        left = QtWidgets.QWidget()
        left_layout = QtWidgets.QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.table, 1)
        left_layout.addLayout(buttons)
        right = QtWidgets.QWidget()
        right_layout = QtWidgets.QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.hist_title)
        right_layout.addWidget(self.hist_plot, 1)
        # side by side: the dock sits under the canvas, where height is scarce
        self.splitter = QtWidgets.QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.rulers = RulersSection(main_window)  # issue 15: the annotation tools and their measurements
        self.rulers.setMinimumWidth(380)
        self.splitter.addWidget(self.rulers)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 3)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.splitter)

        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh_now)

        main_window.view_state.reloaded.connect(self.rebind)
        self.rebind()

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt API)
        return QtCore.QSize(900, 190)

    # -- binding ----------------------------------------------------------------------------------
    def rebind(self) -> None:
        labels = self._mw.document.labels
        if self._labels is not None and self._labels is not labels:
            self._labels.data_changed.disconnect(self._on_changed)
            self._labels.labels_changed.disconnect(self._on_changed)
        if labels is not None and labels is not self._labels:
            labels.data_changed.connect(self._on_changed)
            labels.labels_changed.connect(self._on_changed)
        self._labels = labels
        if self._job is not None:
            self._job.cancel()
            self._job = None
        self.stats = []
        self._fill_table()
        self._show_histogram(None)
        self._on_changed()

    def _on_changed(self, *_args) -> None:
        """The labels changed: measure again after a pause (only while visible)."""
        self._dirty = True
        self._generation += 1
        if self.isVisible():
            self._timer.start()

    def showEvent(self, event: QtGui.QShowEvent) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        if self._dirty:
            self._timer.start()

    @property
    def is_busy(self) -> bool:
        """A measurement is pending or running."""
        return self._job is not None or self._timer.isActive()

    # -- measuring --------------------------------------------------------------------------------
    def refresh_now(self) -> None:
        """Measure the current label map (in a background job on a copy of it)."""
        self._timer.stop()
        document = self._mw.document
        image, labels = document.image, document.labels
        if image is None or labels is None:
            self.stats = []
            self._fill_table()
            self._dirty = False
            return
        if self._job is not None:
            return  # re-run when the running job finishes (still dirty)
        self._dirty = False
        generation = self._generation
        data = labels.data.copy()  # the worker must not see half-painted strokes
        intensities = scalar_volume(image)
        spacing = known_spacing(image)
        names = {v: lab.name for v, lab in labels.labels.items()}

        def compute(_progress, _cancelled) -> list[LabelStats]:
            return measure_labels(data, intensities, spacing=spacing, names=names)

        job = None

        def finished(stats) -> None:
            if self._job is not job:
                return
            self._job = None
            self.state_label.setText("")
            self.last_error = None
            self.stats = list(stats)
            self._fill_table()
            if self._dirty or generation != self._generation:
                self._timer.start()
            self.measured.emit()

        def failed(message: str) -> None:
            if self._job is not job:
                return
            self._job = None
            self.last_error = message
            self.state_label.setText("")
            self._mw.show_error(f"measurements: {message}")

        job = BackgroundJob(compute, context=self, on_finished=finished, on_failed=failed)
        self._job = job
        self.state_label.setText("measuring…")
        job.start()

    # -- table ------------------------------------------------------------------------------------
    def columns(self) -> list[tuple[str, str]]:
        """``(header, LabelStats field)`` of the shown columns (units follow the image)."""
        image = self._mw.document.image
        three_d = image is not None and image.n_slices > 1
        physical = known_spacing(image) is not None
        unit = " (HU)" if image is not None and image.is_ct else ""
        cols = [("Label", "label"), ("Name", "name"), ("Pixels" if not three_d else "Voxels", "pixels")]
        if physical:
            cols.append(("Volume mm³", "volume_mm3") if three_d else ("Area mm²", "area_mm2"))
        cols += [(f"Mean{unit}", "mean"), (f"Std{unit}", "std"), (f"Min{unit}", "min"), (f"Max{unit}", "max"),
                 (f"Median{unit}", "median")]
        if not three_d:
            cols.append(("Perimeter mm", "perimeter_mm") if physical else ("Perimeter px", "perimeter_px"))
        cols.append(("Eq. diam. mm", "equivalent_diameter_mm") if physical
                    else ("Eq. diam. px", "equivalent_diameter_px"))
        cols.append(("BBox z0 y0 x0 z1 y1 x1", "bbox"))
        return cols

    def _fill_table(self) -> None:
        selected = self.selected_label
        cols = self.columns()
        labels = self._labels
        self.table.blockSignals(True)
        self.table.clear()
        self.table.setColumnCount(len(cols))
        self.table.setHorizontalHeaderLabels([c[0] for c in cols])
        self.table.setRowCount(len(self.stats))
        select_row = None
        for row, s in enumerate(self.stats):
            for col, (_header, field) in enumerate(cols):
                value = getattr(s, field)
                text = " ".join(str(v) for v in value) if field == "bbox" else _fmt(value)
                item = QtWidgets.QTableWidgetItem(text)
                if field not in ("name", "bbox"):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if field == "label":
                    item.setData(Qt.ItemDataRole.UserRole, s.label)
                    if labels is not None and s.label in labels.labels:
                        pix = QtGui.QPixmap(12, 12)
                        pix.fill(QtGui.QColor(labels.labels[s.label].color))
                        item.setIcon(QtGui.QIcon(pix))
                self.table.setItem(row, col, item)
            if s.label == selected:
                select_row = row
        self.table.resizeColumnsToContents()
        if select_row is not None:
            self.table.selectRow(select_row)
        self.table.blockSignals(False)
        self.export_button.setEnabled(bool(self.stats))
        self._on_selection()

    def cell_text(self, label: int, field: str) -> str | None:
        """The text shown for ``label``'s ``field`` (tests)."""
        cols = [c[1] for c in self.columns()]
        if field not in cols:
            return None
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) == label:
                return self.table.item(row, cols.index(field)).text()
        return None

    @property
    def selected_label(self) -> int | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return int(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None

    def select_label(self, value: int) -> None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) == value:
                self.table.selectRow(row)
                return

    # -- ROI histogram ----------------------------------------------------------------------------
    def _on_selection(self) -> None:
        value = self.selected_label
        self._show_histogram(next((s for s in self.stats if s.label == value), None))

    def _show_histogram(self, stats: LabelStats | None) -> None:
        document = self._mw.document
        self.roi_hist = None
        if stats is None or document.image is None or document.labels is None:
            self.hist_curve.setData([0, 1], [0])
            self.hist_plot.hide()
            self.hist_title.setText("Select a label to see its intensity histogram")
            return
        z0, y0, x0, z1, y1, x1 = stats.bbox
        box = (slice(z0, z1), slice(y0, y1), slice(x0, x1))
        # the label's bounding box only: the histogram costs what the label covers, not the image size
        mask = document.labels.data[box] == stats.label
        values = scalar_volume(document.image)[box]
        try:
            hist = roi_histogram(values, mask, bins=64)
        except WorkbenchError as exc:
            self.hist_title.setText(str(exc))
            return
        self.roi_hist = hist
        self.hist_curve.setData(hist.edges, hist.counts)
        self.hist_plot.show()
        unit = " HU" if document.image.is_ct else ""
        self.hist_title.setText(f"Intensities of {stats.name} ({stats.pixels} px; mean {_fmt(stats.mean)}{unit})")

    # -- export -----------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        image = self._mw.document.image
        stem = image.path.stem if image is not None and image.path is not None else "measurements"
        folder = image.path.parent if image is not None and image.path is not None else Path.home()
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export measurements (CSV)",
                                                        str(folder / f"{stem}_measurements.csv"), "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str | Path) -> bool:
        """Write the current table atomically; errors go to the main window's error area."""
        try:
            write_csv(self.stats, path)
        except WorkbenchError as exc:
            self._mw.show_error(str(exc))
            return False
        self._mw.show_status(f"Measurements written to {path}")
        return True


def create_dock(main_window) -> QtWidgets.QDockWidget:
    """Registry factory (see :mod:`workbench.gui.panels`)."""
    panel = MeasurePanel(main_window)
    dock = make_dock(main_window, "Measurements", "MeasurementsDock", panel, area="bottom")
    return dock


__all__ = ["MeasurePanel", "create_dock"]
