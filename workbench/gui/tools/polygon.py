"""Polygon (click the vertices) and lasso (drag freehand) fill or erase on the shown slice."""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from ...processing import polygon
from ..qt import Qt, QtCore, QtGui, QtWidgets
from .base import CanvasEvent
from .editing import PaintOptions, _DocumentTool, index_point
from .preview import PREVIEW_COLOR, _cosmetic_pen


class PolygonTool(_DocumentTool):
    """Polygon (click the vertices) and lasso (drag freehand) fill or erase on the shown slice.

    Clicks add vertices; a double-click or Enter closes the polygon; a drag draws a lasso that closes on
    release; Esc cancels. The fill is one undo step.
    """

    name = "polygon"
    cursor = Qt.CursorShape.CrossCursor
    any_view = True  # fills in coronal/sagittal views too (gui/mpr), through the canvas' view-frame labels
    LASSO_START_PX = 4.0  # screen pixels of movement with the button down that turn a click into a lasso

    def __init__(self, options: PaintOptions) -> None:
        super().__init__(options)
        self.points: list[tuple[float, float]] = []
        self._z = 0
        self._lasso = False
        self._press_view: QtCore.QPointF | None = None
        self._last_press: tuple[float, QtCore.QPointF] | None = None
        self._path_item: QtWidgets.QGraphicsPathItem | None = None
        self._hover: tuple[float, float] | None = None

    def activate(self, canvas) -> None:
        super().activate(canvas)
        # The canvas routes press/move/release only; Qt turns the second press of a double-click into a
        # MouseButtonDblClick event, which is watched for here.
        self._dblclick_filter = _DoubleClickFilter(self._on_double_click)
        canvas.view.viewport().installEventFilter(self._dblclick_filter)

    def deactivate(self) -> None:
        self.cancel()
        if self.canvas is not None and getattr(self, "_dblclick_filter", None) is not None:
            self.canvas.view.viewport().removeEventFilter(self._dblclick_filter)
            self._dblclick_filter = None
        super().deactivate()

    def _on_image_changed(self) -> None:
        self.cancel()

    def _on_double_click(self) -> bool:
        if len(self.points) >= 3:
            self._press_view = None
            self.close_polygon()
            return True
        return False

    @property
    def active(self) -> bool:
        return bool(self.points)

    def cancel(self) -> None:
        self.points = []
        self._lasso = False
        self._press_view = None
        self._hover = None
        if self._path_item is not None and self._path_item.scene() is not None:
            self._path_item.scene().removeItem(self._path_item)
        self._path_item = None

    def _redraw(self) -> None:
        if self.canvas is None:
            return
        if self._path_item is None or self._path_item.scene() is None:
            self._path_item = QtWidgets.QGraphicsPathItem()
            self._path_item.setPen(_cosmetic_pen("#ff6b6b" if self.options.erase_polygon else PREVIEW_COLOR, 1.5))
            fill = QtGui.QColor("#ff6b6b" if self.options.erase_polygon else PREVIEW_COLOR)
            fill.setAlpha(50)
            self._path_item.setBrush(QtGui.QBrush(fill))
            self.canvas.add_preview_item(self._path_item)
        path = QtGui.QPainterPath()
        if self.points:
            path.moveTo(*self.points[0])
            for p in self.points[1:]:
                path.lineTo(*p)
            if self._hover is not None and not self._lasso:
                path.lineTo(*self._hover)
        self._path_item.setPath(path)

    def press(self, event: CanvasEvent) -> bool:
        if self.labels is None:
            return False
        now = time.monotonic()
        last = self._last_press
        self._last_press = (now, event.view_pos)
        if self.points and last is not None:
            interval = QtWidgets.QApplication.doubleClickInterval() / 1000.0
            d = event.view_pos - last[1]
            if now - last[0] <= interval and math.hypot(d.x(), d.y()) <= self.LASSO_START_PX:
                self._last_press = None
                self.close_polygon()
                return True
        if not self.points:
            self._z = event.z
        self.points.append((event.x, event.y))
        self._press_view = event.view_pos
        self._lasso = False
        self._redraw()
        return True

    def move(self, event: CanvasEvent) -> bool:
        if self._press_view is None:
            return False
        d = event.view_pos - self._press_view
        if not self._lasso and math.hypot(d.x(), d.y()) > self.LASSO_START_PX:
            self._lasso = True
        if self._lasso:
            lx, ly = self.points[-1]
            if math.hypot(event.x - lx, event.y - ly) >= 0.5:  # no runs of duplicate vertices
                self.points.append((event.x, event.y))
            self._redraw()
        return True

    def release(self, event: CanvasEvent) -> bool:
        if self._press_view is None:
            return False
        self._press_view = None
        if self._lasso:
            self.close_polygon()
        return True

    def hover(self, event: CanvasEvent) -> None:
        if self.points:
            self._hover = (event.x, event.y)
            self._redraw()

    def key(self, key: int) -> bool:
        """Enter closes, Esc cancels; returns whether the key was used."""
        if not self.points:
            return False
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.close_polygon()
            return True
        if key == Qt.Key.Key_Escape:
            self.cancel()
            return True
        return False

    def close_polygon(self) -> None:
        """Fill (or erase) the polygon drawn so far as one undo step."""
        points, z = list(self.points), self._z
        self.cancel()
        labels = self.labels
        if labels is None or len(points) < 3:
            return
        vertices = np.array([index_point(x, y) for x, y in points])
        box, mask = polygon(vertices, shape=labels.shape, z=z)
        if mask.size == 0 or not mask.any():
            return
        erase = self.options.erase_polygon
        value, overwrite, selected = self.options.paint_rule(erase)
        with labels.edit("Lasso erase" if erase else f"Polygon (label {self.options.label})") as e:
            e.paint(box, mask, value, overwrite=overwrite, selected=selected)


class _DoubleClickFilter(QtCore.QObject):
    """Event filter calling ``callback()`` on a left double-click; consumes it when the callback returns True."""

    def __init__(self, callback: Callable[[], bool]) -> None:
        super().__init__()
        self._callback = callback

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt API)
        if (event.type() == QtCore.QEvent.Type.MouseButtonDblClick
                and event.button() == Qt.MouseButton.LeftButton):
            return bool(self._callback())
        return False
