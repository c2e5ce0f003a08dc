"""The measurement and annotation tools (issue 15 item 2): ruler, angle, ellipse and rectangle ROI, text arrow.

Every annotation lives in the document's :class:`~workbench.core.annotations.AnnotationStore` (undoable on the
label map's stack, saved in the session). :class:`AnnotationLayer` draws those of the shown slice (shape, handles,
caption from :func:`workbench.processing.roi.measure_annotation`); one :class:`AnnotationTool` per kind adds an
annotation per drag, and a press on a handle of an annotation of its kind drags that handle. Each add or edit is
one undo step.

Gestures: ruler, ROIs and text arrow: press at one end (a corner, the arrow's tip) and drag to the other; the
text arrow then asks for its text. Angle: drag the first arm towards the vertex, release, then click the end of
the second arm (Esc or another tool abandons it).
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable

from ...core.annotations import Angle, Annotation, EllipseRoi, Point, RectRoi, Ruler, TextArrow, annotations_of
from ...core.errors import WorkbenchError
from ...processing.roi import measure_annotation
from ..qt import Qt, QtCore, QtGui, QtWidgets
from .base import BaseCanvasTool, CanvasEvent

ANNOTATION_COLOR = "#ffd400"
TEXT_COLOR = "#7fdbff"
HANDLE_PX = 4.0  # half size of a handle on screen
GRAB_PX = 9.0  # a press this close (screen pixels) to a handle drags that handle
ARROW_PX = 11.0  # length of the text arrow's head on screen


def _pen(color: str = ANNOTATION_COLOR) -> QtGui.QPen:
    pen = QtGui.QPen(QtGui.QColor(color), 1.5)
    pen.setCosmetic(True)
    return pen


class AnnotationLayer(QtWidgets.QGraphicsItemGroup):
    """The annotations of the shown slice, rebuilt when the store, the slice or the image change."""

    def __init__(self, canvas) -> None:
        super().__init__()
        self.canvas = canvas
        self.store = annotations_of(canvas.document)
        self.live: Annotation | None = None  # the annotation being drawn or edited (drawn instead of its stored self)
        self._texts: dict[tuple[Annotation, int], str] = {}  # caption cache (ROI statistics read pixels)
        self.store.changed.connect(self.rebuild)
        canvas.view_state.slice_changed.connect(lambda _z: self.rebuild())
        canvas.document.image_changed.connect(self._on_image)

    def _on_image(self) -> None:
        self._texts.clear()
        self.rebuild()

    def caption(self, annotation: Annotation) -> str:
        """The caption of ``annotation`` on the open image (cached per annotation value)."""
        image = self.canvas.document.image
        key = (annotation, id(image))
        text = self._texts.get(key)
        if text is None:
            try:
                text = measure_annotation(annotation, image).text
            except WorkbenchError as exc:
                text = str(exc)
            if len(self._texts) > 512:
                self._texts.clear()
            self._texts[key] = text
        return text

    def rebuild(self) -> None:
        for item in self.childItems():
            item.setParentItem(None)
            if item.scene() is not None:
                item.scene().removeItem(item)
        image = self.canvas.document.image
        if image is None:
            return
        z = self.canvas.view_state.slice_index
        items = [a for a in self.store.on_slice(z) if self.live is None or a.id != self.live.id]
        if self.live is not None and self.live.z == z:
            items.append(self.live)
        for annotation in items:
            self._draw(annotation)

    # -- drawing ----------------------------------------------------------------------------------
    def _handle(self, point: Point, color: str = ANNOTATION_COLOR) -> QtWidgets.QGraphicsRectItem:
        handle = QtWidgets.QGraphicsRectItem(-HANDLE_PX, -HANDLE_PX, 2 * HANDLE_PX, 2 * HANDLE_PX)
        handle.setPen(_pen(color))
        handle.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        handle.setPos(*point)
        handle.setParentItem(self)  # parented, not addToGroup: coordinates stay image pixels
        return handle

    def _caption(self, text: str, anchor: QtWidgets.QGraphicsItem, color: str = ANNOTATION_COLOR) -> None:
        # a child of a handle, so its offset is in screen pixels at any zoom
        caption = QtWidgets.QGraphicsSimpleTextItem(text, anchor)
        caption.setBrush(QtGui.QBrush(QtGui.QColor(color)))
        caption.setPos(HANDLE_PX + 3, HANDLE_PX)

    def _line(self, a: Point, b: Point, color: str = ANNOTATION_COLOR) -> None:
        line = QtWidgets.QGraphicsLineItem(a[0], a[1], b[0], b[1])
        line.setPen(_pen(color))
        line.setParentItem(self)

    def _draw(self, a: Annotation) -> None:
        text = self.caption(a) + (f" \u2014 {a.label}" if a.label and not isinstance(a, TextArrow) else "")
        if isinstance(a, Ruler):
            self._line(a.p0, a.p1)
            handles = [self._handle(p) for p in a.handles()]
            self._caption(text, handles[-1])
        elif isinstance(a, Angle):
            self._line(a.p1, a.p0)
            self._line(a.p1, a.p2)
            handles = [self._handle(p) for p in a.handles()]
            self._caption(text, handles[1])  # at the vertex
        elif isinstance(a, (EllipseRoi, RectRoi)):
            x0, y0, x1, y1 = a.box()
            shape = (QtWidgets.QGraphicsEllipseItem if isinstance(a, EllipseRoi) else QtWidgets.QGraphicsRectItem)(
                QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))
            shape.setPen(_pen())
            shape.setParentItem(self)
            corners = a.handles()
            handles = [self._handle(p) for p in corners]
            # below the lower left corner, outside the region, area and statistics on two lines
            corner = max(range(len(corners)), key=lambda i: corners[i][1] - corners[i][0])
            self._caption(text.replace("; ", "\n", 1), handles[corner])
        elif isinstance(a, TextArrow):
            self._line(a.p1, a.p0, TEXT_COLOR)
            tail = self._handle(a.p1, TEXT_COLOR)
            tip = self._handle(a.p0, TEXT_COLOR)
            tip.setPen(QtGui.QPen(Qt.PenStyle.NoPen))  # the head marks the tip (still a handle to drag)
            head = QtWidgets.QGraphicsPolygonItem(QtGui.QPolygonF([
                QtCore.QPointF(0, 0), QtCore.QPointF(-ARROW_PX, -ARROW_PX * 0.4),
                QtCore.QPointF(-ARROW_PX, ARROW_PX * 0.4)]), tip)
            head.setPen(_pen(TEXT_COLOR))
            head.setBrush(QtGui.QBrush(QtGui.QColor(TEXT_COLOR)))
            # the view keeps square pixels, y down like the image: the screen angle is the image angle
            head.setRotation(math.degrees(math.atan2(a.p0[1] - a.p1[1], a.p0[0] - a.p1[0])))
            self._caption(a.label or "(no text)", tail, TEXT_COLOR)

    def texts(self) -> list[str]:
        """The captions shown (tests, screenshots)."""
        return [c.text() for i in self.childItems() for c in i.childItems()
                if isinstance(c, QtWidgets.QGraphicsSimpleTextItem)]


def ask_text(parent: QtWidgets.QWidget | None, current: str = "") -> str | None:
    """Ask for an annotation's text; ``None`` when cancelled."""
    text, ok = QtWidgets.QInputDialog.getText(parent, "Annotation text", "Text:", text=current)
    return text if ok else None


class AnnotationTool(BaseCanvasTool):
    """Left drag draws an annotation of :attr:`kind`; a press on a handle of one of that kind drags the handle.

    Subclasses say how a drag builds the draft (:meth:`start`, :meth:`extend`). Each add and each handle drag
    is one undo step.
    """

    name = "annotate"
    kind = ""
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, layer: AnnotationLayer) -> None:
        super().__init__()
        self.layer = layer
        self._drag: tuple[Annotation, int | None] | None = None  # (as pressed, handle index or None: new)
        self.on_deactivated: Callable[[], None] = lambda: None  # the dock unchecks its button

    # -- what a drag draws (per kind) --------------------------------------------------------------
    def start(self, z: int, point: Point) -> Annotation:
        raise NotImplementedError

    def extend(self, draft: Annotation, point: Point) -> Annotation:
        return replace(draft, p1=point)  # type: ignore[type-var]

    def finish(self, draft: Annotation) -> Annotation | None:
        """The annotation to add when the drag ends (``None``: nothing, e.g. a click or a cancelled text)."""
        return draft if draft.is_valid() else None

    # -- hit testing ------------------------------------------------------------------------------
    def _screen(self, x: float, y: float) -> QtCore.QPointF:
        assert self.canvas is not None
        view = self.canvas.view
        return QtCore.QPointF(view.mapFromScene(view.vb.mapViewToScene(QtCore.QPointF(x, y))))

    def handle_at(self, event: CanvasEvent) -> tuple[Annotation, int] | None:
        """The handle of an annotation of this tool's kind under the cursor (within :data:`GRAB_PX` screen
        pixels), if any: the ellipse tool edits ellipses, so measuring from another annotation's corner draws."""
        best: tuple[float, Annotation, int] | None = None
        for annotation in self.layer.store.on_slice(event.z):
            if annotation.kind != self.kind:
                continue
            for index, point in enumerate(annotation.handles()):
                p = self._screen(*point)
                d = math.hypot(p.x() - event.view_pos.x(), p.y() - event.view_pos.y())
                if d <= GRAB_PX and (best is None or d < best[0]):
                    best = (d, annotation, index)
        return (best[1], best[2]) if best is not None else None

    def _show(self, live: Annotation | None) -> None:
        self.layer.live = live
        self.layer.rebuild()

    # -- events -----------------------------------------------------------------------------------
    def press(self, event: CanvasEvent) -> bool:
        if self.canvas is None or self.canvas.document.image is None:
            return False
        hit = self.handle_at(event)
        if hit is not None:
            self._drag = hit
        else:
            self._drag = (self.start(event.z, (event.x, event.y)), None)
        self._show(self._drag[0])
        return True

    def _moved(self, event: CanvasEvent) -> Annotation | None:
        if self._drag is None:
            return None
        annotation, index = self._drag
        point = (float(event.x), float(event.y))
        return self.extend(annotation, point) if index is None else annotation.with_handle(index, point)

    def move(self, event: CanvasEvent) -> bool:
        live = self._moved(event)
        if live is None:
            return False
        self._show(live)
        return True

    def release(self, event: CanvasEvent) -> bool:
        live = self._moved(event)
        if live is None or self._drag is None:
            return False
        _pressed, index = self._drag
        self._drag = None
        store = self.layer.store
        if index is None:
            done = self.finish(live)
            if done is not None:
                store.add_annotation(done)
        elif live.is_valid():  # an edit that collapses the shape is dropped
            store.update(live)
        self._show(None)
        return True

    def deactivate(self) -> None:
        self._drag = None
        self._show(None)
        super().deactivate()
        self.on_deactivated()


class RulerTool(AnnotationTool):
    """Left drag draws a ruler (length in mm)."""

    name = "ruler"
    kind = "ruler"

    def start(self, z: int, point: Point) -> Annotation:
        return Ruler(-1, z, point, point)


class RoiTool(AnnotationTool):
    """Left drag draws an ellipse or rectangle ROI from corner to corner (area, mean/SD/min/max)."""

    def __init__(self, layer: AnnotationLayer, kind: str) -> None:
        super().__init__(layer)
        self.kind = kind
        self.name = f"{kind}-roi"

    def start(self, z: int, point: Point) -> Annotation:
        return (EllipseRoi if self.kind == "ellipse" else RectRoi)(-1, z, point, point)


class TextArrowTool(AnnotationTool):
    """Left drag from the arrow's tip to where the text goes, then type the text."""

    name = "text-arrow"
    kind = "text"

    def __init__(self, layer: AnnotationLayer,
                 ask: Callable[[QtWidgets.QWidget | None, str], str | None] = ask_text) -> None:
        super().__init__(layer)
        self.ask = ask  # replaceable: tests answer without a modal dialog

    def start(self, z: int, point: Point) -> Annotation:
        return TextArrow(-1, z, point, point)

    def finish(self, draft: Annotation) -> Annotation | None:
        if not draft.is_valid():
            return None
        text = self.ask(self.canvas, "")
        return replace(draft, label=text.strip()) if text and text.strip() else None


class AngleTool(AnnotationTool):
    """Drag the first arm (from its end to the vertex), release, then click the end of the second arm."""

    name = "angle"
    kind = "angle"

    def __init__(self, layer: AnnotationLayer) -> None:
        super().__init__(layer)
        self._pending: Angle | None = None  # first arm drawn, waiting for the second arm's click

    def start(self, z: int, point: Point) -> Annotation:
        return Angle(-1, z, point, point, point)

    def extend(self, draft: Annotation, point: Point) -> Annotation:
        return replace(draft, p1=point, p2=point)  # type: ignore[type-var]

    def press(self, event: CanvasEvent) -> bool:
        if self._pending is not None and event.z != self._pending.z:
            self._pending = None  # the slice changed under the half-drawn angle: start again here
        if self._pending is not None:
            self._pending = replace(self._pending, p2=(float(event.x), float(event.y)))
            self._show(self._pending)
            return True
        return super().press(event)

    def move(self, event: CanvasEvent) -> bool:
        if self._pending is not None:
            self.hover(event)
            return True
        return super().move(event)

    def hover(self, event: CanvasEvent) -> None:
        if self._pending is not None and event.z == self._pending.z:
            self._pending = replace(self._pending, p2=(float(event.x), float(event.y)))
            self._show(self._pending)

    def release(self, event: CanvasEvent) -> bool:
        if self._pending is not None:
            done = replace(self._pending, p2=(float(event.x), float(event.y)))
            self._pending = None
            if done.is_valid():
                self.layer.store.add_annotation(done)
            self._show(None)
            return True
        if self._drag is not None and self._drag[1] is None:
            live = self._moved(event)
            self._drag = None
            if isinstance(live, Angle) and math.hypot(live.p1[0] - live.p0[0], live.p1[1] - live.p0[1]) >= 1.0:
                self._pending = live  # now the second arm follows the mouse
                self._show(live)
            else:
                self._show(None)
            return True
        return super().release(event)

    def deactivate(self) -> None:
        self._pending = None
        super().deactivate()


def make_tools(layer: AnnotationLayer) -> dict[str, Any]:
    """One tool per annotation kind, keyed by kind (the Measurements dock's buttons and the toolbar)."""
    return {"ruler": RulerTool(layer), "angle": AngleTool(layer), "ellipse": RoiTool(layer, "ellipse"),
            "rectangle": RoiTool(layer, "rectangle"), "text": TextArrowTool(layer)}


__all__ = ["AnnotationLayer", "AnnotationTool", "RulerTool", "AngleTool", "RoiTool", "TextArrowTool", "make_tools",
           "ask_text"]
