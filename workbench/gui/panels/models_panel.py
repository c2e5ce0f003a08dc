"""Models dock: the installed model plugins, running them on the open image, and "run on drop".

What the user sees, top to bottom:

- one card per plugin found by :func:`~workbench.inference.registry.discover_plugins` (name, version, task,
  a provider badge — the provider the session really uses once one exists, "not loaded" before — the
  description, and a "Run on drop" check box);
- a collapsible "problems" list with the one-line error of every plugin discovery rejected;
- the model card line of the selected plugin and the run buttons: "Run on image" for a 2D image, "Run on this
  slice" / "Run on whole stack" for a stack;
- progress bar + Cancel while a run is going on, then a one-line summary of the last result and, for a
  segmentation, "Merge into labels" / "Replace labels…".

Runs happen one at a time in an :class:`~workbench.gui.inference_worker.InferenceJob` (pool thread; the
ONNX Runtime session is created there on the first run). Further requests wait in a queue. Every result goes
into ``document.add_result`` (one undo step). A segmentation result is then written into the label map by
the main window in its default *merge* mode (only unlabelled pixels, so manual edits survive), inside the same
undo step: one Ctrl+Z takes the result and its mask away together. The buttons
here re-apply it on demand, or replace the label map after a confirmation.

Run on drop: the plugins checked here (``Settings.run_on_drop``, saved at once) run automatically on every
newly opened image: on the whole image for 2D images, on the shown (middle) slice for stacks, so dropping a
300-slice CT does not start minutes of work; "Run on whole stack" is one click away.
"""
from __future__ import annotations

import html

from ...core.errors import WorkbenchError
from ...core.settings import save_settings
from ...inference.results import (ClassificationResult, DetectionResult, RestorationResult,
                                  SegmentationResult)
from ...inference.spec import PluginSpec
from ..inference_worker import InferenceJob, RunRequest
from ..qt import QtCore, QtGui, QtWidgets, Qt, Signal
from .base import make_dock
from .trust_box import attach_trust_box

_TASK_COLORS = {"classification": "#8e6bd1", "segmentation": "#2f9e6e", "detection": "#d0782a",
                "restoration": "#3a86c8"}
# badge states -> (background, text colour); readable on the dark and the light theme
_BADGE_STYLES = {"idle": ("rgba(128,128,128,0.22)", None), "loading": ("rgba(214,160,40,0.35)", None),
                 "ready": ("#2e7d4f", "#ffffff"), "error": ("#b03a3a", "#ffffff")}


def short_provider(provider: str) -> str:
    """``"CUDAExecutionProvider"`` -> ``"CUDA"``."""
    return provider.replace("ExecutionProvider", "") or provider


def summarize(result) -> str:
    """One line describing a result for the status bar and the dock."""
    if isinstance(result, ClassificationResult):
        if not result.top:
            return "no classes"
        best = result.top[0]
        return f"{best.label} {best.score:.2f}"
    if isinstance(result, SegmentationResult):
        labelled = [c for c in result.classes if c.pixels > 0]
        pixels = sum(c.pixels for c in labelled)
        if not labelled:
            return "nothing segmented"
        names = ", ".join(c.name for c in labelled[:3]) + ("…" if len(labelled) > 3 else "")
        return f"{len(labelled)} class{'es' if len(labelled) != 1 else ''} ({names}), {pixels:,} px"
    if isinstance(result, DetectionResult):
        n = len(result.detections)
        return f"{n} box{'es' if n != 1 else ''}"
    if isinstance(result, RestorationResult):
        scale = f" ×{result.scale}" if result.scale != 1 else ""
        return f"restored{scale}, {result.image.width}×{result.image.height} px (compare view)"
    return type(result).__name__


def model_card_html(spec: PluginSpec) -> str:
    """The selected plugin's model card as one short rich-text paragraph."""
    meta = spec.meta or {}
    facts = [html.escape(str(meta[k])) for k in ("intended_use", "license") if meta.get(k)]
    facts.append(f"{html.escape(spec.source)} plugin")
    description = html.escape(spec.description) if spec.description else "<i>no description</i>"
    return f"{description}<br><span style='color:gray'>{' · '.join(facts)}</span>"


def model_card_tooltip(spec: PluginSpec) -> str:
    meta = spec.meta or {}
    lines = [f"<b>{html.escape(spec.name)}</b> {html.escape(spec.version)} ({html.escape(spec.id)})",
             html.escape(spec.description or ""),
             f"folder: {html.escape(str(spec.folder))}",
             f"model: {html.escape(spec.model.file)} · sha256 {spec.sha256[:12]}…",
             f"providers: {html.escape(', '.join(short_provider(p) for p in spec.runtime.providers))}"]
    if spec.task == "segmentation" and spec.output.classes:
        lines.append("classes: " + html.escape(", ".join(c.name for c in spec.output.classes)))
    elif spec.labels:
        shown = spec.labels[:12]
        lines.append("labels: " + html.escape(", ".join(shown)) + (" …" if len(spec.labels) > 12 else ""))
    for key in ("training_data", "metrics"):
        if meta.get(key):
            lines.append(f"{key.replace('_', ' ')}: {html.escape(str(meta[key]))}")
    return "<br>".join(line for line in lines if line)


class ElidedLabel(QtWidgets.QLabel):
    """A one-line label that elides its text with "…" to the width it gets (full text in the tooltip)."""

    def __init__(self, text: str = "", parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setMinimumWidth(40)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.set_full_text(text)

    def set_full_text(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._elide()

    def full_text(self) -> str:
        return self._full

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        metrics = self.fontMetrics()
        width = max(self.width() - 2, 20)
        self.setText(metrics.elidedText(self._full, Qt.TextElideMode.ElideRight, width))


class PluginCard(QtWidgets.QFrame):
    """One plugin in the list: name, version, task chip, provider badge, description, run-on-drop box."""

    run_on_drop_toggled = Signal(str, bool)

    def __init__(self, spec: PluginSpec, *, run_on_drop: bool, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        self.setObjectName("pluginCard")
        self.setToolTip(model_card_tooltip(spec))
        self.name_label = ElidedLabel(spec.name)
        font = self.name_label.font()
        font.setBold(True)
        self.name_label.setFont(font)
        self.version_label = QtWidgets.QLabel(spec.version)
        self.version_label.setStyleSheet("color: gray;")
        self.task_chip = QtWidgets.QLabel(spec.task)
        color = _TASK_COLORS.get(spec.task, "#777777")
        self.task_chip.setStyleSheet(f"color: {color}; border: 1px solid {color}; border-radius: 7px;"
                                     "padding: 0px 6px; font-size: 11px;")
        self.badge = QtWidgets.QLabel()
        self.badge.setObjectName("providerBadge")
        self.description = ElidedLabel(spec.description or "no description")
        self.description.setStyleSheet("color: gray;")
        self.drop_check = QtWidgets.QCheckBox("Run on drop")
        self.drop_check.setToolTip("Run this model automatically on every image you open")
        self.drop_check.setChecked(run_on_drop)
        # the palette's indicator is invisible on the list's base colour in the dark theme
        self.drop_check.setStyleSheet(
            "QCheckBox::indicator { width: 11px; height: 11px; border: 1px solid #7d8087; border-radius: 2px; }"
            "QCheckBox::indicator:checked { background: #3d7bd9; border-color: #3d7bd9; }")
        self.drop_check.toggled.connect(lambda on: self.run_on_drop_toggled.emit(self.spec.id, bool(on)))

        # three short rows: the dock is often only ~300 px wide
        top = QtWidgets.QHBoxLayout()
        top.setSpacing(6)
        top.addWidget(self.name_label, 1)
        top.addWidget(self.version_label)
        middle = QtWidgets.QHBoxLayout()
        middle.setSpacing(6)
        middle.addWidget(self.task_chip)
        middle.addWidget(self.badge)
        middle.addStretch(1)
        middle.addWidget(self.drop_check)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(8, 5, 8, 5)
        layout.setSpacing(3)
        layout.addLayout(top)
        layout.addLayout(middle)
        layout.addWidget(self.description)
        self.set_provider_state("idle", "not loaded")

    def set_provider_state(self, state: str, text: str, tooltip: str | None = None) -> None:
        """``state``: ``idle`` (no session yet), ``loading``, ``ready`` or ``error``."""
        background, foreground = _BADGE_STYLES[state]
        fg = f"color: {foreground};" if foreground else ""
        self.badge.setStyleSheet(f"background: {background}; {fg} border-radius: 7px; padding: 0px 6px;"
                                 "font-size: 11px;")
        self.badge.setText(text)
        self.badge.setToolTip(tooltip or {"idle": "No session yet: the model loads on its first run",
                                          "loading": "Creating the ONNX Runtime session…",
                                          "ready": "The execution provider this session really uses",
                                          "error": "The last run failed"}[state])
        self.badge_state = state


class ModelsPanel(QtWidgets.QWidget):
    """The Models dock's widget. State lives in the document / settings; runs live in workers."""

    def __init__(self, main_window) -> None:
        super().__init__(main_window)
        self._mw = main_window
        self.cards: dict[str, PluginCard] = {}
        self.plugins: list[PluginSpec] = []
        self.problems: list[str] = []
        self._providers: dict[str, str] = {}  # plugin id -> provider of its session, once one exists
        self._failures: dict[str, str] = {}  # plugin id -> message of its last failed run
        self._queue: list[RunRequest] = []
        self._job: InferenceJob | None = None
        self._jobs: list[InferenceJob] = []  # every job still referenced by a pool thread
        self.last_result = None
        self.last_message = ""
        self._last_ok = False  # the last finished run produced ``last_result`` (not an error / cancel)

        self.count_label = QtWidgets.QLabel()
        self.reload_button = QtWidgets.QToolButton()
        self.reload_button.setText("Rescan")
        self.reload_button.setToolTip("Look for plugins again (bundled, user folder, Settings ▸ plugin folders)")
        self.reload_button.clicked.connect(self.reload)

        self.list = QtWidgets.QListWidget()
        self.list.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setVerticalScrollMode(QtWidgets.QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # a light selection tint: the palette's solid highlight hides the cards' grey text
        self.list.setStyleSheet("QListWidget::item { border-bottom: 1px solid rgba(128,128,128,0.25); }"
                                "QListWidget::item:selected { background: rgba(61,123,217,0.28);"
                                " border-left: 3px solid #3d7bd9; }")
        self.list.currentRowChanged.connect(lambda _row: self._update_selection())
        self.list.itemDoubleClicked.connect(lambda _item: self.run_default())
        self.empty_hint = QtWidgets.QLabel()
        self.empty_hint.setObjectName("hint")
        self.empty_hint.setWordWrap(True)

        self.problems_button = QtWidgets.QToolButton()
        self.problems_button.setCheckable(True)
        self.problems_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.problems_button.setArrowType(Qt.ArrowType.RightArrow)
        self.problems_button.setAutoRaise(True)
        self.problems_button.toggled.connect(self._toggle_problems)
        self.problems_list = QtWidgets.QListWidget()
        self.problems_list.setWordWrap(True)
        self.problems_list.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.problems_list.setToolTip("Plugins that could not be loaded (fix the plugin.yaml and press Rescan)")
        self.problems_list.hide()

        self.card_label = QtWidgets.QLabel()
        self.card_label.setWordWrap(True)
        self.card_label.setTextFormat(Qt.TextFormat.RichText)
        self.run_image_button = QtWidgets.QPushButton("Run on image")
        self.run_image_button.setToolTip("Run the selected model on the open image")
        self.run_image_button.clicked.connect(lambda: self.run_selected("image"))
        self.run_slice_button = QtWidgets.QPushButton("Run on this slice")
        self.run_slice_button.setToolTip("Run the selected model on the slice shown")
        self.run_slice_button.clicked.connect(lambda: self.run_selected("slice"))
        self.run_stack_button = QtWidgets.QPushButton("Run on whole stack")
        self.run_stack_button.setToolTip("Run the selected model on every slice (progress below, Cancel stops)")
        self.run_stack_button.clicked.connect(lambda: self.run_selected("stack"))

        self.progress = QtWidgets.QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setMaximumHeight(18)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running model (and drop the queued runs)")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_label = ElidedLabel()
        self.progress_box = QtWidgets.QWidget()
        grid = QtWidgets.QGridLayout(self.progress_box)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.progress, 0, 0)
        grid.addWidget(self.cancel_button, 0, 1)
        grid.addWidget(self.progress_label, 1, 0, 1, 2)
        self.progress_box.hide()

        self.result_label = QtWidgets.QLabel()
        self.result_label.setWordWrap(True)
        self.result_label.setTextFormat(Qt.TextFormat.RichText)  # wraps at any "·"/space, never widens the dock
        self.result_label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,
                                        QtWidgets.QSizePolicy.Policy.Preferred)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.merge_button = QtWidgets.QPushButton("Merge into labels")
        self.merge_button.setToolTip("Write the last segmentation into the label map where it is still "
                                     "unlabelled (your edits are kept); one undo step")
        self.merge_button.clicked.connect(lambda: self.apply_last_segmentation("merge"))
        self.replace_button = QtWidgets.QPushButton("Replace labels…")
        self.replace_button.setToolTip("Replace the whole label map by the last segmentation (asks first); "
                                       "one undo step")
        self.replace_button.clicked.connect(lambda: self.apply_last_segmentation("replace"))
        self.apply_box = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(self.apply_box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.merge_button)
        row.addWidget(self.replace_button)
        row.addStretch(1)
        self.apply_box.hide()

        head = QtWidgets.QHBoxLayout()
        head.addWidget(self.count_label, 1)
        head.addWidget(self.reload_button)
        buttons = QtWidgets.QHBoxLayout()
        for button in (self.run_image_button, self.run_slice_button, self.run_stack_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        # only the list scrolls: the run buttons, progress and Cancel stay in view however small the dock
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(head)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty_hint)
        layout.addWidget(self.problems_button)
        layout.addWidget(self.problems_list)
        layout.addWidget(self.card_label)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_box)
        layout.addWidget(self.result_label)
        layout.addWidget(self.apply_box)

        document = main_window.document
        document.image_changed.connect(self._on_image_changed)
        document.results_changed.connect(self._update_result_box)
        # closing the window (also how the app quits) cancels the running job and drops the queue
        main_window.installEventFilter(self)
        self.reload()

    # -- discovery --------------------------------------------------------------------------------
    def reload(self) -> None:
        """Discover the plugins again (reads only plugin.yaml files) and rebuild the list."""
        from ...inference.registry import discover_plugins
        from ...inference.session import cached_sessions

        selected = self.selected_plugin()
        try:
            found = discover_plugins(self._mw.settings)
        except WorkbenchError as exc:  # e.g. an unreadable plugin root: the dock stays usable
            self.plugins, self.problems = [], [str(exc)]
        else:
            self.plugins = list(found.plugins)
            self.problems = [str(err) for err in found.errors]
        for model in cached_sessions():  # sessions created earlier in this process keep their badge
            self._providers.setdefault(model.spec.id, model.provider)
        run_on_drop = set(self._mw.settings.run_on_drop)
        self.list.clear()
        self.cards = {}
        for spec in self.plugins:
            card = PluginCard(spec, run_on_drop=spec.id in run_on_drop)
            card.run_on_drop_toggled.connect(self.set_run_on_drop)
            attach_trust_box(card, spec, self._mw)  # plugins with their own decoder code (issue 21)
            item = QtWidgets.QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, spec.id)
            item.setSizeHint(card.sizeHint())
            self.list.addItem(item)
            self.list.setItemWidget(item, card)
            self.cards[spec.id] = card
            self._refresh_badge(spec.id)
        n = len(self.plugins)
        if n:  # at least one whole card; the list takes whatever height the dock has beyond that
            self.list.setMinimumHeight(self.list.sizeHintForRow(0) + 2 * self.list.frameWidth() + 2)
        self.count_label.setText(f"{n} model plugin{'s' if n != 1 else ''}")
        from ...inference.registry import user_plugins_dir

        self.empty_hint.setText("No model plugins found. Put a plugin folder (plugin.yaml + model.onnx) into "
                                f"{user_plugins_dir()} or add a folder in Settings, then press Rescan.")
        self.empty_hint.setVisible(n == 0)
        self.list.setVisible(n > 0)
        self.problems_list.clear()
        for message in self.problems:
            item = QtWidgets.QListWidgetItem(message)
            item.setToolTip(message)
            self.problems_list.addItem(item)
        k = len(self.problems)
        # about two wrapped lines per problem, up to four problems before it scrolls
        line = self.problems_list.fontMetrics().lineSpacing()
        self.problems_list.setFixedHeight(min(max(k, 1), 4) * (2 * line + 6) + 2 * self.problems_list.frameWidth())
        self.problems_button.setText(f"⚠ {k} plugin problem{'s' if k != 1 else ''}")
        self.problems_button.setVisible(k > 0)
        self.problems_list.setVisible(k > 0 and self.problems_button.isChecked())
        ids = [p.id for p in self.plugins]
        if ids:
            keep = selected.id if selected is not None and selected.id in ids else ids[0]
            self.list.setCurrentRow(ids.index(keep))
        self._update_selection()

    def _toggle_problems(self, shown: bool) -> None:
        self.problems_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.problems_list.setVisible(shown and bool(self.problems))

    def _refresh_badge(self, plugin_id: str) -> None:
        card = self.cards.get(plugin_id)
        if card is None:
            return
        running = self._job is not None and self._job.request.spec.id == plugin_id and \
            self._job.provider is None
        if running:
            card.set_provider_state("loading", "loading…")
        elif plugin_id in self._failures:
            card.set_provider_state("error", "error", self._failures[plugin_id])
        elif plugin_id in self._providers:
            card.set_provider_state("ready", short_provider(self._providers[plugin_id]),
                                    f"Session runs on {self._providers[plugin_id]}")
        else:
            card.set_provider_state("idle", "not loaded")

    # -- selection & buttons ----------------------------------------------------------------------
    def selected_plugin(self) -> PluginSpec | None:
        item = self.list.currentItem()
        if item is None:
            return None
        plugin_id = item.data(Qt.ItemDataRole.UserRole)
        return next((p for p in self.plugins if p.id == plugin_id), None)

    def select_plugin(self, plugin_id: str) -> None:
        """Make ``plugin_id`` the selected plugin (the run buttons act on it)."""
        ids = [p.id for p in self.plugins]
        if plugin_id not in ids:
            raise KeyError(plugin_id)
        self.list.setCurrentRow(ids.index(plugin_id))

    def _update_selection(self) -> None:
        spec = self.selected_plugin()
        image = self._mw.document.image
        self.card_label.setText(model_card_html(spec) if spec is not None else "")
        self.card_label.setToolTip(model_card_tooltip(spec) if spec is not None else "")
        self.card_label.setVisible(spec is not None)
        stack = image is not None and image.n_slices > 1
        self.run_image_button.setVisible(not stack)
        self.run_slice_button.setVisible(stack)
        self.run_stack_button.setVisible(stack)
        enabled = spec is not None and image is not None
        for button in (self.run_image_button, self.run_slice_button, self.run_stack_button):
            button.setEnabled(enabled)
        hint = "Open an image first" if image is None else ("Select a model" if spec is None else None)
        if hint:
            for button in (self.run_image_button, self.run_slice_button, self.run_stack_button):
                button.setToolTip(hint)
        else:
            self.run_image_button.setToolTip(f"Run {spec.name} on the open image")
            self.run_slice_button.setToolTip(f"Run {spec.name} on the slice shown")
            self.run_stack_button.setToolTip(f"Run {spec.name} on every slice (Cancel stops)")

    # -- running ----------------------------------------------------------------------------------
    @property
    def is_busy(self) -> bool:
        """A run is going on or waiting."""
        return self._job is not None or bool(self._queue)

    def run_default(self) -> None:
        """Double-click: the whole image for 2D, the shown slice for a stack."""
        image = self._mw.document.image
        self.run_selected("slice" if image is not None and image.n_slices > 1 else "image")

    def run_selected(self, scope: str = "image") -> None:
        """Run the selected plugin: ``scope`` is ``image`` (all slices), ``slice`` (the shown one) or
        ``stack`` (all slices)."""
        spec = self.selected_plugin()
        if spec is None:
            self._mw.show_status("Select a model first")
            return
        self.run_plugin(spec, scope)

    def run_plugin(self, spec: PluginSpec, scope: str = "image", *, reason: str = "button") -> None:
        """Queue a run of ``spec`` on the open image (see :meth:`run_selected` for ``scope``)."""
        image = self._mw.document.image
        if image is None:
            self._mw.show_status("Open an image first")
            return
        if scope not in ("image", "slice", "stack"):
            raise ValueError(f"scope must be image|slice|stack, got {scope!r}")
        slices = [int(self._mw.view_state.slice_index)] if scope == "slice" and image.n_slices > 1 else None
        self._queue.append(RunRequest(spec, image, slices, reason))
        self._start_next()

    def _start_next(self) -> None:
        if self._job is not None:
            self._update_progress_box()
            return
        while self._queue:
            request = self._queue.pop(0)
            if request.image is self._mw.document.image:
                break
        else:
            self._update_progress_box()
            return
        job = InferenceJob(request, self._mw.settings)
        job.session_ready.connect(self._on_session_ready)
        job.progressed.connect(self._on_progress)
        job.finished.connect(self._on_finished)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_cancelled)
        self._job = job
        self._jobs.append(job)
        self._failures.pop(request.spec.id, None)
        self._refresh_badge(request.spec.id)
        self.progress.setRange(0, 0)  # busy until the first step reports a total
        self.progress_label.set_full_text(f"{request.describe()}: "
                                          + ("loading the model…" if request.spec.id not in self._providers
                                             else "starting…"))
        self._update_progress_box()
        job.start()

    def _update_progress_box(self) -> None:
        self.progress_box.setVisible(self._job is not None)
        if self._job is not None and self._queue:
            self.progress.setFormat(f"%p%  (+{len(self._queue)} queued)")
        else:
            self.progress.setFormat("%p%")

    def cancel(self) -> None:
        """Stop the running job at its next slice/tile and drop the queued ones."""
        self._queue.clear()
        if self._job is not None:
            self._job.cancel()
            self.progress_label.set_full_text(f"{self._job.request.describe()}: cancelling…")
        self._update_progress_box()

    def _current(self, job) -> bool:
        return job is not None and job is self._job

    def _on_session_ready(self, provider: str) -> None:
        job = self.sender()
        if not self._current(job):
            return
        self._providers[job.request.spec.id] = provider
        self._refresh_badge(job.request.spec.id)
        self.progress_label.set_full_text(f"{job.request.describe()}: running on {short_provider(provider)}…")

    def _on_progress(self, done: int, total: int, message: str) -> None:
        if not self._current(self.sender()):
            return
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(done, total))
        self.progress_label.set_full_text(f"{message} · {self._job.request.spec.name}")  # the news first

    def _finish(self) -> InferenceJob | None:
        job = self.sender()
        if job in self._jobs:
            self._jobs.remove(job)
        if not self._current(job):
            return None
        self._job = None
        return job

    def _on_finished(self, result) -> None:
        job = self._finish()
        if job is None:
            return
        request = job.request
        self._refresh_badge(request.spec.id)
        if request.image is not self._mw.document.image:  # the user opened another image meanwhile
            self._mw.show_status(f"{request.describe()}: result discarded, another image is open now")
        else:
            self.last_result = result
            self._mw.document.add_result(result, name=f"Run {request.spec.name}")
            provider = short_provider(getattr(result.info, "provider", "") or job.provider or "")
            self.last_message = (f"{request.describe()}: {summarize(result)} · {job.seconds:.2f} s on {provider}")
            self._last_ok = True
            self._mw.show_status(self.last_message)
        self._update_result_box()
        self._start_next()
        self._update_progress_box()

    def _on_failed(self, message: str) -> None:
        job = self._finish()
        if job is None:
            return
        self._failures[job.request.spec.id] = message
        self._refresh_badge(job.request.spec.id)
        self.last_message = message
        self._last_ok = False
        self._mw.show_error(message)
        self._update_result_box()
        self._start_next()
        self._update_progress_box()

    def _on_cancelled(self, message: str) -> None:
        job = self._finish()
        if job is None:
            return
        self._refresh_badge(job.request.spec.id)
        if job.request.image is not self._mw.document.image:
            message = f"{job.request.describe()}: stopped, another image was opened"
        self.last_message = message
        self._last_ok = False
        self._mw.show_status(message)
        self._update_result_box()
        self._start_next()
        self._update_progress_box()

    def shutdown(self) -> None:
        """The window is closing: cancel everything and stop listening to the jobs."""
        self._queue.clear()
        for job in list(self._jobs):
            job.cancel()
            for signal in (job.session_ready, job.progressed, job.finished, job.failed, job.cancelled):
                try:
                    signal.disconnect()
                except (RuntimeError, TypeError):  # already disconnected
                    pass
        self._job = None
        self._jobs.clear()

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802
        if watched is self._mw and event.type() == QtCore.QEvent.Type.Close:
            self.shutdown()
        return False

    # -- results ----------------------------------------------------------------------------------
    def _update_result_box(self) -> None:
        result = self.last_result
        present = result is not None and any(r is result for r in self._mw.document.results)
        if result is not None and not present and self._mw.document.image is None:
            self.last_result = None
        # errors can hold long paths and checksums: keep the dock narrow, the banner has the full line
        text = self.last_message
        self.result_label.setText(html.escape(text if len(text) <= 160 else text[:157] + "…"))
        self.result_label.setToolTip(text)
        self.result_label.setVisible(bool(text))
        self.apply_box.setVisible(present and self._last_ok and isinstance(result, SegmentationResult))

    def apply_last_segmentation(self, policy: str) -> bool:
        """Write the last segmentation result into the label map (``merge`` or ``replace``); one undo step.

        ``replace`` asks for a confirmation first when the label map holds anything. Returns whether the
        label map was written.
        """
        result = self.last_result
        labels = self._mw.document.labels
        if not isinstance(result, SegmentationResult) or labels is None:
            return False
        if not any(r is result for r in self._mw.document.results):
            self._mw.show_status("That result was removed; run the model again")
            return False
        if policy == "replace" and labels.data.any():
            answer = QtWidgets.QMessageBox.question(
                self, "Replace the label map",
                f"Replace the whole label map by the segmentation of {result.info.plugin_name}?\n"
                "Every label painted so far is overwritten (Undo brings it back).",
                QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.Cancel,
                QtWidgets.QMessageBox.StandardButton.Cancel)
            if answer != QtWidgets.QMessageBox.StandardButton.Yes:
                return False
        self._mw.apply_segmentation(result, policy)
        return True

    # -- run on drop ------------------------------------------------------------------------------
    def set_run_on_drop(self, plugin_id: str, enabled: bool) -> None:
        """Add/remove ``plugin_id`` from ``Settings.run_on_drop`` and save the settings."""
        settings = self._mw.settings
        ids = [i for i in settings.run_on_drop if i != plugin_id]
        if enabled:
            ids.append(plugin_id)
        if ids == settings.run_on_drop:
            return
        settings.run_on_drop = ids
        card = self.cards.get(plugin_id)
        if card is not None and card.drop_check.isChecked() != enabled:
            card.drop_check.blockSignals(True)
            card.drop_check.setChecked(enabled)
            card.drop_check.blockSignals(False)
        if getattr(self._mw, "_persist", True):  # screenshots and tests run with persist=False
            try:
                save_settings(settings)
            except (OSError, WorkbenchError) as exc:
                self._mw.show_error(f"settings not saved: {exc}")
        self._mw.show_status(f"{plugin_id}: run on drop {'on' if enabled else 'off'}")

    def _on_image_changed(self) -> None:
        image = self._mw.document.image
        # runs of the previous image are of no use any more
        self._queue = [r for r in self._queue if r.image is image]
        if self._job is not None and self._job.request.image is not image:
            self._job.cancel()
        self.last_result = None
        self.last_message = ""
        self._last_ok = False
        self._update_result_box()
        self._update_selection()
        if image is not None and self._mw.settings.run_on_drop:
            # after the other views handled the new image (the view state picks the shown slice)
            QtCore.QTimer.singleShot(0, lambda img=image: self._run_on_drop(img))

    def _run_on_drop(self, image) -> None:
        if image is not self._mw.document.image:
            return
        by_id = {p.id: p for p in self.plugins}
        missing = [i for i in self._mw.settings.run_on_drop if i not in by_id]
        if missing:
            self._mw.show_status(f"run on drop: plugin {', '.join(missing)} not installed, skipped")
        for plugin_id in self._mw.settings.run_on_drop:
            if plugin_id in by_id:
                self.run_plugin(by_id[plugin_id], "slice" if image.n_slices > 1 else "image", reason="drop")


def create_dock(main_window) -> QtWidgets.QDockWidget:
    """Registry factory (see :mod:`workbench.gui.panels`)."""
    panel = ModelsPanel(main_window)
    # right, above the Results/Tools tabs (not tabbed with them): run here, read the result just below
    dock = make_dock(main_window, "Models", "ModelsDock", panel, area="right")
    dock.setProperty("tabify", False)
    dock.panel = panel
    return dock


__all__ = ["ModelsPanel", "PluginCard", "create_dock", "model_card_html", "summarize"]
