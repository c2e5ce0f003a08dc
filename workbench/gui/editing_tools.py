"""Editing tools on the canvas: brush, eraser, polygon/lasso, click tools, the mask preview, background jobs.

The tools implement :class:`~workbench.gui.tools.CanvasTool` and write only through
``document.labels.edit(name)``. Their options live in a plain :class:`PaintOptions` object that the Tools dock
edits, so a tool never reads a widget (house rule 2).

Coordinates: a :class:`~workbench.gui.tools.CanvasEvent` puts pixel ``(r, c)`` on ``[c, c+1) x [r, r+1)``;
the processing functions put the centre of pixel ``(r, c)`` at ``(r, c)``. :func:`index_point` converts.

Undo: a brush drag keeps one ``labels.edit`` block open from press to release (one drag = one undo step).
The block is closed on release and on deactivation; when the document's image changes mid-drag the block is
abandoned (its writes went to the old, discarded label map and its step must not land in the new history).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..core.document import Document
from ..core.errors import WorkbenchError
from ..core.image import ImageVolume
from ..core.labels import LabelMap, color_to_rgb
from ..processing import gate, polygon, stroke, to_scalar
from .overlays import BufferImageItem
from .qt import QtCore, QtGui, QtWidgets, Qt
from .tools import BaseCanvasTool, CanvasEvent
from .workers import CallableJob

OVERWRITE_MODES = ("any", "background", "selected")
PREVIEW_COLOR = "#ffd400"


# -- helpers ----------------------------------------------------------------------------------------
def index_point(x: float, y: float) -> tuple[float, float]:
    """Canvas image coordinates ``(x, y)`` -> pixel-index ``(row, column)`` (pixel centres at integers)."""
    return (y - 0.5, x - 0.5)


_scalar_cache: tuple[ImageVolume | None, np.ndarray | None] = (None, None)


def scalar_volume(image: ImageVolume) -> np.ndarray:
    """``image.data`` as a scalar ``(z, y, x)`` array (colour -> luma, computed once per image).

    Greyscale data is returned as is (no copy); colour luma is cached for the last image asked for, so the
    gate of a brush dab or a threshold preview does not recompute it.
    """
    global _scalar_cache
    if image.data.ndim == 3:
        _scalar_cache = (None, None)  # do not keep a colour image's luma alive
        return image.data
    cached_image, cached = _scalar_cache
    if cached_image is image and cached is not None:
        return cached
    out = to_scalar(image.data)
    _scalar_cache = (image, out)
    return out


def known_spacing(image: ImageVolume | None) -> tuple[float, float, float] | None:
    """The image's ``(z, y, x)`` spacing in mm when it is known, else ``None`` (what processing expects)."""
    if image is None or not image.spacing_known:
        return None
    return tuple(float(s) for s in image.spacing)  # type: ignore[return-value]


def premultiplied_argb(color: str, alpha: float) -> int:
    """``#rrggbb`` + alpha -> one premultiplied ARGB32 pixel value."""
    r, g, b = color_to_rgb(color)
    a = int(round(min(max(alpha, 0.0), 1.0) * 255))
    return (a << 24) | ((r * a // 255) << 16) | ((g * a // 255) << 8) | (b * a // 255)


@dataclass
class PaintOptions:
    """What the editing tools paint with; edited by the Tools dock, read by the tools at every event.

    Attributes
    ----------
    label : int
        The label value painted (the view state's active label).
    radius : float
        Brush radius in ``units``.
    units : {"px", "mm"}
    sphere : bool
        On a stack, paint a ball through neighbouring slices.
    gate : bool
        Paint only where ``lo <= intensity <= hi``.
    lo, hi : float
    overwrite : {"any", "background", "selected"}
        Painting: over any label / only over background / over background and label ``mask_label``.
        Erasing: any label / only the current label / only label ``mask_label``.
    mask_label : int
        The label of the ``"selected"`` rule.
    erase_polygon : bool
        The polygon/lasso erases instead of filling.
    """

    label: int = 1
    radius: float = 8.0
    units: str = "px"
    sphere: bool = False
    gate: bool = False
    lo: float = 0.0
    hi: float = 255.0
    overwrite: str = "any"
    mask_label: int = 1
    erase_polygon: bool = False

    def paint_rule(self, erase: bool) -> tuple[int, str, int | None]:
        """``(value, overwrite, selected)`` arguments of :meth:`LabelEdit.paint` for painting or erasing."""
        if not erase:
            return self.label, self.overwrite, (self.mask_label if self.overwrite == "selected" else None)
        if self.overwrite == "any":
            return 0, "any", None
        # erasing value 0 with the "selected" rule removes exactly that one label
        return 0, "selected", (self.label if self.overwrite == "background" else self.mask_label)


class OpenEdit:
    """A ``labels.edit(name)`` block held open across several events (a drag)."""

    class _Abandoned(Exception):
        pass

    def __init__(self, labels: LabelMap, name: str) -> None:
        self.labels = labels
        self._cm = labels.edit(name)
        self.edit = self._cm.__enter__()
        self._open = True

    def close(self) -> None:
        """Commit: everything written becomes one undo step."""
        if self._open:
            self._open = False
            self._cm.__exit__(None, None, None)

    def abandon(self) -> None:
        """Roll the writes back and push nothing."""
        if self._open:
            self._open = False
            exc = OpenEdit._Abandoned()
            self._cm.__exit__(OpenEdit._Abandoned, exc, None)


# -- preview items ----------------------------------------------------------------------------------
class MaskPreviewItem(BufferImageItem):
    """A translucent mask over one slice (threshold / region-grow previews), never written to the labels.

    Like the label overlay, a persistent ARGB32 buffer *is* the QImage's memory; an update writes only the
    changed rectangle (the union of the old and the new mask boxes) and repaints only that rectangle, so a
    tolerance slider stays interactive on 2048² images.
    """

    def __init__(self, parent: QtWidgets.QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self._box: tuple[slice, slice] | None = None  # region currently non-zero
        self._color = np.uint32(premultiplied_argb(PREVIEW_COLOR, 0.45))
        self.pixels = 0

    def set_color(self, color: str, alpha: float = 0.45) -> None:
        self._color = np.uint32(premultiplied_argb(color, alpha))

    def set_mask(self, mask: np.ndarray | None, box: tuple[slice, slice] | None = None) -> None:
        """Show ``mask`` (a ``(y, x)`` bool plane; ``box`` bounds its true pixels when known); ``None`` hides."""
        if mask is None:
            self.clear()
            return
        h, w = mask.shape
        if self._buffer.shape != (h, w):
            self._allocate(h, w)
            self._box = None
        if box is None:
            box = (slice(0, h), slice(0, w))
        old = self._box
        if old is not None:
            self._buffer[old] = 0
        region = mask[box].view(np.uint8) if mask.dtype == bool else (mask[box] != 0).view(np.uint8)
        np.multiply(region, self._color, out=self._buffer[box], casting="unsafe")
        self._box = box
        self.pixels = -1  # computed lazily by callers that need it
        self._update_rect(old, box)

    def clear(self) -> None:
        if self._box is not None:
            old, self._box = self._box, None
            self._buffer[old] = 0
            self._update_rect(old, None)

    def _update_rect(self, a, b) -> None:
        boxes = [x for x in (a, b) if x is not None]
        if not boxes:
            return
        y0 = min(s[0].start for s in boxes)
        y1 = max(s[0].stop for s in boxes)
        x0 = min(s[1].start for s in boxes)
        x1 = max(s[1].stop for s in boxes)
        self.update(QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))

    def _has_content(self) -> bool:
        return self._box is not None


def _cosmetic_pen(color: str, width: float = 1.5, style=Qt.PenStyle.SolidLine) -> QtGui.QPen:
    pen = QtGui.QPen(QtGui.QColor(color), width, style)
    pen.setCosmetic(True)  # constant screen width at every zoom
    return pen


# -- tools ------------------------------------------------------------------------------------------
class _DocumentTool(BaseCanvasTool):
    """Base of the editing tools: follows the document's image changes while active."""

    def __init__(self, options: PaintOptions) -> None:
        super().__init__()
        self.options = options
        self._document: Document | None = None

    def activate(self, canvas) -> None:
        super().activate(canvas)
        self._document = canvas.document
        self._document.image_changed.connect(self._on_image_changed)

    def deactivate(self) -> None:
        if self._document is not None:
            self._document.image_changed.disconnect(self._on_image_changed)
            self._document = None
        super().deactivate()

    def _on_image_changed(self) -> None:
        """The image (and label map) was replaced: drop whatever is in progress."""

    @property
    def labels(self) -> LabelMap | None:
        return self.canvas.document.labels if self.canvas is not None else None

    @property
    def image(self) -> ImageVolume | None:
        return self.canvas.document.image if self.canvas is not None else None


class BrushTool(_DocumentTool):
    """Round brush (or eraser): one drag is one undo step; segments between mouse events are filled.

    Parameters
    ----------
    options : PaintOptions
        Shared with the Tools dock.
    erase : bool
        Paint value 0 following the eraser rules of :meth:`PaintOptions.paint_rule`.
    """

    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, options: PaintOptions, *, erase: bool = False) -> None:
        super().__init__(options)
        self.erase = erase
        self.name = "eraser" if erase else "brush"
        self._edit: OpenEdit | None = None
        self._last: tuple[float, ...] | None = None
        self._circle: QtWidgets.QGraphicsEllipseItem | None = None
        self._cursor_xy: tuple[float, float] | None = None

    # lifecycle
    def activate(self, canvas) -> None:
        super().activate(canvas)
        self._make_circle()

    def deactivate(self) -> None:
        self.finish()
        self._circle = None  # removed from the scene by clear_preview
        super().deactivate()

    def _on_image_changed(self) -> None:
        if self._edit is not None:
            self._edit.abandon()
            self._edit = None
            self._hold_history(False)
        self._last = None

    def finish(self) -> None:
        """Close the open drag (commit its undo step)."""
        if self._edit is not None:
            edit, self._edit = self._edit, None
            edit.close()
            self._hold_history(False)
        self._last = None

    def _hold_history(self, hold: bool) -> None:
        """Undo/redo must not run while a drag's edit block is open (its diff would absorb their changes)."""
        window = self.canvas.window() if self.canvas is not None else None
        for name in ("undo_action", "redo_action"):
            action = getattr(window, name, None)
            if isinstance(action, QtGui.QAction) and hold:
                action.setEnabled(False)
        if not hold and self.canvas is not None:
            # the main window re-derives the actions' state from the history
            self.canvas.document.undo.changed.emit()

    @property
    def dragging(self) -> bool:
        return self._edit is not None

    # geometry
    def _point(self, event: CanvasEvent) -> tuple[float, ...]:
        row, col = index_point(event.x, event.y)
        return (float(event.z), row, col)

    def radius_px(self) -> tuple[float, float]:
        """Brush radius in image pixels along x and y (for the cursor circle)."""
        r = float(self.options.radius)
        spacing = known_spacing(self.image)
        if self.options.units == "mm" and spacing is not None:
            return r / spacing[2], r / spacing[1]
        return r, r

    def _make_circle(self) -> None:
        if self.canvas is None:
            return
        self._circle = QtWidgets.QGraphicsEllipseItem()
        self._circle.setPen(_cosmetic_pen("#ff6b6b" if self.erase else "#ffffff", 1.2))
        self._circle.setVisible(False)
        self.canvas.add_preview_item(self._circle)

    def update_cursor(self, x: float | None = None, y: float | None = None) -> None:
        """Move/resize the cursor circle (called on hover and when the size changes)."""
        if x is not None and y is not None:
            self._cursor_xy = (x, y)
        if self._circle is None or self._circle.scene() is None:
            self._make_circle()
        if self._circle is None or self._cursor_xy is None:
            return
        rx, ry = self.radius_px()
        cx, cy = self._cursor_xy
        self._circle.setRect(QtCore.QRectF(cx - rx, cy - ry, 2 * rx, 2 * ry))
        self._circle.setVisible(True)

    @property
    def cursor_circle(self) -> QtWidgets.QGraphicsEllipseItem | None:
        return self._circle

    # painting
    def _paint_segment(self, p0: tuple[float, ...], p1: tuple[float, ...]) -> None:
        labels, image = self.labels, self.image
        if labels is None or image is None or self._edit is None:
            return
        opts = self.options
        spacing = known_spacing(image)
        units = opts.units if (opts.units == "px" or spacing is not None) else "px"
        sphere = bool(opts.sphere and labels.shape[0] > 1)
        box, mask = stroke(p0, p1, opts.radius, shape=labels.shape, units=units, spacing=spacing, sphere=sphere)
        if mask.size == 0 or not mask.any():
            return
        if opts.gate:
            lo, hi = sorted((float(opts.lo), float(opts.hi)))
            mask = gate(mask, scalar_volume(image), box, lo=lo, hi=hi)
        value, overwrite, selected = opts.paint_rule(self.erase)
        self._edit.edit.paint(box, mask, value, overwrite=overwrite, selected=selected)

    def press(self, event: CanvasEvent) -> bool:
        labels = self.labels
        if labels is None:
            return False
        self.finish()
        self._edit = OpenEdit(labels, "Erase" if self.erase else f"Brush (label {self.options.label})")
        self._hold_history(True)
        p = self._point(event)
        self._last = p
        try:
            self._paint_segment(p, p)
        except WorkbenchError as exc:
            self._edit.abandon()
            self._edit = None
            self._hold_history(False)
            self._report(str(exc))
        self.update_cursor(event.x, event.y)
        return True

    def move(self, event: CanvasEvent) -> bool:
        self.update_cursor(event.x, event.y)
        if self._edit is None or self._last is None:
            return False
        p = self._point(event)
        # the segment keeps the slice of the drag's start (a disc brush paints one slice)
        p = (self._last[0],) + p[1:]
        try:
            self._paint_segment(self._last, p)
        except WorkbenchError as exc:
            self._report(str(exc))
        self._last = p
        return True

    def release(self, event: CanvasEvent) -> bool:
        if self._edit is None:
            return False
        self.finish()
        return True

    def hover(self, event: CanvasEvent) -> None:
        self.update_cursor(event.x, event.y)

    def _report(self, message: str) -> None:
        window = self.canvas.window() if self.canvas is not None else None
        if window is not None and hasattr(window, "show_error"):
            window.show_error(message)


class PolygonTool(_DocumentTool):
    """Polygon (click the vertices) and lasso (drag freehand) fill or erase on the shown slice.

    Clicks add vertices; a double-click or Enter closes the polygon; a drag draws a lasso that closes on
    release; Esc cancels. The fill is one undo step.
    """

    name = "polygon"
    cursor = Qt.CursorShape.CrossCursor
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


class ClickTool(_DocumentTool):
    """A tool that hands every left click (slice, row, column as pixel indices) to a callback."""

    cursor = Qt.CursorShape.PointingHandCursor

    def __init__(self, name: str, options: PaintOptions,
                 on_click: Callable[[int, float, float, Qt.KeyboardModifier], None]) -> None:
        super().__init__(options)
        self.name = name
        self._on_click = on_click

    def press(self, event: CanvasEvent) -> bool:
        image = self.image
        if image is None:
            return False
        row, col = index_point(event.x, event.y)
        if not (-0.5 <= row < image.height - 0.5 and -0.5 <= col < image.width - 0.5):
            return True  # outside the image: consumed, nothing to do
        self._on_click(event.z, row, col, event.modifiers)
        return True


# -- background jobs --------------------------------------------------------------------------------
class BackgroundJob(CallableJob):
    """Run ``fn(progress, cancelled)`` in a pool thread; results come back as signals in the GUI thread.

    ``fn`` receives ``progress(done, total)`` and ``cancelled() -> bool`` and returns any object. House
    rule 5: it never touches widgets.

    Signals
    -------
    progressed(done, total)
    finished(result)
    failed(message)
    cancelled(message)     also handed to ``on_failed``: callers get exactly one of their two callbacks
    """

    memory_text = "not enough memory for this operation"

    def __init__(self, fn: Callable[[Callable[[int, int], None], Callable[[], bool]], Any], *,
                 context: QtCore.QObject | None = None,
                 on_finished: Callable[[Any], None] | None = None,
                 on_failed: Callable[[str], None] | None = None,
                 on_progress: Callable[[int, int], None] | None = None) -> None:
        # Owned by the application, deleted (in the GUI thread) once its last signal was delivered: the
        # worker never emits from a deleted object and Python never frees it from the pool thread. The
        # callbacks go through a relay owned by ``context``: when the context widget is destroyed first
        # (window closed mid-job), Qt disconnects the relay and nothing is called.
        self._relay_alive = False  # before the base connects _mark_done, which reads it
        super().__init__(fn, QtCore.QCoreApplication.instance())
        if context is not None:
            relay = _JobRelay(context, self, on_finished, on_failed, on_progress)
            self._relay_alive = True
            relay.destroyed.connect(self._relay_gone)
            self.finished.connect(relay.finished)
            self.failed.connect(relay.failed)
            self.cancelled.connect(relay.failed)
            self.progressed.connect(relay.progressed)

    def _mark_done(self, *_args) -> None:
        self.done = True
        # Deleting the sender cancels its queued signals that were not delivered yet (Qt 6), so while a
        # relay still has to forward the result, the relay deletes the job after forwarding.
        if not self._relay_alive:
            self.deleteLater()

    def _relay_gone(self, *_args) -> None:
        self._relay_alive = False
        if self.done:
            self.deleteLater()


class _JobRelay(QtCore.QObject):
    """Forwards a job's signals to plain callables for as long as its parent (the context) lives."""

    def __init__(self, parent: QtCore.QObject, job: BackgroundJob, on_finished, on_failed, on_progress) -> None:
        super().__init__(parent)
        self._job = job
        self._on_finished, self._on_failed, self._on_progress = on_finished, on_failed, on_progress

    def _done(self) -> None:
        job, self._job = self._job, None
        if job is not None:
            job._relay_alive = False
            job.deleteLater()
        self.deleteLater()

    @QtCore.Slot(object)
    def finished(self, result) -> None:
        try:
            if self._on_finished is not None:
                self._on_finished(result)
        finally:
            self._done()

    @QtCore.Slot(str)
    def failed(self, message: str) -> None:
        try:
            if self._on_failed is not None:
                self._on_failed(message)
        finally:
            self._done()

    @QtCore.Slot(int, int)
    def progressed(self, done: int, total: int) -> None:
        if self._on_progress is not None:
            self._on_progress(done, total)



__all__ = ["PaintOptions", "OpenEdit", "MaskPreviewItem", "BrushTool", "PolygonTool", "ClickTool",
           "BackgroundJob", "index_point", "scalar_volume", "known_spacing", "OVERWRITE_MODES"]
