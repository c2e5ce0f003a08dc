"""Histogram dock: the current slice's histogram with a draggable window/level region, presets and invert."""
from __future__ import annotations

import numpy as np

from ...core.image import percentile_window
from ..display import CT_PRESETS, levels_from_window, slice_histogram, window_from_levels
from ..qt import QtWidgets, pg
from .base import histogram_items, make_dock, value_spin

PRESET_DEFAULT = "Default"
PRESET_AUTO = "Auto (percentile)"


class HistogramPanel(QtWidgets.QWidget):
    """Histogram of the shown slice; the shaded region is the display window (drag it or its edges)."""

    def __init__(self, main_window) -> None:
        super().__init__(main_window)
        self._mw = main_window
        state = main_window.view_state

        self.plot = pg.PlotWidget(background=None)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.hideAxis("left")  # log counts: the shape matters, not the numbers
        self.plot.setLabel("bottom", "value")
        self.plot.setMinimumHeight(120)
        self.curve, self.region = histogram_items(region_alpha=40)
        self.plot.addItem(self.curve)
        self.region.sigRegionChanged.connect(self._on_region)
        self.plot.addItem(self.region)

        self.preset_combo = QtWidgets.QComboBox()
        self.preset_combo.setToolTip("Window presets (CT presets in Hounsfield units)")
        self.preset_combo.activated.connect(self._on_preset)
        self.center_spin = value_spin("Level (window centre)", limit=1e9)
        self.width_spin = value_spin("Window width", limit=1e9)
        self.width_spin.setMinimum(1e-3)
        self.center_spin.editingFinished.connect(self._on_spins)
        self.width_spin.editingFinished.connect(self._on_spins)
        self.invert_check = QtWidgets.QCheckBox("Invert")
        self.invert_check.toggled.connect(state.set_invert)

        form = QtWidgets.QGridLayout()
        form.addWidget(QtWidgets.QLabel("Preset"), 0, 0)
        form.addWidget(self.preset_combo, 0, 1, 1, 3)
        form.addWidget(QtWidgets.QLabel("L"), 1, 0)
        form.addWidget(self.center_spin, 1, 1)
        form.addWidget(QtWidgets.QLabel("W"), 1, 2)
        form.addWidget(self.width_spin, 1, 3)
        form.addWidget(self.invert_check, 2, 0, 1, 4)
        form.setColumnStretch(1, 1)
        form.setColumnStretch(3, 1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.plot, 1)
        layout.addLayout(form)

        state.reloaded.connect(self.reload)
        state.slice_changed.connect(lambda _z: self.update_histogram())
        state.window_changed.connect(lambda *_: self.show_window())
        state.invert_changed.connect(lambda _i: self.show_window())
        self.reload()

    # -- binding ----------------------------------------------------------------------------------
    def reload(self) -> None:
        image = self._mw.document.image
        self.preset_combo.blockSignals(True)
        self.preset_combo.clear()
        self.preset_combo.addItem(PRESET_DEFAULT)
        self.preset_combo.addItem(PRESET_AUTO)
        if image is not None and image.is_ct:
            for name, (c, w) in CT_PRESETS.items():
                self.preset_combo.addItem(f"{name}  ({c:g} / {w:g})", name)
        self.preset_combo.blockSignals(False)
        self.setEnabled(image is not None)
        self.update_histogram()
        self.show_window()

    def update_histogram(self) -> None:
        image = self._mw.document.image
        if image is None:
            self.curve.setData([0, 1], [0])
            return
        plane = image.slice(self._mw.view_state.slice_index)
        if image.is_color:
            plane = plane[..., :3].mean(axis=2) if plane.dtype.kind == "f" else plane[..., 1]
        counts, edges = slice_histogram(plane, bins=256)
        # log counts: air/background peaks would otherwise flatten everything else
        self.curve.setData(edges, np.log1p(counts))
        lo, hi = float(edges[0]), float(edges[-1])
        self.plot.setXRange(lo, hi, padding=0.02)
        self.region.setBounds((lo - (hi - lo), hi + (hi - lo)))

    def show_window(self) -> None:
        """Mirror the view state's window in the region, spins and preset (signals blocked)."""
        state = self._mw.view_state
        center, width = state.window
        for widget in (self.region, self.center_spin, self.width_spin, self.invert_check, self.preset_combo):
            widget.blockSignals(True)
        self.region.setRegion(levels_from_window(center, width))
        self.center_spin.setValue(center)
        self.width_spin.setValue(width)
        self.invert_check.setChecked(state.invert)
        index = 0
        for i in range(self.preset_combo.count()):
            name = self.preset_combo.itemData(i)
            if name in CT_PRESETS and CT_PRESETS[name] == (center, width):
                index = i
        self.preset_combo.setCurrentIndex(index)
        for widget in (self.region, self.center_spin, self.width_spin, self.invert_check, self.preset_combo):
            widget.blockSignals(False)

    # -- user input -------------------------------------------------------------------------------
    def _on_region(self) -> None:
        low, high = self.region.getRegion()
        self._mw.view_state.set_window(*window_from_levels(low, high))

    def _on_spins(self) -> None:
        self._mw.view_state.set_window(self.center_spin.value(), self.width_spin.value())

    def _on_preset(self, index: int) -> None:
        text = self.preset_combo.itemText(index)
        name = self.preset_combo.itemData(index)
        state = self._mw.view_state
        image = self._mw.document.image
        if name in CT_PRESETS:
            state.apply_preset(name)
        elif text == PRESET_AUTO and image is not None:
            state.set_window(*percentile_window(image.slice(state.slice_index)))
        else:
            state.apply_preset("Default")


def create_dock(main_window) -> QtWidgets.QDockWidget:
    """Registry factory (see :mod:`workbench.gui.panels`)."""
    panel = HistogramPanel(main_window)
    dock = make_dock(main_window, "Histogram / Window", "HistogramDock", panel, area="left")
    return dock


__all__ = ["HistogramPanel", "create_dock"]
