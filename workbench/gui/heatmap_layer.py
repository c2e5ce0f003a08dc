"""The heat-map layer over the image and its legend: views of the document's heat-map store.

:class:`HeatmapLayer` is one ``pg.ImageItem`` in the canvas's view box (above the label overlay, below
detections and tool previews) showing the store's current explanation on its own slice, coloured by
:func:`workbench.export.heatmap.colorize` -- the same colours as the exported PNG and the report.
:class:`LegendBar` draws the colour ramp with its end values and the map's units.
"""
from __future__ import annotations

import numpy as np

from ..export.heatmap import colorize, colormap_lut, display_range
from ..inference.explain.store import HeatmapStore
from .qt import QtCore, QtGui, QtWidgets, pg

Z_HEATMAP = 2.5  # label overlay 2, detections 3


class HeatmapLayer:
    """Binds the canvas to a :class:`HeatmapStore` (GUI thread only)."""

    def __init__(self, canvas, view_state, store: HeatmapStore) -> None:
        self.canvas = canvas
        self.view_state = view_state
        self.store = store
        self.item = pg.ImageItem(axisOrder="row-major")
        self.item.setZValue(Z_HEATMAP)
        self.item.setVisible(False)
        canvas.view.vb.addItem(self.item)
        self.rgba: np.ndarray | None = None  # what the item shows (tests)
        store.changed.connect(self.refresh)
        store.styled.connect(self.refresh)
        view_state.slice_changed.connect(lambda _z: self.refresh())

    def rebind(self, store: HeatmapStore) -> None:
        """Follow another store (a new document)."""
        for sig in (self.store.changed, self.store.styled):
            sig.disconnect(self.refresh)
        self.store = store
        store.changed.connect(self.refresh)
        store.styled.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        current = self.store.current_item()
        image = self.canvas.document.image
        if current is None or image is None:
            self.item.setVisible(False)
            self.rgba = None
            return
        expl, style = current
        on_slice = expl.slice_index == self.view_state.slice_index
        if expl.map.shape != (image.height, image.width):
            self.item.setVisible(False)
            self.rgba = None
            return
        rgba = colorize(expl.map, display_range(expl.map, expl.method), style.cmap)
        rgba[..., 3] = np.rint(rgba[..., 3].astype(np.float32) * float(style.opacity)).astype(np.uint8)
        self.rgba = rgba
        self.item.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.item.setRect(QtCore.QRectF(0, 0, image.width, image.height))
        self.item.setVisible(bool(style.visible and on_slice))

    @property
    def shown(self) -> bool:
        return bool(self.item.isVisible())


class LegendBar(QtWidgets.QWidget):
    """Colour ramp, end values and units of the current heat map."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.cmap = "inferno"
        self.vrange = (0.0, 1.0)
        self.units = ""
        self.setMinimumHeight(44)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)

    def set_map(self, cmap: str, vrange: tuple[float, float], units: str) -> None:
        self.cmap, self.vrange, self.units = cmap, vrange, units
        self.setToolTip(units)
        self.update()

    def paintEvent(self, _event: QtGui.QPaintEvent) -> None:  # noqa: N802
        painter = QtGui.QPainter(self)
        lut = colormap_lut(self.cmap)
        w = max(10, self.width() - 8)
        grad = QtGui.QLinearGradient(4, 0, 4 + w, 0)
        for i in range(0, 256, 16):
            r, g, b = (int(v) for v in lut[i])
            grad.setColorAt(i / 255.0, QtGui.QColor(r, g, b))
        r, g, b = (int(v) for v in lut[255])
        grad.setColorAt(1.0, QtGui.QColor(r, g, b))
        painter.fillRect(QtCore.QRectF(4, 2, w, 10), QtGui.QBrush(grad))
        painter.setPen(self.palette().color(QtGui.QPalette.ColorRole.WindowText))
        fm = painter.fontMetrics()
        lo, hi = self.vrange
        painter.drawText(4, 14 + fm.ascent(), f"{lo:.3g}")
        hi_text = f"{hi:.3g}"
        painter.drawText(4 + w - fm.horizontalAdvance(hi_text), 14 + fm.ascent(), hi_text)
        units = fm.elidedText(self.units, QtCore.Qt.TextElideMode.ElideRight, w)
        painter.drawText(4, 16 + fm.height() + fm.ascent(), units)
        painter.end()
