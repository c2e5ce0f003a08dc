"""The Tools dock's "AI click" tab: the promptable model, the overwrite rule, Accept/Discard and the status
of :class:`~workbench.gui.tools.ai_click.AIClickController` (which does the work)."""
from __future__ import annotations

import numpy as np

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
        self.propagate_button = QtWidgets.QPushButton("Propagate")
        self.propagate_button.setToolTip("Segment the neighbouring slices from the current label on this slice "
                                         "(its centre and box as prompts) until the object vanishes")
        self.propagate_button.clicked.connect(self.propagate)
        grid.addWidget(self.propagate_button, 5, 1, 1, 2)
        hint = QtWidgets.QLabel("Left click: include · right click or Shift+click: exclude · drag: box")
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        grid.addWidget(hint, 3, 0, 1, 3)

        self.status = QtWidgets.QLabel()
        self.status.setObjectName("hint")
        self.status.setWordWrap(True)
        grid.addWidget(self.status, 4, 0, 1, 3)
        grid.setColumnStretch(1, 1)
        grid.setRowStretch(6, 1)
        self.controller.changed.connect(self._refresh)
        # a preview belongs to its slice: moving to another slice drops it
        panel._mw.view_state.slice_changed.connect(self._on_slice)
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

    def select(self, spec) -> None:
        """Make ``spec`` the AI click tool's model (adding it when not listed) and activate the tool."""
        ids = [p.id for p in self.plugins]
        if spec.id in ids and self.plugins[ids.index(spec.id)].model_path == spec.model_path:
            self.model_combo.setCurrentIndex(ids.index(spec.id))
        else:
            self.use_plugin(spec)
        self.panel.activate_tool("ai")

    def _on_model(self, index: int) -> None:
        self.controller.set_plugin(self.plugins[index] if 0 <= index < len(self.plugins) else None)
        self._refresh()

    def propagate(self) -> None:
        """Run the model on the next and previous slices, seeded from the current label on this slice, in a
        worker (progress and Cancel in the dock); all slices are written as one undo step."""
        from ....inference.promptable.propagate import propagate
        from ....inference.promptable.run import prompt_session

        panel, c = self.panel, self.controller
        image, labels = panel.document.image, panel.document.labels
        if image is None or labels is None or c.spec is None:
            return
        if c.has_preview:
            c.accept()
        z, value = panel._mw.view_state.slice_index, panel.options.label
        seed = labels.data[z] == value
        if image.n_slices < 2 or not seed.any():
            panel._message(f"propagate: label {value} is empty on this slice" if image.n_slices > 1
                           else "propagate: the image has one slice", error=True)
            return
        spec = c.spec

        def run(progress, cancelled):
            return propagate(prompt_session(spec), image, seed, z, progress=progress, cancelled=cancelled)

        def done(masks: dict) -> None:
            value, overwrite, selected = c.paint_rule()
            h, w = labels.shape[1:]
            if masks:
                with labels.edit(f"AI propagate (label {value})") as e:
                    for k, m in sorted(masks.items()):
                        e.paint((slice(k, k + 1), slice(0, h), slice(0, w)), m[np.newaxis], value,
                                overwrite=overwrite, selected=selected)
            panel._message(f"propagate: label {value} on {len(masks)} more slice(s)"
                           + (f" ({min(masks)}..{max(masks)})" if masks else ""))

        panel._start_job(run, done, "propagate")

    def _on_slice(self, _z: int) -> None:
        self.controller.discard()

    def _on_overwrite(self, on: bool) -> None:
        self.controller.overwrite_others = bool(on)

    def _refresh(self) -> None:
        c = self.controller
        self.status.setText(c.status if c.spec is not None else "No promptable model installed")
        self.accept_button.setEnabled(c.has_preview)
        self.discard_button.setEnabled(c.has_preview or bool(c.prompt.clicks))
