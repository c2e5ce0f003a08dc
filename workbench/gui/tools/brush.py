"""The brush and the eraser.

Undo: a drag keeps one ``labels.edit`` block open from press to release (one drag = one undo step). The block
is closed on release and on deactivation; when the document's image changes mid-drag the block is abandoned
(its writes went to the old, discarded label map and its step must not land in the new history).
"""
from __future__ import annotations

from ...core.errors import WorkbenchError
from ...processing import gate, stroke
from ..qt import Qt, QtCore, QtWidgets
from .base import CanvasEvent
from .editing import OpenEdit, PaintOptions, _DocumentTool, index_point, known_spacing, scalar_volume
from .preview import _cosmetic_pen


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
    any_view = True  # paints in coronal/sagittal views too (gui/mpr), through the canvas' view-frame labels

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
        self._last = None

    def finish(self) -> None:
        """Close the open drag (commit its undo step)."""
        if self._edit is not None:
            edit, self._edit = self._edit, None
            edit.close()
        self._last = None

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
        p = self._point(event)
        self._last = p
        try:
            self._paint_segment(p, p)
        except WorkbenchError as exc:
            self._edit.abandon()
            self._edit = None
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
