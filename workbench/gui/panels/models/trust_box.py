"""The "Trust code" box on the Models dock's card of a plugin that ships its own decoder.

Checking it asks for confirmation with a clear warning (the plugin's .py files run with the user's rights),
then records the plugin's content hash through :func:`workbench.inference.trust.trust_plugin` -- the same
record `workbench models trust` writes. Unchecking withdraws it. A plugin whose files changed since it was
trusted shows an unchecked box marked "changed".
"""
from __future__ import annotations

import html

from ....core.errors import WorkbenchError
from ....inference.spec import PluginSpec
from ...qt import QtWidgets

_STYLE = ("QCheckBox::indicator { width: 11px; height: 11px; border: 1px solid #7d8087; border-radius: 2px; }"
          "QCheckBox::indicator:checked { background: #c0392b; border-color: #c0392b; }")


def warning_text(spec: PluginSpec) -> str:
    """What the confirmation says: which code runs, with whose rights, and when the trust ends."""
    from ....inference.trust import _code_files

    files = [p.relative_to(spec.folder).as_posix() for p in _code_files(spec.folder)]
    return (f"<b>{html.escape(spec.name)}</b> ships Python code ({html.escape(', '.join(files) or 'none')}) "
            f"that decodes its model's outputs. Trusting it lets this code run with <b>your</b> rights every "
            "time the model is used: it can read, change or send any file you can.<br><br>"
            f"Trust it only if you trust where it comes from ({html.escape(str(spec.folder))}). Any change to "
            "the plugin's files withdraws the trust.")


def confirm_trust(parent: QtWidgets.QWidget | None, spec: PluginSpec) -> bool:
    """Ask before trusting (tests replace this function)."""
    box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Warning, "Trust plugin code?", warning_text(spec),
                                QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.No,
                                parent)
    box.setDefaultButton(QtWidgets.QMessageBox.StandardButton.No)
    box.button(QtWidgets.QMessageBox.StandardButton.Yes).setText("Trust and allow code")
    return box.exec() == QtWidgets.QMessageBox.StandardButton.Yes


class TrustCheckBox(QtWidgets.QCheckBox):
    """Checked = the plugin's current content is trusted (``Settings.trusted_code``)."""

    def __init__(self, spec: PluginSpec, main_window, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Trust code", parent)
        self.spec = spec
        self._mw = main_window
        self.setStyleSheet(_STYLE)
        self.refresh()
        self.toggled.connect(self._on_toggled)

    def refresh(self) -> None:
        """Show the recorded state (hashes the plugin only when a record for it exists)."""
        from ....inference.trust import trust_state

        try:
            state = trust_state(self.spec, self._mw.settings)
        except WorkbenchError:
            state = "untrusted"
        self.blockSignals(True)
        self.setChecked(state == "trusted")
        self.blockSignals(False)
        self.setText("Trust code (changed)" if state == "changed" else "Trust code")
        self.setToolTip({
            "trusted": "This plugin's own Python code may run (its files are unchanged since you trusted them)."
                       " Uncheck to withdraw.",
            "changed": "You trusted this plugin, but its files changed since: its code does not run until "
                       "you trust it again.",
            "untrusted": "This plugin ships Python code (output.decoder); it runs only after you trust it."}[state])
        self.state = state

    def _on_toggled(self, on: bool) -> None:
        from ....inference.trust import trust_plugin, untrust_plugin

        save = getattr(self._mw, "_persist", True)  # screenshots and tests run with persist=False
        try:
            if on:
                if not confirm_trust(self.window(), self.spec):
                    self.refresh()
                    return
                trust_plugin(self.spec, self._mw.settings, save=save)
            else:
                untrust_plugin(self.spec, self._mw.settings, save=save)
        except (OSError, WorkbenchError) as exc:
            self._mw.show_error(f"{self.spec.id}: trust not changed: {exc}")
        self.refresh()
        self._mw.show_status(f"{self.spec.id}: code {'trusted' if self.state == 'trusted' else 'not trusted'}")


def attach_trust_box(card: QtWidgets.QWidget, spec: PluginSpec, main_window) -> TrustCheckBox | None:
    """Add the box under a plugin card's rows when the plugin has a custom decoder; returns it."""
    if spec.output.decoder is None:
        return None
    box = TrustCheckBox(spec, main_window, card)
    card.layout().addWidget(box)
    card.trust_check = box
    return box
