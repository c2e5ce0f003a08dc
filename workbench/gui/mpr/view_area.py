"""The view area: axial, coronal and sagittal canvases of one volume, their layouts and the shared tool.

Layouts (View > Layout): ``"1"`` (the active view alone), ``"1+2"`` (the active view large, the other two
stacked beside it), ``"2x2"`` (axial | sagittal over coronal | the fourth pane, as ITK-SNAP arranges them).
Any view can be maximised and restored (its header button or a double-click with the navigation tool). A
2-D image (one slice) always shows the axial view alone.

One tool for all views: the Tools dock sets it on the main (axial) canvas as before; the view the mouse is in
borrows it (``deactivate`` there, ``activate`` here) when the tool says ``any_view`` (navigation, brush,
eraser, polygon, click tools) and uses plain navigation otherwise, so a tool that only knows axial slices
(AI click, ruler) is never fed coronal coordinates.
"""
from __future__ import annotations

from ...core.mpr import AXIAL, CORONAL, SAGITTAL, Crosshair
from ..canvas import CanvasWidget
from ..qt import Qt, QtCore, QtGui, QtWidgets, Signal
from ..tools.base import NavigationTool
from ..tools.click import ClickTool
from .canvas import PLANE_COLOURS, CrosshairLines, OrientedCanvas, set_physical_aspect

LAYOUTS = ("1", "1+2", "2x2")
LAYOUT_TITLES = {"1": "&Single view", "1+2": "&One + two", "2x2": "&2 x 2 (with histogram)"}
LAYOUT_SHORTCUTS = {"1": "Ctrl+Alt+1", "1+2": "Ctrl+Alt+2", "2x2": "Ctrl+Alt+4"}
MAXIMISE_SHORTCUT = "Ctrl+Alt+M"
CLICK_SLOP_PX = 3.0  # screen pixels a navigation press may move and still count as a click (crosshair)


class ViewPane(QtWidgets.QFrame):
    """One cell of the layout: a header (title, maximise button) over a widget."""

    def __init__(self, key: str, title: str, widget: QtWidgets.QWidget, area: "ViewArea") -> None:
        super().__init__(area)
        self.key = key
        self.widget = widget
        self.setObjectName("viewPane")
        self.header = QtWidgets.QWidget()
        head = QtWidgets.QHBoxLayout(self.header)
        head.setContentsMargins(6, 1, 2, 1)
        head.setSpacing(4)
        self.title = QtWidgets.QLabel(title)
        colour = PLANE_COLOURS.get(key)
        if colour is not None:
            self.title.setStyleSheet(f"color: {colour}; font-weight: 600;")
        head.addWidget(self.title)
        self.position = QtWidgets.QLabel()
        self.position.setObjectName("hint")
        head.addWidget(self.position, 1)
        self.maximise_button = QtWidgets.QToolButton()
        self.maximise_button.setAutoRaise(True)
        self.maximise_button.setCheckable(True)
        self.maximise_button.setText("⤢")
        self.maximise_button.setToolTip(f"Maximise / restore this view (double-click, {MAXIMISE_SHORTCUT})")
        self.maximise_button.clicked.connect(lambda: area.toggle_maximise(self.key))
        head.addWidget(self.maximise_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.header)
        layout.addWidget(widget, 1)


class FourthPane(QtWidgets.QWidget):
    """The 3-D-free fourth cell of the 2x2 layout: hosts one widget (the histogram unless replaced)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QtWidgets.QVBoxLayout(self)
        self._layout.setContentsMargins(4, 4, 4, 4)
        self.content: QtWidgets.QWidget | None = None

    def set_widget(self, widget: QtWidgets.QWidget) -> None:
        """Show ``widget`` (e.g. a results summary) instead of the current content."""
        if self.content is not None:
            self._layout.removeWidget(self.content)
            self.content.deleteLater()
        self.content = widget
        self._layout.addWidget(widget)


def pane_histogram(main_window) -> QtWidgets.QWidget:
    """The histogram / window panel for the fourth pane: the dock's panel, recomputed only while shown (a
    slice histogram costs ~5 ms per slice step; a hidden pane must not add it to every scroll)."""
    from ..panels.histogram_panel import HistogramPanel

    class PaneHistogram(HistogramPanel):
        def update_histogram(self) -> None:
            if self.isVisible():
                super().update_histogram()
            else:
                self._stale = True

        def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
            super().showEvent(event)
            if getattr(self, "_stale", True):
                self._stale = False
                super().update_histogram()

    return PaneHistogram(main_window)


class _ViewportFilter(QtCore.QObject):
    """Mouse events of one canvas' viewport, seen before the canvas: the shared tool moves in, a navigation
    click sets the crosshair, a navigation double-click toggles maximise. Never consumes."""

    def __init__(self, area: "ViewArea", canvas: CanvasWidget) -> None:
        super().__init__(canvas)
        self._area = area
        self._canvas = canvas
        self._press: QtCore.QPointF | None = None

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt API)
        kind = event.type()
        E = QtCore.QEvent.Type
        if kind in (E.Enter, E.MouseMove, E.MouseButtonPress, E.MouseButtonDblClick):
            self._area.route_tool(self._canvas)
        if kind == E.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position()
            self._area.set_active(self._canvas)
            if isinstance(self._canvas.tool, ClickTool):
                self._area.set_crosshair_at(self._canvas, event.position())
        elif kind == E.MouseButtonRelease and event.button() == Qt.MouseButton.LeftButton:
            start, self._press = self._press, None
            if start is not None and isinstance(self._canvas.tool, NavigationTool):
                d = event.position() - start
                if abs(d.x()) + abs(d.y()) <= CLICK_SLOP_PX:
                    self._area.set_crosshair_at(self._canvas, event.position())
        elif kind == E.MouseButtonDblClick and event.button() == Qt.MouseButton.LeftButton \
                and isinstance(self._canvas.tool, NavigationTool):
            self._area.toggle_maximise(self._area.key_of(self._canvas))
        return False


class _SliceKeys(QtCore.QObject):
    """Page Up / Page Down in a coronal or sagittal view step *that* view: they are also the window's
    Next/Previous slice shortcuts (axial), which Qt would fire first unless the focused view claims them."""

    KEYS = (Qt.Key.Key_PageUp, Qt.Key.Key_PageDown)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt API)
        if event.type() == QtCore.QEvent.Type.ShortcutOverride and event.key() in self.KEYS:
            event.accept()  # deliver as a key press to the view (CanvasWidget._key_press)
            return True
        return False


class ViewArea(QtWidgets.QWidget):
    """The central view area of the main window (see the module docstring).

    Signals
    -------
    layout_changed(str)
        The layout (``"1" | "1+2" | "2x2"``) or the maximised view changed; the argument is the layout.
    """

    layout_changed = Signal(str)

    def __init__(self, main_window, canvas: CanvasWidget) -> None:
        super().__init__(main_window)
        self._mw = main_window
        document, state = main_window.document, main_window.view_state
        self.crosshair = Crosshair()
        # before the oriented canvases connect their reload: they read the crosshair of the new image
        state.reloaded.connect(self._reset_crosshair, priority=10)
        state.slice_changed.connect(lambda z: self.crosshair.set_axis(0, z))
        self.crosshair.moved.connect(self._on_crosshair)
        self.canvas = canvas
        self.canvases: dict[str, CanvasWidget] = {"axial": canvas}
        for o in (CORONAL, SAGITTAL):
            self.canvases[o.name] = OrientedCanvas(document, state, self.crosshair, o, self)
            # one readout line for all views: the status bar listens to the main canvas
            self.canvases[o.name].cursor_moved.connect(canvas.cursor_moved)
        self.lines = {key: CrosshairLines(c, self.crosshair) for key, c in self.canvases.items()}
        self._navigation = {key: NavigationTool() for key in self.canvases}
        self._filters: list[QtCore.QObject] = []
        self._slice_keys = _SliceKeys(self)
        for c in self.canvases.values():
            f = _ViewportFilter(self, c)
            c.view.viewport().installEventFilter(f)
            self._filters.append(f)
            if c is not canvas:
                c.view.installEventFilter(self._slice_keys)

        self.fourth = FourthPane()
        self.fourth.set_widget(pane_histogram(main_window))
        self.panes: dict[str, ViewPane] = {
            o.name: ViewPane(o.name, o.title, self.canvases[o.name], self) for o in (AXIAL, CORONAL, SAGITTAL)}
        self.panes["fourth"] = ViewPane("fourth", "Histogram", self.fourth, self)
        self._grid = QtWidgets.QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(2)
        self.layout_name = "1"
        self.maximised: str | None = None
        self.active = "axial"
        self._actions: dict[str, QtGui.QAction] = {}
        self._maximise_action: QtGui.QAction | None = None
        state.reloaded.connect(self._after_reload)
        self._arrange()

    # -- state ------------------------------------------------------------------------------------
    @property
    def is_volume(self) -> bool:
        image = self._mw.document.image
        return image is not None and image.n_slices > 1

    def key_of(self, canvas: CanvasWidget) -> str:
        return next(k for k, c in self.canvases.items() if c is canvas)

    def visible_views(self) -> list[str]:
        """The keys of the panes shown now (``"fourth"`` for the histogram pane)."""
        return [k for k, p in self.panes.items() if not p.isHidden()]

    def set_layout(self, name: str) -> None:
        """Switch to layout ``name`` (``"1" | "1+2" | "2x2"``); leaves a maximised view."""
        if name not in LAYOUTS:
            raise ValueError(f"layout must be one of {'|'.join(LAYOUTS)}, got {name!r}")
        self.layout_name = name
        self.maximised = None
        self._arrange()

    def toggle_maximise(self, key: str | None = None) -> None:
        """Maximise view ``key`` (default: the active view) or restore the layout when it is maximised."""
        key = key or self.active
        self.maximised = None if self.maximised == key else key
        if self.maximised in self.canvases:
            self.active = self.maximised
        self._arrange()

    def set_active(self, canvas: CanvasWidget) -> None:
        self.active = self.key_of(canvas)

    def _arrange(self) -> None:
        for pane in self.panes.values():
            self._grid.removeWidget(pane)
            pane.hide()
        for i in range(3):
            self._grid.setRowStretch(i, 0)
            self._grid.setColumnStretch(i, 0)
        volume = self.is_volume
        if not volume:
            cells = {"axial": (0, 0, 1, 1)}
        elif self.maximised is not None:
            cells = {self.maximised: (0, 0, 1, 1)}
        elif self.layout_name == "1":
            cells = {self.active: (0, 0, 1, 1)}
        elif self.layout_name == "1+2":
            others = [k for k in ("axial", "coronal", "sagittal") if k != self.active]
            cells = {self.active: (0, 0, 2, 1), others[0]: (0, 1, 1, 1), others[1]: (1, 1, 1, 1)}
            self._grid.setColumnStretch(0, 2)
            self._grid.setColumnStretch(1, 1)
        else:
            cells = {"axial": (0, 0, 1, 1), "sagittal": (0, 1, 1, 1), "coronal": (1, 0, 1, 1),
                     "fourth": (1, 1, 1, 1)}
            for i in range(2):
                self._grid.setRowStretch(i, 1)
                self._grid.setColumnStretch(i, 1)
        for key, (row, col, rows, cols) in cells.items():
            pane = self.panes[key]
            self._grid.addWidget(pane, row, col, rows, cols)
            pane.show()
            # a lone 2-D image needs no title bar; the header of a maximised view shows its restore button
            pane.header.setVisible(volume)
            pane.maximise_button.setChecked(self.maximised == key)
        for key, action in self._actions.items():
            action.setChecked(key == self.layout_name)
            action.setEnabled(volume)
        if self._maximise_action is not None:
            self._maximise_action.setEnabled(volume)
        self._update_positions()
        self.layout_changed.emit(self.layout_name)

    # -- tools and the crosshair ------------------------------------------------------------------
    def route_tool(self, canvas: CanvasWidget) -> None:
        """Give the canvas under the mouse the shared tool (the main canvas') if it works in every view."""
        tool = self.canvas.tool
        if canvas is self.canvas:
            if getattr(tool, "canvas", canvas) is not canvas:
                tool.deactivate()
                tool.activate(canvas)
            return
        wanted = tool if getattr(tool, "any_view", False) else self._navigation[self.key_of(canvas)]
        if canvas.tool is wanted and getattr(wanted, "canvas", canvas) is canvas:
            return
        if wanted is tool and getattr(tool, "canvas", None) is not None:
            tool.deactivate()  # leave the view it was in (commits a drag there, clears its preview)
        canvas.set_tool(wanted)

    def set_crosshair_at(self, canvas: CanvasWidget, pos: QtCore.QPointF) -> None:
        """Move the crosshair to the voxel under widget position ``pos`` of ``canvas``."""
        image = canvas.view_image
        if image is None or not self.is_volume:
            return
        x, y = canvas.image_coordinates(canvas.view, pos)
        if 0 <= x < image.width and 0 <= y < image.height:
            self.crosshair.set_from_view(canvas.orientation, canvas.slice_index, y, x)

    def _reset_crosshair(self) -> None:
        image = self._mw.document.image
        if image is None:
            self.crosshair.reset((1, 1, 1))
            return
        z = self._mw.view_state.slice_index
        self.crosshair.reset(image.shape[:3], (z, image.height // 2, image.width // 2))

    def _on_crosshair(self, position: tuple) -> None:
        self._mw.view_state.set_slice(position[0])
        self._update_positions()

    def _after_reload(self) -> None:
        image = self._mw.document.image
        set_physical_aspect(self.canvas, image, AXIAL)
        background = self.canvas.view.backgroundBrush()
        for c in self.canvases.values():
            c.view.setBackgroundBrush(background)
        for lines in self.lines.values():
            lines.set_visible(self.is_volume)
        if self.maximised is not None and not self.is_volume:
            self.maximised = None
        self._arrange()

    def _update_positions(self) -> None:
        image = self._mw.document.image
        if image is None:
            return
        for key, c in self.canvases.items():
            o = c.orientation
            n = image.shape[o.axis]
            text = f"{c.slice_index + 1}/{n}"
            if image.spacing_known:
                text += f"  ·  {image.origin[o.axis] + c.slice_index * image.spacing[o.axis]:.1f} mm"
            self.panes[key].position.setText(text)

    # -- menu -------------------------------------------------------------------------------------
    def add_layout_menu(self, menu: QtWidgets.QMenu) -> QtWidgets.QMenu:
        """View > Layout: the three layouts and the maximise toggle (with their shortcuts)."""
        sub = menu.addMenu("&Layout")
        group = QtGui.QActionGroup(self)
        for name in LAYOUTS:
            action = sub.addAction(LAYOUT_TITLES[name])
            action.setCheckable(True)
            action.setShortcut(QtGui.QKeySequence(LAYOUT_SHORTCUTS[name]))
            action.triggered.connect(lambda _c=False, n=name: self.set_layout(n))
            group.addAction(action)
            self._actions[name] = action
        sub.addSeparator()
        self._maximise_action = sub.addAction("&Maximise / restore active view")
        self._maximise_action.setShortcut(QtGui.QKeySequence(MAXIMISE_SHORTCUT))
        self._maximise_action.triggered.connect(lambda: self.toggle_maximise())
        self._arrange()
        return sub


def build_view_area(main_window, canvas: CanvasWidget) -> ViewArea:
    """The main window's hook: the view area around its (axial) ``canvas``."""
    return ViewArea(main_window, canvas)
