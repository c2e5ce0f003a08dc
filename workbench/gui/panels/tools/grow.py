"""The Grow tab of the Tools dock: region growing from a clicked seed or from the current label, its live
preview and applying it.
"""
from __future__ import annotations

import numpy as np

from ....core.errors import WorkbenchError
from ....processing import RegionGrowPreview, confidence_connected, region_grow
from ...qt import Qt, QtWidgets
from ...tools.editing import scalar_volume
from ..base import value_spin
from .common import SLIDER_STEPS, TAB_GROW


class GrowSection:
    """The Grow tab of :class:`~.panel.ToolsPanel`."""

    def _build_grow_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        self.grow_mode = QtWidgets.QComboBox()
        self.grow_mode.addItem("Seed ± tolerance", "relative")
        self.grow_mode.addItem("Absolute range", "absolute")
        self.grow_mode.addItem("Confidence connected", "confidence")
        self.grow_mode.setToolTip("Seed-relative: value(seed) ± tolerance; absolute: lo..hi; confidence "
                                  "connected: mean ± k·std of the region, re-estimated")
        self.grow_mode.currentIndexChanged.connect(self._on_grow_mode)
        self.tol_slider = QtWidgets.QSlider(Qt.Orientation.Horizontal)
        self.tol_slider.setRange(0, SLIDER_STEPS)
        self.tol_slider.setToolTip("Tolerance (live preview)")
        self.tol_slider.valueChanged.connect(self._on_tol_slider)
        self.tol_spin = value_spin("Tolerance in intensity units")
        self.tol_spin.setMinimum(0.0)
        self.tol_spin.valueChanged.connect(self._on_tol_spin)
        self.grow_lo = value_spin("Absolute range: lowest value")
        self.grow_hi = value_spin("Absolute range: highest value")
        self.grow_lo.valueChanged.connect(lambda _v: self._refresh_preview())
        self.grow_hi.valueChanged.connect(lambda _v: self._refresh_preview())
        self.conf_k = QtWidgets.QDoubleSpinBox()
        self.conf_k.setRange(0.1, 10.0)
        self.conf_k.setSingleStep(0.1)
        self.conf_k.setValue(2.5)
        self.conf_k.setToolTip("k of mean ± k·std")
        self.conf_k.valueChanged.connect(lambda _v: self._refresh_preview())
        self.conf_iter = QtWidgets.QSpinBox()
        self.conf_iter.setRange(0, 20)
        self.conf_iter.setValue(4)
        self.conf_iter.setToolTip("Re-estimations of mean and std")
        self.conf_iter.valueChanged.connect(lambda _v: self._refresh_preview())
        self.grow_scope = QtWidgets.QComboBox()
        self.grow_scope.addItem("This slice", "slice")
        self.grow_scope.addItem("Through the stack (3D)", "stack")
        self.grow_scope.setToolTip("Grow on the shown slice or through the stack (runs in the background; the "
                                   "preview shows the shown slice)")
        self.grow_scope.currentIndexChanged.connect(self._on_grow_scope)
        self.grow_conn = QtWidgets.QComboBox()
        self.grow_conn.setToolTip("Neighbourhood: 4/8 in the plane, 6/18/26 in 3D")
        self.grow_conn.currentIndexChanged.connect(lambda _i: self._reset_grow_cache())
        self.grow_label_button = QtWidgets.QPushButton("Grow from current label")
        self.grow_label_button.setToolTip("Use the current label as the seeds (e.g. grow the AI mask)")
        self.grow_label_button.clicked.connect(self.grow_from_label)
        self.grow_apply = QtWidgets.QPushButton("Apply")
        self.grow_apply.setToolTip("Write the grown region into the current label (one undo step)")
        self.grow_apply.clicked.connect(self.apply_grow)
        self.grow_cancel = QtWidgets.QPushButton("Clear")
        self.grow_cancel.setToolTip("Forget the seed and hide the preview (Esc)")
        self.grow_cancel.clicked.connect(self.clear_seed)

        grid = QtWidgets.QGridLayout(w)
        grid.addWidget(QtWidgets.QLabel("Mode"), 0, 0)
        grid.addWidget(self.grow_mode, 0, 1, 1, 2)
        self.tol_label = QtWidgets.QLabel("Tolerance")
        grid.addWidget(self.tol_label, 1, 0)
        grid.addWidget(self.tol_slider, 1, 1)
        grid.addWidget(self.tol_spin, 1, 2)
        self.range_label = QtWidgets.QLabel("lo / hi")
        grid.addWidget(self.range_label, 2, 0)
        grid.addWidget(self.grow_lo, 2, 1)
        grid.addWidget(self.grow_hi, 2, 2)
        self.conf_label = QtWidgets.QLabel("k / iterations")
        grid.addWidget(self.conf_label, 3, 0)
        grid.addWidget(self.conf_k, 3, 1)
        grid.addWidget(self.conf_iter, 3, 2)
        grid.addWidget(QtWidgets.QLabel("Scope"), 4, 0)
        grid.addWidget(self.grow_scope, 4, 1)
        grid.addWidget(self.grow_conn, 4, 2)
        grid.addWidget(self.grow_label_button, 5, 0, 1, 3)
        grid.addWidget(self.grow_cancel, 6, 1)
        grid.addWidget(self.grow_apply, 6, 2)
        self.grow_info = QtWidgets.QLabel("Click the image to place a seed.")
        self.grow_info.setObjectName("hint")
        self.grow_info.setWordWrap(True)
        grid.addWidget(self.grow_info, 7, 0, 1, 3)
        grid.setColumnStretch(1, 1)
        self._on_grow_scope()
        self._on_grow_mode()
        return w

    # ==============================================================================================
    # region grow
    # ==============================================================================================
    def _on_grow_mode(self, *_args) -> None:
        mode = self.grow_mode.currentData()
        for widget in (self.tol_label, self.tol_slider, self.tol_spin):
            widget.setVisible(mode == "relative")
        for widget in (self.range_label, self.grow_lo, self.grow_hi):
            widget.setVisible(mode == "absolute")
        for widget in (self.conf_label, self.conf_k, self.conf_iter):
            widget.setVisible(mode == "confidence")
        self._reset_grow_cache()

    def _on_grow_scope(self, *_args) -> None:
        stack = self.grow_scope.currentData() == "stack"
        self.grow_conn.blockSignals(True)
        self.grow_conn.clear()
        for conn in ((6, 18, 26) if stack else (8, 4)):
            self.grow_conn.addItem(f"{conn}-connected", conn)
        self.grow_conn.blockSignals(False)
        self._reset_grow_cache()

    def _reset_grow_cache(self) -> None:
        self._grow_preview = None
        self._refresh_preview()

    def _set_tolerance(self, tol: float) -> None:
        span = getattr(self, "_tol_span", 1.0)
        self.tol_spin.blockSignals(True)
        self.tol_spin.setMaximum(span)
        self.tol_spin.setValue(tol)
        self.tol_spin.blockSignals(False)
        self.tol_slider.blockSignals(True)
        self.tol_slider.setValue(int(round(tol / span * SLIDER_STEPS)) if span > 0 else 0)
        self.tol_slider.blockSignals(False)

    def _on_tol_slider(self, position: int) -> None:
        span = getattr(self, "_tol_span", 1.0)
        tol = position / SLIDER_STEPS * span
        self.tol_spin.blockSignals(True)
        self.tol_spin.setValue(tol)
        self.tol_spin.blockSignals(False)
        self._refresh_preview()

    def _on_tol_spin(self, value: float) -> None:
        self._set_tolerance(value)
        self._refresh_preview()

    @property
    def tolerance(self) -> float:
        return float(self.tol_spin.value())

    def set_tolerance(self, tol: float) -> None:
        self._set_tolerance(tol)
        self._refresh_preview()

    def _on_grow_click(self, z: int, row: float, col: float, _modifiers) -> None:
        self._seed = (int(z), int(np.floor(row + 0.5)), int(np.floor(col + 0.5)))
        self._grow_from_label = False
        self._grow_preview = None
        self.raise_dock()
        if self.tabs.currentIndex() != TAB_GROW:
            self.tabs.setCurrentIndex(TAB_GROW)
        self._refresh_preview()

    def grow_from_label(self) -> None:
        """Use the current label as the seed (live preview on the shown slice; Apply grows it)."""
        if self._labels is None:
            return
        if not (self._labels.data == self.options.label).any():
            self._message(f"label {self.options.label} has no pixels to grow from", error=True)
            return
        self._seed = None
        self._grow_from_label = True
        self._grow_preview = None
        if self.tabs.currentIndex() != TAB_GROW:
            self.tabs.setCurrentIndex(TAB_GROW)
        self._refresh_preview()

    def clear_seed(self) -> None:
        self._seed = None
        self._grow_from_label = False
        self._grow_preview = None
        self._refresh_preview()
        self.grow_info.setText("Click the image to place a seed.")

    def _grow_args(self) -> dict:
        mode = self.grow_mode.currentData()
        if mode == "relative":
            return {"tolerance": self.tolerance}
        lo, hi = sorted((self.grow_lo.value(), self.grow_hi.value()))
        return {"lo": lo, "hi": hi}

    def _grow_plane(self, z: int) -> tuple[np.ndarray | None, tuple[slice, slice] | None]:
        """The region of the shown slice ``z`` for the current seed and settings (the preview)."""
        image = self.document.image
        plane = scalar_volume(image)[z]
        mode = self.grow_mode.currentData()
        conn = int(self.grow_conn.currentData())
        conn2d = conn if conn in (4, 8) else (4 if conn == 6 else 8)
        if self._grow_from_label:
            seeds = self._labels.data[z] == self.options.label
            if not seeds.any():
                return None, None
            if mode == "confidence":
                return confidence_connected(plane, seeds, multiplier=self.conf_k.value(),
                                            iterations=self.conf_iter.value(), connectivity=conn2d), None
            return region_grow(plane, seeds, connectivity=conn2d, **self._grow_args()), None
        if self._seed is None:
            return None, None
        sz, row, col = self._seed
        if sz != z and self.grow_scope.currentData() == "slice":
            return None, None
        seed = (row, col)
        if sz != z:
            # through the stack, another slice: the seed's own pixel may not be there; the preview of 3D
            # growth is computed on Apply, here only the seed's slice is previewed
            return None, None
        if mode == "relative":
            # the preview object keeps |image - seed| so a slider step is one threshold + one flood fill
            if self._grow_preview is None:
                self._grow_preview = RegionGrowPreview(plane, seed, connectivity=conn2d)
            mask = self._grow_preview.update(self.tolerance)
            return mask, self._grow_preview.last_bbox
        if mode == "absolute":
            return region_grow(plane, [seed], connectivity=conn2d, **self._grow_args()), None
        return confidence_connected(plane, [seed], multiplier=self.conf_k.value(),
                                    iterations=self.conf_iter.value(), connectivity=conn2d), None

    def _update_grow_info(self, mask: np.ndarray | None) -> None:
        image = self.document.image
        if image is None:
            return
        area = int(self._grow_preview.last_area) if (self._grow_preview is not None and self._seed) else (
            int(np.count_nonzero(mask)) if mask is not None else 0)
        if self._grow_from_label:
            where = f"from label {self.options.label}"
        elif self._seed is not None:
            z, row, col = self._seed
            value = scalar_volume(image)[z, row, col]
            where = f"seed x {col} y {row}" + (f" z {z}" if image.n_slices > 1 else "") + f", value {value:g}"
        else:
            where = ""
        self.grow_info.setText(f"{where} — {area} px on this slice")

    def apply_grow(self) -> None:
        """Write the grown region into the current label (one undo step; the stack grows in a worker)."""
        image, labels = self.document.image, self._labels
        if image is None or labels is None or (self._seed is None and not self._grow_from_label):
            self._message("Click the image to place a seed first", error=True)
            return
        if self.grow_scope.currentData() == "slice":
            z = self._seed[0] if self._seed is not None else self._mw.view_state.slice_index
            try:
                mask, _ = self._grow_plane(z)
            except WorkbenchError as exc:
                self._message(str(exc), error=True)
                return
            if mask is None:
                self._message("nothing to grow on this slice", error=True)
                return
            self._write_plane_result(z, mask, "Region grow")
            self.clear_seed()
            return
        data = scalar_volume(image)
        conn = int(self.grow_conn.currentData())
        mode = self.grow_mode.currentData()
        args = self._grow_args()
        k, iterations = self.conf_k.value(), self.conf_iter.value()
        seeds = (labels.data == self.options.label) if self._grow_from_label else [self._seed]

        def compute(_progress, cancelled) -> np.ndarray:
            if mode == "confidence":
                return confidence_connected(data, seeds, multiplier=k, iterations=iterations, connectivity=conn)
            return region_grow(data, seeds, connectivity=conn, **args)

        def done(mask: np.ndarray) -> None:
            self._write_volume_result(mask, "Region grow (3D)")
            self.clear_seed()

        self._start_job(compute, done, "Growing through the stack")
