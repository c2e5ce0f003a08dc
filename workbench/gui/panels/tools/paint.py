"""The Paint part of the Tools dock: the tool buttons, the label row, the brush/eraser/polygon options,
keyboard shortcuts and tool activation.
"""
from __future__ import annotations

from ...qt import Qt, QtGui, QtWidgets
from ...tool_registry import register_tool
from ...tools.preview import PREVIEW_COLOR
from ..base import value_spin
from .common import TAB_AI, TAB_GROW, TAB_ISLANDS, TAB_PAINT

_TOOL_KEYS = {"brush": "B", "eraser": "E", "polygon": "P", "grow": "G", "ai": "A"}
# what the toolbar tooltip and the shortcuts table say after the tool's name and key
_TOOL_TIPS = {
    "navigate": "left drag pans (Esc comes back here)",
    "brush": "paint the current label; [ and ] change the size",
    "eraser": "erase labels; [ and ] change the size",
    "polygon": "polygon / lasso: click vertices, double-click or Enter closes; drag for a freehand lasso",
    "grow": "region grow: click a seed, adjust the tolerance, Apply",
    "pick": "pick an island of the current label by clicking it (Islands tab)",
    "ai": "click an object to segment it with a promptable model; right click or Shift excludes; Enter accepts",
}


def _swatch(color: str) -> QtGui.QIcon:
    pix = QtGui.QPixmap(14, 14)
    pix.fill(QtGui.QColor(color))
    return QtGui.QIcon(pix)


class PaintSection:
    """Tool row, label row, Paint tab, shortcuts and tool switching of :class:`~.panel.ToolsPanel`."""

    # ==============================================================================================
    # construction
    # ==============================================================================================
    def _build_tool_row(self) -> None:
        self.tool_group = QtWidgets.QButtonGroup(self)
        self.tool_group.setExclusive(True)
        self.tool_buttons: dict[str, QtWidgets.QToolButton] = {}
        self.tool_row = QtWidgets.QGridLayout()  # 3 x 2: the dock is often narrow (tabbed at the right)
        self.tool_row.setSpacing(3)
        for key, text, tip in (
                ("navigate", "Navigate", "Navigate: left drag pans (Esc)"),
                ("brush", "Brush", "Brush: paint the current label (B); [ and ] change the size"),
                ("eraser", "Eraser", "Eraser (E); [ and ] change the size"),
                ("polygon", "Polygon", "Polygon / lasso (P): click vertices, double-click or Enter closes; "
                                       "drag for a freehand lasso; Esc cancels"),
                ("grow", "Grow", "Region grow (G): click a seed, adjust the tolerance, Apply"),
                ("pick", "Pick", "Pick an island of the current label by clicking it (Islands tab)"),
                ("ai", "AI click", "AI click (A): click an object to segment it with a promptable model; right "
                                   "click or Shift excludes, drag a box; Enter accepts, Esc discards")):
            button = QtWidgets.QToolButton()
            button.setText(text)
            button.setToolTip(tip)
            button.setCheckable(True)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.clicked.connect(lambda _c=False, k=key: self.activate_tool(k))
            self.tool_group.addButton(button)
            button.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
            # the active tool must be obvious at a glance (Fusion barely shades a checked tool button)
            button.setStyleSheet("QToolButton:checked { background: palette(highlight); "
                                 "color: palette(highlighted-text); border-radius: 3px; }")
            self.tool_buttons[key] = button
            index = len(self.tool_buttons) - 1
            self.tool_row.addWidget(button, index // 3, index % 3)
        self.tool_buttons["navigate"].setChecked(True)

    def _build_label_row(self) -> None:
        self.label_combo = QtWidgets.QComboBox()
        self.label_combo.setToolTip("The label the tools paint with (value, name, colour)")
        self.label_combo.activated.connect(self._on_label_combo)
        self.new_label_button = QtWidgets.QPushButton("New")
        self.new_label_button.setToolTip("Add a label (next free value) and paint with it")
        self.new_label_button.clicked.connect(self.new_label)
        self.overwrite_combo = QtWidgets.QComboBox()
        for text, mode in (("any label", "any"), ("background only", "background"),
                           ("background + label…", "selected")):
            self.overwrite_combo.addItem(text, mode)
        self.overwrite_combo.setToolTip(
            "Which pixels painting may change: any label, only unlabelled pixels, or unlabelled pixels and one "
            "chosen label.\nThe eraser removes any label, only the current label, or only the chosen label.")
        self.overwrite_combo.setCurrentIndex(self.overwrite_combo.findData(self.options.overwrite))
        self.overwrite_combo.currentIndexChanged.connect(self._on_overwrite)
        self.mask_label_combo = QtWidgets.QComboBox()
        self.mask_label_combo.setToolTip("The label the 'background + label' rule may overwrite")
        self.mask_label_combo.activated.connect(self._on_mask_label)
        self.mask_label_combo.setEnabled(False)

        self.label_form = QtWidgets.QGridLayout()
        self.label_form.addWidget(QtWidgets.QLabel("Label"), 0, 0)
        self.label_form.addWidget(self.label_combo, 0, 1)
        self.label_form.addWidget(self.new_label_button, 0, 2)
        self.label_form.addWidget(QtWidgets.QLabel("Paint over"), 1, 0)
        self.label_form.addWidget(self.overwrite_combo, 1, 1)
        self.label_form.addWidget(self.mask_label_combo, 1, 2)
        self.label_form.setColumnStretch(1, 1)

    def _build_paint_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        self.size_spin = QtWidgets.QDoubleSpinBox()
        self.size_spin.setRange(0.5, 1000.0)
        self.size_spin.setDecimals(1)
        self.size_spin.setValue(self.options.radius)
        self.size_spin.setToolTip("Brush radius ([ smaller, ] larger)")
        self.size_spin.valueChanged.connect(self._on_size)
        self.units_combo = QtWidgets.QComboBox()
        self.units_combo.addItem("px", "px")
        self.units_combo.addItem("mm", "mm")
        self.units_combo.setToolTip("Radius in pixels or in mm (mm needs the pixel spacing)")
        self.units_combo.currentIndexChanged.connect(self._on_units)
        self.sphere_check = QtWidgets.QCheckBox("3D sphere (stacks)")
        self.sphere_check.setToolTip("On a stack, the brush is a ball instead of a disc on the shown slice")
        self.sphere_check.toggled.connect(lambda v: setattr(self.options, "sphere", bool(v)))
        self.gate_check = QtWidgets.QCheckBox("Only where intensity is in")
        self.gate_check.setToolTip("Brush and eraser change only pixels with lo <= value <= hi")
        self.gate_check.toggled.connect(self._on_gate)
        self.gate_lo = value_spin("Lowest intensity the brush paints")
        self.gate_hi = value_spin("Highest intensity the brush paints")
        self.gate_lo.valueChanged.connect(self._on_gate)
        self.gate_hi.valueChanged.connect(self._on_gate)
        self.polygon_erase_check = QtWidgets.QCheckBox("Polygon / lasso erases")
        self.polygon_erase_check.setToolTip("The polygon and the lasso erase instead of filling")
        self.polygon_erase_check.toggled.connect(lambda v: setattr(self.options, "erase_polygon", bool(v)))

        grid = QtWidgets.QGridLayout(w)
        grid.addWidget(QtWidgets.QLabel("Radius"), 0, 0)
        grid.addWidget(self.size_spin, 0, 1)
        grid.addWidget(self.units_combo, 0, 2)
        grid.addWidget(self.sphere_check, 1, 0, 1, 3)
        grid.addWidget(self.gate_check, 2, 0, 1, 3)
        grid.addWidget(self.gate_lo, 3, 1)
        grid.addWidget(self.gate_hi, 3, 2)
        grid.addWidget(QtWidgets.QLabel("lo / hi"), 3, 0)
        grid.addWidget(self.polygon_erase_check, 4, 0, 1, 3)
        hint = QtWidgets.QLabel("B brush · E eraser · P polygon/lasso · G grow · Esc navigate · [ ] size")
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        grid.addWidget(hint, 5, 0, 1, 3)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(2, 1)
        return w

    def _build_shortcuts(self) -> None:
        mw = self._mw
        self.actions: dict[str, QtGui.QAction] = {}
        # the tools go through the window's tool registry: one action each, shared by the toolbar and the
        # shortcuts table (Help > Keyboard shortcuts)
        for key, button in self.tool_buttons.items():
            self.actions[key] = register_tool(
                mw, key, button.text(), _TOOL_TIPS.get(key, button.toolTip()), shortcut=_TOOL_KEYS.get(key),
                activate=lambda k=key: self.activate_tool(k), tool=lambda k=key: self.tool_for(k),
                group="navigate" if key == "navigate" else "paint")
        for key, text, shortcut, slot in (("escape", "Cancel the tool's work, else navigate", "Esc", self.escape),
                                          ("smaller", "Brush smaller", "[", lambda: self.step_size(-1)),
                                          ("larger", "Brush larger", "]", lambda: self.step_size(1))):
            action = QtGui.QAction(text, mw)
            action.setShortcut(QtGui.QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.setProperty("help_group", "Tools")
            action.triggered.connect(slot)
            mw.addAction(action)
            self.actions[key] = action
        # Enter closes a polygon only while the canvas has the focus (spin boxes keep their Enter)
        self._enter_shortcuts = []
        for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            sc = QtGui.QShortcut(QtGui.QKeySequence(key), mw.canvas.view)
            sc.setContext(Qt.ShortcutContext.WidgetShortcut)
            sc.setWhatsThis("Close the polygon / accept the AI click mask (image focused)")
            sc.activated.connect(lambda k=key: self.ai_click.accept() if self.canvas.tool is self.ai_click.tool
                                 else self.polygon.key(k))
            self._enter_shortcuts.append(sc)

    def _refresh_label_combos(self) -> None:
        labels = self._labels
        entries = sorted(labels.labels.values(), key=lambda lab: lab.value) if labels is not None else []
        active = self._mw.view_state.active_label
        for combo, current in ((self.label_combo, active), (self.mask_label_combo, self.options.mask_label)):
            combo.blockSignals(True)
            combo.clear()
            for label in entries:
                combo.addItem(_swatch(label.color), f"{label.value}  {label.name}", label.value)
            if combo is self.label_combo and all(lab.value != active for lab in entries):
                from ....core.labels import default_color

                combo.addItem(_swatch(default_color(active)), f"{active}  label {active} (new)", active)
            index = combo.findData(current)
            combo.setCurrentIndex(max(index, 0))
            combo.blockSignals(False)
        self.options.label = active
        if self.mask_label_combo.count():
            self.options.mask_label = int(self.mask_label_combo.currentData())
        self._update_preview_color()

    def _on_active_label_changed(self) -> None:
        self.options.label = self._mw.view_state.active_label
        self._refresh_label_combos()
        if self._grow_from_label:
            self._reset_grow_cache()
        self._refresh_preview()

    def _on_label_combo(self, index: int) -> None:
        value = self.label_combo.itemData(index)
        if value is not None:
            self._mw.view_state.set_active_label(int(value))

    def _on_mask_label(self, index: int) -> None:
        value = self.mask_label_combo.itemData(index)
        if value is not None:
            self.options.mask_label = int(value)

    def new_label(self) -> None:
        """Add a label with the next free value and make it the current one."""
        if self._labels is None:
            return
        value = self._labels.add_label().value  # one undo step
        self._mw.view_state.set_active_label(value)
        self._refresh_label_combos()

    def _on_overwrite(self, _index: int) -> None:
        self.options.overwrite = str(self.overwrite_combo.currentData())
        self.mask_label_combo.setEnabled(self.options.overwrite == "selected")

    def _update_preview_color(self) -> None:
        # one colour for every preview (as the polygon rubber band): "not written yet" must not look like
        # a label
        self.preview.set_color(PREVIEW_COLOR, 0.45)

    # ==============================================================================================
    # tools
    # ==============================================================================================
    def tool_for(self, key: str):
        return {"navigate": None, "brush": self.brush, "eraser": self.eraser, "polygon": self.polygon,
                "grow": self.grow_tool, "pick": self.pick_tool, "ai": self.ai_click.tool}[key]

    def activate_tool(self, key: str) -> None:
        """Make ``key`` (navigate|brush|eraser|polygon|grow|pick) the canvas tool and show its options."""
        if self.document.image is None and key != "navigate":
            return
        tool = self.tool_for(key)
        if self.canvas.tool is not tool or tool is None:
            self.canvas.set_tool(tool)
        self.tool_buttons[key].setChecked(True)
        tab = {"brush": TAB_PAINT, "eraser": TAB_PAINT, "polygon": TAB_PAINT, "grow": TAB_GROW,
               "pick": TAB_ISLANDS, "ai": TAB_AI}.get(key)
        if tab is not None and self.tabs.currentIndex() != tab:
            self.tabs.blockSignals(True)
            self.tabs.setCurrentIndex(tab)
            self.tabs.blockSignals(False)
            self._refresh_preview()
        if key in ("brush", "eraser") and self.canvas.tool is tool:
            tool.update_cursor()
        if key != "navigate":
            self.raise_dock()

    def raise_dock(self) -> None:
        """Bring the Tools dock to the front (it may be tabbed behind another dock)."""
        dock = self.parent()
        while dock is not None and not isinstance(dock, QtWidgets.QDockWidget):
            dock = dock.parent()
        if dock is not None:
            dock.show()
            dock.raise_()

    @property
    def active_tool_key(self) -> str:
        tool = self.canvas.tool
        for key in ("brush", "eraser", "polygon", "grow", "pick", "ai"):
            if tool is self.tool_for(key):
                return key
        return "navigate"

    def escape(self) -> None:
        """Esc: cancel the polygon in progress, else the grow seed, else back to navigation."""
        if self.canvas.tool is self.polygon and self.polygon.key(Qt.Key.Key_Escape):
            return
        if self.canvas.tool is self.ai_click.tool and self.ai_click.discard():
            return
        if self.canvas.tool is self.grow_tool and self._seed is not None:
            self.clear_seed()
            return
        self.activate_tool("navigate")

    def step_size(self, direction: int) -> None:
        """[ / ]: about 15% smaller / larger (at least one step)."""
        value = self.size_spin.value()
        step = max(1.0 if self.options.units == "px" else 0.5, round(value * 0.15, 1))
        self.size_spin.setValue(max(self.size_spin.minimum(), value + direction * step))

    def _on_size(self, value: float) -> None:
        self.options.radius = float(value)
        self._update_cursor()

    def _on_units(self, _index: int) -> None:
        self.options.units = str(self.units_combo.currentData())
        self._update_cursor()

    def _update_cursor(self) -> None:
        tool = self.canvas.tool
        if tool is self.brush or tool is self.eraser:
            tool.update_cursor()

    def _on_gate(self, *_args) -> None:
        self.options.gate = self.gate_check.isChecked()
        self.options.lo = self.gate_lo.value()
        self.options.hi = self.gate_hi.value()
