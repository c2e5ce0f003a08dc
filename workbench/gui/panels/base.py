"""Helpers shared by the dock panels."""
from __future__ import annotations

from ..qt import QtWidgets


def make_dock(main_window: QtWidgets.QMainWindow, title: str, object_name: str, widget: QtWidgets.QWidget,
              area: str = "right") -> QtWidgets.QDockWidget:
    """A dock titled ``title`` holding ``widget``; ``area`` is where the main window puts it first."""
    dock = QtWidgets.QDockWidget(title, main_window)
    dock.setObjectName(object_name)
    dock.setWidget(widget)
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
