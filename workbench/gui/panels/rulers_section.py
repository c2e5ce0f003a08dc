"""The annotations section of the Measurements dock (issue 15 item 2): the tools (ruler, angle, ellipse and
rectangle ROI, text arrow) and the table of every annotation (type, slice, value, unit, label text).

The table only reads the document's :class:`~workbench.core.annotations.AnnotationStore` and the numbers of
:func:`workbench.processing.roi.measure_annotation`; *Label…*, *Delete* and the canvas tools change the store
(undoable). Selecting a row shows the annotation's slice.

The tools are checkable ``QAction`` s in :attr:`AnnotationsSection.tool_actions` (kind -> action, one exclusive
group; a second press goes back to navigation) shown by the dock's buttons, and each is registered with the
window's tool registry (``gui/tool_registry.register_tool``, group ``"measure"``, the kind as key and icon) when
that module is there, so the main toolbar and the shortcuts table list them.
"""
from __future__ import annotations

import math

from ...core.annotations import annotations_of
from ...core.errors import WorkbenchError
from ...processing.roi import AnnotationMeasurement, measure_annotations
from ..qt import QtGui, QtWidgets
from ..tools.annotate import AnnotationLayer, ask_text, make_tools

#: (kind, button text, tooltip) in toolbar order
TOOL_ENTRIES = (
    ("ruler", "Ruler", "Drag on the image to measure a distance (mm); drag an end to edit it"),
    ("angle", "Angle", "Drag the first arm to the vertex, release, click the end of the second arm (degrees)"),
    ("ellipse", "Ellipse", "Drag an ellipse ROI from corner to corner: area (mm²) and mean/SD/min/max"),
    ("rectangle", "Rectangle", "Drag a rectangle ROI from corner to corner: area (mm²) and mean/SD/min/max"),
    ("text", "Text", "Drag from the point of interest to where the note goes, then type it"),
)

COLUMNS = ["Type", "Slice", "Value", "Unit", "Label"]


def value_text(m: AnnotationMeasurement) -> str:
    """The Value column: the number (ROIs: mean ± SD [min, max] · area)."""
    def num(v: float | None) -> str:
        return "\u2014" if v is None or not math.isfinite(v) else f"{v:.1f}"

    if m.roi is not None:
        area = f"{m.roi.area_mm2:.1f} mm\u00b2" if m.roi.area_mm2 is not None else f"{m.roi.area_px:.0f} px\u00b2"
        if m.roi.mean is None:
            return area
        return f"{num(m.roi.mean)} \u00b1 {num(m.roi.std)} [{num(m.roi.min)}, {num(m.roi.max)}] \u00b7 {area}"
    return "" if m.value is None else num(m.value)


class AnnotationsSection(QtWidgets.QWidget):
    """Tool buttons, one row per annotation, Label… and Delete."""

    def __init__(self, main_window) -> None:
        super().__init__(main_window)
        self._mw = main_window
        canvas = main_window.canvas
        self.store = annotations_of(main_window.document)
        self.layer = AnnotationLayer(canvas)
        canvas.add_overlay_item(self.layer, 4)  # above labels (2) and detections (3), below previews (10)
        self.tools = make_tools(self.layer)
        self.tool = self.tools["ruler"]
        self.tools["text"].ask = lambda parent, current: ask_text(self, current)
        self.measurements: list[AnnotationMeasurement] = []
        self._syncing = False

        self.tool_group = QtGui.QActionGroup(self)
        self.tool_group.setExclusionPolicy(QtGui.QActionGroup.ExclusionPolicy.ExclusiveOptional)
        self.tool_actions: dict[str, QtGui.QAction] = {}
        self.tool_buttons: dict[str, QtWidgets.QToolButton] = {}
        buttons = QtWidgets.QHBoxLayout()
        for kind, text, tip in TOOL_ENTRIES:
            action = QtGui.QAction(text, self)
            action.setCheckable(True)
            action.setToolTip(tip)
            action.setStatusTip(tip)
            action.setObjectName(f"annotate_{kind}")
            action.toggled.connect(lambda on, k=kind: self._toggle_tool(k, on))
            self.tool_group.addAction(action)
            self.tool_actions[kind] = action
            button = QtWidgets.QToolButton()
            button.setDefaultAction(action)
            buttons.addWidget(button)
            self.tool_buttons[kind] = button
            self.tools[kind].on_deactivated = lambda a=action: self._unchecked(a)
        self.ruler_button = self.tool_buttons["ruler"]

        self.label_button = QtWidgets.QPushButton("Label…")
        self.label_button.setToolTip("Set the label text of the selected annotation (undoable)")
        self.label_button.clicked.connect(self.edit_label_dialog)
        self.delete_button = QtWidgets.QPushButton("Delete")
        self.delete_button.setToolTip("Remove the selected annotation (undoable)")
        self.delete_button.clicked.connect(self.delete_selected)
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)  # compact rows
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.table.itemDoubleClicked.connect(lambda _item: self.edit_label_dialog())

        edit = QtWidgets.QHBoxLayout()
        edit.addWidget(self.label_button)
        edit.addWidget(self.delete_button)
        edit.addStretch(1)
        self._edit_row = edit
        buttons.addStretch(1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addLayout(edit)

        self.store.changed.connect(self.refresh)
        main_window.document.image_changed.connect(self.refresh)
        self.refresh()
        self._register_tools(main_window)

    def _register_tools(self, main_window) -> None:
        """Put the five tools on the main toolbar (the registry of issue 15 item 4, merged separately)."""
        try:
            from ..tool_registry import register_tool
        except ImportError:  # a build without the toolbar registry: the dock's buttons are the way in
            return
        for kind, text, tip in TOOL_ENTRIES:
            register_tool(main_window, kind, text, tip, activate=lambda k=kind: self.activate(k),
                          tool=lambda k=kind: self.tools[k], icon=kind, group="measure")

    def activate(self, kind: str) -> None:
        """Make the ``kind`` tool the canvas tool and bring the Measurements dock to the front."""
        self.tool_actions[kind].setChecked(True)
        dock = self.parent()
        while dock is not None and not isinstance(dock, QtWidgets.QDockWidget):
            dock = dock.parent()
        if dock is not None:
            dock.show()
            dock.raise_()

    def add_action_button(self, action: QtGui.QAction) -> QtWidgets.QToolButton:
        """A button for a window action beside Label… / Delete (e.g. *Add view to report*)."""
        button = QtWidgets.QToolButton()
        button.setDefaultAction(action)
        self._edit_row.addWidget(button)
        return button

    def _unchecked(self, action: QtGui.QAction) -> None:
        """Another tool took the canvas (a Tools dock button, Esc): the button follows."""
        if action.isChecked():
            self._syncing = True
            try:
                action.setChecked(False)
            finally:
                self._syncing = False

    def _toggle_tool(self, kind: str, on: bool) -> None:
        if self._syncing:
            return
        canvas = self._mw.canvas
        tool = self.tools[kind]
        if on:
            canvas.set_tool(tool)
        elif canvas.tool is tool:
            canvas.set_tool(None)

    def refresh(self) -> None:
        image = self._mw.document.image
        items = list(self.store.items)
        try:
            self.measurements = measure_annotations(items, image) if image is not None else []
        except WorkbenchError as exc:
            self.measurements = []
            self._mw.show_error(f"measurements: {exc}")
        self.table.setRowCount(len(self.measurements))
        for row, m in enumerate(self.measurements):
            cells = (f"{m.title} {m.id}", str(m.z + 1), value_text(m), m.unit, m.label)
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QtWidgets.QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.delete_button.setEnabled(bool(items))
        self.label_button.setEnabled(bool(items))

    def texts(self) -> list[str]:
        """The measurement texts of every row ("32.0 mm", "90.0°", "78.5 mm²; mean ...") (tests)."""
        return [m.text for m in self.measurements]

    def lengths(self) -> list[str]:
        """The texts of the rulers (tests)."""
        return [m.text for m in self.measurements if m.kind == "ruler"]

    def column(self, name: str) -> list[str]:
        """The shown texts of one column (tests)."""
        col = COLUMNS.index(name)
        return [self.table.item(r, col).text() for r in range(self.table.rowCount())]

    def _selected(self):
        rows = {i.row() for i in self.table.selectedItems()}
        items = self.store.items
        return items[min(rows)] if rows and min(rows) < len(items) else None

    def select(self, annotation_id: int) -> None:
        for row, a in enumerate(self.store.items):
            if a.id == annotation_id:
                self.table.selectRow(row)
                return

    def _on_selection(self) -> None:
        annotation = self._selected()
        if annotation is not None:
            self._mw.view_state.set_slice(annotation.z)

    def edit_label_dialog(self) -> None:
        annotation = self._selected()
        if annotation is None:
            return
        text = ask_text(self, annotation.label)
        if text is not None:
            self.store.set_label(annotation.id, text.strip())

    def delete_selected(self) -> None:
        items = self.store.items
        annotation = self._selected() or (items[-1] if items else None)
        if annotation is not None:
            self.store.remove(annotation.id)


RulersSection = AnnotationsSection  # the name of the ruler-only section this grew from

__all__ = ["AnnotationsSection", "RulersSection", "TOOL_ENTRIES", "COLUMNS", "value_text"]
