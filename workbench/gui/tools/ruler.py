"""The ruler: drag to measure a distance in mm on the shown slice; drag an end handle to edit it.

The rulers live in the document's :class:`~workbench.core.annotations.AnnotationStore` (undoable, saved in the
session). :class:`RulerLayer` draws those of the shown slice (line, end handles, length); :class:`RulerTool`
adds one per drag and moves an end point when the press lands on a handle: each is one undo step.
"""
from __future__ import annotations

import math
from typing import Any

from ...core.annotations import Ruler, annotations_of
from ..qt import Qt, QtCore, QtGui, QtWidgets
from .base import BaseCanvasTool, CanvasEvent

RULER_COLOR = "#ffd400"
HANDLE_PX = 4.0  # half size of a handle on screen
GRAB_PX = 9.0  # a press this close (screen pixels) to an end point drags that handle


def ruler_text(ruler: Ruler, image: Any) -> str:
    """``"32.0 mm"`` (known spacing) or ``"40.0 px"``."""
    if image is not None and image.spacing_known:
        return f"{ruler.length_mm(image.spacing):.1f} mm"
    return f"{ruler.length_px():.1f} px"


def _pen() -> QtGui.QPen:
    pen = QtGui.QPen(QtGui.QColor(RULER_COLOR), 1.5)
    pen.setCosmetic(True)
    return pen


class RulerLayer(QtWidgets.QGraphicsItemGroup):
    """The rulers of the shown slice, rebuilt when the store, the slice or the image change."""

    def __init__(self, canvas) -> None:
        super().__init__()
        self.canvas = canvas
        self.store = annotations_of(canvas.document)
        self.live: Ruler | None = None  # the ruler being drawn or edited (drawn instead of its stored self)
        self.store.changed.connect(self.rebuild)
        canvas.view_state.slice_changed.connect(lambda _z: self.rebuild())
        canvas.document.image_changed.connect(self.rebuild)

    def rebuild(self) -> None:
        for item in self.childItems():
            item.setParentItem(None)
            if item.scene() is not None:
                item.scene().removeItem(item)
        image = self.canvas.document.image
        if image is None:
            return
        z = self.canvas.view_state.slice_index
        rulers = [r for r in self.store.on_slice(z) if self.live is None or r.id != self.live.id]
        if self.live is not None and self.live.z == z:
            rulers.append(self.live)
        for ruler in rulers:
            self._draw(ruler, image)

    def _draw(self, ruler: Ruler, image: Any) -> None:
        line = QtWidgets.QGraphicsLineItem(*ruler.p0, *ruler.p1)
        line.setPen(_pen())
        line.setParentItem(self)  # parented, not addToGroup: coordinates stay image pixels
        for x, y in (ruler.p0, ruler.p1):
            handle = QtWidgets.QGraphicsRectItem(-HANDLE_PX, -HANDLE_PX, 2 * HANDLE_PX, 2 * HANDLE_PX)
            handle.setPen(_pen())
            handle.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            handle.setPos(x, y)
            handle.setParentItem(self)
        # the caption is a child of the end handle, so its offset is in screen pixels at any zoom
        text = QtWidgets.QGraphicsSimpleTextItem(ruler_text(ruler, image), handle)
        text.setBrush(QtGui.QBrush(QtGui.QColor(RULER_COLOR)))
        text.setPos(HANDLE_PX + 3, HANDLE_PX)

    def texts(self) -> list[str]:
        """The length captions shown (tests, screenshots)."""
        return [c.text() for i in self.childItems() for c in i.childItems()
                if isinstance(c, QtWidgets.QGraphicsSimpleTextItem)]


class RulerTool(BaseCanvasTool):
    """Left drag draws a ruler; a press on an end handle drags it. Each is one undo step."""

    name = "ruler"
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, layer: RulerLayer) -> None:
        super().__init__()
        self.layer = layer
        self._drag: tuple[Ruler, str] | None = None  # (ruler as pressed, "p0" | "p1" | "new")
        self._next_live_id = -1

    def _screen(self, x: float, y: float) -> QtCore.QPointF:
        assert self.canvas is not None
        view = self.canvas.view
        return QtCore.QPointF(view.mapFromScene(view.vb.mapViewToScene(QtCore.QPointF(x, y))))

    def handle_at(self, event: CanvasEvent) -> tuple[Ruler, str] | None:
        """The ruler end point under the cursor (within :data:`GRAB_PX` screen pixels), if any."""
        best: tuple[float, Ruler, str] | None = None
        for ruler in self.layer.store.on_slice(event.z):
            for end in ("p0", "p1"):
                p = self._screen(*getattr(ruler, end))
                d = math.hypot(p.x() - event.view_pos.x(), p.y() - event.view_pos.y())
                if d <= GRAB_PX and (best is None or d < best[0]):
                    best = (d, ruler, end)
        return (best[1], best[2]) if best is not None else None

    def press(self, event: CanvasEvent) -> bool:
        if self.canvas is None or self.canvas.document.image is None:
            return False
        hit = self.handle_at(event)
        if hit is not None:
            self._drag = hit
        else:
            start = (event.x, event.y)
            self._drag = (Ruler(self._next_live_id, event.z, start, start), "new")
        self.layer.live = self._drag[0]
        self.layer.rebuild()
        return True

    def _moved(self, event: CanvasEvent) -> Ruler | None:
        if self._drag is None:
            return None
        ruler, end = self._drag
        point = (event.x, event.y)
        return Ruler(ruler.id, ruler.z, point if end == "p0" else ruler.p0, ruler.p1 if end == "p0" else point)

    def move(self, event: CanvasEvent) -> bool:
        live = self._moved(event)
        if live is None:
            return False
        self.layer.live = live
        self.layer.rebuild()
        return True

    def release(self, event: CanvasEvent) -> bool:
        live = self._moved(event)
        if live is None or self._drag is None:
            return False
        _ruler, end = self._drag
        self._drag = None
        self.layer.live = None
        store = self.layer.store
        if end == "new":
            if live.length_px() >= 1.0:  # a click is not a measurement
                store.add(live.z, live.p0, live.p1)
        else:
            store.move(live.id, p0=live.p0, p1=live.p1)
        self.layer.rebuild()
        return True

    def deactivate(self) -> None:
        self._drag = None
        self.layer.live = None
        self.layer.rebuild()
        super().deactivate()
