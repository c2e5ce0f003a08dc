"""Canvas tools: the interface through which interactive tools (brush, region grow, measure...) get mouse input.

How a tool plugs in
-------------------
The canvas (:class:`~workbench.gui.canvas.CanvasWidget`) owns exactly one *active tool*; the default is
:class:`NavigationTool`. ``canvas.set_tool(tool)`` calls ``old.deactivate()`` then ``tool.activate(canvas)``;
``canvas.set_tool(None)`` goes back to navigation.

Mouse input is routed like this (radiology conventions, identical for every tool):

- **left button** press/move/release -> ``tool.press/move/release(event)``;
- mouse moves with no button -> ``tool.hover(event)``;
- middle drag, or Space + left drag -> pan (never reaches the tool);
- right drag -> window/level (horizontal = width, vertical = level; never reaches the tool);
- wheel -> zoom around the cursor; Ctrl + wheel -> previous/next slice.

Every handler receives a :class:`CanvasEvent` in *image coordinates*: ``x``/``y`` are floats where pixel
``(row r, column c)`` covers ``[c, c+1) x [r, r+1)`` (so ``int(ev.x), int(ev.y)`` is the pixel under the
cursor) and ``z`` is the index of the shown slice. Handlers return ``True`` when they consumed the event.

A tool edits the document only through ``canvas.document.labels.edit(name)`` (one drag = one ``edit``
block = one undo step); the label overlay repaints the dirty rectangle by itself from the label map's
``data_changed(bbox)`` event. For previews (a brush circle, a rubber-band line) add ordinary
``QGraphicsItem`` s in image coordinates with ``canvas.add_preview_item(item)``; ``canvas.clear_preview()``
removes them (the canvas calls it on deactivation too).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..qt import Qt, QtCore, QtGui, QtWidgets

if TYPE_CHECKING:  # pragma: no cover
    from ..canvas import CanvasWidget


@dataclass(frozen=True)
class CanvasEvent:
    """A mouse event in image coordinates.

    Attributes
    ----------
    x, y : float
        Column and row in image pixels (continuous: ``int(x)`` is the column under the cursor).
    z : int
        The index of the slice shown.
    button : Qt.MouseButton
        The button that was pressed or released (``Qt.NoButton`` for moves).
    buttons : Qt.MouseButtons
        Buttons held down during the event.
    modifiers : Qt.KeyboardModifiers
        Shift/Ctrl/Alt state.
    view_pos : QPointF
        Position in widget (screen) pixels — for tools that work in screen distances.
    """

    x: float
    y: float
    z: int
    button: Qt.MouseButton
    buttons: Qt.MouseButton
    modifiers: Qt.KeyboardModifier
    view_pos: QtCore.QPointF

    @property
    def column(self) -> int:
        return int(self.x // 1)

    @property
    def row(self) -> int:
        return int(self.y // 1)


@runtime_checkable
class CanvasTool(Protocol):
    """What the canvas needs from a tool (see the module docstring)."""

    name: str
    cursor: Qt.CursorShape

    def activate(self, canvas: "CanvasWidget") -> None: ...

    def deactivate(self) -> None: ...

    def press(self, event: CanvasEvent) -> bool: ...

    def move(self, event: CanvasEvent) -> bool: ...

    def release(self, event: CanvasEvent) -> bool: ...

    def hover(self, event: CanvasEvent) -> None: ...


class BaseCanvasTool:
    """Convenience base: stores the canvas, does nothing, consumes nothing. Override what you need."""

    name = "tool"
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self) -> None:
        self.canvas: "CanvasWidget | None" = None

    def activate(self, canvas: "CanvasWidget") -> None:
        self.canvas = canvas

    def deactivate(self) -> None:
        if self.canvas is not None:
            self.canvas.clear_preview()
        self.canvas = None

    def press(self, event: CanvasEvent) -> bool:
        return False

    def move(self, event: CanvasEvent) -> bool:
        return False

    def release(self, event: CanvasEvent) -> bool:
        return False

    def hover(self, event: CanvasEvent) -> None:
        return None


class NavigationTool(BaseCanvasTool):
    """The default tool: left drag pans (wheel zoom, right-drag W/L and slice keys work with every tool)."""

    name = "navigate"
    cursor = Qt.CursorShape.OpenHandCursor
    any_view = True  # usable in every orthogonal view (gui/mpr); tools without the flag stay in the axial one

    def __init__(self) -> None:
        super().__init__()
        self._last: QtCore.QPointF | None = None

    def press(self, event: CanvasEvent) -> bool:
        self._last = event.view_pos
        if self.canvas is not None:
            self.canvas.setCursor(Qt.CursorShape.ClosedHandCursor)
        return True

    def move(self, event: CanvasEvent) -> bool:
        if self._last is None or self.canvas is None:
            return False
        self.canvas.pan_by_view_pixels(event.view_pos - self._last)
        self._last = event.view_pos
        return True

    def release(self, event: CanvasEvent) -> bool:
        self._last = None
        if self.canvas is not None:
            self.canvas.setCursor(self.cursor)
        return True


class ProfileLineTool(BaseCanvasTool):
    """Left drag draws the line along which the restoration compare plots its intensity profile."""

    name = "profile"
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self) -> None:
        super().__init__()
        self._start: tuple[float, float] | None = None
        self._line: QtWidgets.QGraphicsLineItem | None = None

    def press(self, event: CanvasEvent) -> bool:
        if self.canvas is None:
            return False
        self._start = (event.x, event.y)
        self.canvas.clear_preview()
        self._line = QtWidgets.QGraphicsLineItem(event.x, event.y, event.x, event.y)
        pen = QtGui.QPen(QtGui.QColor("#ffd400"), 0)
        pen.setCosmetic(True)
        self._line.setPen(pen)
        self.canvas.add_preview_item(self._line)
        return True

    def move(self, event: CanvasEvent) -> bool:
        if self._start is None or self._line is None:
            return False
        self._line.setLine(self._start[0], self._start[1], event.x, event.y)
        return True

    def release(self, event: CanvasEvent) -> bool:
        if self._start is None or self.canvas is None:
            return False
        start, self._start = self._start, None
        self.canvas.clear_preview()
        self._line = None
        if (start[0] - event.x) ** 2 + (start[1] - event.y) ** 2 >= 1.0:
            self.canvas.view_state.set_profile_line((start, (event.x, event.y)))
        return True
