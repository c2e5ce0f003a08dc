"""Helpers shared by the dock panels."""
from __future__ import annotations

from ..qt import QtWidgets, pg


def make_dock(main_window: QtWidgets.QMainWindow, title: str, object_name: str, widget: QtWidgets.QWidget,
              area: str = "right") -> QtWidgets.QDockWidget:
    """A dock titled ``title`` holding ``widget`` (also ``dock.panel``, how tests and the window reach it);
    ``area`` is where the main window puts it first."""
    dock = QtWidgets.QDockWidget(title, main_window)
    dock.setObjectName(object_name)
    dock.setWidget(widget)
    dock.panel = widget  # type: ignore[attr-defined]
    dock.setProperty("default_area", area)
    dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable
                     | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetClosable
                     | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetFloatable)
    return dock


def value_spin(tip: str, limit: float = 1e12) -> QtWidgets.QDoubleSpinBox:
    """A spin box for an intensity (stored values, HU, float data) within +-``limit``: one decimal, and it
    reports only a finished entry (no signal per typed digit). The limit sets the box's width too."""
    spin = QtWidgets.QDoubleSpinBox()
    spin.setRange(-limit, limit)
    spin.setDecimals(1)
    spin.setKeyboardTracking(False)
    spin.setToolTip(tip)
    return spin


def histogram_items(region_alpha: int = 40) -> tuple[pg.PlotDataItem, pg.LinearRegionItem]:
    """The histogram curve and the draggable value range of the Histogram dock and the Threshold tab.

    One look for both: a filled step curve, and a yellow range above it (``region_alpha`` its fill).
    """
    curve = pg.PlotDataItem(stepMode="center", fillLevel=0, brush=(120, 160, 220, 110),
                            pen=pg.mkPen((150, 190, 240), width=1))
    region = pg.LinearRegionItem(values=(0, 1), brush=(255, 212, 0, region_alpha),
                                 pen=pg.mkPen((255, 212, 0), width=2), swapMode="sort")
    region.setZValue(10)
    return curve, region
