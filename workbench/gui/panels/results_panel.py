"""Results dock: the document's model results — classification bars, detection list, restoration compare,
segmentation classes. It only reads ``document.results`` and writes the view state (filters, compare mode)."""
from __future__ import annotations

import numpy as np

from ...core.results import ClassificationResult, DetectionResult, RestorationResult, SegmentationResult
from ..display import line_profile
from ..qt import Qt, QtWidgets, pg
from ..tools.base import ProfileLineTool
from .base import make_dock
from .ood_badge import OodBadge

_TASK_OF = {ClassificationResult: "classification", SegmentationResult: "segmentation",
            DetectionResult: "detection", RestorationResult: "restoration"}
_COMPARE_ITEMS = [("Original only", "off"), ("Swipe", "swipe"), ("Side by side", "side"),
                  ("Difference map", "difference")]


def describe(result) -> str:
    """One line naming a result: task, plugin name and the provider it ran on."""
    info = getattr(result, "info", None)
    task = _TASK_OF.get(type(result), type(result).__name__)
    if info is None:
        return task
    return f"{task} · {info.plugin_name} {info.plugin_version} · {info.provider.replace('ExecutionProvider', '')}"


class ResultsPanel(QtWidgets.QWidget):
    """All results of the open document, one section per task."""

    def __init__(self, main_window) -> None:
        super().__init__(main_window)
        self._mw = main_window
        self._selected: dict[type, object] = {}  # the result shown per type (default: the newest)
        self._shown_detections: list[tuple[int, int]] = []
        state = main_window.view_state

        self.list = QtWidgets.QListWidget()
        self.list.setMaximumHeight(96)
        self.list.currentRowChanged.connect(self._on_list_row)
        self.remove_button = QtWidgets.QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected result (undoable)")
        self.remove_button.clicked.connect(self._remove_selected)
        self.placeholder = QtWidgets.QLabel("No results yet. Run a model on the open image to see its "
                                            "output here.")
        self.placeholder.setWordWrap(True)
        self.placeholder.setObjectName("hint")
        self.ood_badge = OodBadge()  # issue 20: the shown result's image is outside the plugin's meta.expects

        # classification
        self.class_group = QtWidgets.QGroupBox("Classification")
        self.class_plot = pg.PlotWidget(background=None)
        self.class_plot.setMenuEnabled(False)
        self.class_plot.setMouseEnabled(x=False, y=False)
        self.class_plot.hideButtons()
        self.class_plot.getViewBox().invertY(True)
        self.class_plot.setLabel("bottom", "probability")
        self.class_plot.setMinimumHeight(140)
        self.class_bars: pg.BarGraphItem | None = None
        self.class_top = QtWidgets.QLabel()
        lay = QtWidgets.QVBoxLayout(self.class_group)
        lay.addWidget(self.class_top)
        lay.addWidget(self.class_plot)

        # detection
        self.det_group = QtWidgets.QGroupBox("Detections")
        self.captions_check = QtWidgets.QCheckBox("Captions")
        self.captions_check.setChecked(True)
        self.captions_check.toggled.connect(state.set_show_captions)
        self.score_slider = QtWidgets.QSlider(Qt.Orientation.Horizontal)
        self.score_slider.setRange(0, 100)
        self.score_slider.valueChanged.connect(lambda v: state.set_score_threshold(v / 100.0))
        self.score_label = QtWidgets.QLabel("score ≥ 0.00")
        self.det_table = QtWidgets.QTableWidget(0, 3)
        self.det_table.setHorizontalHeaderLabels(["Label", "Score", "Box x1, y1, x2, y2"])
        self.det_table.verticalHeader().setVisible(False)
        self.det_table.horizontalHeader().setStretchLastSection(True)
        for col in (0, 1):
            self.det_table.horizontalHeader().setSectionResizeMode(
                col, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.det_table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.det_table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.det_table.setMinimumHeight(120)
        self.det_table.cellClicked.connect(self._on_detection_clicked)
        lay = QtWidgets.QGridLayout(self.det_group)
        lay.addWidget(self.captions_check, 0, 0)
        lay.addWidget(self.score_label, 0, 1)
        lay.addWidget(self.score_slider, 0, 2)
        lay.addWidget(self.det_table, 1, 0, 1, 3)
        lay.setColumnStretch(2, 1)

        # restoration
        self.rest_group = QtWidgets.QGroupBox("Restoration compare")
        self.compare_combo = QtWidgets.QComboBox()
        for text, mode in _COMPARE_ITEMS:
            self.compare_combo.addItem(text, mode)
        self.compare_combo.activated.connect(
            lambda i: state.set_compare(self.compare_combo.itemData(i)))
        self.swipe_slider = QtWidgets.QSlider(Qt.Orientation.Horizontal)
        self.swipe_slider.setRange(0, 1000)
        self.swipe_slider.setValue(500)
        self.swipe_slider.setToolTip("Swipe: original on the left, restored on the right")
        self.swipe_slider.valueChanged.connect(lambda v: state.set_compare(swipe=v / 1000.0))
        self.draw_line_button = QtWidgets.QPushButton("Draw profile line")
        self.draw_line_button.setCheckable(True)
        self.draw_line_button.setToolTip("Drag on the image to draw the line to profile")
        self.draw_line_button.toggled.connect(self._on_draw_line)
        self.row_button = QtWidgets.QPushButton("Centre row")
        self.row_button.setToolTip("Profile along the row through the image centre")
        self.row_button.clicked.connect(lambda: state.set_profile_line(None))
        self.profile_plot = pg.PlotWidget(background=None)
        self.profile_plot.setMenuEnabled(False)
        self.profile_plot.hideButtons()
        self.profile_plot.setMinimumHeight(140)
        self.profile_plot.addLegend(offset=(-5, 5))
        self.profile_plot.setLabel("bottom", "distance (px)")
        self.profile_original = self.profile_plot.plot(pen=pg.mkPen((150, 190, 240), width=1.5), name="original")
        self.profile_restored = self.profile_plot.plot(pen=pg.mkPen((255, 150, 60), width=1.5), name="restored")
        self.profile_caption = QtWidgets.QLabel()
        lay = QtWidgets.QGridLayout(self.rest_group)
        lay.addWidget(QtWidgets.QLabel("View"), 0, 0)
        lay.addWidget(self.compare_combo, 0, 1)
        lay.addWidget(QtWidgets.QLabel("Swipe"), 1, 0)
        lay.addWidget(self.swipe_slider, 1, 1)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.draw_line_button)
        row.addWidget(self.row_button)
        row.addStretch(1)
        lay.addLayout(row, 2, 0, 1, 2)
        lay.addWidget(self.profile_caption, 3, 0, 1, 2)
        lay.addWidget(self.profile_plot, 4, 0, 1, 2)
        lay.setColumnStretch(1, 1)

        # segmentation
        self.seg_group = QtWidgets.QGroupBox("Segmentation")
        self.policy_combo = QtWidgets.QComboBox()
        self.policy_combo.addItem("Merge: fill unlabelled pixels only", "merge")
        self.policy_combo.addItem("Replace the label map", "replace")
        self.policy_combo.setToolTip("How a new segmentation result enters the editable label map "
                                     "(merge keeps your manual edits)")
        self.policy_combo.activated.connect(
            lambda i: state.set_segmentation_policy(self.policy_combo.itemData(i)))
        self.seg_classes = QtWidgets.QLabel()
        self.seg_classes.setWordWrap(True)
        self.seg_classes.setTextFormat(Qt.TextFormat.RichText)
        lay = QtWidgets.QVBoxLayout(self.seg_group)
        lay.addWidget(self.policy_combo)
        lay.addWidget(self.seg_classes)

        content = QtWidgets.QWidget()
        body = QtWidgets.QVBoxLayout(content)
        head = QtWidgets.QHBoxLayout()
        head.addWidget(self.list, 1)
        head.addWidget(self.remove_button, 0, Qt.AlignmentFlag.AlignTop)
        body.addLayout(head)
        body.addWidget(self.ood_badge)
        body.addWidget(self.placeholder)
        for group in (self.class_group, self.det_group, self.rest_group, self.seg_group):
            body.addWidget(group)
        body.addStretch(1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setWidget(content)
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        main_window.document.results_changed.connect(self.refresh)
        main_window.document.result_added.connect(self._on_result_added)
        state.reloaded.connect(self.refresh)
        state.detections_changed.connect(self._refresh_detections)
        state.compare_changed.connect(self._refresh_compare)
        state.profile_changed.connect(self._refresh_profile)
        state.slice_changed.connect(lambda _z: (self._refresh_detections(), self._refresh_profile()))
        self.refresh()

    # -- helpers ----------------------------------------------------------------------------------
    def _current(self, kind: type):
        """The result of type ``kind`` to show: the user's pick if still present, else the newest."""
        results = [r for r in self._mw.document.results if isinstance(r, kind)]
        picked = self._selected.get(kind)
        if picked is not None and any(r is picked for r in results):
            return picked
        return results[-1] if results else None

    # -- refresh ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        results = self._mw.document.results
        self.list.blockSignals(True)
        self.list.clear()
        for result in results:
            self.list.addItem(describe(result))
        self.list.blockSignals(False)
        self.ood_badge.show_for(results[-1] if results else None)  # the newest; a picked row: _on_list_row
        self.list.setVisible(bool(results))
        self.remove_button.setVisible(bool(results))
        self.placeholder.setVisible(not results)
        self._refresh_classification()
        self._refresh_detections()
        self._refresh_compare()
        self._refresh_segmentation()

    def _refresh_classification(self) -> None:
        result = self._current(ClassificationResult)
        self.class_group.setVisible(result is not None)
        if self.class_bars is not None:
            self.class_plot.removeItem(self.class_bars)
            self.class_bars = None
        if result is None:
            return
        scores = np.asarray(result.scores, dtype=float).reshape(-1)
        order = np.argsort(-scores)[:15]  # the 15 best classes keep the chart readable
        ys = np.arange(len(order))
        best = order[0] if len(order) else -1
        brushes = [pg.mkBrush((255, 170, 60) if i == best else (110, 150, 210)) for i in order]
        self.class_bars = pg.BarGraphItem(x0=np.zeros(len(order)), y=ys, height=0.7, width=scores[order],
                                          brushes=brushes, pen=pg.mkPen(None))
        self.class_plot.addItem(self.class_bars)
        self.class_plot.getAxis("left").setTicks([[(int(y), str(result.labels[i])) for y, i in zip(ys, order)]])
        self.class_plot.setXRange(0, max(1.0, float(scores.max()) if scores.size else 1.0), padding=0.02)
        self.class_plot.setYRange(-0.6, max(len(order) - 0.4, 0.4), padding=0)
        # about 26 px per bar: a 3-class chart stays compact, 15 classes stay readable
        self.class_plot.setFixedHeight(70 + 26 * len(order))
        if result.top:
            top = result.top[0]
            self.class_top.setText(f"<b>{top.label}</b> &nbsp;{top.score:.3f}")

    def _refresh_detections(self) -> None:
        state = self._mw.view_state
        results = self._mw.document.results
        has = any(isinstance(r, DetectionResult) for r in results)
        self.det_group.setVisible(has)
        for widget, value in ((self.captions_check, state.show_captions),):
            widget.blockSignals(True)
            widget.setChecked(value)
            widget.blockSignals(False)
        self.score_slider.blockSignals(True)
        self.score_slider.setValue(round(state.score_threshold * 100))
        self.score_slider.blockSignals(False)
        self.score_label.setText(f"score ≥ {state.score_threshold:.2f}")
        rows: list[tuple[int, int]] = []
        for r_index, result in enumerate(results):
            if isinstance(result, DetectionResult):
                for d_index, det in enumerate(result.detections):
                    if det.score >= state.score_threshold and det.slice_index == state.slice_index:
                        rows.append((r_index, d_index))
        self._shown_detections = rows
        self.det_table.setRowCount(len(rows))
        for row, (r_index, d_index) in enumerate(rows):
            det = results[r_index].detections[d_index]
            box = ", ".join(f"{v:.0f}" for v in det.box)
            for col, text in enumerate((det.label, f"{det.score:.3f}", box)):
                self.det_table.setItem(row, col, QtWidgets.QTableWidgetItem(text))
        self.det_group.setTitle(f"Detections ({len(rows)} shown)")

    def _refresh_compare(self) -> None:
        state = self._mw.view_state
        has = state.restoration is not None
        self.rest_group.setVisible(has)
        if not has:
            self.draw_line_button.setChecked(False)
            return
        self.compare_combo.blockSignals(True)
        self.compare_combo.setCurrentIndex([m for _, m in _COMPARE_ITEMS].index(state.compare_mode))
        self.compare_combo.blockSignals(False)
        self.swipe_slider.blockSignals(True)
        self.swipe_slider.setValue(round(state.swipe * 1000))
        self.swipe_slider.blockSignals(False)
        self.swipe_slider.setEnabled(state.compare_mode == "swipe")
        self._refresh_profile()

    def _refresh_profile(self) -> None:
        state = self._mw.view_state
        image = self._mw.document.image
        result = state.restoration
        if image is None or result is None:
            return
        line = state.profile_line
        if line is None:
            row = image.height / 2.0
            line = ((0.0, row), (float(image.width - 1), row))
            self.profile_caption.setText(f"Profile along row {int(row)}")
        else:
            (x0, y0), (x1, y1) = line
            self.profile_caption.setText(f"Profile ({x0:.0f}, {y0:.0f}) → ({x1:.0f}, {y1:.0f})")
        original = line_profile(image.slice(state.slice_index), *line)
        restored_plane = self._mw.canvas.restored_plane()
        if restored_plane is None:
            self.profile_restored.setData([], [])
        else:
            s = restored_plane.shape[1] / image.width  # super-resolution: sample the same physical line
            (x0, y0), (x1, y1) = line
            restored = line_profile(restored_plane, (x0 * s, y0 * s), (x1 * s, y1 * s), samples=len(original))
            self.profile_restored.setData(np.arange(len(restored)), restored)
        self.profile_original.setData(np.arange(len(original)), original)

    def _refresh_segmentation(self) -> None:
        result = self._current(SegmentationResult)
        self.seg_group.setVisible(result is not None)
        self.policy_combo.setCurrentIndex(0 if self._mw.view_state.segmentation_policy == "merge" else 1)
        if result is None:
            return
        lines = []
        volume = result.mask.shape[0] > 1  # a stack or volume: voxels and mm³ (issue 12)
        for cls in result.classes:
            if volume:
                mm3 = getattr(cls, "volume_mm3", None)
                size = f"{cls.pixels:,} voxels" + (f", {mm3:,.1f} mm³" if mm3 is not None else "")
            else:
                size = f"{cls.pixels:,} px" + (f", {cls.area_mm2:.1f} mm²" if cls.area_mm2 is not None else "")
            lines.append(f"<span style='color:{cls.color}'>■</span> {cls.value} {cls.name}: {size}")
        self.seg_classes.setText("<br>".join(lines) or "no classes")

    # -- user input -------------------------------------------------------------------------------
    def _on_list_row(self, row: int) -> None:
        results = self._mw.document.results
        if not 0 <= row < len(results):
            return
        result = results[row]
        self._selected[type(result)] = result
        state = self._mw.view_state
        if isinstance(result, RestorationResult):
            if result is not state.restoration:
                state.show_restoration(result)  # another result: its compare starts afresh (issue 15 item 5)
            elif state.compare_mode == "off":
                state.set_compare("swipe")
        elif state.compare_mode != "off":
            state.set_compare("off")  # another result is shown: not over a swipe or a difference map
        self.refresh()
        # refresh() rebuilt the list: re-select without re-entering this handler (it recursed until the
        # stack overflowed -- a crash on the first click of a result row)
        self.list.blockSignals(True)
        self.list.setCurrentRow(row)
        self.list.blockSignals(False)
        self.ood_badge.show_for(result)

    def _on_result_added(self, result) -> None:
        """A new result is the one shown: it replaces the user's earlier pick of its type and is selected."""
        self._selected.pop(type(result), None)
        self.refresh()
        results = self._mw.document.results
        row = next((i for i, r in enumerate(results) if r is result), -1)
        if row >= 0:
            self.list.blockSignals(True)
            self.list.setCurrentRow(row)
            self.list.blockSignals(False)
            self.ood_badge.show_for(result)

    def _remove_selected(self) -> None:
        row = self.list.currentRow()
        results = self._mw.document.results
        if 0 <= row < len(results):
            self._mw.document.remove_result(results[row])

    def _on_detection_clicked(self, row: int, _col: int) -> None:
        if not 0 <= row < len(self._shown_detections):
            return
        r_index, d_index = self._shown_detections[row]
        det = self._mw.document.results[r_index].detections[d_index]
        self._mw.canvas.select_detection((r_index, d_index), det.box)

    def _on_draw_line(self, checked: bool) -> None:
        canvas = self._mw.canvas
        if checked:
            canvas.set_tool(ProfileLineTool())
        elif isinstance(canvas.tool, ProfileLineTool):
            canvas.set_tool(None)


def create_dock(main_window) -> QtWidgets.QDockWidget:
    """Registry factory (see :mod:`workbench.gui.panels`)."""
    panel = ResultsPanel(main_window)
    dock = make_dock(main_window, "Results", "ResultsDock", panel, area="right")
    return dock


__all__ = ["ResultsPanel", "create_dock", "describe"]
