"""Tools dock: brush, eraser, polygon/lasso, threshold, region grow, islands and morphology.

The dock only binds widgets to :class:`~workbench.gui.editing_tools.PaintOptions` and to the document; the
work is done by the pure functions of :mod:`workbench.processing` and written through ``labels.edit`` so
every operation is one undo step. Operations on a whole stack run in a :class:`BackgroundJob` (house rule
5); their result is written only if the label map did not change meanwhile.

Keyboard: B brush, E eraser, P polygon/lasso, G region grow, Esc back to navigation (or cancel the polygon /
the grow preview), [ and ] brush size, Enter closes a polygon.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...core.errors import WorkbenchError
from ...core.labels import LabelMap
from ...processing import (RegionGrowPreview, closing, confidence_connected, dilate, erode, fill_holes,
                           histogram, keep_largest, label_components, multiotsu_values, opening, otsu_cv2,
                           pick, region_grow, remove_small, smooth, threshold_range, threshold_value)
from ..editing_tools import (PREVIEW_COLOR, BackgroundJob, BrushTool, ClickTool, MaskPreviewItem, PaintOptions,
                             PolygonTool, known_spacing, scalar_volume)
from ..qt import QtGui, QtWidgets, Qt, pg
from .base import make_dock, value_spin

TAB_PAINT, TAB_THRESHOLD, TAB_GROW, TAB_ISLANDS = range(4)
# (label, processing method) of the automatic thresholds; "cv2-otsu" is OpenCV's Otsu on the exact
# 8/16-bit histogram
AUTO_METHODS = [("Otsu", "otsu"), ("Multi-Otsu (3 classes, brightest)", "multiotsu"), ("Li", "li"),
                ("Yen", "yen"), ("Triangle", "triangle"), ("Mean", "mean"), ("Isodata", "isodata"),
                ("OpenCV Otsu (8/16-bit)", "cv2-otsu")]
SLIDER_STEPS = 1000
MAX_SPLIT_LABELS = 1000


def _swatch(color: str) -> QtGui.QIcon:
    pix = QtGui.QPixmap(14, 14)
    pix.fill(QtGui.QColor(color))
    return QtGui.QIcon(pix)


def _above(t: float, dtype: np.dtype) -> float:
    """The smallest value strictly above ``t`` in the image's type (automatic thresholds: foreground > t)."""
    if np.issubdtype(dtype, np.integer) or dtype == bool:
        return float(np.floor(t) + 1)
    return float(np.nextafter(np.float64(t), np.inf))


class ToolsPanel(QtWidgets.QWidget):
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
        self.preview.setZValue(6)  # above labels (2) and detections (3), below tool previews (10)
        canvas.view.vb.addItem(self.preview)

        self._build_tool_row()
        self._build_label_row()
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.addTab(self._build_paint_tab(), "Paint")
        self.tabs.addTab(self._build_threshold_tab(), "Threshold")
        self.tabs.addTab(self._build_grow_tab(), "Grow")
        self.tabs.addTab(self._build_islands_tab(), "Islands")
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
    # construction
    # ==============================================================================================
    def _build_tool_row(self) -> None:
        self.tool_group = QtWidgets.QButtonGroup(self)
        self.tool_group.setExclusive(True)
        self.tool_buttons: dict[str, QtWidgets.QToolButton] = {}
        self.tool_row = QtWidgets.QGridLayout()  # 3 x 2: the dock is often narrow (tabbed at the right)
        self.tool_row.setSpacing(3)
        for key, text, tip in (
                ("navigate", "Navigate", "Navigate: left drag pans (Esc)"),
                ("brush", "Brush", "Brush: paint the current label (B); [ and ] change the size"),
                ("eraser", "Eraser", "Eraser (E); [ and ] change the size"),
                ("polygon", "Polygon", "Polygon / lasso (P): click vertices, double-click or Enter closes; "
                                       "drag for a freehand lasso; Esc cancels"),
                ("grow", "Grow", "Region grow (G): click a seed, adjust the tolerance, Apply"),
                ("pick", "Pick", "Pick an island of the current label by clicking it (Islands tab)")):
            button = QtWidgets.QToolButton()
            button.setText(text)
            button.setToolTip(tip)
            button.setCheckable(True)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.clicked.connect(lambda _c=False, k=key: self.activate_tool(k))
            self.tool_group.addButton(button)
            button.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
            # the active tool must be obvious at a glance (Fusion barely shades a checked tool button)
            button.setStyleSheet("QToolButton:checked { background: palette(highlight); "
                                 "color: palette(highlighted-text); border-radius: 3px; }")
            self.tool_buttons[key] = button
            index = len(self.tool_buttons) - 1
            self.tool_row.addWidget(button, index // 3, index % 3)
        self.tool_buttons["navigate"].setChecked(True)

    def _build_label_row(self) -> None:
        self.label_combo = QtWidgets.QComboBox()
        self.label_combo.setToolTip("The label the tools paint with (value, name, colour)")
        self.label_combo.activated.connect(self._on_label_combo)
        self.new_label_button = QtWidgets.QPushButton("New")
        self.new_label_button.setToolTip("Add a label (next free value) and paint with it")
        self.new_label_button.clicked.connect(self.new_label)
        self.overwrite_combo = QtWidgets.QComboBox()
        for text, mode in (("any label", "any"), ("background only", "background"),
                           ("background + label…", "selected")):
            self.overwrite_combo.addItem(text, mode)
        self.overwrite_combo.setToolTip(
            "Which pixels painting may change: any label, only unlabelled pixels, or unlabelled pixels and one "
            "chosen label.\nThe eraser removes any label, only the current label, or only the chosen label.")
        self.overwrite_combo.currentIndexChanged.connect(self._on_overwrite)
        self.mask_label_combo = QtWidgets.QComboBox()
        self.mask_label_combo.setToolTip("The label the 'background + label' rule may overwrite")
        self.mask_label_combo.activated.connect(self._on_mask_label)
        self.mask_label_combo.setEnabled(False)

        self.label_form = QtWidgets.QGridLayout()
        self.label_form.addWidget(QtWidgets.QLabel("Label"), 0, 0)
        self.label_form.addWidget(self.label_combo, 0, 1)
        self.label_form.addWidget(self.new_label_button, 0, 2)
        self.label_form.addWidget(QtWidgets.QLabel("Paint over"), 1, 0)
        self.label_form.addWidget(self.overwrite_combo, 1, 1)
        self.label_form.addWidget(self.mask_label_combo, 1, 2)
        self.label_form.setColumnStretch(1, 1)

    def _build_paint_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        self.size_spin = QtWidgets.QDoubleSpinBox()
        self.size_spin.setRange(0.5, 1000.0)
        self.size_spin.setDecimals(1)
        self.size_spin.setValue(self.options.radius)
        self.size_spin.setToolTip("Brush radius ([ smaller, ] larger)")
        self.size_spin.valueChanged.connect(self._on_size)
        self.units_combo = QtWidgets.QComboBox()
        self.units_combo.addItem("px", "px")
        self.units_combo.addItem("mm", "mm")
        self.units_combo.setToolTip("Radius in pixels or in mm (mm needs the pixel spacing)")
        self.units_combo.currentIndexChanged.connect(self._on_units)
        self.sphere_check = QtWidgets.QCheckBox("3D sphere (stacks)")
        self.sphere_check.setToolTip("On a stack, the brush is a ball instead of a disc on the shown slice")
        self.sphere_check.toggled.connect(lambda v: setattr(self.options, "sphere", bool(v)))
        self.gate_check = QtWidgets.QCheckBox("Only where intensity is in")
        self.gate_check.setToolTip("Brush and eraser change only pixels with lo <= value <= hi")
        self.gate_check.toggled.connect(self._on_gate)
        self.gate_lo = value_spin("Lowest intensity the brush paints")
        self.gate_hi = value_spin("Highest intensity the brush paints")
        self.gate_lo.valueChanged.connect(self._on_gate)
        self.gate_hi.valueChanged.connect(self._on_gate)
        self.polygon_erase_check = QtWidgets.QCheckBox("Polygon / lasso erases")
        self.polygon_erase_check.setToolTip("The polygon and the lasso erase instead of filling")
        self.polygon_erase_check.toggled.connect(lambda v: setattr(self.options, "erase_polygon", bool(v)))

        grid = QtWidgets.QGridLayout(w)
        grid.addWidget(QtWidgets.QLabel("Radius"), 0, 0)
        grid.addWidget(self.size_spin, 0, 1)
        grid.addWidget(self.units_combo, 0, 2)
        grid.addWidget(self.sphere_check, 1, 0, 1, 3)
        grid.addWidget(self.gate_check, 2, 0, 1, 3)
        grid.addWidget(self.gate_lo, 3, 1)
        grid.addWidget(self.gate_hi, 3, 2)
        grid.addWidget(QtWidgets.QLabel("lo / hi"), 3, 0)
        grid.addWidget(self.polygon_erase_check, 4, 0, 1, 3)
        hint = QtWidgets.QLabel("B brush · E eraser · P polygon/lasso · G grow · Esc navigate · [ ] size")
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        grid.addWidget(hint, 5, 0, 1, 3)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(2, 1)
        return w

    def _build_threshold_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        self.hist_plot = pg.PlotWidget(background=None)
        self.hist_plot.setMenuEnabled(False)
        self.hist_plot.setMouseEnabled(x=False, y=False)
        self.hist_plot.hideButtons()
        self.hist_plot.getAxis("left").setStyle(showValues=False)
        self.hist_plot.getAxis("left").setWidth(6)
        self.hist_plot.setMinimumHeight(110)
        self.hist_curve = pg.PlotDataItem(stepMode="center", fillLevel=0, brush=(120, 160, 220, 110),
                                          pen=pg.mkPen((150, 190, 240), width=1))
        self.hist_plot.addItem(self.hist_curve)
        self.range_region = pg.LinearRegionItem(values=(0, 1), brush=(255, 212, 0, 50),
                                                pen=pg.mkPen((255, 212, 0), width=2), swapMode="sort")
        self.range_region.setZValue(10)
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

    def _build_shortcuts(self) -> None:
        mw = self._mw
        self.actions: dict[str, QtGui.QAction] = {}
        for key, shortcut, slot in (("brush", "B", lambda: self.activate_tool("brush")),
                                    ("eraser", "E", lambda: self.activate_tool("eraser")),
                                    ("polygon", "P", lambda: self.activate_tool("polygon")),
                                    ("grow", "G", lambda: self.activate_tool("grow")),
                                    ("escape", "Esc", self.escape),
                                    ("smaller", "[", lambda: self.step_size(-1)),
                                    ("larger", "]", lambda: self.step_size(1))):
            action = QtGui.QAction(key, mw)
            action.setShortcut(QtGui.QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(slot)
            mw.addAction(action)
            self.actions[key] = action
        # Enter closes a polygon only while the canvas has the focus (spin boxes keep their Enter)
        self._enter_shortcuts = []
        for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            sc = QtGui.QShortcut(QtGui.QKeySequence(key), mw.canvas.view)
            sc.setContext(Qt.ShortcutContext.WidgetShortcut)
            sc.activated.connect(lambda k=key: self.polygon.key(k))
            self._enter_shortcuts.append(sc)

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

    def _refresh_label_combos(self) -> None:
        labels = self._labels
        entries = sorted(labels.labels.values(), key=lambda lab: lab.value) if labels is not None else []
        active = self._mw.view_state.active_label
        for combo, current in ((self.label_combo, active), (self.mask_label_combo, self.options.mask_label)):
            combo.blockSignals(True)
            combo.clear()
            for label in entries:
                combo.addItem(_swatch(label.color), f"{label.value}  {label.name}", label.value)
            if combo is self.label_combo and all(lab.value != active for lab in entries):
                from ...core.labels import default_color

                combo.addItem(_swatch(default_color(active)), f"{active}  label {active} (new)", active)
            index = combo.findData(current)
            combo.setCurrentIndex(max(index, 0))
            combo.blockSignals(False)
        self.options.label = active
        if self.mask_label_combo.count():
            self.options.mask_label = int(self.mask_label_combo.currentData())
        self._update_preview_color()

    def _on_active_label_changed(self) -> None:
        self.options.label = self._mw.view_state.active_label
        self._refresh_label_combos()
        if self._grow_from_label:
            self._reset_grow_cache()
        self._refresh_preview()

    def _on_label_combo(self, index: int) -> None:
        value = self.label_combo.itemData(index)
        if value is not None:
            self._mw.view_state.set_active_label(int(value))

    def _on_mask_label(self, index: int) -> None:
        value = self.mask_label_combo.itemData(index)
        if value is not None:
            self.options.mask_label = int(value)

    def new_label(self) -> None:
        """Add a label with the next free value and make it the current one."""
        if self._labels is None:
            return
        value = self._labels.next_free_value()
        self._labels.ensure_label(value)
        self._mw.view_state.set_active_label(value)
        self._refresh_label_combos()

    def _on_overwrite(self, _index: int) -> None:
        self.options.overwrite = str(self.overwrite_combo.currentData())
        self.mask_label_combo.setEnabled(self.options.overwrite == "selected")

    def _update_preview_color(self) -> None:
        # one colour for every preview (as the polygon rubber band): "not written yet" must not look like
        # a label
        self.preview.set_color(PREVIEW_COLOR, 0.45)

    # ==============================================================================================
    # tools
    # ==============================================================================================
    def tool_for(self, key: str):
        return {"navigate": None, "brush": self.brush, "eraser": self.eraser, "polygon": self.polygon,
                "grow": self.grow_tool, "pick": self.pick_tool}[key]

    def activate_tool(self, key: str) -> None:
        """Make ``key`` (navigate|brush|eraser|polygon|grow|pick) the canvas tool and show its options."""
        if self.document.image is None and key != "navigate":
            return
        tool = self.tool_for(key)
        if self.canvas.tool is not tool or tool is None:
            self.canvas.set_tool(tool)
        self.tool_buttons[key].setChecked(True)
        tab = {"brush": TAB_PAINT, "eraser": TAB_PAINT, "polygon": TAB_PAINT, "grow": TAB_GROW,
               "pick": TAB_ISLANDS}.get(key)
        if tab is not None and self.tabs.currentIndex() != tab:
            self.tabs.blockSignals(True)
            self.tabs.setCurrentIndex(tab)
            self.tabs.blockSignals(False)
            self._refresh_preview()
        if key in ("brush", "eraser") and self.canvas.tool is tool:
            tool.update_cursor()
        if key != "navigate":
            self.raise_dock()

    def raise_dock(self) -> None:
        """Bring the Tools dock to the front (it may be tabbed behind another dock)."""
        dock = self.parent()
        while dock is not None and not isinstance(dock, QtWidgets.QDockWidget):
            dock = dock.parent()
        if dock is not None:
            dock.show()
            dock.raise_()

    @property
    def active_tool_key(self) -> str:
        tool = self.canvas.tool
        for key in ("brush", "eraser", "polygon", "grow", "pick"):
            if tool is self.tool_for(key):
                return key
        return "navigate"

    def escape(self) -> None:
        """Esc: cancel the polygon in progress, else the grow seed, else back to navigation."""
        if self.canvas.tool is self.polygon and self.polygon.key(Qt.Key.Key_Escape):
            return
        if self.canvas.tool is self.grow_tool and self._seed is not None:
            self.clear_seed()
            return
        self.activate_tool("navigate")

    def step_size(self, direction: int) -> None:
        """[ / ]: about 15% smaller / larger (at least one step)."""
        value = self.size_spin.value()
        step = max(1.0 if self.options.units == "px" else 0.5, round(value * 0.15, 1))
        self.size_spin.setValue(max(self.size_spin.minimum(), value + direction * step))

    def _on_size(self, value: float) -> None:
        self.options.radius = float(value)
        self._update_cursor()

    def _on_units(self, _index: int) -> None:
        self.options.units = str(self.units_combo.currentData())
        self._update_cursor()

    def _update_cursor(self) -> None:
        tool = self.canvas.tool
        if tool is self.brush or tool is self.eraser:
            tool.update_cursor()

    def _on_gate(self, *_args) -> None:
        self.options.gate = self.gate_check.isChecked()
        self.options.lo = self.gate_lo.value()
        self.options.hi = self.gate_hi.value()

    def _on_tab(self, index: int) -> None:
        if index == TAB_GROW and self.canvas.tool is not self.grow_tool:
            self.activate_tool("grow")
        elif index == TAB_PAINT and self.active_tool_key in ("grow", "pick"):
            self.activate_tool("brush")
        self._refresh_preview()

    def _update_units(self) -> None:
        image = self.document.image
        stack = self.isl_scope.currentData() == "stack"
        self.min_units.clear()
        self.min_units.addItem("voxels" if stack else "px", "px")
        if known_spacing(image) is not None:
            self.min_units.addItem("mm³" if stack else "mm²", "mm")

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
        if n > MAX_SPLIT_LABELS:
            self._message(f"{n} islands: remove the small ones first (at most {MAX_SPLIT_LABELS} labels)",
                          error=True)
            return
        used = set(labels.labels) | set(np.unique(labels.data).tolist())
        values = [self.options.label]
        candidate = 1
        while len(values) < n:
            if candidate not in used:
                values.append(candidate)
            candidate += 1
            if candidate > 65535:
                self._message("split: no free label values left", error=True)
                return
        base = labels.labels.get(self.options.label)
        lut = np.zeros(n + 1, dtype=np.uint16)
        lut[1:] = values
        new_values = lut[comp]
        for i, v in enumerate(values[1:], start=2):
            labels.ensure_label(v, f"{base.name if base else 'label'} ({i})")
        if stack:
            box = (slice(0, labels.shape[0]), slice(0, labels.shape[1]), slice(0, labels.shape[2]))
            full = new_values
            current = labels.data
        else:
            z = self._mw.view_state.slice_index
            box = (slice(z, z + 1), slice(0, labels.shape[1]), slice(0, labels.shape[2]))
            full = new_values[np.newaxis]
            current = labels.data[z:z + 1]
            mask = mask[np.newaxis]
        with labels.edit(f"Split label {self.options.label} into {n}") as e:
            e.assign(box, np.where(mask, full, current))
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

    # ==============================================================================================
    # writing results (one undo step each)
    # ==============================================================================================
    def _write_plane_result(self, z: int, new: np.ndarray, name: str, roi: np.ndarray | None = None) -> None:
        """Paint ``new`` (a plane mask) with the current label; inside ``roi`` also clear what ``new`` drops."""
        labels = self._labels
        if labels is None:
            return
        value, overwrite, selected = self.options.paint_rule(False)
        box = (slice(z, z + 1), slice(0, labels.shape[1]), slice(0, labels.shape[2]))
        with labels.edit(f"{name} (label {value})") as e:
            if roi is not None:
                e.paint(box, (roi & ~new)[np.newaxis], 0, overwrite="selected", selected=value)
            e.paint(box, new[np.newaxis], value, overwrite=overwrite, selected=selected)
        self._message(f"{name}: label {value} now has {int(np.count_nonzero(labels.data[z] == value))} px "
                      "on this slice")

    def _write_volume_result(self, new: np.ndarray, name: str, roi: np.ndarray | None = None) -> None:
        labels = self._labels
        if labels is None:
            return
        value, overwrite, selected = self.options.paint_rule(False)
        h, w = labels.shape[1], labels.shape[2]
        with labels.edit(f"{name} (label {value})") as e:
            # slice by slice: temporaries stay one plane in size
            for z in range(labels.shape[0]):
                box = (slice(z, z + 1), slice(0, h), slice(0, w))
                if roi is not None and roi[z].any():
                    e.paint(box, (roi[z] & ~new[z])[np.newaxis], 0, overwrite="selected", selected=value)
                if new[z].any():
                    e.paint(box, new[z][np.newaxis], value, overwrite=overwrite, selected=selected)
        self._message(f"{name}: label {value} now has {int(np.count_nonzero(labels.data == value))} voxels")

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
    dock.panel = panel
    return dock


__all__ = ["ToolsPanel", "create_dock", "AUTO_METHODS"]
