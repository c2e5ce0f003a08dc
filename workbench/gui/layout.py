"""The default dock layout, its reset (View > Reset layout), and the saved layout's version.

The image gets the room: the docks are tabbed into one column at the right (Models first: where a dropped
image's workflow starts; tabs along the right edge, where every title fits), the column about 350 px wide,
so the canvas keeps most of the window at 1366 x 768 and at 1920 x 1080 (``tests/gui/test_layout.py``
measures it). The Measurements dock (several tables side by side, too wide for the column) starts closed at
the bottom and opens when a measuring tool is chosen or from View > Panels. Docks the panel registry adds
later join the column's tab group. The user's own arrangement is saved with the window (``window.ini``) and
restored at the next start; View > Reset layout comes back to this one.
"""
from __future__ import annotations

from .qt import Qt, QtWidgets

RIGHT = Qt.DockWidgetArea.RightDockWidgetArea
BOTTOM = Qt.DockWidgetArea.BottomDockWidgetArea
#: tab order of the known docks; others follow in registry order
ORDER = ("ModelsDock", "ToolsDock", "ResultsDock", "LayersDock", "HistogramDock", "MeasurementsDock")
#: docks that start closed at the bottom: several side-by-side tables, wider than the column
BOTTOM_DOCKS = ("MeasurementsDock",)
#: width of the dock column (px): the Tools dock's widest row fits; the canvas keeps the rest
COLUMN_WIDTH = 350
#: height of a bottom dock when it is opened (px)
BOTTOM_HEIGHT = 220


def ordered_docks(window) -> list[QtWidgets.QDockWidget]:
    docks = list(window.docks.values())
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(docks, key=lambda d: (rank.get(d.objectName(), len(ORDER)), docks.index(d)))


def apply_default_layout(window) -> None:
    """Arrange ``window``'s docks as described in the module docstring (Models raised)."""
    docks = ordered_docks(window)
    if not docks:
        return
    window.setTabPosition(RIGHT, QtWidgets.QTabWidget.TabPosition.East)
    window.setTabPosition(BOTTOM, QtWidgets.QTabWidget.TabPosition.North)
    # the column runs down to the status bar: an opened bottom dock takes height from the image, never
    # from the column (whose Apply buttons must stay in view)
    window.setCorner(Qt.Corner.BottomRightCorner, RIGHT)
    for dock in docks:
        dock.setFloating(False)
        window.removeDockWidget(dock)
    # a dock of wide tables waits at the bottom, closed, until its tool is used (View > Panels opens it)
    bottom = [d for d in docks if d.objectName() in BOTTOM_DOCKS]
    column = [d for d in docks if d not in bottom]
    for group, area, visible in ((column, RIGHT, True), (bottom, BOTTOM, False)):
        for i, dock in enumerate(group):
            window.addDockWidget(area, dock)
            if i:
                window.tabifyDockWidget(group[0], dock)
            dock.setVisible(visible)
    if column:
        width = max([COLUMN_WIDTH] + [d.minimumSizeHint().width() for d in column])
        window.resizeDocks([column[0]], [width], Qt.Orientation.Horizontal)
        column[0].raise_()
    if bottom:
        window.resizeDocks([bottom[0]], [BOTTOM_HEIGHT], Qt.Orientation.Vertical)
        bottom[0].raise_()


def reset_layout(window) -> None:
    """View > Reset layout: the default arrangement, the toolbar shown (the saved layout is replaced on quit)."""
    bar = window.findChild(QtWidgets.QToolBar, "MainToolBar")
    if bar is not None:
        window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        bar.show()
    apply_default_layout(window)
    window.show_status("Layout reset")


def install_layout(window, view_menu: QtWidgets.QMenu | None) -> None:
    """Apply the default layout and add View > Reset layout (and View > Toolbar)."""
    apply_default_layout(window)
    if view_menu is None:
        return
    view_menu.addSeparator()
    bar = window.findChild(QtWidgets.QToolBar, "MainToolBar")
    if bar is not None:
        toggle = bar.toggleViewAction()
        toggle.setText("&Toolbar")
        view_menu.addAction(toggle)
    action = view_menu.addAction("Reset &layout")
    action.setObjectName("reset_layout")
    action.setStatusTip("Put the toolbar and every dock back where they start (docks tabbed at the right)")
    action.triggered.connect(lambda: reset_layout(window))
    window.reset_layout_action = action


__all__ = ["BOTTOM_DOCKS", "COLUMN_WIDTH", "apply_default_layout", "install_layout", "reset_layout"]
