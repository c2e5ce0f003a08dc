"""The Rulers section of the Measurements dock: the ruler tool's toggle and the list of rulers (issue 15).

The table only reads the document's :class:`~workbench.core.annotations.AnnotationStore`; *Delete* and the
canvas tool change it (undoable). Selecting a row shows the ruler's slice.
"""
from __future__ import annotations

from ...core.annotations import annotations_of
from ..qt import QtWidgets
from ..tool_registry import register_tool
from ..tools.ruler import RulerLayer, RulerTool, ruler_text


class RulersSection(QtWidgets.QWidget):
    """Ruler tool button, one row per ruler (number, slice, length), Delete."""

    def __init__(self, main_window) -> None:
        super().__init__(main_window)
        self._mw = main_window
        canvas = main_window.canvas
        self.store = annotations_of(main_window.document)
        self.layer = RulerLayer(canvas)
        canvas.add_overlay_item(self.layer, 4)  # above labels (2) and detections (3), below previews (10)
        self.tool = RulerTool(self.layer)
        # issue 15 item 4: on the main toolbar and in the shortcuts table (gui/tool_registry.py)
        register_tool(main_window, "ruler", "Ruler", "drag on the image to measure a distance (mm); drag an end "
                      "to edit it", activate=self._activate, tool=lambda: self.tool, group="measure")
        canvas.tool_changed.connect(self._on_tool_changed)

        self.ruler_button = QtWidgets.QPushButton("Ruler")
        self.ruler_button.setCheckable(True)
        self.ruler_button.setToolTip("Drag on the image to measure a distance (mm); drag an end to edit it")
        self.ruler_button.toggled.connect(self._toggle_tool)
        self.delete_button = QtWidgets.QPushButton("Delete")
        self.delete_button.setToolTip("Remove the selected ruler (undoable)")
        self.delete_button.clicked.connect(self.delete_selected)
        self.table = QtWidgets.QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Ruler", "Slice", "Length"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.itemSelectionChanged.connect(self._on_selection)

        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.ruler_button)
        buttons.addWidget(self.delete_button)
        buttons.addStretch(1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

        self.store.changed.connect(self.refresh)
        self.refresh()

    def _activate(self) -> None:
        self.ruler_button.setChecked(True)
        dock = self.parent()
        while dock is not None and not isinstance(dock, QtWidgets.QDockWidget):
            dock = dock.parent()
        if dock is not None:
            dock.show()
            dock.raise_()

    def _on_tool_changed(self, tool) -> None:
        self.ruler_button.blockSignals(True)
        self.ruler_button.setChecked(tool is self.tool)
        self.ruler_button.blockSignals(False)

    def _toggle_tool(self, on: bool) -> None:
        canvas = self._mw.canvas
        if on:
            canvas.set_tool(self.tool)
        elif canvas.tool is self.tool:
            canvas.set_tool(None)

    def refresh(self) -> None:
        image = self._mw.document.image
        rulers = self.store.rulers
        self.table.setRowCount(len(rulers))
        for row, ruler in enumerate(rulers):
            for col, text in enumerate((str(ruler.id), str(ruler.z + 1), ruler_text(ruler, image))):
                self.table.setItem(row, col, QtWidgets.QTableWidgetItem(text))
        self.delete_button.setEnabled(bool(rulers))

    def lengths(self) -> list[str]:
        """The Length column (tests)."""
        return [self.table.item(r, 2).text() for r in range(self.table.rowCount())]

    def _selected(self):
        rows = {i.row() for i in self.table.selectedItems()}
        return self.store.rulers[min(rows)] if rows and min(rows) < len(self.store.rulers) else None

    def _on_selection(self) -> None:
        ruler = self._selected()
        if ruler is not None:
            self._mw.view_state.set_slice(ruler.z)

    def delete_selected(self) -> None:
        ruler = self._selected() or (self.store.rulers[-1] if self.store.rulers else None)
        if ruler is not None:
            self.store.remove(ruler.id)
