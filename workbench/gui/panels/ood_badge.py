"""The Results dock's "outside what it was made for" badge (issue 20): a small amber label over the
results when the shown result's image falls outside its plugin's ``meta.expects``; the reasons are in
its tooltip. It only reads ``result.info.warnings`` (filled by the engine, inference/expects.py)."""
from __future__ import annotations

from typing import Any

from ..qt import QtWidgets

_STYLE = ("QLabel { background: #8a5a00; color: white; border-radius: 4px; padding: 2px 6px; "
          "font-weight: bold; }")


class OodBadge(QtWidgets.QLabel):
    """Shown for a result with warnings, hidden otherwise."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("oodBadge")
        self.setStyleSheet(_STYLE)
        self.setWordWrap(True)
        self.hide()

    def show_for(self, result: Any) -> None:
        """Show the badge for ``result`` (a model result or ``None``)."""
        info = getattr(result, "info", None)
        reasons = list(getattr(info, "warnings", None) or [])
        if not reasons:
            self.hide()
            self.setToolTip("")
            return
        self.setText(f"\u26a0 Outside what {info.plugin_id} was made for")
        self.setToolTip(f"This image is outside what {info.plugin_name} ({info.plugin_id}) was made for "
                        "(the plugin's meta.expects); treat the result with caution:\n"
                        + "\n".join(f"\u2022 {r}" for r in reasons))
        self.show()
