"""The image canvas: a pyqtgraph ViewBox + ImageItem with overlays, W/L, slices and the tool interface.

Not pyqtgraph's ImageView: that widget keeps its own levels, histogram and time axis in its widgets; here the
state lives in :class:`~workbench.core.Document` (what is open) and :class:`~workbench.gui.view_state.ViewState`
(how it is shown) and the canvas only draws them.

Mouse routing (see :mod:`workbench.gui.tools.base`): left button -> active tool (default: navigation = pan), middle
drag or Space + left drag -> pan, right drag -> window/level (horizontal = width, vertical = level), wheel ->
zoom, Ctrl + wheel / Page Up / Page Down -> slices.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from ..core.document import Document
from ..core.image import ImageVolume, percentile_window
from ..core.labels import LabelMap
from ..core.mpr import AXIAL
from .display import WindowRenderer, cursor_readout
from .overlay_text import OverlayText
from .overlays import DetectionOverlayItem, LabelOverlayItem
from .qt import Qt, QtCore, QtGui, QtWidgets, Signal, pg
from .tools.base import CanvasEvent, CanvasTool, NavigationTool
from .view_state import ViewState

# Right-drag window/level: a drag across 300 screen pixels changes the window by one default width.
WL_PIXELS_PER_WIDTH = 300.0
WHEEL_ZOOM_PER_NOTCH = 0.85


class _ImageView(pg.GraphicsView):
    """One pyqtgraph view (a locked-aspect, y-down ViewBox) whose mouse input goes to the canvas."""

    def __init__(self, canvas: "CanvasWidget") -> None:
        super().__init__(parent=canvas, background=None)
        self._canvas = canvas
        self.vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.02)
        # the canvas implements zoom/pan itself so that the mouse buttons follow radiology conventions
        self.vb.setMouseEnabled(False, False)
        self.setCentralItem(self.vb)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setAcceptDrops(False)  # drops go to the main window

    def mousePressEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802
        self.setFocus()
        self._canvas._mouse_press(self, ev)

    def mouseMoveEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802
        self._canvas._mouse_move(self, ev)

    def mouseReleaseEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802
        self._canvas._mouse_release(self, ev)

    def wheelEvent(self, ev: QtGui.QWheelEvent) -> None:  # noqa: N802
        self._canvas._wheel(self, ev)

    def keyPressEvent(self, ev: QtGui.QKeyEvent) -> None:  # noqa: N802
        if not self._canvas._key_press(ev):
            super().keyPressEvent(ev)

    def keyReleaseEvent(self, ev: QtGui.QKeyEvent) -> None:  # noqa: N802
        if not self._canvas._key_release(ev):
            super().keyReleaseEvent(ev)

    def leaveEvent(self, ev: QtCore.QEvent) -> None:  # noqa: N802
        self._canvas.cursor_moved.emit("")
        super().leaveEvent(ev)


class CanvasWidget(QtWidgets.QWidget):
    """The central image view. Bind it to a document and a view state; it redraws on their events.

    Signals
    -------
    cursor_moved(str)
        The cursor readout text (empty when the cursor left the image).
    tool_changed(object)
        ``set_tool`` made another tool active (the toolbar checks its button).
    """

    cursor_moved = Signal(str)
    tool_changed = Signal(object)
    #: the view frame shown (gui/mpr/canvas.py: coronal and sagittal canvases override the hooks below)
    orientation = AXIAL

    def __init__(self, document: Document, view_state: ViewState, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.view_state = view_state
        self._bound_labels: LabelMap | None = None  # the label map whose table events restyle the overlay
        self._renderer = WindowRenderer()
        self._side_renderer = WindowRenderer()
        self._tool: CanvasTool = NavigationTool()
        self._tool.activate(self)
        self._drag: str | None = None  # "pan" | "wl" | "tool"
        self._drag_last = QtCore.QPointF()
        self._drag_start = QtCore.QPointF()
        self._wl_start = (0.0, 1.0)
        self._space_down = False
        self._shown_image: ImageVolume | None = None
        self.last_frame: np.ndarray | None = None  # the uint8 frame handed to the ImageItem (tests, bench)

        self.view = _ImageView(self)
        self.side_view = _ImageView(self)  # restored image in side-by-side compare
        self.side_view.hide()
        self.side_view.vb.setXLink(self.view.vb)
        self.side_view.vb.setYLink(self.view.vb)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.view)
        layout.addWidget(self.side_view)

        vb = self.view.vb
        self.image_item = pg.ImageItem(axisOrder="row-major")
        vb.addItem(self.image_item)
        # swipe compare: the restored image clipped to the right of the swipe position
        self._swipe_clip = QtWidgets.QGraphicsRectItem()
        self._swipe_clip.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape, True)
        self._swipe_clip.setPen(QtGui.QPen(Qt.PenStyle.NoPen))
        self._swipe_clip.setZValue(1)
        vb.addItem(self._swipe_clip)
        self.restored_item = pg.ImageItem(axisOrder="row-major")
        self.restored_item.setParentItem(self._swipe_clip)
        self._swipe_line = QtWidgets.QGraphicsLineItem()
        pen = QtGui.QPen(QtGui.QColor("#ffd400"), 2)
        pen.setCosmetic(True)
        self._swipe_line.setPen(pen)
        self._swipe_line.setZValue(5)
        vb.addItem(self._swipe_line)
        self._swipe_clip.hide()
        self._swipe_line.hide()

        self.label_overlay = LabelOverlayItem()
        self.label_overlay.setZValue(2)
        vb.addItem(self.label_overlay)
        self.detection_overlay = DetectionOverlayItem()
        self.detection_overlay.setZValue(3)
        vb.addItem(self.detection_overlay)
        self._profile_item = QtWidgets.QGraphicsLineItem()
        pen = QtGui.QPen(QtGui.QColor("#ffd400"), 1.5, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self._profile_item.setPen(pen)
        self._profile_item.setZValue(4)
        self._profile_item.hide()
        vb.addItem(self._profile_item)
        self._preview = QtWidgets.QGraphicsItemGroup()
        self._preview.setZValue(10)
        vb.addItem(self._preview)

        self.side_item = pg.ImageItem(axisOrder="row-major")
        self.side_view.vb.addItem(self.side_item)

        view_state.reloaded.connect(self.reload)
        view_state.slice_changed.connect(lambda _z: self._on_slice_changed())
        view_state.window_changed.connect(lambda *_: self.render())
        view_state.invert_changed.connect(lambda _i: self.render())
        view_state.overlay_changed.connect(self._restyle_labels)
        view_state.detections_changed.connect(self.rebuild_detections)
        view_state.compare_changed.connect(self._update_compare)
        view_state.profile_changed.connect(self._update_profile_line)
        document.results_changed.connect(self.rebuild_detections)
        self.setCursor(self._tool.cursor)
        self.overlay_text = OverlayText(self)  # modality, series, zoom, slice, W/L in the view's corners

    # -- public API -------------------------------------------------------------------------------
    @property
    def tool(self) -> CanvasTool:
        return self._tool

    # view-frame hooks: what tools and the cursor readout see ((slice, row, col) = (z, y, x) here)
    @property
    def slice_index(self) -> int:
        return self.view_state.slice_index

    def step_slice(self, delta: int) -> None:
        self.view_state.step_slice(delta)

    @property
    def view_image(self) -> ImageVolume | None:
        return self.document.image

    @property
    def view_labels(self):
        return self.document.labels

    def readout(self, x: float, y: float) -> str | None:
        """The cursor readout of view position ``(x, y)`` (``None`` outside the image)."""
        return cursor_readout(self.document.image, self.slice_index, x, y)

    def set_tool(self, tool: CanvasTool | None) -> None:
        """Make ``tool`` the active tool (``None``: navigation)."""
        self._tool.deactivate()
        self._tool = tool if tool is not None else NavigationTool()
        self._tool.activate(self)
        self.setCursor(self._tool.cursor)
        self.view.setCursor(self._tool.cursor)
        self.tool_changed.emit(self._tool)

    def add_preview_item(self, item: QtWidgets.QGraphicsItem) -> None:
        """Show a tool's preview item (image coordinates) above everything else."""
        # setParentItem, not addToGroup: addToGroup keeps the item's *scene* position, so a parentless item
        # (whose coordinates are scene = widget pixels) got an inverse transform and every rect set in image
        # coordinates afterwards was drawn small near the top-left corner (issue 11)
        item.setParentItem(self._preview)

    def add_overlay_item(self, item: QtWidgets.QGraphicsItem, z: float) -> None:
        """Show a dock's overlay item (image coordinates) at stacking order ``z`` (labels 2, detections 3,
        tool previews 10)."""
        item.setZValue(z)
        self.view.vb.addItem(item)

    def select_detection(self, key: tuple[int, int], box: tuple[float, float, float, float]) -> None:
        """Highlight detection ``key`` (result index, detection index) and centre the view on its ``box``
        (``x1, y1, x2, y2``) without changing the zoom."""
        self.detection_overlay.selected_key = key
        self.rebuild_detections()
        x1, y1, x2, y2 = box
        vb = self.view.vb
        (vx0, vx1), (vy0, vy1) = vb.viewRange()
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        vb.setRange(xRange=(cx - (vx1 - vx0) / 2, cx + (vx1 - vx0) / 2),
                    yRange=(cy - (vy1 - vy0) / 2, cy + (vy1 - vy0) / 2), padding=0)

    def clear_preview(self) -> None:
        for item in self._preview.childItems():
            self._preview.removeFromGroup(item)
            if item.scene() is not None:
                item.scene().removeItem(item)

    def zoom_to_fit(self) -> None:
        image = self.document.image
        if image is None:
            return
        self.view.vb.setRange(QtCore.QRectF(0, 0, image.width, image.height), padding=0.02)

    def zoom_one_to_one(self) -> None:
        """One image pixel per screen pixel, centred where the view is centred now."""
        vb = self.view.vb
        (x0, x1), (y0, y1) = vb.viewRange()
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        size = vb.size()
        w, h = max(size.width(), 1.0), max(size.height(), 1.0)
        vb.setRange(xRange=(cx - w / 2, cx + w / 2), yRange=(cy - h / 2, cy + h / 2), padding=0)

    def zoom_by(self, factor: float, center: QtCore.QPointF | None = None) -> None:
        """Zoom by ``factor`` (< 1 zooms in) around ``center`` in image coordinates (default: view centre)."""
        self.view.vb.scaleBy((factor, factor), center=center)

    def pan_by_view_pixels(self, delta: QtCore.QPointF) -> None:
        """Move the image with the mouse by ``delta`` screen pixels."""
        sx, sy = self.view.vb.viewPixelSize()
        self.view.vb.translateBy(x=-delta.x() * sx, y=-delta.y() * sy)

    def image_coordinates(self, view: _ImageView, pos: QtCore.QPointF) -> tuple[float, float]:
        """Widget position -> image ``(x, y)``."""
        scene = view.mapToScene(pos.toPoint())
        # both views show their image in the original's pixel grid (the restored one via setRect)
        p = view.vb.mapSceneToView(scene)
        return p.x(), p.y()

    # -- reacting to the document/view state ------------------------------------------------------
    def reload(self) -> None:
        """A new image was opened (or the document emptied): redraw everything and fit it."""
        image = self.document.image
        self._shown_image = image
        self.rebind_labels()
        if image is None:
            self.image_item.clear()
            self.last_frame = None
            self.side_item.clear()
        else:
            self.render()
            self.zoom_to_fit()
        self.rebuild_detections()
        self._update_compare()
        self._update_profile_line()

    def rebind_labels(self) -> None:
        """Attach the overlay to the document's current label map (a new one comes with every image)."""
        labels = self.document.labels
        self.label_overlay.set_labels(labels, self.view_state.slice_index)
        old = self._bound_labels
        if old is not None and old is not labels:
            old.labels_changed.disconnect(self._restyle_labels)
        if labels is not None:
            # name/colour/visibility live in the core label table
            labels.labels_changed.connect(self._restyle_labels)
        self._bound_labels = labels
        self._restyle_labels()

    def render(self) -> None:
        """Window the shown slice into uint8 and hand it to the ImageItem (levels fixed at 0..255)."""
        image = self.document.image
        if image is None:
            return
        state = self.view_state
        center, width = state.window
        if state.compare_mode == "difference" and state.restoration is not None:
            diff = self._difference_plane()
            if diff is not None:
                c, w = percentile_window(diff, 0.0, 99.5)
                frame = self._renderer.render(diff, max(c, w / 2), w, invert=False)
                self._set_frame(frame)
                return
        plane = image.slice(state.slice_index)
        frame = self._renderer.render(plane, center, width, invert=state.invert)
        self._set_frame(frame)
        if state.restoration is not None and state.compare_mode in ("swipe", "side"):
            restored = self.restored_plane()
            if restored is not None:
                rframe = self._side_renderer.render(restored, center, width, invert=state.invert)
                target = self.restored_item if state.compare_mode == "swipe" else self.side_item
                target.setImage(rframe, levels=(0, 255), autoLevels=False)
                target.setRect(QtCore.QRectF(0, 0, image.width, image.height))

    def _set_frame(self, frame: np.ndarray) -> None:
        self.last_frame = frame
        self.image_item.setImage(frame, levels=(0, 255), autoLevels=False)

    def _on_slice_changed(self) -> None:
        self.label_overlay.set_slice(self.view_state.slice_index)
        self.render()
        self.rebuild_detections()

    def _restyle_labels(self) -> None:
        self.label_overlay.set_style(self.document.labels, self.view_state)

    def rebuild_detections(self) -> None:
        self.detection_overlay.rebuild(self.document.results, self.view_state, self.view_state.slice_index)

    def _update_profile_line(self) -> None:
        line = self.view_state.profile_line
        if line is None:
            self._profile_item.hide()
            return
        (x0, y0), (x1, y1) = line
        self._profile_item.setLine(x0, y0, x1, y1)
        self._profile_item.show()

    def restored_plane(self) -> np.ndarray | None:
        result = self.view_state.restoration
        if result is None:
            return None
        restored: ImageVolume = result.image
        z = self.view_state.slice_index
        if restored.n_slices == self.view_state.n_slices:
            return restored.slice(z)
        indices = list(getattr(result.info, "slice_indices", []) or [])
        if len(indices) == restored.n_slices and z in indices:
            return restored.slice(indices.index(z))
        return restored.slice(0) if restored.n_slices == 1 else None

    def _difference_plane(self) -> np.ndarray | None:
        """``|restored - original|`` of the shown slice, the restored image resampled to the original grid."""
        image = self.document.image
        restored = self.restored_plane()
        if image is None or restored is None:
            return None
        original = image.slice(self.view_state.slice_index).astype(np.float32)
        restored = restored.astype(np.float32)
        if restored.shape[:2] != original.shape[:2]:
            restored = cv2.resize(restored, (original.shape[1], original.shape[0]), interpolation=cv2.INTER_AREA)
        diff = np.abs(restored - original)
        return diff.mean(axis=2) if diff.ndim == 3 else diff

    def _update_compare(self) -> None:
        state = self.view_state
        image = self.document.image
        mode = state.compare_mode if (state.restoration is not None and image is not None) else "off"
        self.side_view.setVisible(mode == "side")
        # boxes belong to the original image: never drawn over a difference (noise) map
        self.detection_overlay.setVisible(mode != "difference")
        self._swipe_clip.setVisible(mode == "swipe")
        self._swipe_line.setVisible(mode == "swipe")
        if mode == "swipe":
            x = state.swipe * image.width
            self._swipe_clip.setRect(QtCore.QRectF(x, 0, image.width - x, image.height))
            self._swipe_line.setLine(x, 0, x, image.height)
        if image is not None:
            self.render()

    # -- mouse and keys ---------------------------------------------------------------------------
    def _event(self, view: _ImageView, ev: QtGui.QMouseEvent) -> CanvasEvent:
        x, y = self.image_coordinates(view, ev.position())
        return CanvasEvent(x=x, y=y, z=self.slice_index, button=ev.button(), buttons=ev.buttons(),
                           modifiers=ev.modifiers(), view_pos=ev.position())

    def _mouse_press(self, view: _ImageView, ev: QtGui.QMouseEvent) -> None:
        button = ev.button()
        self._drag_last = ev.position()
        self._drag_start = ev.position()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space_down):
            self._drag = "pan"
            view.setCursor(Qt.CursorShape.ClosedHandCursor)
        elif button == Qt.MouseButton.RightButton and getattr(self._tool, "takes_right_button", False) \
                and self.document.image is not None and view is self.view:
            self._drag = "tool"  # e.g. the AI click tool: right click excludes
            self._tool.press(self._event(view, ev))
        elif button == Qt.MouseButton.RightButton:
            self._drag = "wl"
            self._wl_start = self.view_state.window
        elif button == Qt.MouseButton.LeftButton and self.document.image is not None and view is self.view:
            self._drag = "tool"
            self._tool.press(self._event(view, ev))
        ev.accept()

    def _mouse_move(self, view: _ImageView, ev: QtGui.QMouseEvent) -> None:
        pos = ev.position()
        if self._drag == "pan":
            self.pan_by_view_pixels(pos - self._drag_last)
        elif self._drag == "wl":
            self._window_drag(pos - self._drag_start)
        elif self._drag == "tool":
            self._tool.move(self._event(view, ev))
        elif view is self.view and self.document.image is not None:
            self._tool.hover(self._event(view, ev))
        self._drag_last = pos
        x, y = self.image_coordinates(view, pos)
        self.cursor_moved.emit(self.readout(x, y) or "")

    def _mouse_release(self, view: _ImageView, ev: QtGui.QMouseEvent) -> None:
        if self._drag == "tool":
            self._tool.release(self._event(view, ev))
        if self._drag == "pan":
            view.setCursor(self._tool.cursor)
        self._drag = None
        ev.accept()

    def _window_drag(self, delta: QtCore.QPointF) -> None:
        """Radiology convention: right-drag right widens the window, down raises the level (darker)."""
        c0, w0 = self._wl_start
        step = max(self.view_state.default_window[1], 1e-3) / WL_PIXELS_PER_WIDTH
        width = max(w0 + delta.x() * step, step)
        center = c0 + delta.y() * step
        self.view_state.set_window(center, width)

    def _wheel(self, view: _ImageView, ev: QtGui.QWheelEvent) -> None:
        delta = ev.angleDelta().y() or ev.angleDelta().x()
        if not delta:
            return
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.step_slice(-1 if delta > 0 else 1)
        else:
            x, y = self.image_coordinates(view, ev.position())
            self.zoom_by(math.pow(WHEEL_ZOOM_PER_NOTCH, delta / 120.0), QtCore.QPointF(x, y))
        ev.accept()

    def _key_press(self, ev: QtGui.QKeyEvent) -> bool:
        key = ev.key()
        if key == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self._space_down = True
            return True
        if key == Qt.Key.Key_PageDown:
            self.step_slice(1)
            return True
        if key == Qt.Key.Key_PageUp:
            self.step_slice(-1)
            return True
        return False

    def _key_release(self, ev: QtGui.QKeyEvent) -> bool:
        if ev.key() == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self._space_down = False
            return True
        return False
