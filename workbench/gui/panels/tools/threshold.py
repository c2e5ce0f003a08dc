"""The Threshold tab of the Tools dock: a range (spins, histogram region, automatic methods), its preview
and applying it to the label map.
"""
from __future__ import annotations

import numpy as np

from ....core.errors import WorkbenchError
from ....processing import histogram, multiotsu_values, otsu_cv2, threshold_range, threshold_value
from ...qt import QtWidgets, pg
from ...tools.editing import scalar_volume
from ..base import histogram_items, value_spin

# (label, processing method) of the automatic thresholds; "cv2-otsu" is OpenCV's Otsu on the exact
# 8/16-bit histogram
AUTO_METHODS = [("Otsu", "otsu"), ("Multi-Otsu (3 classes, brightest)", "multiotsu"), ("Li", "li"),
                ("Yen", "yen"), ("Triangle", "triangle"), ("Mean", "mean"), ("Isodata", "isodata"),
                ("OpenCV Otsu (8/16-bit)", "cv2-otsu")]


def _above(t: float, dtype: np.dtype) -> float:
    """The smallest value strictly above ``t`` in the image's type (automatic thresholds: foreground > t)."""
    if np.issubdtype(dtype, np.integer) or np.dtype(dtype) == np.bool_:
        return float(np.floor(t) + 1)
    return float(np.nextafter(np.float64(t), np.inf))


class ThresholdSection:
    """The Threshold tab of :class:`~.panel.ToolsPanel`."""

    def _build_threshold_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        self.hist_plot = pg.PlotWidget(background=None)
        self.hist_plot.setMenuEnabled(False)
        self.hist_plot.setMouseEnabled(x=False, y=False)
        self.hist_plot.hideButtons()
        self.hist_plot.getAxis("left").setStyle(showValues=False)
        self.hist_plot.getAxis("left").setWidth(6)
        self.hist_plot.setMinimumHeight(110)
        self.hist_curve, self.range_region = histogram_items(region_alpha=50)
        self.hist_plot.addItem(self.hist_curve)
        self.range_region.setToolTip("Drag the range or its edges")
        self.range_region.sigRegionChanged.connect(self._on_range_region)
        self.hist_plot.addItem(self.range_region)

        self.th_lo = value_spin("Lowest value inside the threshold (inclusive)")
        self.th_hi = value_spin("Highest value inside the threshold (inclusive)")
        self.th_lo.valueChanged.connect(self._on_range_spins)
        self.th_hi.valueChanged.connect(self._on_range_spins)
        self.method_combo = QtWidgets.QComboBox()
        for text, method in AUTO_METHODS:
            self.method_combo.addItem(text, method)
        self.method_combo.setToolTip("Automatic threshold (computed over the scope below, inside the label "
                                     "when 'inside the current label' is on); fills the range")
        self.auto_button = QtWidgets.QPushButton("Auto")
        self.auto_button.setToolTip("Compute the automatic threshold and set the range to everything above it")
        self.auto_button.clicked.connect(self.auto_threshold)
        self.th_scope = QtWidgets.QComboBox()
        self.th_scope.addItem("This slice", "slice")
        self.th_scope.addItem("Whole stack", "stack")
        self.th_scope.setToolTip("Apply to the shown slice or to every slice")
        self.th_roi_check = QtWidgets.QCheckBox("Inside the current label")
        self.th_roi_check.setToolTip("Restrict to the current label: Apply keeps the label's pixels in the "
                                     "range and clears the others")
        self.th_roi_check.toggled.connect(lambda _v: self._refresh_preview())
        self.th_preview_check = QtWidgets.QCheckBox("Live preview")
        self.th_preview_check.setChecked(True)
        self.th_preview_check.toggled.connect(lambda _v: self._refresh_preview())
        self.th_apply = QtWidgets.QPushButton("Apply threshold")
        self.th_apply.setToolTip("Write the range into the current label (one undo step)")
        self.th_apply.clicked.connect(self.apply_threshold)

        grid = QtWidgets.QGridLayout(w)
        grid.addWidget(self.hist_plot, 0, 0, 1, 3)
        grid.addWidget(QtWidgets.QLabel("Range"), 1, 0)
        grid.addWidget(self.th_lo, 1, 1)
        grid.addWidget(self.th_hi, 1, 2)
        grid.addWidget(self.method_combo, 2, 0, 1, 2)
        grid.addWidget(self.auto_button, 2, 2)
        grid.addWidget(QtWidgets.QLabel("Scope"), 3, 0)
        grid.addWidget(self.th_scope, 3, 1, 1, 2)
        grid.addWidget(self.th_roi_check, 4, 0, 1, 3)
        grid.addWidget(self.th_preview_check, 5, 0, 1, 2)
        grid.addWidget(self.th_apply, 5, 2)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(2, 1)
        return w

    # ==============================================================================================
    # threshold
    # ==============================================================================================
    def _set_range(self, lo: float, hi: float) -> None:
        lo, hi = sorted((float(lo), float(hi)))
        self._set_spins(((self.th_lo, lo), (self.th_hi, hi)))
        self.range_region.blockSignals(True)
        self.range_region.setRegion((lo, hi))
        self.range_region.blockSignals(False)

    def set_threshold_range(self, lo: float, hi: float) -> None:
        """Set the threshold range (as the spins/region do) and refresh the preview."""
        self._set_range(lo, hi)
        self._refresh_preview()

    @property
    def threshold_range(self) -> tuple[float, float]:
        return tuple(sorted((self.th_lo.value(), self.th_hi.value())))  # type: ignore[return-value]

    def _on_range_region(self) -> None:
        lo, hi = self.range_region.getRegion()
        self._set_spins(((self.th_lo, lo), (self.th_hi, hi)))
        self._refresh_preview()

    def _on_range_spins(self, _v: float) -> None:
        self.set_threshold_range(self.th_lo.value(), self.th_hi.value())

    def _update_histogram(self) -> None:
        image = self.document.image
        if image is None:
            self.hist_curve.setData([0, 1], [0])
            return
        plane = scalar_volume(image)[self._mw.view_state.slice_index]
        try:
            hist = histogram(plane, bins=256)
        except WorkbenchError:
            self.hist_curve.setData([0, 1], [0])
            return
        # log counts: a background peak would otherwise flatten everything else
        self.hist_curve.setData(hist.edges, np.log1p(hist.counts))
        lo, hi = float(hist.edges[0]), float(hist.edges[-1])
        self.hist_plot.setXRange(lo, hi, padding=0.02)

    def _roi(self, z: int | None) -> np.ndarray | None:
        """The current label as a mask of slice ``z`` (or the stack when ``z`` is None), if the ROI is on."""
        if not self.th_roi_check.isChecked() or self._labels is None:
            return None
        data = self._labels.data
        return data[z] == self.options.label if z is not None else data == self.options.label

    def _threshold_plane(self, z: int) -> np.ndarray:
        lo, hi = self.threshold_range
        plane = scalar_volume(self.document.image)[z]
        return threshold_range(plane, lo, hi, mask=self._roi(z))

    def auto_threshold(self) -> None:
        """Fill the range with the chosen automatic method over the scope (and the ROI)."""
        image = self.document.image
        if image is None:
            return
        method = str(self.method_combo.currentData())
        stack = self.th_scope.currentData() == "stack" and image.n_slices > 1
        z = self._mw.view_state.slice_index
        data = scalar_volume(image)
        values = data if stack else data[z]
        roi = self._roi(None if stack else z)

        def compute(_progress=None, _cancelled=None) -> tuple[float, float]:
            if method == "cv2-otsu":
                src = values if roi is None else values[roi]
                t = otsu_cv2(src)
            elif method == "multiotsu":
                # 16-bit data is binned to 256 bins inside multiotsu_values (fast, no float copy)
                t = multiotsu_values(values, classes=3, mask=roi)[-1]
            else:
                t = threshold_value(values, method=method, mask=roi)
            src = values if roi is None else values[roi]
            top = float(np.nanmax(src)) if src.size else t
            return _above(t, values.dtype), max(top, _above(t, values.dtype))

        def done(result) -> None:
            lo, hi = result
            self.set_threshold_range(lo, hi)
            self._message(f"{self.method_combo.currentText()}: range {lo:g} .. {hi:g}")

        # in the background even on one slice: some methods take a second on a large 16-bit slice
        self._start_job(compute, done, "Computing the threshold")

    def apply_threshold(self) -> None:
        """Write the thresholded pixels into the current label (one undo step)."""
        image = self.document.image
        labels = self._labels
        if image is None or labels is None:
            return
        lo, hi = self.threshold_range
        value = self.options.label
        roi_on = self.th_roi_check.isChecked()
        if self.th_scope.currentData() == "slice":
            z = self._mw.view_state.slice_index
            mask = self._threshold_plane(z)
            self._write_plane_result(z, mask, "Threshold", roi=self._roi(z) if roi_on else None)
            return
        data = scalar_volume(image)
        label_data = labels.data.copy() if roi_on else None

        def compute(progress, cancelled) -> np.ndarray:
            out = np.zeros(labels.shape, dtype=bool)
            for z in range(labels.shape[0]):
                if cancelled():
                    return out
                roi = None if label_data is None else label_data[z] == value
                out[z] = threshold_range(data[z], lo, hi, mask=roi)
                progress(z + 1, labels.shape[0])
            return out

        def done(mask: np.ndarray) -> None:
            roi = (labels.data == value) if roi_on else None
            self._write_volume_result(mask, "Threshold (stack)", roi=roi)

        self._start_job(compute, done, "Thresholding the stack")
