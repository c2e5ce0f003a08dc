"""Orthogonal views (issue 15 item 1): readout agreement, crosshair, physical aspect, painting in a coronal
view (right voxels, one undo step, shown in every view), click tools, layouts and maximise."""
from __future__ import annotations

import re

import nibabel as nib
import numpy as np
import pytest
from PySide6.QtTest import QTest

from workbench.gui.qt import Qt, QtCore

LEFT = Qt.MouseButton.LeftButton
NOMOD = Qt.KeyboardModifier.NoModifier
SHAPE = (12, 40, 50)  # z, y, x
SPACING = (3.0, 0.8, 0.5)  # anisotropic: z 3 mm, y 0.8 mm, x 0.5 mm


def widget_pos(canvas, x: float, y: float) -> QtCore.QPoint:
    return canvas.view.mapFromScene(canvas.view.vb.mapViewToScene(QtCore.QPointF(x, y)))


def voxel_pos(canvas, z: int, y: int, x: int) -> QtCore.QPoint:
    """Widget position of the centre of voxel (z, y, x) in ``canvas`` (its plane must hold it)."""
    from workbench.core.mpr import to_view

    _, r, c = to_view(canvas.orientation, z, y, x)
    return widget_pos(canvas, c + 0.5, r + 0.5)


@pytest.fixture
def phantom(tmp_path):
    """A (12, 40, 50) int32 volume whose value encodes its voxel: 10000 z + 100 y + x."""
    z, y, x = np.mgrid[0:SHAPE[0], 0:SHAPE[1], 0:SHAPE[2]]
    data = (10000 * z + 100 * y + x).astype(np.int32)
    path = tmp_path / "phantom.nii.gz"
    # the reader shows NIfTI in LPS order: x and y flip, so write the mirror image of `data`
    nib.save(nib.Nifti1Image(np.transpose(data[:, ::-1, ::-1], (2, 1, 0)),
                             np.diag([SPACING[2], SPACING[1], SPACING[0], 1.0])), str(path))
    return path


@pytest.fixture
def mpr(window, qtbot, load, phantom):
    load(window, qtbot, phantom)
    image = window.document.image
    assert image.shape == SHAPE and image.spacing == pytest.approx(SPACING)
    assert int(image.data[3, 5, 7]) == 30507  # the reader kept the voxel order the test relies on
    area = window.view_area
    area.set_layout("2x2")
    qtbot.wait(10)
    return area


def test_cursor_readout_agrees_in_all_three_views(window, qtbot, mpr):
    area = mpr
    target = (4, 17, 31)
    axial = area.canvases["axial"]
    window.view_state.set_slice(target[0])
    # a navigation click in the axial view puts the crosshair on the voxel: the other views follow
    QTest.mouseClick(axial.view.viewport(), LEFT, NOMOD, voxel_pos(axial, *target))
    assert area.crosshair.position == target
    assert area.canvases["coronal"].slice_index == 17 and area.canvases["sagittal"].slice_index == 31
    texts = {}
    for key in ("axial", "coronal", "sagittal"):
        canvas = area.canvases[key]
        QTest.mouseMove(canvas.view.viewport(), voxel_pos(canvas, *target))
        qtbot.wait(5)
        texts[key] = window.cursor_label.text()
    assert len(set(texts.values())) == 1, texts
    text = texts["axial"]
    assert "x 31  y 17  z 4" in text and "value 41731" in text
    mm = [float(v) for v in re.search(r"\(([-\d.]+), ([-\d.]+), ([-\d.]+)\) mm", text).groups()]
    origin = window.document.image.origin
    assert mm == pytest.approx([origin[2] + 31 * 0.5, origin[1] + 17 * 0.8, origin[0] + 4 * 3.0], abs=0.06)
    # the shown frames are the numpy planes through the voxel
    assert np.array_equal(area.canvases["coronal"].last_frame.shape, (SHAPE[0], SHAPE[2]))
    assert np.array_equal(area.canvases["sagittal"].last_frame.shape, (SHAPE[0], SHAPE[1]))


def test_views_have_physical_aspect_and_follow_the_crosshair(window, qtbot, mpr):
    area = mpr
    for key, (row_mm, col_mm) in (("axial", (0.8, 0.5)), ("coronal", (3.0, 0.5)), ("sagittal", (3.0, 0.8))):
        sx, sy = area.canvases[key].view.vb.viewPixelSize()  # image units per screen pixel along x, y
        assert (sy * row_mm) / (sx * col_mm) == pytest.approx(1.0, rel=0.02), key
    # Ctrl + wheel in the sagittal view steps the sagittal slice (x) and the axial view's line moves
    sag = area.canvases["sagittal"]
    x0 = area.crosshair.position[2]
    sag.step_slice(3)
    assert area.crosshair.position[2] == x0 + 3
    assert area.lines["axial"].vertical.line().x1() == pytest.approx(x0 + 3 + 0.5)
    # the axial slider moves the axial line in the coronal view
    window.view_state.set_slice(2)
    assert area.crosshair.position[0] == 2
    assert area.lines["coronal"].horizontal.line().y1() == pytest.approx(2.5)
    assert "3/12" in area.panes["axial"].position.text()
    # Page Down in the focused coronal view steps the coronal slice, not the axial one (a window shortcut)
    cor = area.canvases["coronal"]
    y0 = area.crosshair.position[1]
    cor.view.setFocus()
    QTest.keyClick(cor.view, Qt.Key.Key_PageDown)
    assert area.crosshair.position[1] == y0 + 1 and window.view_state.slice_index == 2
    window.canvas.view.setFocus()
    QTest.keyClick(window.canvas.view, Qt.Key.Key_PageDown)
    assert window.view_state.slice_index == 3 and area.crosshair.position[1] == y0 + 1


def test_brush_stroke_in_the_coronal_view_lands_on_its_voxels_and_undoes_in_one_step(window, qtbot, mpr):
    area = mpr
    tools = window.docks["ToolsDock"].panel
    tools.activate_tool("brush")
    tools.size_spin.setValue(1.2)  # a plus-shaped dab: reaches one row/column each way
    tools.options.units = "px"
    coronal = area.canvases["coronal"]
    y = 22
    area.crosshair.set_axis(1, y)
    labels = window.document.labels
    undo_before = len(window.document.undo)
    viewport = coronal.view.viewport()
    start, end = (10, 6), (30, 6)  # (x, z): a horizontal stroke at z = 6 across x = 10..30
    QTest.mouseMove(viewport, voxel_pos(coronal, start[1], y, start[0]))
    assert tools.brush.canvas is coronal  # the shared tool moved into the view under the mouse
    QTest.mousePress(viewport, LEFT, NOMOD, voxel_pos(coronal, start[1], y, start[0]))
    for t in (0.25, 0.5, 0.75, 1.0):
        x = start[0] + t * (end[0] - start[0])
        QTest.mouseMove(viewport, voxel_pos(coronal, 6, y, int(x)))
    QTest.mouseRelease(viewport, LEFT, NOMOD, voxel_pos(coronal, end[1], y, end[0]))
    painted = np.argwhere(labels.data > 0)
    assert painted.size
    assert set(painted[:, 1].tolist()) == {y}  # only the coronal plane y = 22
    assert set(painted[:, 0].tolist()) == {5, 6, 7}  # z = 6 +- 1 (the dab's rows are z)
    core = labels.data[6, y]
    assert np.all(core[10:31] == tools.options.label) and not core[:9].any() and not core[32:].any()
    assert len(window.document.undo) == undo_before + 1
    # the edit shows in every view: the axial overlay at z = 6 and the sagittal one at x = 20
    window.view_state.set_slice(6)
    area.crosshair.set_axis(2, 20)
    qtbot.wait(5)
    assert area.canvases["axial"].label_overlay.buffer[y, 20] != 0
    assert area.canvases["sagittal"].label_overlay.buffer[6, y] != 0
    assert coronal.label_overlay.buffer[6, 20] != 0
    window.undo()
    assert not labels.data.any()
    assert coronal.label_overlay.buffer[6, 20] == 0 and area.canvases["axial"].label_overlay.buffer[y, 20] == 0
    # back in the axial view the same brush paints the axial slice again
    axial = area.canvases["axial"]
    QTest.mouseMove(axial.view.viewport(), voxel_pos(axial, 6, 10, 10))
    QTest.mouseClick(axial.view.viewport(), LEFT, NOMOD, voxel_pos(axial, 6, 10, 10))
    assert tools.brush.canvas is axial and labels.data[6, 10, 10] == tools.options.label
    assert set(np.argwhere(labels.data > 0)[:, 0].tolist()) == {6}


def test_click_tools_get_voxel_coordinates_and_move_the_crosshair(window, qtbot, mpr):
    area = mpr
    tools = window.docks["ToolsDock"].panel
    seen = []
    tools.grow_tool._on_click = lambda z, r, c, m: seen.append((z, r, c))
    tools.activate_tool("grow")
    sag = area.canvases["sagittal"]
    area.crosshair.set_axis(2, 9)
    QTest.mouseMove(sag.view.viewport(), voxel_pos(sag, 8, 25, 9))
    QTest.mouseClick(sag.view.viewport(), LEFT, NOMOD, voxel_pos(sag, 8, 25, 9))
    assert len(seen) == 1
    z, r, c = seen[0]
    assert (round(z), round(r), round(c)) == (8, 25, 9)
    assert area.crosshair.position == (8, 25, 9) and window.view_state.slice_index == 8


def test_axial_only_tools_leave_the_other_views_navigating(window, qtbot, mpr):
    area = mpr
    tools = window.docks["ToolsDock"].panel
    tools.activate_tool("ai")
    ai = window.canvas.tool
    cor = area.canvases["coronal"]
    QTest.mouseMove(cor.view.viewport(), voxel_pos(cor, 6, area.crosshair.position[1], 10))
    assert cor.tool.name == "navigate" and window.canvas.tool is ai and ai.canvas is window.canvas


def test_layout_switch_and_maximise(window, qtbot, mpr):
    area = mpr
    assert area.visible_views() == ["axial", "coronal", "sagittal", "fourth"]
    assert area.fourth.content is not None and area.fourth.content.isVisible()
    from workbench.gui.qt import QtWidgets
    from workbench.gui.shell import menus_by_title  # not QAction.menu(): its wrapper dies on PySide6 6.9

    view_menu = menus_by_title(window)["View"]
    layout_menu = next(m for m in view_menu.findChildren(QtWidgets.QMenu) if m.title() == "&Layout")
    assert [a.shortcut().toString() for a in layout_menu.actions() if a.shortcut().toString()] == \
        ["Ctrl+Alt+1", "Ctrl+Alt+2", "Ctrl+Alt+4", "Ctrl+Alt+M"]
    area._actions["1+2"].trigger()
    assert area.layout_name == "1+2" and area.visible_views() == ["axial", "coronal", "sagittal"]
    area._actions["1"].trigger()
    assert area.visible_views() == ["axial"]
    area.set_layout("2x2")
    # double-click with the navigation tool maximises the view, again restores the layout
    cor = area.canvases["coronal"]
    QTest.mouseDClick(cor.view.viewport(), LEFT, NOMOD, voxel_pos(cor, 6, area.crosshair.position[1], 10))
    assert area.maximised == "coronal" and area.visible_views() == ["coronal"]
    assert area.panes["coronal"].maximise_button.isChecked()
    area.panes["coronal"].maximise_button.click()
    assert area.maximised is None and len(area.visible_views()) == 4
    area.panes["sagittal"].maximise_button.click()
    assert area.visible_views() == ["sagittal"]
    area._maximise_action.trigger()  # the active (maximised) view restores
    assert len(area.visible_views()) == 4
    # "1" shows the view last worked in
    area.set_active(area.canvases["sagittal"])
    area.set_layout("1")
    assert area.visible_views() == ["sagittal"]
    # a hidden view skips its redraws (a W/L drag) and catches up when shown
    cor = area.canvases["coronal"]
    before = cor.last_frame
    c, w = window.view_state.window
    window.view_state.set_window(c + 0.25 * w, w / 2)
    assert cor.last_frame is before
    area.set_layout("2x2")
    qtbot.waitUntil(lambda: cor.last_frame is not before, timeout=2000)


def test_a_2d_image_keeps_the_single_view(window, qtbot, load, gradient_png):
    load(window, qtbot, gradient_png)
    area = window.view_area
    area.set_layout("2x2")
    assert area.visible_views() == ["axial"]
    assert not area._actions["2x2"].isEnabled() and not area.panes["axial"].header.isVisible()
    assert not area.lines["axial"].horizontal.isVisible()
