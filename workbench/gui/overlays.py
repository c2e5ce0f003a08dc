"""Overlay graphics items: the label map (dirty-rectangle QImage) and detection boxes."""
from __future__ import annotations

import numpy as np

from ..core.labels import DEFAULT_COLORS, LabelMap, color_to_rgb
from .qt import Qt, QtCore, QtGui, QtWidgets
from .view_state import ViewState


def _premultiplied(rgb: tuple[int, int, int], alpha: float) -> int:
    a = int(round(min(max(alpha, 0.0), 1.0) * 255))
    r, g, b = (int(round(c * a / 255)) for c in rgb)
    return (a << 24) | (r << 16) | (g << 8) | b


class BufferImageItem(QtWidgets.QGraphicsItem):
    """A graphics item drawing a persistent ARGB32-premultiplied ``uint32`` buffer that *is* its QImage's
    memory: subclasses write a rectangle of ``_buffer`` and call ``update(rect)``, and :meth:`paint` copies
    only the exposed whole pixels. Subclasses say in :meth:`_has_content` whether there is anything to draw.
    """

    def __init__(self, parent: QtWidgets.QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self._buffer = np.zeros((1, 1), np.uint32)
        self._image = self._wrap(self._buffer)

    @staticmethod
    def _wrap(buffer: np.ndarray) -> QtGui.QImage:
        h, w = buffer.shape
        return QtGui.QImage(buffer.data, w, h, w * 4, QtGui.QImage.Format.Format_ARGB32_Premultiplied)

    def _allocate(self, h: int, w: int) -> None:
        """A new transparent ``h`` x ``w`` buffer (the item's geometry changes with it)."""
        self.prepareGeometryChange()
        self._buffer = np.zeros((h, w), np.uint32)
        self._image = self._wrap(self._buffer)

    def _has_content(self) -> bool:
        return True

    @property
    def buffer(self) -> np.ndarray:
        """The premultiplied ARGB pixels shown (read-only use: tests, screenshots)."""
        return self._buffer

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 (Qt API)
        h, w = self._buffer.shape
        return QtCore.QRectF(0, 0, w, h)

    def paint(self, painter: QtGui.QPainter, option, widget=None) -> None:
        if not self._has_content():
            return
        rect = option.exposedRect.intersected(self.boundingRect())
        if rect.isEmpty():
            return
        # whole pixels only: a fractional source rect would resample and blur label edges
        src = rect.toAlignedRect().intersected(self.boundingRect().toRect())
        painter.drawImage(QtCore.QRectF(src), self._image, QtCore.QRectF(src))


class LabelOverlayItem(BufferImageItem):
    """The label map of the shown slice as an ARGB32-premultiplied QImage drawn over the image.

    pyqtgraph's ImageItem re-renders its whole image on every ``setImage``/``updateImage`` (10-14 ms for
    2048²), far too slow to follow a brush. This item keeps a persistent ``uint32`` buffer that *is* the
    QImage's memory: an edit converts only the label-map rectangle it touched (``np.take`` through a 64 K
    colour LUT) and asks Qt to repaint only that rectangle. Measured in tests/bench/test_bench_viewer.py.
    """

    def __init__(self, parent: QtWidgets.QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self._labels: LabelMap | None = None
        self._z = 0
        self._lut = np.zeros(65536, np.uint32)
        self._outline = np.zeros(65536, bool)
        self._any_outline = False
        self._empty = True  # the buffer is known to be all transparent

    # -- binding ----------------------------------------------------------------------------------
    def set_labels(self, labels: LabelMap | None, z: int = 0) -> None:
        """Show ``labels`` (slice ``z``); reallocates the buffer when the plane size changes."""
        if self._labels is not None:
            self._labels.data_changed.disconnect(self.on_data_changed)
        self._labels = labels
        self._z = int(z)
        if labels is None:
            self._allocate(1, 1)
            self._empty = True
            self.update()
            return
        labels.data_changed.connect(self.on_data_changed)
        h, w = labels.shape[1], labels.shape[2]
        if self._buffer.shape != (h, w):
            self._allocate(h, w)
            self._empty = True
        self.refresh()

    def set_slice(self, z: int) -> None:
        if int(z) != self._z:
            self._z = int(z)
            self.refresh()

    def set_style(self, labels: LabelMap | None, state: ViewState) -> None:
        """Rebuild the colour LUT from the label table and the view's per-label styles, then redraw."""
        lut = np.zeros(65536, np.uint32)
        outline = np.zeros(65536, bool)
        if state.overlay_visible and labels is not None:
            # values painted without a table entry still show, in the default palette at the default style
            default = LabelStyleDefaults(state)
            palette = np.array([default.color(i) for i in range(len(DEFAULT_COLORS))], np.uint32)
            lut[1:] = palette[(np.arange(1, 65536) - 1) % len(DEFAULT_COLORS)]
            for value, label in labels.labels.items():
                style = state.label_style(value)
                alpha = style.opacity * state.overlay_opacity if label.visible else 0.0
                lut[value] = _premultiplied(color_to_rgb(label.color), alpha)
                outline[value] = style.outline
        self._lut = lut
        self._outline = outline
        self._any_outline = bool(outline.any())
        self.refresh()

    # -- updates ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Recolour the whole shown slice."""
        if self._labels is None:
            return
        h, w = self._buffer.shape
        if int(self._labels.data[self._z].max(initial=0)) == 0:
            # the common case when scrolling a stack without a segmentation: a 0.1 ms max instead of
            # an 8 ms LUT pass over 2048² pixels
            if not self._empty:
                self._buffer.fill(0)
                self._empty = True
        else:
            self._paint_box(0, h, 0, w)
        self.update()

    def on_data_changed(self, bbox: tuple[slice, ...]) -> None:
        """``LabelMap.data_changed`` handler: recolour and repaint only the dirty rectangle."""
        if self._labels is None:
            return
        zs, ys, xs = bbox[:3]
        z0, z1, _ = zs.indices(self._labels.shape[0])
        if not z0 <= self._z < z1:
            return
        h, w = self._buffer.shape
        y0, y1, _ = ys.indices(h)
        x0, x1, _ = xs.indices(w)
        # outlines of the neighbours change too: grow the box by one pixel
        y0, x0, y1, x1 = max(y0 - 1, 0), max(x0 - 1, 0), min(y1 + 1, h), min(x1 + 1, w)
        if y1 <= y0 or x1 <= x0:
            return
        self._paint_box(y0, y1, x0, x1)
        self.update(QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))

    def _paint_box(self, y0: int, y1: int, x0: int, x1: int) -> None:
        plane = self._labels.data[self._z]
        region = plane[y0:y1, x0:x1]
        colours = np.take(self._lut, region)
        if self._any_outline:
            outline = np.take(self._outline, region)
            if outline.any():
                # a pixel of an outlined label is shown only where a 4-neighbour differs (contour)
                H, W = plane.shape
                py0, px0, py1, px1 = max(y0 - 1, 0), max(x0 - 1, 0), min(y1 + 1, H), min(x1 + 1, W)
                # at the image border, replicate the edge pixel (the border is not a contour)
                pad = ((int(py0 == y0), int(py1 == y1)), (int(px0 == x0), int(px1 == x1)))
                padded = np.pad(plane[py0:py1, px0:px1], pad, mode="edge")
                centre = padded[1:-1, 1:-1]
                edge = ((padded[:-2, 1:-1] != centre) | (padded[2:, 1:-1] != centre)
                        | (padded[1:-1, :-2] != centre) | (padded[1:-1, 2:] != centre))
                colours[outline & ~edge] = 0
        self._buffer[y0:y1, x0:x1] = colours
        self._empty = False

    # -- QGraphicsItem ----------------------------------------------------------------------------
    def _has_content(self) -> bool:
        return self._labels is not None


class LabelStyleDefaults:
    """Premultiplied default-palette colours at the default label style (for values without a table entry)."""

    def __init__(self, state: ViewState) -> None:
        self._alpha = 0.5 * state.overlay_opacity

    def color(self, i: int) -> int:
        return _premultiplied(color_to_rgb(DEFAULT_COLORS[i]), self._alpha)


def _class_color(index: int) -> QtGui.QColor:
    return QtGui.QColor(DEFAULT_COLORS[int(index) % len(DEFAULT_COLORS)])


class DetectionOverlayItem(QtWidgets.QGraphicsItem):
    """Boxes of the document's detection results on the shown slice, with ``label score`` captions."""

    def __init__(self, parent: QtWidgets.QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, True)
        self._children: list[QtWidgets.QGraphicsItem] = []
        self._selected_key: tuple[int, int] | None = None  # (result index, detection index) highlighted
        self._selected_result: object | None = None  # the result that index named when it was picked

    @property
    def selected_key(self) -> tuple[int, int] | None:
        """(result index, detection index) of the highlighted box; follows its result when results before it
        are removed, and is dropped with it (the highlight never jumps onto another result's box)."""
        return self._selected_key

    @selected_key.setter
    def selected_key(self, key: tuple[int, int] | None) -> None:
        self._selected_key, self._selected_result = key, None

    def _follow_selection(self, results: list) -> None:
        if self._selected_key is None:
            return
        r_index, d_index = self._selected_key
        if self._selected_result is None:
            self._selected_result = results[r_index] if 0 <= r_index < len(results) else None
            if self._selected_result is None:
                self._selected_key = None
            return
        if 0 <= r_index < len(results) and results[r_index] is self._selected_result:
            return
        moved = next((i for i, r in enumerate(results) if r is self._selected_result), None)
        self._selected_key = (moved, d_index) if moved is not None else None
        if moved is None:
            self._selected_result = None

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802
        return QtCore.QRectF()

    def paint(self, painter, option, widget=None) -> None:
        return None

    @property
    def visible_boxes(self) -> list[QtWidgets.QGraphicsRectItem]:
        return [c for c in self._children if isinstance(c, QtWidgets.QGraphicsRectItem)]

    @property
    def visible_captions(self) -> list[QtWidgets.QGraphicsSimpleTextItem]:
        return [c for c in self._children if isinstance(c, QtWidgets.QGraphicsSimpleTextItem)]

    def rebuild(self, results: list, state: ViewState, z: int) -> None:
        """Re-create the boxes: detections of slice ``z`` scoring at least the threshold."""
        scene = self.scene()
        for child in self._children:
            child.setParentItem(None)
            if scene is not None:
                scene.removeItem(child)
        self._children = []
        from ..core.results import DetectionResult

        self._follow_selection(results)

        if not state.detections_visible:
            return
        font = QtGui.QFont()
        font.setPointSizeF(9.5)
        for r_index, result in enumerate(results):
            if not isinstance(result, DetectionResult):
                continue
            for d_index, det in enumerate(result.detections):
                if det.slice_index != z or det.score < state.score_threshold:
                    continue
                x1, y1, x2, y2 = (float(v) for v in det.box)
                colour = _class_color(det.index)
                rect = QtWidgets.QGraphicsRectItem(QtCore.QRectF(x1, y1, x2 - x1, y2 - y1), self)
                pen = QtGui.QPen(colour, 3 if self.selected_key == (r_index, d_index) else 2)
                pen.setCosmetic(True)  # constant screen width at every zoom
                rect.setPen(pen)
                rect.setData(0, (r_index, d_index))
                self._children.append(rect)
                if state.show_captions:
                    text = QtWidgets.QGraphicsSimpleTextItem(f"{det.label} {det.score:.2f}", self)
                    text.setFont(font)
                    text.setBrush(QtGui.QBrush(QtGui.QColor("white")))
                    # captions keep their screen size at every zoom
                    text.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
                    text.setPos(x1, y1)
                    back = QtWidgets.QGraphicsRectItem(text.boundingRect().adjusted(-2, -1, 2, 1), text)
                    back.setBrush(QtGui.QBrush(colour.darker(130)))
                    back.setPen(QtGui.QPen(Qt.PenStyle.NoPen))
                    back.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemStacksBehindParent, True)
                    # place above the box's top-left corner
                    text.setTransform(QtGui.QTransform.fromTranslate(0, -text.boundingRect().height() - 2))
                    self._children.append(text)
