"""The main toolbar: the common actions (open, save session, undo/redo, run model, export, zoom to fit) and
every canvas tool of the window's :mod:`tool registry <.tool_registry>`, each with an icon and a tooltip
naming its shortcut.

The actions are the menus' own ``QAction`` objects (one shortcut, one enabled state); the tool part is
rebuilt whenever a dock registers a tool, so a new tool appears without an edit here.
"""
from __future__ import annotations

from .icons import icon
from .qt import Qt, QtCore, QtGui, QtWidgets
from .tool_registry import tool_registry, tooltip

TOOLBAR_NAME = "MainToolBar"
RUN_MODEL_SHORTCUT = "F5"


def _plain(text: str) -> str:
    return text.replace("&", "").rstrip("…").strip()


class MainToolBar(QtWidgets.QToolBar):
    """The toolbar of :class:`~.main_window.MainWindow` (see the module docstring)."""

    def __init__(self, window) -> None:
        super().__init__("Main toolbar", window)
        self._window = window
        self.setObjectName(TOOLBAR_NAME)
        self.setIconSize(QtCore.QSize(20, 20))
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.setFloatable(False)
        self.run_model_action = self._make_run_action()
        # (action, icon, tip): the tip is what the tooltip says after the name and the shortcut
        session = window.session
        self.common: list[tuple[QtGui.QAction, str, str]] = [
            (window.open_action, "open", "open an image, a DICOM file or a session"),
            (session.save_action, "save", "save the session (labels, results, view)"),
            (window.undo_action, "undo", ""),
            (window.redo_action, "redo", ""),
            (self.run_model_action, "run", "run the model selected in the Models dock on the open image"),
            (session.export_mask_action, "export", "write the whole label map (PNG, NIfTI/TIFF, DICOM SEG)"),
            (window.zoom_fit_action, "zoom_fit", "show the whole image"),
        ]
        for action, name, _tip in self.common:
            action.setIcon(icon(name, window))
            self.addAction(action)
        self._tips = {id(a): tip for a, _n, tip in self.common}
        self.refresh_tooltips()
        window.document.undo.changed.connect(self.refresh_tooltips)
        self._tool_actions: list[QtGui.QAction] = []
        self._separators: list[QtGui.QAction] = []
        registry = tool_registry(window)
        registry.changed.connect(self.rebuild_tools)
        self.rebuild_tools()

    def _make_run_action(self) -> QtGui.QAction:
        window = self._window
        action = QtGui.QAction("Run model", window)
        action.setObjectName("run_model")
        action.setShortcut(QtGui.QKeySequence(RUN_MODEL_SHORTCUT))
        action.setStatusTip("Run the model selected in the Models dock on the open image")
        action.setProperty("help_group", "Models")
        action.triggered.connect(self.run_model)
        window.addAction(action)
        window.document.image_changed.connect(
            lambda: action.setEnabled(window.document.image is not None))
        action.setEnabled(window.document.image is not None)
        return action

    def run_model(self) -> None:
        """Run the Models dock's selected plugin on the open image (the dock shows progress and Cancel)."""
        dock = self._window.docks.get("ModelsDock")
        panel = getattr(dock, "panel", None)
        if panel is None or self._window.document.image is None:
            return
        dock.show()
        dock.raise_()
        panel.run_selected("image")

    def refresh_tooltips(self, *_args) -> None:
        for action, _name, _tip in self.common:
            action.setToolTip(tooltip(_plain(action.text()), self._tips.get(id(action), ""), action.shortcut()))

    def rebuild_tools(self) -> None:
        """(Re)build the tool buttons from the registry: one group per ``entry.group``, separated."""
        for action in self._tool_actions + self._separators:
            self.removeAction(action)
        self._tool_actions, self._separators = [], []
        group = None
        for entry in tool_registry(self._window).entries:
            if entry.group != group:
                self._separators.append(self.addSeparator())
                group = entry.group
            self.addAction(entry.action)
            self._tool_actions.append(entry.action)

    def recolour(self) -> None:
        """Redraw every icon in the current palette's text colour (after a theme switch)."""
        # the toolbar's own palette: at its PaletteChange it is the new one (the window's may not be yet)
        for action, name, _tip in self.common:
            action.setIcon(icon(name, self))
        for entry in tool_registry(self._window).entries:
            entry.action.setIcon(icon(entry.icon, self))

    def changeEvent(self, event: QtCore.QEvent) -> None:  # noqa: N802 (Qt API)
        super().changeEvent(event)
        if event.type() == QtCore.QEvent.Type.PaletteChange:
            self.recolour()

    @property
    def tool_keys(self) -> list[str]:
        """The registry keys shown on the toolbar, in order (tests)."""
        names = {id(e.action): e.key for e in tool_registry(self._window).entries}
        return [names[id(a)] for a in self._tool_actions]


def install_toolbar(window) -> MainToolBar:
    """Add the main toolbar to the top of ``window``; View > Toolbar shows/hides it."""
    bar = MainToolBar(window)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
    return bar


__all__ = ["MainToolBar", "RUN_MODEL_SHORTCUT", "TOOLBAR_NAME", "install_toolbar"]
