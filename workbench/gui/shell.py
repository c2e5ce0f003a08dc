"""The window's shell around the image (issue 15 item 4), installed by one call from the main window:
the main toolbar, the default dock layout with View > Reset layout, View > Overlay text, and Help."""
from __future__ import annotations

from ..core.settings import config_dir
from .canvas import CanvasWidget
from .help import install_help
from .layout import install_layout
from .qt import QtCore, QtGui, QtWidgets
from .toolbar import install_toolbar

OVERLAY_TEXT_SHORTCUT = "Ctrl+T"
_OVERLAY_KEY = "view/overlay_text"


def menus_by_title(window: QtWidgets.QMainWindow) -> dict[str, QtWidgets.QMenu]:
    """The menu bar's menus by title (no "&"). Found as the bar's child QMenus, not through QAction.menu():
    with PySide6 6.9 (the glibc-2.31 clinic build) the wrapper QAction.menu() returns can already be dead
    ("Internal C++ object (QMenu) already deleted")."""
    direct = QtCore.Qt.FindChildOption.FindDirectChildrenOnly
    return {m.title().replace("&", ""): m for m in window.menuBar().findChildren(QtWidgets.QMenu, options=direct)}


def _prefs(window) -> QtCore.QSettings | None:
    # beside the saved dock layout (window.ini); windows that persist nothing (tests, screenshots) keep none
    if not getattr(window, "_persist", False):
        return None
    return QtCore.QSettings(str(config_dir() / "window.ini"), QtCore.QSettings.Format.IniFormat)


def canvases(window) -> list[CanvasWidget]:
    """Every image view of the window (one today; the multi-view area adds more)."""
    return window.findChildren(CanvasWidget)


def install_overlay_toggle(window, view_menu: QtWidgets.QMenu | None) -> QtGui.QAction:
    """View > Overlay text: shows/hides the corner text of every view; the series description follows
    File > Keep patient identity (the de-identification setting of the exports)."""
    prefs = _prefs(window)
    on = True if prefs is None else str(prefs.value(_OVERLAY_KEY, "true")).lower() != "false"
    action = QtGui.QAction("Overlay &text", window)
    action.setObjectName("overlay_text")
    action.setCheckable(True)
    action.setChecked(on)
    action.setShortcut(QtGui.QKeySequence(OVERLAY_TEXT_SHORTCUT))
    action.setStatusTip("Modality, series, slice, window/level and zoom in the corners of the image")

    def apply(checked: bool) -> None:
        for canvas in canvases(window):
            canvas.overlay_text.set_enabled(checked)
        if prefs is not None:
            prefs.setValue(_OVERLAY_KEY, "true" if checked else "false")

    def identity(keep: bool) -> None:
        for canvas in canvases(window):
            canvas.overlay_text.set_keep_identity(keep)

    action.toggled.connect(apply)
    keep = getattr(getattr(window, "session", None), "keep_identity_action", None)
    if keep is not None:
        keep.toggled.connect(identity)
        identity(keep.isChecked())
    apply(on)
    if view_menu is not None:
        view_menu.addSeparator()
        view_menu.addAction(action)
    else:
        window.addAction(action)
    window.overlay_text_action = action
    return action


def install_shell(window) -> None:
    """Toolbar, overlay text toggle, default layout + Reset layout, Help > User guide / Keyboard shortcuts."""
    menus = menus_by_title(window)
    window.toolbar = install_toolbar(window)
    install_overlay_toggle(window, menus.get("View"))
    install_layout(window, menus.get("View"))
    install_help(window, menus.get("Help"))


__all__ = ["OVERLAY_TEXT_SHORTCUT", "canvases", "install_overlay_toggle", "install_shell"]
