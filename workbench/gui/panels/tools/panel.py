"""The Tools dock (:class:`ToolsPanel`): its layout, rebinding to a new image, the shared preview, the
background jobs, and the writes of results into the label map. Each tab is a mixin of its own module.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ....core.edits import write_mask
from ....core.errors import WorkbenchError
from ....core.labels import LabelMap
from ....processing import RegionGrowPreview
from ...qt import Qt, QtGui, QtWidgets
from ...tools.brush import BrushTool
from ...tools.click import ClickTool
from ...tools.editing import PaintOptions, known_spacing, scalar_volume
from ...tools.polygon import PolygonTool
from ...tools.preview import MaskPreviewItem
from ...workers import BackgroundJob
from ..base import make_dock
from .ai_click import AIClickSection
from .common import TAB_AI, TAB_GROW, TAB_PAINT, TAB_THRESHOLD
from .grow import GrowSection
from .islands import IslandsSection
from .paint import PaintSection
from .threshold import ThresholdSection


class ToolsPanel(PaintSection, ThresholdSection, GrowSection, IslandsSection, QtWidgets.QWidget):
    """The Tools dock's widget (see the module docstring)."""

    def __init__(self, main_window) -> None:
        super().__init__(main_window)
        self._mw = main_window
        self._labels: LabelMap | None = None
        self._generation = 0  # bumped by every label edit: stale background results are discarded
        self._job: BackgroundJob | None = None
        self._seed: tuple[int, int, int] | None = None  # (z, row, col) of the region-grow click
        self._grow_from_label = False
        self._grow_preview: RegionGrowPreview | None = None
        self._preview_shown: str | None = None  # "threshold" | "grow" | None
        self.last_message = ""

        self.options = PaintOptions(label=main_window.view_state.active_label)
        self.brush = BrushTool(self.options)
        self.eraser = BrushTool(self.options, erase=True)
        self.polygon = PolygonTool(self.options)
        self.grow_tool = ClickTool("region grow", self.options, self._on_grow_click)
        self.pick_tool = ClickTool("pick island", self.options, self._on_pick_click)

        canvas = main_window.canvas
        self.preview = MaskPreviewItem()
        canvas.add_overlay_item(self.preview, 6)  # above labels (2) and detections (3), below tool previews

        self.ai_section = AIClickSection(self)  # the AI click tool (A): panels/tools/ai_click.py
        self.ai_click = self.ai_section.controller
        self._build_tool_row()
        self._build_label_row()
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.addTab(self._build_paint_tab(), "Paint")
        self.tabs.addTab(self._build_threshold_tab(), "Threshold")
        self.tabs.addTab(self._build_grow_tab(), "Grow")
        self.tabs.addTab(self._build_islands_tab(), "Islands")
        self.tabs.addTab(self.ai_section.widget, "AI click")
        self.tabs.currentChanged.connect(self._on_tab)

        self.progress = QtWidgets.QProgressBar()
        self.progress.setMaximumHeight(14)
        self.progress.hide()
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running operation (its result is discarded)")
        self.cancel_button.clicked.connect(self.cancel_job)
        self.cancel_button.hide()
        self.status = QtWidgets.QLabel()
        self.status.setObjectName("hint")
        self.status.setWordWrap(True)
        busy = QtWidgets.QHBoxLayout()
        busy.addWidget(self.progress, 1)
        busy.addWidget(self.cancel_button)

        inner = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(inner)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(self.tool_row)
        layout.addLayout(self.label_form)
        layout.addWidget(self.tabs)
        layout.addLayout(busy)
        layout.addWidget(self.status)
        layout.addStretch(1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        # the dock is often narrow (tabbed at the right): wrap to its width instead of scrolling sideways
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        for combo in inner.findChildren(QtWidgets.QComboBox):
            combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(6)
        for combo in (self.units_combo, self.radius_units, self.min_units):
            combo.setMinimumContentsLength(3)
        for spin in inner.findChildren(QtWidgets.QAbstractSpinBox):
            spin.setMinimumWidth(60)
            spin.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setWidget(inner)
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        self._build_shortcuts()
        state = main_window.view_state
        state.reloaded.connect(self.rebind)
        state.slice_changed.connect(self._on_slice_changed)
        state.active_label_changed.connect(self._on_active_label_changed)
        self.rebind()

    # ==============================================================================================
    # binding
    # ==============================================================================================
    @property
    def document(self):
        return self._mw.document

    @property
    def canvas(self):
        return self._mw.canvas

    def rebind(self) -> None:
        """A new image (and label map) was opened: reconnect and reset the per-image state."""
        labels = self.document.labels
        if self._labels is not None and self._labels is not labels:
            self._labels.labels_changed.disconnect(self._refresh_label_combos)
            self._labels.data_changed.disconnect(self._on_data_changed)
        if labels is not None and labels is not self._labels:
            labels.labels_changed.connect(self._refresh_label_combos)
            labels.data_changed.connect(self._on_data_changed)
        self._labels = labels
        self.cancel_job()
        self._seed = None
        self._grow_from_label = False
        self._grow_preview = None
        self.preview.clear()
        self._preview_shown = None
        image = self.document.image
        self.setEnabled(image is not None)
        if image is not None:
            scalar = scalar_volume(image)
            # the tools work on the scalar image: colour becomes float luma, so its ranges need decimals
            integer = np.issubdtype(scalar.dtype, np.integer)
            if image.is_color:
                finite = scalar[np.isfinite(scalar)]
                lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            else:
                lo, hi = image.value_range()
            decimals = 0 if integer else 4
            span = max(hi - lo, 1.0 if integer else 1e-6)
            for spin in (self.gate_lo, self.gate_hi, self.th_lo, self.th_hi, self.grow_lo, self.grow_hi,
                         self.tol_spin):
                spin.blockSignals(True)
                spin.setDecimals(decimals)
                spin.setSingleStep(1.0 if integer else span / 100)
                spin.blockSignals(False)
            self._set_spins(((self.gate_lo, lo), (self.gate_hi, hi), (self.grow_lo, lo), (self.grow_hi, hi)))
            self.options.lo, self.options.hi = lo, hi
            self._tol_span = span
            mid = lo + 0.5 * (hi - lo)
            self._set_range(mid, hi)
            self._set_tolerance(span * 0.1)
            spacing = known_spacing(image)
            self.units_combo.model().item(1).setEnabled(spacing is not None)
            self.radius_units.model().item(1).setEnabled(spacing is not None)
            if spacing is None:
                self.units_combo.setCurrentIndex(0)
                self.radius_units.setCurrentIndex(0)
            self.sphere_check.setEnabled(image.n_slices > 1)
            for combo in (self.th_scope, self.grow_scope, self.isl_scope):
                combo.model().item(1).setEnabled(image.n_slices > 1)
                if image.n_slices == 1:
                    combo.setCurrentIndex(0)
        self._update_units()
        self._refresh_label_combos()
        self._update_histogram()
        self._refresh_preview()

    def _on_slice_changed(self, _z: int) -> None:
        self._update_histogram()
        self._refresh_preview()

    def _set_spins(self, pairs) -> None:
        for spin, value in pairs:
            spin.blockSignals(True)
            spin.setValue(float(value))
            spin.blockSignals(False)

    def _on_data_changed(self, _bbox) -> None:
        self._generation += 1
        if self._grow_from_label or (self._preview_shown == "threshold" and self.th_roi_check.isChecked()):
            self._refresh_preview()

    def _on_tab(self, index: int) -> None:
        if index == TAB_GROW and self.canvas.tool is not self.grow_tool:
            self.activate_tool("grow")
        elif index == TAB_AI and self.canvas.tool is not self.ai_click.tool:
            self.activate_tool("ai")
        elif index == TAB_PAINT and self.active_tool_key in ("grow", "pick"):
            self.activate_tool("brush")
        self._refresh_preview()

    # ==============================================================================================
    # previews
    # ==============================================================================================
    def _refresh_preview(self) -> None:
        """Show the preview the visible tab asks for, on the shown slice (or hide it)."""
        image = self.document.image if self.isVisible() else None  # no preview without its controls
        tab = self.tabs.currentIndex()
        mask = box = None
        shown = None
        try:
            if image is not None and tab == TAB_THRESHOLD and self.th_preview_check.isChecked():
                mask = self._threshold_plane(self._mw.view_state.slice_index)
                shown = "threshold"
            elif image is not None and tab == TAB_GROW and (self._seed is not None or self._grow_from_label):
                mask, box = self._grow_plane(self._mw.view_state.slice_index)
                shown = "grow"
        except WorkbenchError as exc:
            self._message(str(exc))
            mask = None
        self._preview_shown = shown if mask is not None else None
        self.preview.set_mask(mask, box)
        if shown == "grow":
            self._update_grow_info(mask)

    def showEvent(self, event: QtGui.QShowEvent) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        self._refresh_preview()

    def hideEvent(self, event: QtGui.QHideEvent) -> None:  # noqa: N802 (Qt API)
        super().hideEvent(event)
        self._refresh_preview()

    @property
    def preview_mask(self) -> np.ndarray | None:
        """The previewed pixels of the shown slice (tests), or ``None`` when no preview is shown."""
        if self._preview_shown is None:
            return None
        return self.preview.buffer != 0

    # ==============================================================================================
    # writing results (one undo step each)
    # ==============================================================================================
    def _write_plane_result(self, z: int, new: np.ndarray, name: str, roi: np.ndarray | None = None) -> None:
        """Paint ``new`` (a plane mask) with the current label; inside ``roi`` also clear what ``new`` drops."""
        if self._labels is None:
            return
        value, overwrite, selected = self.options.paint_rule(False)
        count = write_mask(self._labels, new, name=f"{name} (label {value})", value=value, overwrite=overwrite,
                           selected=selected, z=z, roi=roi)
        self._message(f"{name}: label {value} now has {count} px on this slice")

    def _write_volume_result(self, new: np.ndarray, name: str, roi: np.ndarray | None = None) -> None:
        if self._labels is None:
            return
        value, overwrite, selected = self.options.paint_rule(False)
        count = write_mask(self._labels, new, name=f"{name} (label {value})", value=value, overwrite=overwrite,
                           selected=selected, roi=roi)
        self._message(f"{name}: label {value} now has {count} voxels")

    # ==============================================================================================
    # background jobs
    # ==============================================================================================
    @property
    def is_busy(self) -> bool:
        return self._job is not None

    def _start_job(self, fn, on_done: Callable[[object], None], what: str) -> None:
        if self._job is not None:
            self._message("another operation is still running", error=True)
            return
        labels, generation = self._labels, self._generation
        job = None

        def finished(result) -> None:
            if self._job is not job:
                return
            self._end_job()
            if job.is_cancelled:
                self._message(f"{what}: cancelled")
            elif labels is not self._labels or (generation != self._generation):
                self._message(f"{what}: the labels changed while it ran; result discarded, try again",
                              error=True)
            else:
                try:
                    on_done(result)
                except WorkbenchError as exc:
                    self._message(str(exc), error=True)

        def failed(message: str) -> None:
            if self._job is not job:
                return
            self._end_job()
            self._message(f"{what}: {message}", error=True)

        def progressed(done: int, total: int) -> None:
            if self._job is job and total > 0:
                self.progress.setRange(0, total)
                self.progress.setValue(done)

        job = BackgroundJob(fn, context=self, on_finished=finished, on_failed=failed, on_progress=progressed)
        self._job = job
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self._set_ops_enabled(False)
        self._message(f"{what}…")
        job.start()

    def _end_job(self) -> None:
        self._job = None
        self.progress.hide()
        self.cancel_button.hide()
        self._set_ops_enabled(True)

    def cancel_job(self) -> None:
        """Stop waiting for the running operation; its result is discarded."""
        job = self._job
        if job is None:
            return
        job.cancel()
        self._end_job()
        self._message("cancelled")

    def _set_ops_enabled(self, enabled: bool) -> None:
        for b in (self.th_apply, self.auto_button, self.grow_apply, self.keep_largest_button, self.split_button,
                  self.remove_small_button, self.fill_holes_button, self.dilate_button, self.erode_button,
                  self.open_button, self.close_button, self.smooth_button):
            b.setEnabled(enabled)

    def _message(self, text: str, *, error: bool = False) -> None:
        self.last_message = text
        self.status.setText(text)
        if error:
            self._mw.show_status(text)
        else:
            self._mw.show_status(text, 4000)


def create_dock(main_window) -> QtWidgets.QDockWidget:
    """Registry factory (see :mod:`workbench.gui.panels`)."""
    panel = ToolsPanel(main_window)
    dock = make_dock(main_window, "Tools", "ToolsDock", panel, area="right")
    return dock


__all__ = ["ToolsPanel", "create_dock"]
