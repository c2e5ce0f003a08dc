"""Brush, eraser, polygon and lasso on the real canvas, driven by QTest mouse and key events."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtTest import QTest

from workbench.gui.qt import Qt, QtCore, QtWidgets

LEFT = Qt.MouseButton.LeftButton
NOMOD = Qt.KeyboardModifier.NoModifier


def widget_pos(canvas, x: float, y: float) -> QtCore.QPoint:
    """Image coordinates -> position in the canvas view's viewport."""
    scene = canvas.view.vb.mapViewToScene(QtCore.QPointF(x, y))
    return canvas.view.mapFromScene(scene)


def drag(canvas, points, qtbot=None) -> None:
    viewport = canvas.view.viewport()
    first = widget_pos(canvas, *points[0])
    QTest.mousePress(viewport, LEFT, NOMOD, first)
    for p in points[1:]:
        QTest.mouseMove(viewport, widget_pos(canvas, *p))
    QTest.mouseRelease(viewport, LEFT, NOMOD, widget_pos(canvas, *points[-1]))


def click(canvas, x, y) -> None:
    QTest.mouseClick(canvas.view.viewport(), LEFT, NOMOD, widget_pos(canvas, x, y))


@pytest.fixture
def tools(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    window.canvas.zoom_to_fit()
    qtbot.wait(20)
    panel = window.docks["ToolsDock"].panel
    panel.raise_dock()
    return panel


def test_tools_dock_is_registered(window):
    assert "ToolsDock" in window.docks and "MeasurementsDock" in window.docks


def test_brush_stroke_paints_a_gap_free_line_and_is_one_undo_step(window, qtbot, tools):
    canvas = window.canvas
    canvas.view.setFocus()
    QTest.keyClick(canvas.view, Qt.Key.Key_B)
    assert canvas.tool is tools.brush
    tools.size_spin.setValue(2.0)
    steps_before = len(window.document.undo)
    # few, far-apart mouse events: the stroke must still be continuous (interpolated between events)
    drag(canvas, [(10.5, 60.5), (50.5, 60.5), (100.5, 60.5)])
    labels = window.document.labels.data[0]
    assert (labels[60, 10:101] == 1).all()
    assert labels[60, 5] == 0 and labels[60, 105] == 0
    assert labels[57, 50] == 0 and labels[59, 50] == 1  # radius 2: rows 59..61
    assert len(window.document.undo) == steps_before + 1
    painted = labels.copy()
    window.undo_action.trigger()
    assert not window.document.labels.data.any()
    window.redo_action.trigger()
    assert np.array_equal(window.document.labels.data[0], painted)


def test_brush_size_keys_and_cursor_circle(window, qtbot, tools):
    canvas = window.canvas
    tools.activate_tool("brush")
    tools.size_spin.setValue(10.0)
    canvas.view.setFocus()
    QTest.keyClick(canvas.view, Qt.Key.Key_BracketRight)
    assert tools.options.radius > 10.0
    QTest.keyClick(canvas.view, Qt.Key.Key_BracketLeft)
    QTest.keyClick(canvas.view, Qt.Key.Key_BracketLeft)
    assert tools.options.radius < 10.0
    QTest.mouseMove(canvas.view.viewport(), widget_pos(canvas, 40.0, 30.0))
    circle = tools.brush.cursor_circle
    assert circle is not None and circle.isVisible()
    rect = circle.rect()
    assert rect.center().x() == pytest.approx(40.0, abs=0.6) and rect.width() == pytest.approx(2 * tools.options.radius)


def test_eraser_overwrite_rules_and_gate(window, qtbot, tools):
    canvas = window.canvas
    labels = window.document.labels
    with labels.edit("setup") as e:
        e.assign((slice(0, 1), slice(50, 70), slice(0, 128)), np.uint16(2))
    tools.new_label()  # value 1 (the next free value)
    assert window.view_state.active_label == 1
    # "background only": the brush does not paint over label 2
    tools.overwrite_combo.setCurrentIndex(tools.overwrite_combo.findData("background"))
    tools.activate_tool("brush")
    tools.size_spin.setValue(3)
    drag(canvas, [(20.5, 40.5), (20.5, 80.5)])
    col = labels.data[0, :, 20]
    assert (col[38:50] == 1).all() and (col[50:70] == 2).all() and (col[70:83] == 1).all()
    # the eraser with "background only" removes just the current label (1), never label 2
    tools.activate_tool("eraser")
    drag(canvas, [(20.5, 40.5), (20.5, 80.5)])
    col = labels.data[0, :, 20]
    assert not (col == 1).any() and (col[50:70] == 2).all()
    # intensity gate: the ramp is 0..4000 over x; paint only where value <= 1000 (x <= 32)
    tools.overwrite_combo.setCurrentIndex(tools.overwrite_combo.findData("any"))
    tools.gate_check.setChecked(True)
    tools.gate_lo.setValue(0)
    tools.gate_hi.setValue(1000)
    tools.activate_tool("brush")
    drag(canvas, [(5.5, 10.5), (120.5, 10.5)])
    row = labels.data[0, 10]
    image = window.document.image.data[0, 10]
    assert (row[image <= 1000][3:] == 1).all() and not (row[image > 1000] == 1).any()


def test_polygon_by_clicks_and_enter(window, qtbot, tools):
    canvas = window.canvas
    QTest.keyClick(canvas.view, Qt.Key.Key_P)
    assert canvas.tool is tools.polygon
    steps = len(window.document.undo)
    for x, y in ((60, 50), (100, 50), (100, 80)):
        click(canvas, x, y)
        qtbot.wait(int(QtWidgets.QApplication.doubleClickInterval() * 1.2))  # no accidental double-click
    canvas.view.setFocus()
    QTest.keyClick(canvas.view, Qt.Key.Key_Return)
    mask = window.document.labels.data[0] == 1
    from workbench.processing import polygon

    box, expected = polygon(np.array([(49.5, 59.5), (49.5, 99.5), (79.5, 99.5)]), shape=(96, 128))
    full = np.zeros((96, 128), bool)
    full[box] = expected
    assert np.array_equal(mask, full) and mask.sum() > 300
    assert len(window.document.undo) == steps + 1
    assert not tools.polygon.active


def test_polygon_double_click_closes_and_escape_cancels(window, qtbot, tools):
    canvas = window.canvas
    tools.activate_tool("polygon")
    for x, y in ((10, 10), (40, 10)):
        click(canvas, x, y)
        qtbot.wait(int(QtWidgets.QApplication.doubleClickInterval() * 1.2))
    click(canvas, 40, 40)
    QTest.mouseDClick(canvas.view.viewport(), LEFT, NOMOD, widget_pos(canvas, 40, 40))
    assert (window.document.labels.data[0] == 1).sum() > 200
    before = window.document.labels.data.copy()
    click(canvas, 60, 60)
    qtbot.wait(int(QtWidgets.QApplication.doubleClickInterval() * 1.2))
    click(canvas, 90, 60)
    assert tools.polygon.active
    canvas.view.setFocus()
    QTest.keyClick(canvas.view, Qt.Key.Key_Escape)
    assert not tools.polygon.active and canvas.tool is tools.polygon
    assert np.array_equal(window.document.labels.data, before)
    QTest.keyClick(canvas.view, Qt.Key.Key_Escape)  # nothing to cancel: back to navigation
    assert tools.active_tool_key == "navigate"


def test_lasso_drag_fills_and_erases(window, qtbot, tools):
    canvas = window.canvas
    tools.activate_tool("polygon")
    angles = np.linspace(0, 2 * np.pi, 40)
    path = [(64 + 20 * np.cos(a), 48 + 20 * np.sin(a)) for a in angles]
    drag(canvas, path)
    mask = window.document.labels.data[0] == 1
    area = mask.sum()
    assert abs(area - np.pi * 20 ** 2) < 0.08 * np.pi * 20 ** 2
    assert mask[48, 64] and not mask[5, 5]
    tools.polygon_erase_check.setChecked(True)
    small = [(64 + 8 * np.cos(a), 48 + 8 * np.sin(a)) for a in angles]
    drag(canvas, small)
    assert window.document.labels.data[0, 48, 64] == 0
    assert (window.document.labels.data[0] == 1).sum() < area


def test_sphere_brush_paints_neighbouring_slices(window, qtbot, stack_npy, load):
    load(window, qtbot, stack_npy)
    tools = window.docks["ToolsDock"].panel
    tools.raise_dock()
    canvas = window.canvas
    z = window.view_state.slice_index
    tools.activate_tool("brush")
    tools.size_spin.setValue(2.0)
    tools.sphere_check.setChecked(True)
    drag(canvas, [(25.5, 20.5), (25.5, 20.5)])
    data = window.document.labels.data
    assert data[z, 20, 25] == 1 and data[z - 1, 20, 25] == 1 and data[z + 1, 20, 25] == 1
    assert not data[z - 3].any() and not data[z + 2, 20, 25]  # radius 2: |dz| < 2
    tools.sphere_check.setChecked(False)
    window.undo_action.trigger()
    drag(canvas, [(25.5, 20.5), (25.5, 20.5)])
    assert data[z, 20, 25] == 1 and not data[z - 1].any()


def test_opening_another_image_mid_drag_abandons_the_stroke(window, qtbot, tools, stack_npy, load):
    canvas = window.canvas
    tools.activate_tool("brush")
    viewport = canvas.view.viewport()
    QTest.mousePress(viewport, LEFT, NOMOD, widget_pos(canvas, 30, 30))
    assert tools.brush.dragging
    load(window, qtbot, stack_npy)
    assert not tools.brush.dragging
    QTest.mouseRelease(viewport, LEFT, NOMOD, widget_pos(canvas, 30, 30))
    assert len(window.document.undo) == 0 and not window.document.labels.data.any()


def test_switching_tools_mid_drag_commits_the_stroke(window, qtbot, tools):
    canvas = window.canvas
    tools.activate_tool("brush")
    viewport = canvas.view.viewport()
    QTest.mousePress(viewport, LEFT, NOMOD, widget_pos(canvas, 30, 30))
    QTest.mouseMove(viewport, widget_pos(canvas, 60, 30))
    tools.activate_tool("eraser")
    assert not tools.brush.dragging
    assert len(window.document.undo) == 1 and window.document.labels.data[0, 29, 45] == 1


def test_undo_is_held_during_a_drag(window, qtbot, tools):
    canvas = window.canvas
    labels = window.document.labels
    with labels.edit("first") as e:
        e.assign((slice(0, 1), slice(0, 5), slice(0, 5)), np.uint16(3))
    tools.activate_tool("brush")
    viewport = canvas.view.viewport()
    QTest.mousePress(viewport, LEFT, NOMOD, widget_pos(canvas, 60, 60))
    assert not window.undo_action.isEnabled()
    window.undo_action.trigger()  # a shortcut mid-drag does nothing
    assert (labels.data[0, :5, :5] == 3).all()
    QTest.mouseRelease(viewport, LEFT, NOMOD, widget_pos(canvas, 60, 60))
    assert window.undo_action.isEnabled() and len(window.document.undo) == 2
    window.undo_action.trigger()
    window.undo_action.trigger()
    assert not labels.data.any()


def test_shortcuts_are_documented_in_tooltips(tools):
    tips = {key: button.toolTip() for key, button in tools.tool_buttons.items()}
    assert "(B)" in tips["brush"] and "(E)" in tips["eraser"] and "(P)" in tips["polygon"]
    assert "(G)" in tips["grow"] and "Esc" in tips["navigate"] and "[" in tips["brush"]


def test_previews_hide_with_the_dock(window, qtbot, tools):
    from workbench.gui.panels.tools.common import TAB_THRESHOLD

    tools.tabs.setCurrentIndex(TAB_THRESHOLD)
    tools.set_threshold_range(59000, 61000)
    assert tools.preview_mask is not None
    window.docks["ToolsDock"].hide()
    assert tools.preview_mask is None
    tools.raise_dock()
    assert tools.preview_mask is not None and tools.preview_mask.sum() == 400
