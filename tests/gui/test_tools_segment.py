"""Threshold, region grow, islands and morphology from the Tools dock (each one undo step)."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtTest import QTest

from workbench.gui.panels.tools.common import TAB_GROW, TAB_ISLANDS, TAB_THRESHOLD
from workbench.gui.qt import Qt, QtCore
from workbench.processing import (
    dilate,
    fill_holes,
    keep_largest,
    region_grow,
    remove_small,
    threshold_range,
    threshold_value,
)

LEFT = Qt.MouseButton.LeftButton
NOMOD = Qt.KeyboardModifier.NoModifier
SQUARE = (slice(20, 40), slice(30, 50))  # the 60000 square of the gradient_png fixture


def widget_pos(canvas, x: float, y: float) -> QtCore.QPoint:
    scene = canvas.view.vb.mapViewToScene(QtCore.QPointF(x, y))
    return canvas.view.mapFromScene(scene)


def click(canvas, x, y) -> None:
    QTest.mouseClick(canvas.view.viewport(), LEFT, NOMOD, widget_pos(canvas, x, y))


@pytest.fixture
def tools(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    window.canvas.zoom_to_fit()
    panel = window.docks["ToolsDock"].panel
    panel.raise_dock()
    return panel


def _wait_idle(qtbot, tools):
    qtbot.waitUntil(lambda: not tools.is_busy, timeout=20_000)


# -- threshold -------------------------------------------------------------------------------------
def test_threshold_preview_then_apply(window, qtbot, tools):
    tools.tabs.setCurrentIndex(TAB_THRESHOLD)
    tools.set_threshold_range(59000, 61000)
    preview = tools.preview_mask
    expected = np.zeros((96, 128), bool)
    expected[SQUARE] = True
    assert preview is not None and np.array_equal(preview, expected)
    assert not window.document.labels.data.any()  # a preview never writes
    # the histogram region follows the range
    lo, hi = tools.range_region.getRegion()
    assert (lo, hi) == pytest.approx((59000, 61000))
    tools.th_apply.click()
    assert np.array_equal(window.document.labels.data[0] == 1, expected)
    assert len(window.document.undo) == 1
    window.undo_action.trigger()
    assert not window.document.labels.data.any()


def test_threshold_region_drag_updates_the_spins_and_preview(window, qtbot, tools):
    tools.tabs.setCurrentIndex(TAB_THRESHOLD)
    tools.range_region.setRegion((0, 1000))
    assert tools.threshold_range == pytest.approx((0, 1000))
    image = window.document.image.data[0]
    assert np.array_equal(tools.preview_mask, threshold_range(image, 0, 1000))


@pytest.mark.parametrize("method", ["otsu", "cv2-otsu", "li", "mean", "multiotsu"])
def test_auto_threshold_fills_the_range(window, qtbot, tools, method):
    tools.tabs.setCurrentIndex(TAB_THRESHOLD)
    tools.method_combo.setCurrentIndex(tools.method_combo.findData(method))
    tools.auto_button.click()
    _wait_idle(qtbot, tools)
    lo, hi = tools.threshold_range
    image = window.document.image.data[0]
    assert hi == image.max()
    if method in ("otsu", "li", "mean"):
        t = threshold_value(image, method=method)
        assert lo == np.floor(t) + 1
    tools.th_apply.click()
    assert np.array_equal(window.document.labels.data[0] == 1, image > lo - 1)


def test_threshold_inside_the_label_roi(window, qtbot, tools):
    labels = window.document.labels
    with labels.edit("setup") as e:
        e.assign((slice(0, 1), slice(10, 50), slice(20, 60)), np.uint16(1))
    tools.tabs.setCurrentIndex(TAB_THRESHOLD)
    tools.th_roi_check.setChecked(True)
    tools.set_threshold_range(59000, 61000)
    tools.th_apply.click()
    expected = np.zeros((96, 128), bool)
    expected[SQUARE] = True
    assert np.array_equal(labels.data[0] == 1, expected)
    assert len(window.document.undo) == 2


def test_threshold_the_whole_stack_runs_in_the_background(window, qtbot, stack_npy, load):
    load(window, qtbot, stack_npy)
    tools = window.docks["ToolsDock"].panel
    tools.raise_dock()
    tools.tabs.setCurrentIndex(TAB_THRESHOLD)
    tools.th_scope.setCurrentIndex(tools.th_scope.findData("stack"))
    tools.set_threshold_range(200, 320)
    tools.th_apply.click()
    _wait_idle(qtbot, tools)
    data = window.document.image.data
    assert np.array_equal(window.document.labels.data == 1, (data >= 200) & (data <= 320))
    assert len(window.document.undo) == 1


# -- region grow -----------------------------------------------------------------------------------
def test_region_grow_by_click_with_live_tolerance(window, qtbot, tools):
    canvas = window.canvas
    canvas.view.setFocus()
    QTest.keyClick(canvas.view, Qt.Key.Key_G)
    assert canvas.tool is tools.grow_tool and tools.tabs.currentIndex() == TAB_GROW
    tools.set_tolerance(10)
    click(canvas, 35.5, 25.5)  # inside the bright square
    expected = np.zeros((96, 128), bool)
    expected[SQUARE] = True
    assert np.array_equal(tools.preview_mask, expected)
    assert "400 px" in tools.grow_info.text()
    assert not window.document.labels.data.any()
    # a larger tolerance on the ramp: a click on the ramp grows a band of columns
    click(canvas, 100.5, 80.5)
    image = window.document.image.data[0]
    for tol in (50, 200):
        tools.tol_slider.setValue(int(round(tol / tools._tol_span * 1000)))
        reference = region_grow(image, [(80, 100)], tolerance=tools.tolerance, connectivity=8)
        assert np.array_equal(tools.preview_mask, reference)
    tools.grow_apply.click()
    assert np.array_equal(window.document.labels.data[0] == 1, reference)
    assert len(window.document.undo) == 1 and tools.preview_mask is None
    QTest.keyClick(canvas.view, Qt.Key.Key_Escape)
    assert tools.active_tool_key == "navigate"


def test_region_grow_absolute_and_confidence_modes(window, qtbot, tools):
    tools.activate_tool("grow")
    image = window.document.image.data[0]
    tools.grow_mode.setCurrentIndex(tools.grow_mode.findData("absolute"))
    tools.grow_lo.setValue(0)
    tools.grow_hi.setValue(500)
    click(window.canvas, 2.5, 50.5)
    assert np.array_equal(tools.preview_mask, region_grow(image, [(50, 2)], lo=0, hi=500, connectivity=8))
    tools.grow_mode.setCurrentIndex(tools.grow_mode.findData("confidence"))
    click(window.canvas, 35.5, 25.5)
    assert tools.preview_mask[SQUARE].all()


def test_grow_from_current_label(window, qtbot, tools):
    labels = window.document.labels
    with labels.edit("AI mask") as e:
        e.assign((slice(0, 1), slice(25, 30), slice(35, 40)), np.uint16(1))
    tools.activate_tool("grow")
    tools.set_tolerance(100)
    tools.grow_label_button.click()
    expected = np.zeros((96, 128), bool)
    expected[SQUARE] = True
    assert np.array_equal(tools.preview_mask, expected)
    tools.grow_apply.click()
    assert np.array_equal(labels.data[0] == 1, expected)


def test_region_grow_through_the_stack_in_a_worker(window, qtbot, stack_npy, load):
    load(window, qtbot, stack_npy)
    tools = window.docks["ToolsDock"].panel
    tools.raise_dock()
    tools.activate_tool("grow")
    tools.grow_scope.setCurrentIndex(tools.grow_scope.findData("stack"))
    tools.set_tolerance(120)
    z = window.view_state.slice_index
    click(window.canvas, 10.5, 20.5)
    tools.grow_apply.click()
    assert tools.is_busy or window.document.labels.data.any()
    _wait_idle(qtbot, tools)
    data = window.document.image.data
    reference = region_grow(data, [(z, 20, 10)], tolerance=120, connectivity=26)
    assert np.array_equal(window.document.labels.data == 1, reference)
    assert reference[z - 1].any() and len(window.document.undo) == 1


def test_stale_background_result_is_discarded(window, qtbot, stack_npy, load):
    load(window, qtbot, stack_npy)
    tools = window.docks["ToolsDock"].panel
    tools.raise_dock()
    tools.activate_tool("grow")
    tools.grow_scope.setCurrentIndex(tools.grow_scope.findData("stack"))
    tools.set_tolerance(120)
    click(window.canvas, 10.5, 20.5)
    labels = window.document.labels
    tools.grow_apply.click()
    with labels.edit("meanwhile") as e:  # an edit while the job runs
        e.assign((slice(0, 1), slice(0, 2), slice(0, 2)), np.uint16(7))
    _wait_idle(qtbot, tools)
    assert not (labels.data == 1).any()
    assert "discarded" in tools.last_message


# -- islands and morphology ------------------------------------------------------------------------
@pytest.fixture
def blobs(window):
    labels = window.document.labels
    with labels.edit("setup") as e:
        e.assign((slice(0, 1), slice(10, 30), slice(10, 30)), np.uint16(1))  # 400 px, with a hole
        e.assign((slice(0, 1), slice(15, 25), slice(15, 25)), np.uint16(0))
        e.assign((slice(0, 1), slice(60, 66), slice(80, 86)), np.uint16(1))  # 36 px
        e.assign((slice(0, 1), slice(70, 72), slice(20, 22)), np.uint16(1))  # 4 px
    return labels


def test_keep_largest_remove_small_and_undo(window, qtbot, tools, blobs):
    tools.tabs.setCurrentIndex(TAB_ISLANDS)
    before = blobs.data[0] == 1
    tools.min_size_spin.setValue(10)
    tools.remove_small_button.click()
    assert np.array_equal(blobs.data[0] == 1, remove_small(before, min_size=10, connectivity=8))
    tools.keep_largest_button.click()
    assert np.array_equal(blobs.data[0] == 1, keep_largest(before))
    window.undo_action.trigger()
    window.undo_action.trigger()
    assert np.array_equal(blobs.data[0] == 1, before)


def test_split_into_labels(window, qtbot, tools, blobs):
    tools.tabs.setCurrentIndex(TAB_ISLANDS)
    tools.split_button.click()
    values = set(np.unique(blobs.data).tolist())
    assert values == {0, 1, 2, 3}
    assert (blobs.data[0] == 1).sum() == 300 and len(window.document.undo) == 2
    assert set(blobs.labels) >= {2, 3}


def test_pick_island_by_click(window, qtbot, tools, blobs):
    tools.tabs.setCurrentIndex(TAB_ISLANDS)
    tools.pick_mode.setCurrentIndex(tools.pick_mode.findData("remove"))
    tools.pick_button.click()
    assert window.canvas.tool is tools.pick_tool
    click(window.canvas, 82.5, 62.5)
    assert (blobs.data[0, 60:66, 80:86] == 0).all() and (blobs.data[0] == 1).sum() == 304
    tools.pick_mode.setCurrentIndex(tools.pick_mode.findData("keep"))
    click(window.canvas, 12.5, 12.5)
    assert (blobs.data[0] == 1).sum() == 300


def test_fill_holes_and_dilate(window, qtbot, tools, blobs):
    tools.tabs.setCurrentIndex(TAB_ISLANDS)
    before = blobs.data[0] == 1
    tools.fill_holes_button.click()
    filled = fill_holes(before)
    assert np.array_equal(blobs.data[0] == 1, filled)
    tools.radius_spin.setValue(2)
    tools.dilate_button.click()
    assert np.array_equal(blobs.data[0] == 1, dilate(filled, 2))
    assert len(window.document.undo) == 3


def test_dilate_respects_the_background_only_rule(window, qtbot, tools, blobs):
    with blobs.edit("neighbour") as e:
        e.assign((slice(0, 1), slice(10, 30), slice(30, 33)), np.uint16(5))
    tools.overwrite_combo.setCurrentIndex(tools.overwrite_combo.findData("background"))
    tools.tabs.setCurrentIndex(TAB_ISLANDS)
    tools.radius_spin.setValue(2)
    tools.dilate_button.click()
    assert (blobs.data[0, 10:30, 30:33] == 5).all()
    assert blobs.data[0, 20, 9] == 1


def test_operation_on_an_empty_label_reports_it(window, qtbot, tools):
    tools.tabs.setCurrentIndex(TAB_ISLANDS)
    tools.keep_largest_button.click()
    assert "no pixels" in tools.last_message and len(window.document.undo) == 0
