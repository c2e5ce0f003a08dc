"""Layers / Labels dock: overlay visibility and opacity, and the label table.

The table rows mirror ``document.labels.labels`` (name, colour, visibility live in the core label table)
and the view state's per-label style (opacity, outline). The widget writes through the models' setters
and rebuilds itself, with its own signals blocked, when they change.
"""
from __future__ import annotations

from ...core.errors import WorkbenchError
from ..qt import Qt, QtGui, QtWidgets
from .base import make_dock

COL_COLOR, COL_VALUE, COL_NAME, COL_VISIBLE, COL_OPACITY, COL_OUTLINE = range(6)


class LayersPanel(QtWidgets.QWidget):
    """Overlay switches and the editable label table."""

    def __init__(self, main_window) -> None:
        super().__init__(main_window)
        self._mw = main_window
        self._labels = None
        state = main_window.view_state

        self.overlay_check = QtWidgets.QCheckBox("Label overlay")
        self.overlay_check.setChecked(True)
        self.overlay_check.toggled.connect(state.set_overlay_visible)
        self.detections_check = QtWidgets.QCheckBox("Detections")
        self.detections_check.setChecked(True)
        self.detections_check.toggled.connect(state.set_detections_visible)
        self.opacity_slider = QtWidgets.QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(100)
        self.opacity_slider.setToolTip("Opacity of the whole label overlay")
        self.opacity_slider.valueChanged.connect(lambda v: state.set_overlay_opacity(v / 100.0))

        self.table = QtWidgets.QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["", "#", "Name", "Show", "Opacity", "Outline"])
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL_NAME, QtWidgets.QHeaderView.ResizeMode.Stretch)
        for col, width in ((COL_COLOR, 28), (COL_VALUE, 36), (COL_VISIBLE, 44), (COL_OPACITY, 64),
                           (COL_OUTLINE, 56)):
            header.setSectionResizeMode(col, QtWidgets.QHeaderView.ResizeMode.Fixed)
            self.table.setColumnWidth(col, width)
        self.table.itemChanged.connect(self._on_item_changed)
        self.table.cellDoubleClicked.connect(self._on_double_click)
        self.table.itemSelectionChanged.connect(self._on_selection)

        self.add_button = QtWidgets.QPushButton("Add label")
        self.add_button.setToolTip("Add a label to paint with (value = next free value)")
        self.add_button.clicked.connect(self._add_label)
        self.empty_hint = QtWidgets.QLabel("No labels yet: add one, paint with a tool or run a segmentation model.")
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setObjectName("hint")

        top = QtWidgets.QGridLayout()
        top.addWidget(self.overlay_check, 0, 0)
        top.addWidget(self.detections_check, 0, 1)
        top.addWidget(QtWidgets.QLabel("Opacity"), 1, 0)
        top.addWidget(self.opacity_slider, 1, 1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty_hint)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

        state.reloaded.connect(self.rebind)
        state.overlay_changed.connect(self.refresh)
        self.rebind()

    # -- binding ----------------------------------------------------------------------------------
    def rebind(self) -> None:
        """Follow the document's (new) label map."""
        labels = self._mw.document.labels
        if self._labels is not None and self._labels is not labels:
            self._labels.labels_changed.disconnect(self.refresh)
        self._labels = labels
        if labels is not None:
            labels.labels_changed.connect(self.refresh)
        state = self._mw.view_state
        for widget, value in ((self.overlay_check, state.overlay_visible),
                              (self.detections_check, state.detections_visible)):
            widget.blockSignals(True)
            widget.setChecked(value)
            widget.blockSignals(False)
        self.opacity_slider.blockSignals(True)
        self.opacity_slider.setValue(round(state.overlay_opacity * 100))
        self.opacity_slider.blockSignals(False)
        self.add_button.setEnabled(labels is not None)
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the rows from the label table and styles (signals blocked: no feedback loop)."""
        labels = self._labels
        state = self._mw.view_state
        entries = sorted(labels.labels.values(), key=lambda lab: lab.value) if labels is not None else []
        self.table.blockSignals(True)
        self.table.setRowCount(len(entries))
        for row, label in enumerate(entries):
            style = state.label_style(label.value)
            swatch = QtWidgets.QTableWidgetItem()
            # a decoration, not the background: the selection highlight would hide a background colour
            swatch.setData(Qt.ItemDataRole.DecorationRole, _swatch(label.color))
            swatch.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            swatch.setToolTip("Double-click to change the colour")
            swatch.setData(Qt.ItemDataRole.UserRole, label.value)
            self.table.setItem(row, COL_COLOR, swatch)
            value_item = QtWidgets.QTableWidgetItem(str(label.value))
            value_item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            self.table.setItem(row, COL_VALUE, value_item)
            self.table.setItem(row, COL_NAME, QtWidgets.QTableWidgetItem(label.name))
            for col, checked in ((COL_VISIBLE, label.visible), (COL_OUTLINE, style.outline)):
                item = QtWidgets.QTableWidgetItem()
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable
                              | Qt.ItemFlag.ItemIsSelectable)
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
                self.table.setItem(row, col, item)
            spin = self.table.cellWidget(row, COL_OPACITY)
            if not isinstance(spin, QtWidgets.QSpinBox):
                spin = QtWidgets.QSpinBox()
                spin.setRange(0, 100)
                spin.setSuffix("%")
                spin.setFrame(False)
                spin.valueChanged.connect(
                    lambda v, s=spin: state.set_label_style(int(s.property("label_value")), opacity=v / 100))
                self.table.setCellWidget(row, COL_OPACITY, spin)
            spin.setProperty("label_value", label.value)  # rows are reused when labels come and go
            spin.blockSignals(True)
            spin.setValue(round(style.opacity * 100))
            spin.blockSignals(False)
            if label.value == state.active_label:
                self.table.selectRow(row)
        self.table.blockSignals(False)
        self.empty_hint.setVisible(not entries)

    # -- edits ------------------------------------------------------------------------------------
    def _value_of_row(self, row: int) -> int | None:
        item = self.table.item(row, COL_COLOR)
        return int(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None

    def _on_item_changed(self, item: QtWidgets.QTableWidgetItem) -> None:
        value = self._value_of_row(item.row())
        if value is None or self._labels is None:
            return
        col = item.column()
        if col == COL_NAME:
            name = item.text().strip()
            if name:
                self._labels.set_label(value, name=name)
            else:
                self.refresh()
        elif col == COL_VISIBLE:
            self._labels.set_label(value, visible=item.checkState() == Qt.CheckState.Checked)
        elif col == COL_OUTLINE:
            self._mw.view_state.set_label_style(value, outline=item.checkState() == Qt.CheckState.Checked)

    def _on_double_click(self, row: int, col: int) -> None:
        if col != COL_COLOR or self._labels is None:
            return
        value = self._value_of_row(row)
        current = QtGui.QColor(self._labels.labels[value].color)
        colour = QtWidgets.QColorDialog.getColor(current, self, f"Colour of label {value}")
        if colour.isValid():
            self.set_label_color(value, colour.name())

    def set_label_color(self, value: int, color: str) -> None:
        """Change label ``value``'s colour (``#rrggbb``); errors go to the main window's error area."""
        try:
            self._labels.set_label(value, color=color)
        except (ValueError, WorkbenchError) as exc:
            self._mw.show_error(str(exc))

    def _on_selection(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            value = self._value_of_row(rows[0].row())
            if value is not None:
                self._mw.view_state.set_active_label(value)

    def _add_label(self) -> None:
        if self._labels is None:
            return
        value = self._labels.add_label().value  # one undo step
        self._mw.view_state.set_active_label(value)
        self.refresh()


def _swatch(color: str, size: int = 14) -> QtGui.QPixmap:
    pixmap = QtGui.QPixmap(size, size)
    pixmap.fill(QtGui.QColor(color))
    return pixmap


def create_dock(main_window) -> QtWidgets.QDockWidget:
    """Registry factory (see :mod:`workbench.gui.panels`)."""
    panel = LayersPanel(main_window)
    dock = make_dock(main_window, "Layers / Labels", "LayersDock", panel, area="left")
    return dock


__all__ = ["LayersPanel", "create_dock"]
