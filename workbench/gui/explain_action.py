"""Explain in the GUI: compute a saliency / uncertainty heat map in a worker, list it in the Results dock
beside the prediction, style it (colormap, opacity, toggle, legend) and export it.

House rule 5: :class:`ExplainJob` is a :class:`~workbench.gui.workers.PoolJob`; it drains the Qt-free
generator :func:`workbench.inference.explain.explain` in a pool thread (the session is created there),
checking the job's cancel flag between batches. :class:`ExplainSection` only reads and writes the
document's :class:`~workbench.inference.explain.store.HeatmapStore`; :class:`HeatmapLayer` draws it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import WorkbenchError
from ..export.heatmap import COLORMAPS, display_range
from ..inference.explain import default_method, methods_for
from ..inference.explain.store import HeatmapStore, heatmaps_of
from .heatmap_layer import HeatmapLayer, LegendBar
from .qt import QtCore, QtWidgets, Signal
from .workers import PoolJob

Qt = QtCore.Qt
_METHOD_TEXT = {"occlusion": "Occlusion", "rise": "RISE", "gradcam": "Grad-CAM", "entropy": "Entropy",
                "margin": "Margin", "tta": "Flip (TTA) disagreement"}


class ExplainJob(PoolJob):
    """One explanation in a pool thread; emits exactly one of ``finished``, ``failed``, ``cancelled``.

    Signals (delivered in the GUI thread)
    -------------------------------------
    progressed(int, int, str)     done, total, message
    finished(object)              the Explanation
    failed(str)
    cancelled(str)
    """

    progressed = Signal(int, int, str)
    finished = Signal(object)

    def __init__(self, spec: Any, image: Any, *, method: str, slice_index: int, target: str | None,
                 params: dict[str, Any], settings: Any, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.spec, self.image, self.method = spec, image, method
        self.slice_index, self.target, self.params = slice_index, target, dict(params)
        self.settings = settings.model_copy(deep=True)

    @property
    def subject(self) -> str:
        return f"{_METHOD_TEXT.get(self.method, self.method)} of {self.spec.name}"

    def work(self, progress, cancelled):
        from ..inference.explain import explain
        from ..inference.run import Engine

        engine = Engine(self.spec, provider=self.settings.provider, settings=self.settings)
        gen = explain(engine, self.image, method=self.method, slice_index=self.slice_index, target=self.target,
                      cancel=cancelled, **self.params)
        while True:
            try:
                done, total, message = next(gen)
            except StopIteration as stop:
                return stop.value
            progress(int(done), int(total), str(message))

    def error_message(self, exc: WorkbenchError) -> str:
        return f"{self.subject}: {exc}"


def explainable_plugins(settings: Any) -> list[Any]:
    """Installed classification and segmentation plugins (the tasks explanations exist for)."""
    from ..inference.registry import discover_plugins

    return [p for p in discover_plugins(settings).plugins if p.task in ("classification", "segmentation")]


class ExplainSection(QtWidgets.QGroupBox):
    """The "Explain" group of the Results dock: run controls, the list of heat maps and their style."""

    def __init__(self, main_window) -> None:
        super().__init__("Explain: heat maps")
        self._mw = main_window
        self.job: ExplainJob | None = None
        self.plugins: list[Any] = []
        self.setToolTip("Why did the model say that? Saliency for classifiers (occlusion, RISE), "
                        "uncertainty for segmenters (entropy, margin, flips); computed in the background")

        self.model_combo = QtWidgets.QComboBox()
        self.model_combo.currentIndexChanged.connect(self._on_model)
        self.method_combo = QtWidgets.QComboBox()
        self.method_combo.currentIndexChanged.connect(self._on_method)
        self.class_combo = QtWidgets.QComboBox()
        self.class_combo.setToolTip("The class to explain (default: the top class)")
        self.amount_spin = QtWidgets.QSpinBox()
        for combo in (self.model_combo, self.method_combo, self.class_combo):
            # long plugin names must not widen the dock (a horizontal scroll bar in the Results dock)
            combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        self.run_button = QtWidgets.QPushButton("Explain")
        self.run_button.setToolTip("Compute the heat map of the current slice in the background")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setMaximumHeight(14)
        self.progress.setTextVisible(False)
        self.progress.hide()

        self.list = QtWidgets.QListWidget()
        self.list.setMaximumHeight(72)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.currentRowChanged.connect(lambda row: self.store.select(row))
        self.show_check = QtWidgets.QCheckBox("Show")
        self.show_check.setToolTip("Show or hide the heat map over the image")
        self.show_check.toggled.connect(lambda on: self.store.set_style(visible=bool(on)))
        self.cmap_combo = QtWidgets.QComboBox()
        self.cmap_combo.addItems(list(COLORMAPS))
        self.cmap_combo.currentTextChanged.connect(lambda name: self.store.set_style(cmap=name))
        self.opacity_slider = QtWidgets.QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setToolTip("Opacity of the heat map")
        self.opacity_slider.valueChanged.connect(lambda v: self.store.set_style(opacity=v / 100.0))
        self.legend = LegendBar()
        self.caption = QtWidgets.QLabel()
        self.caption.setWordWrap(True)
        self.caption.setObjectName("hint")
        self.export_button = QtWidgets.QPushButton("Export…")
        self.export_button.setToolTip("Write the map as float32 TIFF, overlay PNG, JSON and an HTML/PDF report")
        self.export_button.clicked.connect(self.export_dialog)
        self.remove_button = QtWidgets.QPushButton("Remove")
        self.remove_button.clicked.connect(lambda: self.store.remove(self.store.current))

        grid = QtWidgets.QGridLayout(self)
        grid.addWidget(QtWidgets.QLabel("Model"), 0, 0)
        grid.addWidget(self.model_combo, 0, 1, 1, 3)
        grid.addWidget(QtWidgets.QLabel("Method"), 1, 0)
        grid.addWidget(self.method_combo, 1, 1)
        self.amount_label = QtWidgets.QLabel("Masks")
        grid.addWidget(self.amount_label, 1, 2)
        grid.addWidget(self.amount_spin, 1, 3)
        self.class_label = QtWidgets.QLabel("Class")
        grid.addWidget(self.class_label, 2, 0)
        grid.addWidget(self.class_combo, 2, 1, 1, 3)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.run_button)
        row.addWidget(self.cancel_button)
        row.addWidget(self.progress, 1)
        grid.addLayout(row, 3, 0, 1, 4)
        grid.addWidget(self.list, 4, 0, 1, 4)
        style = QtWidgets.QHBoxLayout()
        style.addWidget(self.show_check)
        style.addWidget(self.cmap_combo)
        style.addWidget(self.opacity_slider, 1)
        self.style_row = QtWidgets.QWidget()
        self.style_row.setLayout(style)
        style.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.style_row, 5, 0, 1, 4)
        grid.addWidget(self.legend, 6, 0, 1, 4)
        grid.addWidget(self.caption, 7, 0, 1, 4)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.remove_button)
        grid.addLayout(buttons, 8, 0, 1, 4)
        grid.setColumnStretch(1, 1)

        self.store: HeatmapStore = heatmaps_of(main_window.document)
        self.layer = HeatmapLayer(main_window.canvas, main_window.view_state, self.store)
        self.store.changed.connect(self.refresh)
        self.store.styled.connect(self._refresh_style)
        main_window.document.image_changed.connect(self._on_image_changed)
        self.reload_plugins()
        self.refresh()

    # -- plugins and methods -------------------------------------------------------------------------
    def reload_plugins(self, plugins: list[Any] | None = None) -> None:
        """Fill the model list (default: the installed classification/segmentation plugins)."""
        try:
            self.plugins = plugins if plugins is not None else explainable_plugins(self._mw.settings)
        except WorkbenchError as exc:
            self.plugins = []
            self._mw.show_error(str(exc))
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for spec in self.plugins:
            self.model_combo.addItem(f"{spec.name} ({spec.task})", spec.id)
        self.model_combo.blockSignals(False)
        self._on_model(self.model_combo.currentIndex())

    def current_spec(self) -> Any | None:
        i = self.model_combo.currentIndex()
        return self.plugins[i] if 0 <= i < len(self.plugins) else None

    def _on_model(self, _index: int) -> None:
        spec = self.current_spec()
        methods = () if spec is None else methods_for(spec)
        self.method_combo.blockSignals(True)
        self.method_combo.clear()
        for m in methods:
            self.method_combo.addItem(_METHOD_TEXT[m], m)
        if spec is not None:
            self.method_combo.setCurrentIndex(list(methods).index(default_method(spec.task)))
        self.method_combo.blockSignals(False)
        self.class_combo.clear()
        is_cls = spec is not None and spec.task == "classification"
        if is_cls:
            self.class_combo.addItem("top class", None)
            for label in spec.labels or []:
                self.class_combo.addItem(label, label)
        self.class_combo.setVisible(is_cls)
        self.class_label.setVisible(is_cls)
        self._on_method(self.method_combo.currentIndex())
        self._update_enabled()

    def current_method(self) -> str | None:
        return self.method_combo.currentData()

    def _on_method(self, _index: int) -> None:
        method = self.current_method()
        shown = method in ("rise", "occlusion")
        self.amount_label.setVisible(shown)
        self.amount_spin.setVisible(shown)
        self.amount_spin.blockSignals(True)
        if method == "rise":
            self.amount_label.setText("Masks")
            self.amount_spin.setRange(8, 20000)
            self.amount_spin.setValue(500)
            self.amount_spin.setSuffix("")
            self.amount_spin.setToolTip("N random masks: the cost is N + 1 model runs (seed 0)")
        elif method == "occlusion":
            self.amount_label.setText("Window")
            self.amount_spin.setRange(2, 100)
            self.amount_spin.setValue(25)
            self.amount_spin.setSuffix(" %")
            self.amount_spin.setToolTip("Window side as a % of the model input (stride: half of it)")
        self.amount_spin.blockSignals(False)

    def params(self) -> dict[str, Any]:
        method = self.current_method()
        if method == "rise":
            return {"n_masks": int(self.amount_spin.value()), "seed": 0}
        if method == "occlusion":
            frac = self.amount_spin.value() / 100.0
            return {"window": frac, "stride": frac / 2.0}
        if method == "tta":
            return {"flips": ["h", "v"]}
        return {}

    # -- running -------------------------------------------------------------------------------------
    def run(self) -> None:
        """Start the explanation of the current slice with the chosen plugin and method."""
        spec, image = self.current_spec(), self._mw.document.image
        if spec is None or image is None or self.job is not None:
            return
        target = self.class_combo.currentData() if spec.task == "classification" else None
        job = ExplainJob(spec, image, method=self.current_method(), slice_index=self._mw.view_state.slice_index,
                         target=target, params=self.params(), settings=self._mw.settings, parent=self)
        job.progressed.connect(self._on_progress)
        job.finished.connect(self._on_finished)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_cancelled)
        self.job = job
        self.progress.setRange(0, 0)
        self.progress.show()
        self._update_enabled()
        self._mw.show_status(f"{job.subject}: running…", 0)
        job.start()

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _on_progress(self, done: int, total: int, _message: str) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def _end_job(self) -> ExplainJob | None:
        job, self.job = self.job, None
        self.progress.hide()
        self._update_enabled()
        return job

    def _on_finished(self, expl) -> None:
        job = self._end_job()
        if job is None or self._mw.document.image is not job.image:
            return  # the image changed while the job ran: its map belongs to nothing shown
        self.store.add(expl)
        c = expl.cost
        self._mw.show_status(f"{job.subject}: {c.model_runs} model runs in {c.ms / 1000:.1f} s")

    def _on_failed(self, message: str) -> None:
        self._end_job()
        self._mw.show_error(message)

    def _on_cancelled(self, message: str) -> None:
        self._end_job()
        self._mw.show_status(message)

    def _on_image_changed(self) -> None:
        if self.job is not None:
            self.job.cancel()
        self._update_enabled()

    def _update_enabled(self) -> None:
        running = self.job is not None
        ready = self.current_spec() is not None and self._mw.document.image is not None
        self.run_button.setEnabled(ready and not running)
        self.cancel_button.setEnabled(running)
        self.model_combo.setEnabled(not running)
        self.method_combo.setEnabled(not running)

    # -- the list and the style ------------------------------------------------------------------------
    def refresh(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for expl in self.store.items:
            what = expl.target["label"] if expl.target else "uncertainty"
            plugin = expl.info.plugin_name if expl.info is not None else expl.plugin_id
            self.list.addItem(f"{_METHOD_TEXT.get(expl.method, expl.method)} · {what} · {plugin} · "
                              f"slice {expl.slice_index + 1}")
        self.list.setCurrentRow(self.store.current)
        self.list.blockSignals(False)
        has = self.store.current_item() is not None
        for w in (self.list, self.style_row, self.legend, self.caption, self.export_button, self.remove_button):
            w.setVisible(has)
        self._refresh_style()

    def _refresh_style(self) -> None:
        current = self.store.current_item()
        if current is None:
            return
        expl, style = current
        for widget, setter, value in ((self.show_check, "setChecked", style.visible),
                                      (self.cmap_combo, "setCurrentText", style.cmap),
                                      (self.opacity_slider, "setValue", round(style.opacity * 100))):
            widget.blockSignals(True)
            getattr(widget, setter)(value)
            widget.blockSignals(False)
        self.legend.set_map(style.cmap, display_range(expl.map, expl.method), expl.units)
        p = expl.peak
        c = expl.cost
        lines = [f"peak at x {p['x']}, y {p['y']} · {c.model_runs} model runs, {c.ms:.0f} ms "
                 f"({c.multiple:.0f}× one run)"]
        threshold = expl.parameters.get("threshold")
        for row in expl.summary:  # segmentation: the per-label summary of the uncertainty
            lines.append(f"{row['name']}: mean {row['mean_uncertainty']:.3f}, "
                         f"{100 * row['uncertain_fraction']:.1f}% above {threshold} ({row['pixels']:,} px)")
        self.caption.setText("\n".join(lines))

    # -- export --------------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Export heat map to folder")
        if folder:
            self.export_to(folder)

    def export_to(self, folder: str | Path) -> dict[str, Path]:
        """Write the current heat map (TIFF, PNG, JSON and the HTML/PDF report) into ``folder``."""
        from ..export.heatmap import write_explanation
        from ..export.heatmap_report import write_heatmap_report
        from ..export.prediction import output_stem

        current = self.store.current_item()
        image = self._mw.document.image
        if current is None or image is None:
            return {}
        expl, style = current
        stem = output_stem(image, "image")
        try:
            written = write_explanation(expl, image, folder, stem, cmap=style.cmap, opacity=style.opacity)
            written.update(write_heatmap_report(expl, image, folder, stem))
        except WorkbenchError as exc:
            self._mw.show_error(str(exc))
            return {}
        self._mw.show_status(f"Heat map exported to {folder}")
        return written


def install_explain(main_window) -> ExplainSection | None:
    """Put the Explain section into the Results dock, below the prediction's sections and outside their scroll
    area, so its Explain button is in view however many results the dock lists (issue 15); returns it."""
    dock = getattr(main_window, "docks", {}).get("ResultsDock")
    panel = getattr(dock, "panel", None)
    if panel is None:
        return None
    section = ExplainSection(main_window)
    panel.layout().addWidget(section)
    main_window.explain_section = section
    return section


__all__ = ["ExplainJob", "ExplainSection", "explainable_plugins", "install_explain"]
