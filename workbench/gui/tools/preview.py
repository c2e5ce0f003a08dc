"""Preview items of the tools: the translucent mask preview (threshold / region grow) and cosmetic pens."""
from __future__ import annotations

import numpy as np

from ...core.labels import color_to_rgb
from ..overlays import BufferImageItem
from ..qt import Qt, QtCore, QtGui, QtWidgets

PREVIEW_COLOR = "#ffd400"


def premultiplied_argb(color: str, alpha: float) -> int:
    """``#rrggbb`` + alpha -> one premultiplied ARGB32 pixel value."""
    r, g, b = color_to_rgb(color)
    a = int(round(min(max(alpha, 0.0), 1.0) * 255))
    return (a << 24) | ((r * a // 255) << 16) | ((g * a // 255) << 8) | (b * a // 255)


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
