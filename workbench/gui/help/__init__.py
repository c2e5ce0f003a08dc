"""Help: the keyboard shortcuts table (:mod:`.shortcuts`, generated from the window's actions and tools), the
offline user guide (:mod:`.guide`, docs/USER_GUIDE.md as package data) and their dialogs (:mod:`.dialogs`)."""
from __future__ import annotations

from ..qt import QtGui, QtWidgets


def install_help(window: QtWidgets.QMainWindow, help_menu: QtWidgets.QMenu | None) -> None:
    """Add Help > User guide (F1) and Help > Keyboard shortcuts above About."""
    if help_menu is None:
        return
    from .dialogs import show_shortcuts, show_user_guide

    first = help_menu.actions()[0] if help_menu.actions() else None
    guide = QtGui.QAction("&User guide", window)
    guide.setShortcut(QtGui.QKeySequence(QtGui.QKeySequence.StandardKey.HelpContents))
    guide.setStatusTip("The user guide, offline")
    guide.triggered.connect(lambda: show_user_guide(window))
    keys = QtGui.QAction("&Keyboard shortcuts", window)
    keys.setShortcut(QtGui.QKeySequence("Ctrl+/"))
    keys.setStatusTip("Every keyboard shortcut of the window")
    keys.triggered.connect(lambda: show_shortcuts(window))
    help_menu.insertAction(first, guide)
    help_menu.insertAction(first, keys)
    if first is not None:
        help_menu.insertSeparator(first)
    window.user_guide_action = guide
    window.shortcuts_action = keys


__all__ = ["install_help"]
