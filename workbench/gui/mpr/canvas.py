"""The coronal and sagittal canvases: :class:`~workbench.gui.canvas.CanvasWidget` in another view frame.

Not a second canvas: the class reuses the canvas' items, mouse routing, W/L drag, zoom and tool interface and
only overrides the view-frame hooks (``slice_index``, ``step_slice``, ``view_image``, ``view_labels``,
``readout``) and the drawing of the slice. Coordinates in the view are voxel indices of the view frame
(:mod:`workbench.core.mpr`), so a tool's ``(z, y, x)`` arithmetic runs unchanged on the canvas'
:class:`~workbench.core.oriented_labels.OrientedLabels`; the physical aspect is the ViewBox's locked aspect
ratio, not a resampled picture.

The axial slice, compare modes, detections and the profile line stay with the axial canvas (results are
axial); these views show the image, the labels and the crosshair.
"""
from __future__ import annotations

import math

from ...core.document import Document
from ...core.image import ImageVolume
from ...core.mpr import (
    AXIAL,
    CORONAL,
    SAGITTAL,
    Crosshair,
    Orientation,
    PlaneReader,
    oriented_image,
    pixel_aspect,
    superior_up,
    to_voxel,
)
from ...core.oriented_labels import OrientedLabels
from ..canvas import CanvasWidget
from ..display import cursor_readout
from ..qt import QtCore, QtGui, QtWidgets
from ..view_state import ViewState

#: line colour of each orientation's plane where the other views draw it (3D Slicer's convention)
PLANE_COLOURS = {"axial": "#e8554e", "coronal": "#5fcf6a", "sagittal": "#f2d14b"}


def set_physical_aspect(canvas: CanvasWidget, image: ImageVolume | None, o: Orientation) -> None:
    """Lock the canvas' ViewBox to the mm aspect of ``o``'s pixels (rows of ``row_mm``, columns of
    ``col_mm``) and point the rows of coronal/sagittal views superior-up when the geometry says so."""
    ratio = 1.0
    if image is not None and image.spacing_known:
        ratio = 1.0 / pixel_aspect(image.spacing, o)  # pyqtgraph's ratio: screen px per x unit / per y unit
    vb = canvas.view.vb
    vb.setAspectLocked(True, ratio=ratio)
    if o.axis != 0:
        vb.invertY(not superior_up(image))


class CrosshairLines:
    """The crosshair drawn on one canvas: the two other planes as thin lines through the shared voxel."""

    def __init__(self, canvas: CanvasWidget, crosshair: Crosshair) -> None:
        self.canvas = canvas
        self.crosshair = crosshair
        o = canvas.orientation
        self.horizontal = QtWidgets.QGraphicsLineItem()  # the plane along the view's rows axis
        self.vertical = QtWidgets.QGraphicsLineItem()  # the plane along its columns axis
        for item, axis in ((self.horizontal, o.perm[1]), (self.vertical, o.perm[2])):
            name = next(x.name for x in (AXIAL, CORONAL, SAGITTAL) if x.axis == axis)
            pen = QtGui.QPen(QtGui.QColor(PLANE_COLOURS[name]), 1)
            pen.setCosmetic(True)
            item.setPen(pen)
            item.setOpacity(0.8)
            canvas.add_overlay_item(item, 6)
        self.visible = True
        crosshair.moved.connect(self.update)
        self.update()

    def set_visible(self, visible: bool) -> None:
        self.visible = bool(visible)
        self.update()

    def update(self, *_args) -> None:
        image = self.canvas.view_image
        show = self.visible and image is not None and self.canvas.document.image is not None \
            and self.crosshair.shape == tuple(self.canvas.document.image.shape[:3])
        self.horizontal.setVisible(show)
        self.vertical.setVisible(show)
        if not show:
            return
        r, c = self.crosshair.view_point(self.canvas.orientation)
        # through the voxel's centre: pixel (r, c) covers [c, c + 1) x [r, r + 1)
        self.horizontal.setLine(0, r + 0.5, image.width, r + 0.5)
        self.vertical.setLine(c + 0.5, 0, c + 0.5, image.height)


class OrientedCanvas(CanvasWidget):
    """A canvas showing the plane of ``orientation`` through the ``crosshair`` (coronal or sagittal)."""

    def __init__(self, document: Document, view_state: ViewState, crosshair: Crosshair,
                 orientation: Orientation, parent: QtWidgets.QWidget | None = None) -> None:
        if orientation.axis == 0:
            raise ValueError("the axial view is the main canvas; OrientedCanvas shows coronal or sagittal")
        super().__init__(document, view_state, parent)
        self.orientation = orientation
        self.crosshair = crosshair
        self._frame_image: ImageVolume | None = None
        self._frame_labels: OrientedLabels | None = None
        self._reader: PlaneReader | None = None
        self._shown_slice = -1
        self._stale = False  # a render was skipped while the view was hidden (another layout)
        crosshair.moved.connect(self._on_crosshair)

    # -- the view-frame hooks ---------------------------------------------------------------------
    @property
    def slice_index(self) -> int:
        return self.crosshair.slice_index(self.orientation)

    def step_slice(self, delta: int) -> None:
        self.crosshair.set_axis(self.orientation.axis, self.slice_index + int(delta))

    @property
    def view_image(self) -> ImageVolume | None:
        return self._frame_image

    @property
    def view_labels(self) -> OrientedLabels | None:
        return self._frame_labels

    def readout(self, x: float, y: float) -> str | None:
        image = self._frame_image
        if image is None or not (0 <= x < image.width and 0 <= y < image.height):
            return None
        z, vy, vx = to_voxel(self.orientation, self.slice_index, math.floor(y), math.floor(x))
        return cursor_readout(self.document.image, z, vx, vy)

    # -- drawing ----------------------------------------------------------------------------------
    def _current(self) -> bool:
        """Whether the frame proxies belong to the open image (a crosshair reset can come first)."""
        image = self.document.image
        return image is not None and self._shown_image is image and self._frame_image is not None

    def reload(self) -> None:
        image = self.document.image
        self._frame_image = oriented_image(image, self.orientation) if image is not None else None
        self._reader = PlaneReader(image.data, self.orientation) if image is not None else None
        set_physical_aspect(self, image, self.orientation)
        self._shown_slice = -1
        super().reload()

    def rebind_labels(self) -> None:
        labels = self.document.labels
        old = self._bound_labels
        if old is not None and old is not labels:
            old.labels_changed.disconnect(self._restyle_labels)
        if self._frame_labels is not None and self._frame_labels.base is not labels:
            self._frame_labels.close()
            self._frame_labels = None
        if labels is not None and self._frame_labels is None:
            self._frame_labels = OrientedLabels(labels, self.orientation)
        if labels is not None and self._frame_image is not None:
            self.label_overlay.set_labels(self._frame_labels, self.slice_index)
            if old is not labels:
                labels.labels_changed.connect(self._restyle_labels)
        else:
            self.label_overlay.set_labels(None)
        self._bound_labels = labels
        self._restyle_labels()

    def render(self) -> None:
        image = self.document.image
        if image is None or not self._current() or self._reader is None:
            return
        if not self.isVisible():
            # a hidden view (layout "1", a maximised neighbour) must not cost a scroll or W/L drag anything
            self._stale = True
            return
        self._stale = False
        s = self.slice_index
        state = self.view_state
        frame = self._renderer.render(self._reader.plane(s), *state.window, invert=state.invert)
        self._shown_slice = s
        self._set_frame(frame)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        if self._stale:
            self.render()

    def zoom_to_fit(self) -> None:
        image = self._frame_image
        if image is not None:
            self.view.vb.setRange(QtCore.QRectF(0, 0, image.width, image.height), padding=0.02)

    def _on_crosshair(self, _position: tuple) -> None:
        if self._current() and self.slice_index != self._shown_slice:
            self.label_overlay.set_slice(self.slice_index)
            self.render()

    # the axial slice, detections (axial boxes), compare modes and the profile line are the axial view's
    def _on_slice_changed(self) -> None:
        return None

    def rebuild_detections(self) -> None:
        self.detection_overlay.setVisible(False)

    def _update_compare(self) -> None:
        self.side_view.setVisible(False)
        self._swipe_clip.setVisible(False)
        self._swipe_line.setVisible(False)
        self.render()

    def _update_profile_line(self) -> None:
        self._profile_item.hide()
