"""The widgets of the plugin list: one :class:`PluginCard` per plugin (name, version, task, provider badge,
description, "Run on drop"), the model-card text and tooltip.
"""
from __future__ import annotations

import html

from ....inference.spec import PluginSpec
from ...qt import Qt, QtGui, QtWidgets, Signal

_TASK_COLORS = {"classification": "#8e6bd1", "segmentation": "#2f9e6e", "detection": "#d0782a",
                "restoration": "#3a86c8"}


# badge states -> (background, text colour); readable on the dark and the light theme
_BADGE_STYLES = {"idle": ("rgba(128,128,128,0.22)", None), "loading": ("rgba(214,160,40,0.35)", None),
                 "ready": ("#2e7d4f", "#ffffff"), "error": ("#b03a3a", "#ffffff"),
                 "fallback": ("#b7791f", "#ffffff")}  # GPU wanted, CPU used (gpu_badge.py)


def short_provider(provider: str) -> str:
    """``"CUDAExecutionProvider"`` -> ``"CUDA"``."""
    return provider.replace("ExecutionProvider", "") or provider


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
        """``state``: ``idle`` (no session yet), ``loading``, ``ready``, ``fallback`` or ``error``."""
        background, foreground = _BADGE_STYLES[state]
        fg = f"color: {foreground};" if foreground else ""
        self.badge.setStyleSheet(f"background: {background}; {fg} border-radius: 7px; padding: 0px 6px;"
                                 "font-size: 11px;")
        self.badge.setText(text)
        self.badge.setToolTip(tooltip or {"idle": "No session yet: the model loads on its first run",
                                          "loading": "Creating the ONNX Runtime session…",
                                          "ready": "The execution provider this session really uses",
                                          "error": "The last run failed",
                                          "fallback": "The GPU was wanted; the session runs on CPU"}[state])
        self.badge_state = state
