"""The Models dock (:class:`ModelsPanel`): the plugin list, the selection and its model card; running is the
:class:`~.runs.RunsSection` mixin.
"""
from __future__ import annotations

from ....core.errors import WorkbenchError
from ....inference.spec import PluginSpec
from ...inference_worker import InferenceJob, RunRequest
from ...qt import Qt, QtCore, QtWidgets
from ..base import make_dock
from .cards import ElidedLabel, PluginCard, model_card_html, model_card_tooltip
from .gpu_badge import provider_badge
from .runs import RunsSection
from .trust_box import attach_trust_box


class ModelsPanel(RunsSection, QtWidgets.QWidget):
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
        from ....inference.registry import discover_plugins
        from ....inference.session import cached_sessions

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
        from ....inference.registry import user_plugins_dir

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
            card.set_provider_state(*provider_badge(card.spec.runtime.providers, self._providers[plugin_id]))
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
        volumetric = spec is not None and spec.input.is_volumetric  # 3-D models run on the whole volume
        self.run_slice_button.setVisible(stack and not volumetric)
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

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802
        if watched is self._mw and event.type() == QtCore.QEvent.Type.Close:
            self.shutdown()
        return False


def create_dock(main_window) -> QtWidgets.QDockWidget:
    """Registry factory (see :mod:`workbench.gui.panels`)."""
    panel = ModelsPanel(main_window)
    # right, above the Results/Tools tabs (not tabbed with them): run here, read the result just below
    dock = make_dock(main_window, "Models", "ModelsDock", panel, area="right")
    dock.setProperty("tabify", False)
    return dock


__all__ = ["ModelsPanel", "create_dock"]
