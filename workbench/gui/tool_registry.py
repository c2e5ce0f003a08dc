"""The window's registry of canvas tools: one entry (and one ``QAction``) per tool, whoever provides it.

A dock that offers a canvas tool registers it once::

    from ..tool_registry import tool_registry
    tool_registry(main_window).add("ruler", "Ruler", "Drag to measure a distance", shortcut="L",
                                   activate=lambda: ..., tool=lambda: self.tool, icon="ruler")

The registry makes the tool's ``QAction`` (checkable, its shortcut on the window, the shortcut in its
tooltip) and emits :attr:`ToolRegistry.changed`; the main toolbar (:mod:`.toolbar`) and the keyboard
shortcuts table (:mod:`.help.shortcuts`) are generated from it, so a tool added by a new dock shows up in
both without touching them. The checked action follows the canvas' active tool (``canvas.tool_changed``),
however the tool was chosen (toolbar, dock button, shortcut, Esc).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from psygnal import Signal

from .qt import Qt, QtGui, QtWidgets


@dataclass
class ToolEntry:
    """One registered tool.

    Attributes
    ----------
    key : str
        Stable identifier (``"brush"``, ``"ruler"``...).
    text, tip : str
        Short name (toolbar, menus) and one-line description (tooltip, status tip).
    shortcut : str or None
        Key sequence (portable text, e.g. ``"B"``), or ``None``.
    action : QAction
        The tool's action: checkable, triggers ``activate``.
    activate : callable
        Makes the tool the canvas tool (and shows its options).
    tool : callable
        Returns the :class:`~.tools.base.CanvasTool` object this entry activates (``None``: navigation), so the
        checked state can follow the canvas.
    icon : str
        Name of an icon of :mod:`.icons`.
    group : str
        Toolbar group (``"navigate"``, ``"paint"``, ``"measure"``...): a separator goes between groups.
    """

    key: str
    text: str
    tip: str
    shortcut: str | None
    action: QtGui.QAction
    activate: Callable[[], Any]
    tool: Callable[[], Any]
    icon: str
    group: str


def tooltip(text: str, tip: str, shortcut: QtGui.QKeySequence | str | None) -> str:
    """``"Brush (B): paint the current label"``: the name, the shortcut as the user types it, the tip."""
    seq = shortcut if isinstance(shortcut, QtGui.QKeySequence) else QtGui.QKeySequence(shortcut or "")
    keys = seq.toString(QtGui.QKeySequence.SequenceFormat.NativeText)
    head = f"{text} ({keys})" if keys else text
    return f"{head}: {tip}" if tip else head


class ToolRegistry:
    """The tools of one main window, in registration order (see the module docstring)."""

    changed = Signal()

    def __init__(self, window: QtWidgets.QMainWindow) -> None:
        self._window = window
        self._entries: dict[str, ToolEntry] = {}

    @property
    def entries(self) -> list[ToolEntry]:
        return list(self._entries.values())

    def get(self, key: str) -> ToolEntry | None:
        return self._entries.get(key)

    def add(self, key: str, text: str, tip: str, *, activate: Callable[[], Any], tool: Callable[[], Any],
            shortcut: str | None = None, icon: str | None = None, group: str = "tools") -> QtGui.QAction:
        """Register a tool and return its action (see :class:`ToolEntry` for the arguments).

        Raises
        ------
        ValueError
            If ``key`` is registered already (two docks claiming one tool is a programming error).
        """
        if key in self._entries:
            raise ValueError(f"tool {key!r} is registered twice")
        action = QtGui.QAction(text, self._window)
        action.setObjectName(f"tool_{key}")
        action.setCheckable(True)
        if shortcut:
            action.setShortcut(QtGui.QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setToolTip(tooltip(text, tip, shortcut))
        action.setStatusTip(tip)
        action.setProperty("help_group", "Tools")
        action.triggered.connect(lambda _checked=False: self._trigger(key))
        self._window.addAction(action)  # the shortcut works with the toolbar hidden
        entry = ToolEntry(key, text, tip, shortcut, action, activate, tool, icon or key, group)
        self._entries[key] = entry
        from .icons import icon as make_icon

        action.setIcon(make_icon(entry.icon, self._window))
        self.sync()
        self.changed.emit()
        return action

    def _trigger(self, key: str) -> None:
        self._entries[key].activate()
        self.sync()

    def active_key(self) -> str | None:
        """The key of the entry whose tool the canvas has active (``None`` if no entry's)."""
        current = getattr(self._window, "canvas", None)
        current_tool = getattr(current, "tool", None)
        navigation = None
        for entry in self._entries.values():
            tool = entry.tool()
            if tool is None:
                navigation = entry.key
            elif tool is current_tool:
                return entry.key
        from .tools.base import NavigationTool

        return navigation if isinstance(current_tool, NavigationTool) else None

    def sync(self, *_args: Any) -> None:
        """Check the action of the active tool, uncheck the others."""
        active = self.active_key()
        for entry in self._entries.values():
            entry.action.blockSignals(True)
            entry.action.setChecked(entry.key == active)
            entry.action.blockSignals(False)


def tool_registry(window: QtWidgets.QMainWindow) -> ToolRegistry:
    """The registry of ``window``, created on first use (bound to ``window.canvas.tool_changed``)."""
    registry = getattr(window, "_tool_registry", None)
    if registry is None:
        registry = ToolRegistry(window)
        window._tool_registry = registry  # type: ignore[attr-defined]
        canvas = getattr(window, "canvas", None)
        signal = getattr(canvas, "tool_changed", None)
        if signal is not None:
            signal.connect(registry.sync)
    return registry


def register_tool(window: QtWidgets.QMainWindow, key: str, text: str, tip: str, *, activate: Callable[[], Any],
                  tool: Callable[[], Any], shortcut: str | None = None, icon: str | None = None,
                  group: str = "tools") -> QtGui.QAction:
    """Register a canvas tool of ``window`` (see :meth:`ToolRegistry.add`); returns its action."""
    return tool_registry(window).add(key, text, tip, activate=activate, tool=tool, shortcut=shortcut, icon=icon,
                                     group=group)


__all__ = ["ToolEntry", "ToolRegistry", "register_tool", "tool_registry", "tooltip"]
