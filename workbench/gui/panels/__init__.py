"""Dock panels of the main window, built from a registry.

Each entry of :data:`PANEL_FACTORIES` is a callable ``factory(main_window) -> QDockWidget``. The main window
calls them in order and docks each result in ``dock.property("default_area")`` (``"left"``, ``"right"`` or
``"bottom"``; default right); docks that share an area are tabbed together. A panel reaches the app through
``main_window.document`` (the open :class:`~workbench.core.Document`), ``main_window.view_state``,
``main_window.canvas`` (tools: ``canvas.set_tool``), ``main_window.settings`` and
``main_window.show_error(message)`` / ``main_window.show_status(message)``. Give the dock a stable
``objectName`` so the saved dock layout restores it.

Adding a panel is one line here, e.g. ``models_panel.create_dock`` for the Models dock. A dock of several
jobs is a package (``models/``, ``tools/``) whose ``panel`` module holds ``create_dock``.
"""
from __future__ import annotations

from typing import Callable

from ..qt import QtWidgets
from . import histogram_panel, layers_panel, measure_panel, results_panel, similar_panel
from .base import make_dock
from .models import panel as models_panel
from .tools import panel as tools_panel

PanelFactory = Callable[[QtWidgets.QMainWindow], QtWidgets.QDockWidget]

PANEL_FACTORIES: list[PanelFactory] = [
    models_panel.create_dock,  # first: top of the left column, where a dropped image's workflow starts
    layers_panel.create_dock,
    histogram_panel.create_dock,
    results_panel.create_dock,
    tools_panel.create_dock,
    measure_panel.create_dock,
    similar_panel.create_dock,  # issue 18: query a similar-case index by the slice or a drawn region
]

__all__ = ["PANEL_FACTORIES", "PanelFactory", "make_dock"]

