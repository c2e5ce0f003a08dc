"""The Tools dock's "AI click" tab: the promptable model, the overwrite rule, Accept/Discard and the status
of :class:`~workbench.gui.tools.ai_click.AIClickController` (which does the work)."""
from __future__ import annotations

from ...qt import QtWidgets
from ...tools.ai_click import AIClickController


def promptable_plugins() -> list:
    """The installed ``task: promptable`` plugins (bundled first), skipping broken ones."""
    from ....inference.registry import discover_plugins

    found = discover_plugins(entry_points=False)
    return [p for p in found.plugins if p.task == "promptable"]


class AIClickSection:
    """Mixin-free helper owned by the ToolsPanel: ``panel.ai_click`` is the controller, this builds its tab."""

    def __init__(self, panel) -> None:
        self.panel = panel
        self.controller = AIClickController(panel.canvas, panel.options,
                                            lambda text, error=False: panel._message(text, error=error), panel)
        self.widget = QtWidgets.QWidget()
        grid = QtWidgets.QGridLayout(self.widget)
        self.model_combo = QtWidgets.QComboBox()
        self.model_combo.setToolTip("The promptable model (task: promptable) the AI click tool runs")
        self.model_combo.currentIndexChanged.connect(self._on_model)
        grid.addWidget(QtWidgets.QLabel("Model"), 0, 0)
        grid.addWidget(self.model_combo, 0, 1, 1, 2)
        self.overwrite_check = QtWidgets.QCheckBox("Overwrite other labels (use Paint over)")
        self.overwrite_check.setToolTip("Off: Accept paints only unlabelled pixels (and the current label), "
                                        "never manual labels. On: the Paint over rule applies.")
        self.overwrite_check.toggled.connect(self._on_overwrite)
        grid.addWidget(self.overwrite_check, 1, 0, 1, 3)
        self.accept_button = QtWidgets.QPushButton("Accept (Enter)")
        self.accept_button.clicked.connect(self.controller.accept)
        self.discard_button = QtWidgets.QPushButton("Discard (Esc)")
        self.discard_button.clicked.connect(self.controller.discard)
        grid.addWidget(self.accept_button, 2, 1)
        grid.addWidget(self.discard_button, 2, 2)
        hint = QtWidgets.QLabel("Left click: include · right click or Shift+click: exclude · drag: box")
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        grid.addWidget(hint, 3, 0, 1, 3)
        self.status = QtWidgets.QLabel()
        self.status.setObjectName("hint")
        self.status.setWordWrap(True)
        grid.addWidget(self.status, 4, 0, 1, 3)
        grid.setColumnStretch(1, 1)
        grid.setRowStretch(5, 1)
        self.controller.changed.connect(self._refresh)
        self.reload_models()

    def reload_models(self) -> None:
        self.plugins = promptable_plugins()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for p in self.plugins:
            self.model_combo.addItem(f"{p.name} ({p.id})", p.id)
        self.model_combo.blockSignals(False)
        self._on_model(self.model_combo.currentIndex())

    def use_plugin(self, spec) -> None:
        """Add ``spec`` (e.g. a plugin folder the user opened, or a test's) to the list and select it."""
        self.plugins.append(spec)
        self.model_combo.addItem(f"{spec.name} ({spec.id})", spec.id)
        self.model_combo.setCurrentIndex(self.model_combo.count() - 1)

    def _on_model(self, index: int) -> None:
        self.controller.set_plugin(self.plugins[index] if 0 <= index < len(self.plugins) else None)
        self._refresh()

    def _on_overwrite(self, on: bool) -> None:
        self.controller.overwrite_others = bool(on)

    def _refresh(self) -> None:
        c = self.controller
        self.status.setText(c.status if c.spec is not None else "No promptable model installed")
        self.accept_button.setEnabled(c.has_preview)
        self.discard_button.setEnabled(c.has_preview or bool(c.prompt.clicks))
