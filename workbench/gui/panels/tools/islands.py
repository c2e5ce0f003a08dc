"""The Islands tab of the Tools dock: keep largest, remove small, split into labels, pick, fill holes and
morphology on the current label.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ....core.edits import split_label
from ....core.errors import WorkbenchError
from ....processing import (
    closing,
    dilate,
    erode,
    fill_holes,
    keep_largest,
    label_components,
    opening,
    pick,
    remove_small,
    smooth,
)
from ...qt import QtWidgets
from ...tools.editing import known_spacing


class IslandsSection:
    """The Islands tab of :class:`~.panel.ToolsPanel`."""

    def _build_islands_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        self.isl_scope = QtWidgets.QComboBox()
        self.isl_scope.addItem("This slice", "slice")
        self.isl_scope.addItem("Whole stack (3D)", "stack")
        self.isl_scope.setToolTip("Work on the current label of the shown slice, or on the whole stack in 3D")
        self.isl_scope.currentIndexChanged.connect(lambda _i: self._update_units())

        def button(text: str, tip: str, slot: Callable[[], None]) -> QtWidgets.QPushButton:
            b = QtWidgets.QPushButton(text)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            return b

        self.keep_largest_button = button("Keep largest", "Keep only the largest island of the current label",
                                          self.keep_largest)
        self.split_button = button("Split into labels", "Give every island of the current label its own label",
                                   self.split_islands)
        self.min_size_spin = QtWidgets.QDoubleSpinBox()
        self.min_size_spin.setRange(0.0, 1e9)
        self.min_size_spin.setDecimals(2)
        self.min_size_spin.setValue(50)
        self.min_size_spin.setToolTip("Islands smaller than this are removed")
        self.min_units = QtWidgets.QComboBox()
        self.min_units.setToolTip("Minimum size in pixels (voxels) or in mm² (mm³ in 3D)")
        self.remove_small_button = button("Remove small", "Remove the islands of the current label smaller "
                                                          "than the minimum", self.remove_small)
        self.pick_mode = QtWidgets.QComboBox()
        self.pick_mode.addItem("Pick keeps the island", "keep")
        self.pick_mode.addItem("Pick removes the island", "remove")
        self.pick_mode.setToolTip("What a click with the Pick tool does to the clicked island")
        self.pick_button = button("Pick island…", "Click an island of the current label on the image",
                                  lambda: self.activate_tool("pick"))

        self.fill_holes_button = button("Fill holes", "Fill the holes of the current label", self.fill_holes)
        self.radius_spin = QtWidgets.QDoubleSpinBox()
        self.radius_spin.setRange(0.1, 500.0)
        self.radius_spin.setDecimals(2)
        self.radius_spin.setValue(2.0)
        self.radius_spin.setToolTip("Radius of dilate / erode / open / close / smooth")
        self.radius_units = QtWidgets.QComboBox()
        self.radius_units.addItem("px", "px")
        self.radius_units.addItem("mm", "mm")
        self.dilate_button = button("Dilate", "Grow the current label by the radius", lambda: self.morphology("dilate"))
        self.erode_button = button("Erode", "Shrink the current label by the radius", lambda: self.morphology("erode"))
        self.open_button = button("Open", "Erode then dilate: removes thin parts", lambda: self.morphology("open"))
        self.close_button = button("Close", "Dilate then erode: closes narrow gaps", lambda: self.morphology("close"))
        self.smooth_button = button("Smooth", "Smooth the outline (Gaussian, sigma = radius)",
                                    lambda: self.morphology("smooth"))

        def row(*widgets) -> QtWidgets.QHBoxLayout:
            box = QtWidgets.QHBoxLayout()
            for widget in widgets:
                box.addWidget(widget)
            return box

        grid = QtWidgets.QGridLayout(w)  # two columns: the dock is often narrow
        grid.addLayout(row(QtWidgets.QLabel("Scope"), self.isl_scope), 0, 0, 1, 2)
        islands = QtWidgets.QLabel("Islands of the current label")
        islands.setObjectName("hint")
        islands.setWordWrap(True)
        grid.addWidget(islands, 1, 0, 1, 2)
        grid.addWidget(self.keep_largest_button, 2, 0)
        grid.addWidget(self.split_button, 2, 1)
        grid.addLayout(row(QtWidgets.QLabel("Min"), self.min_size_spin, self.min_units), 3, 0)
        grid.addWidget(self.remove_small_button, 3, 1)
        grid.addWidget(self.pick_mode, 4, 0)
        grid.addWidget(self.pick_button, 4, 1)
        morph = QtWidgets.QLabel("Morphology of the current label")
        morph.setObjectName("hint")
        morph.setWordWrap(True)
        grid.addWidget(morph, 5, 0, 1, 2)
        grid.addWidget(self.fill_holes_button, 6, 0)
        grid.addWidget(self.smooth_button, 6, 1)
        grid.addLayout(row(QtWidgets.QLabel("Radius"), self.radius_spin, self.radius_units), 7, 0, 1, 2)
        grid.addWidget(self.dilate_button, 8, 0)
        grid.addWidget(self.erode_button, 8, 1)
        grid.addWidget(self.open_button, 9, 0)
        grid.addWidget(self.close_button, 9, 1)
        return w

    def _update_units(self) -> None:
        image = self.document.image
        stack = self.isl_scope.currentData() == "stack"
        self.min_units.clear()
        self.min_units.addItem("voxels" if stack else "px", "px")
        if known_spacing(image) is not None:
            self.min_units.addItem("mm³" if stack else "mm²", "mm")

    # ==============================================================================================
    # islands and morphology
    # ==============================================================================================
    def _current_mask(self, stack: bool) -> np.ndarray | None:
        labels = self._labels
        if labels is None or self.document.image is None:
            return None
        value = self.options.label
        mask = labels.data == value if stack else labels.data[self._mw.view_state.slice_index] == value
        if not mask.any():
            where = "in the stack" if stack else "on this slice"
            self._message(f"label {value} has no pixels {where}", error=True)
            return None
        return mask

    def _mask_operation(self, name: str, fn: Callable[[np.ndarray], np.ndarray]) -> None:
        """Replace the current label by ``fn(label mask)`` on the slice or the stack (one undo step)."""
        stack = self.isl_scope.currentData() == "stack"
        mask = self._current_mask(stack)
        if mask is None:
            return
        if not stack:
            z = self._mw.view_state.slice_index
            try:
                new = fn(mask)
            except WorkbenchError as exc:
                self._message(str(exc), error=True)
                return
            self._write_plane_result(z, new, name, roi=mask)
            return

        def done(new: np.ndarray) -> None:
            self._write_volume_result(new, name, roi=self._labels.data == self.options.label)

        self._start_job(lambda _p, _c: fn(mask), done, name)

    def _conn(self, stack: bool) -> int:
        return 26 if stack else 8

    def keep_largest(self) -> None:
        stack = self.isl_scope.currentData() == "stack"
        self._mask_operation("Keep largest island", lambda m: keep_largest(m, connectivity=self._conn(stack)))

    def remove_small(self) -> None:
        stack = self.isl_scope.currentData() == "stack"
        n = self.min_size_spin.value()
        spacing = known_spacing(self.document.image)
        conn = self._conn(stack)
        if self.min_units.currentData() == "mm":
            key = "min_volume_mm3" if stack else "min_area_mm2"
            kwargs = {key: n, "spacing": spacing if stack else spacing[1:]}
        else:
            kwargs = {"min_size": n}
        self._mask_operation("Remove small islands", lambda m: remove_small(m, connectivity=conn, **kwargs))

    def split_islands(self) -> None:
        """Give every island of the current label its own label (the first keeps the current value)."""
        stack = self.isl_scope.currentData() == "stack"
        mask = self._current_mask(stack)
        labels = self._labels
        if mask is None or labels is None:
            return
        comp, n = label_components(mask, connectivity=self._conn(stack))
        if n <= 1:
            self._message("the current label is a single island")
            return
        try:
            split_label(labels, self.options.label, comp, n,
                        z=None if stack else self._mw.view_state.slice_index)
        except WorkbenchError as exc:
            self._message(str(exc), error=True)
            return
        self._message(f"label {self.options.label} split into {n} labels")

    def _on_pick_click(self, z: int, row: float, col: float, _modifiers) -> None:
        stack = self.isl_scope.currentData() == "stack"
        point = (z, row, col) if stack else (row, col)
        keep = self.pick_mode.currentData() == "keep"
        labels = self._labels
        if labels is None:
            return
        ri, ci = int(np.floor(row + 0.5)), int(np.floor(col + 0.5))
        if labels.data[z, ri, ci] != self.options.label:
            self._message(f"no island of label {self.options.label} under the click", error=True)
            return

        def fn(m: np.ndarray) -> np.ndarray:
            picked = pick(m, point, connectivity=self._conn(stack))
            return picked if keep else (m & ~picked)

        self._mask_operation("Keep picked island" if keep else "Remove picked island", fn)

    def fill_holes(self) -> None:
        self._mask_operation("Fill holes", lambda m: fill_holes(m))

    def morphology(self, op: str) -> None:
        """dilate | erode | open | close | smooth the current label by the radius."""
        radius = self.radius_spin.value()
        units = str(self.radius_units.currentData())
        spacing = known_spacing(self.document.image)
        stack = self.isl_scope.currentData() == "stack"
        if not stack and spacing is not None:
            spacing = spacing[1:]
        fns = {"dilate": dilate, "erode": erode, "open": opening, "close": closing, "smooth": smooth}
        fn = fns[op]
        self._mask_operation(f"{op.capitalize()} {radius:g} {units}",
                             lambda m: fn(m, radius, units=units, spacing=spacing))
