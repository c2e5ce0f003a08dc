"""The main window driven through real widgets and events (pytest-qt)."""
from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from workbench.core.image import ImageVolume
from workbench.core.results import (
    ClassificationResult,
    ClassScore,
    Detection,
    DetectionResult,
    RestorationResult,
    RunInfo,
    SegmentationClass,
    SegmentationResult,
)
from workbench.gui.qt import Qt, QtCore, QtGui, QtWidgets


def _info(task: str) -> RunInfo:
    return RunInfo(plugin_id="test", plugin_name="Test model", plugin_version="1.0", sha256="0" * 64,
                   provider="CPUExecutionProvider", task=task)


def _mouse(widget: QtWidgets.QWidget, kind: QtCore.QEvent.Type, pos: QtCore.QPointF,
           button: Qt.MouseButton, buttons: Qt.MouseButton) -> None:
    global_pos = QtCore.QPointF(widget.mapToGlobal(pos.toPoint()))
    event = QtGui.QMouseEvent(kind, pos, global_pos, button, buttons, Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(widget, event)


def _drag(widget, start, end, button, steps=5):
    _mouse(widget, QtCore.QEvent.Type.MouseButtonPress, start, button, button)
    for i in range(1, steps + 1):
        p = start + (end - start) * (i / steps)
        _mouse(widget, QtCore.QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, button)
    _mouse(widget, QtCore.QEvent.Type.MouseButtonRelease, end, button, Qt.MouseButton.NoButton)


# -- opening --------------------------------------------------------------------------------------
def test_drop_a_file_opens_it(window, qtbot, gradient_png):
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(gradient_png))])
    pos = QtCore.QPointF(window.width() / 2, window.height() / 2)
    enter = QtGui.QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                  Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QtGui.QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.load_settled, timeout=20_000) as blocker:
        QtWidgets.QApplication.sendEvent(window, drop)
    assert blocker.args == [True]
    assert window.document.image is not None
    assert window.document.image.shape == (1, 96, 128)
    assert window.document.image.path.name == "ramp.png"
    assert "ramp.png" in window.windowTitle()
    assert window.canvas.last_frame is not None and window.canvas.last_frame.dtype == np.uint8
    assert not window.progress.isVisible() and not window.cancel_button.isVisible()


def test_drop_ignores_non_file_data(window):
    mime = QtCore.QMimeData()
    mime.setText("hello")
    enter = QtGui.QDragEnterEvent(QtCore.QPoint(10, 10), Qt.DropAction.CopyAction, mime,
                                  Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(window, enter)
    assert not enter.isAccepted()


def test_failed_load_keeps_the_open_document_and_shows_the_error(window, qtbot, gradient_png, corrupt_png, load):
    load(window, qtbot, gradient_png)
    before = window.document.image
    load(window, qtbot, corrupt_png, expect=False)
    assert window.document.image is before  # untouched
    assert window.last_error is not None and "broken.png" in window.last_error
    assert "\n" not in window.last_error
    assert window.banner.isVisible()
    assert "broken.png" in window.banner.label.text()
    assert "broken.png" in window.statusBar().currentMessage()
    # a following successful load clears the banner
    load(window, qtbot, gradient_png)
    assert not window.banner.isVisible()


def test_missing_file_is_reported(window, qtbot, tmp_path, load):
    load(window, qtbot, tmp_path / "nope.png", expect=False)
    assert "nope.png" in window.last_error
    assert window.document.image is None


def test_recent_files_remember_opened_images(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    assert window.settings.recent_files[0] == str(gradient_png.resolve())
    assert [a.text() for a in window.recent_menu.actions()][0] == str(gradient_png.resolve())


# -- window / level -------------------------------------------------------------------------------
def test_right_drag_changes_window_and_the_shown_pixels(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    state = window.view_state
    c0, w0 = state.window
    frame0 = window.canvas.last_frame.copy()
    viewport = window.canvas.view.viewport()
    centre = QtCore.QPointF(viewport.width() / 2, viewport.height() / 2)
    _drag(viewport, centre, centre + QtCore.QPointF(90, 0), Qt.MouseButton.RightButton)
    c1, w1 = state.window
    assert w1 > w0 and c1 == pytest.approx(c0)  # horizontal = width
    _drag(viewport, centre, centre + QtCore.QPointF(0, 60), Qt.MouseButton.RightButton)
    c2, w2 = state.window
    assert c2 > c1 and w2 == pytest.approx(w1)  # vertical = level
    assert not np.array_equal(window.canvas.last_frame, frame0)
    # the histogram panel follows
    panel = window.docks["HistogramDock"].panel
    low, high = panel.region.getRegion()
    assert (low + high) / 2 == pytest.approx(c2, rel=1e-6)


def test_histogram_region_and_presets_set_the_window(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    panel = window.docks["HistogramDock"].panel
    panel.region.setRegion((1000, 3000))
    assert window.view_state.window == pytest.approx((2000, 2000))
    frame = window.canvas.last_frame
    plane = window.document.image.slice(0)
    assert frame[plane <= 1000].max() == 0 and frame[plane >= 3000].min() == 255
    panel.invert_check.setChecked(True)
    assert window.view_state.invert
    assert window.canvas.last_frame[plane >= 3000].max() == 0


def test_ct_presets(window, qtbot, load):
    from pydicom.data import get_testdata_file

    path = get_testdata_file("CT_small.dcm")
    load(window, qtbot, path)
    panel = window.docks["HistogramDock"].panel
    names = [panel.preset_combo.itemData(i) for i in range(panel.preset_combo.count())]
    assert {"Lung", "Mediastinum", "Bone", "Brain"} <= set(names)
    index = names.index("Lung")
    panel.preset_combo.activated.emit(index)
    assert window.view_state.window == (-600.0, 1500.0)
    # cursor readout shows HU for CT
    from workbench.gui.display import cursor_readout

    text = cursor_readout(window.document.image, 0, 10.5, 20.5)
    assert "HU" in text and "x 10  y 20  z 0" in text


# -- slices ---------------------------------------------------------------------------------------
def test_page_down_and_slider_navigate_slices(window, qtbot, stack_npy, load):
    load(window, qtbot, stack_npy)
    state = window.view_state
    assert window.slice_bar.isVisible()
    start = state.slice_index
    window.canvas.view.setFocus()
    qtbot.keyClick(window.canvas.view, Qt.Key.Key_PageDown)
    assert state.slice_index == start + 1
    qtbot.keyClick(window.canvas.view, Qt.Key.Key_PageUp)
    qtbot.keyClick(window.canvas.view, Qt.Key.Key_PageUp)
    assert state.slice_index == start - 1
    window.slice_slider.setValue(5)
    assert state.slice_index == 5
    assert "slice 6/6" in window.slice_label.text()
    # the frame shows slice 5's values (100 * 5 + ramp) under the current window
    expected = window.canvas._renderer.render(window.document.image.slice(5), *state.window)
    assert np.array_equal(window.canvas.last_frame, expected)


def test_ctrl_wheel_steps_slices(window, qtbot, stack_npy, load):
    load(window, qtbot, stack_npy)
    state = window.view_state
    state.set_slice(2)
    view = window.canvas.view
    pos = QtCore.QPointF(view.width() / 2, view.height() / 2)
    event = QtGui.QWheelEvent(pos, QtCore.QPointF(view.mapToGlobal(pos.toPoint())), QtCore.QPoint(),
                              QtCore.QPoint(0, -120), Qt.MouseButton.NoButton,
                              Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(view.viewport(), event)
    assert state.slice_index == 3


def test_wheel_zooms(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    view = window.canvas.view
    before = view.vb.viewRange()[0]
    pos = QtCore.QPointF(view.width() / 2, view.height() / 2)
    event = QtGui.QWheelEvent(pos, QtCore.QPointF(view.mapToGlobal(pos.toPoint())), QtCore.QPoint(),
                              QtCore.QPoint(0, 240), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                              Qt.ScrollPhase.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(view.viewport(), event)
    after = view.vb.viewRange()[0]
    assert (after[1] - after[0]) < (before[1] - before[0])


# -- overlays -------------------------------------------------------------------------------------
def test_label_overlay_toggles_and_styles(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    labels = window.document.labels
    mask = np.zeros((1, 96, 128), bool)
    mask[0, 10:30, 10:40] = True
    with labels.edit("paint") as e:
        e.paint((slice(0, 1), slice(0, 96), slice(0, 128)), mask, 2)
    overlay = window.canvas.label_overlay
    assert overlay.buffer[15, 20] != 0 and overlay.buffer[50, 60] == 0
    layers = window.docks["LayersDock"].panel
    assert layers.table.rowCount() == 1
    layers.overlay_check.setChecked(False)
    assert overlay.buffer.max() == 0
    layers.overlay_check.setChecked(True)
    assert overlay.buffer[15, 20] != 0
    # per-label visibility through the table's checkbox
    layers.table.item(0, 3).setCheckState(Qt.CheckState.Unchecked)
    assert labels.labels[2].visible is False and overlay.buffer[15, 20] == 0
    layers.table.item(0, 3).setCheckState(Qt.CheckState.Checked)
    # outline mode: the interior becomes transparent, the border stays
    layers.table.item(0, 5).setCheckState(Qt.CheckState.Checked)
    assert overlay.buffer[20, 25] == 0 and overlay.buffer[10, 25] != 0
    # opacity goes into the alpha byte
    layers.table.item(0, 5).setCheckState(Qt.CheckState.Unchecked)
    layers.table.cellWidget(0, 4).setValue(100)
    assert overlay.buffer[15, 20] >> 24 == 255
    # undo removes the paint from the overlay (dirty rectangle through data_changed)
    window.undo()
    assert overlay.buffer.max() == 0


def test_detections_show_with_filter_and_captions(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    dets = [Detection(0, "lesion", 0.9, (10, 10, 40, 30)), Detection(1, "cyst", 0.3, (50, 50, 70, 80))]
    window.document.add_result(DetectionResult(_info("detection"), dets))
    overlay = window.canvas.detection_overlay
    assert len(overlay.visible_boxes) == 2 and len(overlay.visible_captions) == 2
    assert {c.text() for c in overlay.visible_captions} == {"lesion 0.90", "cyst 0.30"}
    panel = window.docks["ResultsDock"].panel
    assert panel.det_group.isVisibleTo(panel) and panel.det_table.rowCount() == 2
    panel.score_slider.setValue(50)
    assert len(overlay.visible_boxes) == 1 and panel.det_table.rowCount() == 1
    panel.captions_check.setChecked(False)
    assert overlay.visible_captions == [] and len(overlay.visible_boxes) == 1
    window.undo()  # removes the result
    assert overlay.visible_boxes == []


def test_classification_shows_a_bar_chart(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    scores = np.array([0.1, 0.7, 0.2], np.float32)
    result = ClassificationResult(_info("classification"), scores, ["good", "noisy", "blurred"],
                                  [ClassScore(1, "noisy", 0.7), ClassScore(2, "blurred", 0.2),
                                   ClassScore(0, "good", 0.1)])
    window.document.add_result(result)
    panel = window.docks["ResultsDock"].panel
    assert panel.class_group.isVisibleTo(panel)
    assert panel.class_bars is not None
    widths = panel.class_bars.opts["width"]
    assert list(np.round(widths, 2)) == [0.7, 0.2, 0.1]
    assert "noisy" in panel.class_top.text()


def test_restoration_compare_modes(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    image = window.document.image
    restored = ImageVolume(cv2.resize(image.slice(0), (256, 192), interpolation=cv2.INTER_LINEAR)[None])
    window.document.add_result(RestorationResult(_info("restoration"), restored, scale=2))
    state = window.view_state
    canvas = window.canvas
    assert state.compare_mode == "swipe" and canvas._swipe_clip.isVisible()
    panel = window.docks["ResultsDock"].panel
    assert panel.rest_group.isVisibleTo(panel)
    panel.swipe_slider.setValue(250)
    assert canvas._swipe_clip.rect().left() == pytest.approx(0.25 * image.width)
    # restored image drawn in the original's pixel grid
    assert canvas.restored_item.mapRectToParent(canvas.restored_item.boundingRect()).width() == \
        pytest.approx(image.width)
    # profiles of both along the centre row
    x, y = panel.profile_original.getData()
    xr, yr = panel.profile_restored.getData()
    assert len(y) == len(yr) and np.corrcoef(y, yr)[0, 1] > 0.99
    # side by side: a second, linked view
    panel.compare_combo.activated.emit(2)
    assert state.compare_mode == "side" and canvas.side_view.isVisible()
    qtbot.wait(20)  # layout of the two half-width views
    canvas.zoom_by(0.5)
    assert np.allclose(canvas.side_view.vb.viewRange(), canvas.view.vb.viewRange(), atol=0.5)
    # difference map replaces the shown frame
    panel.compare_combo.activated.emit(3)
    assert state.compare_mode == "difference" and not canvas.side_view.isVisible()
    # a drawn profile line
    state.set_profile_line(((0.0, 0.0), (60.0, 60.0)))
    x, y = panel.profile_original.getData()
    assert len(y) == int(np.ceil(np.hypot(60, 60))) + 1


def test_segmentation_result_merges_into_labels_without_destroying_edits(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    labels = window.document.labels
    manual = np.zeros((1, 96, 128), bool)
    manual[0, 0:10, 0:10] = True
    with labels.edit("manual") as e:
        e.paint((slice(0, 1), slice(0, 96), slice(0, 128)), manual, 7)
    mask = np.zeros((1, 96, 128), np.uint16)
    mask[0, 5:20, 5:20] = 1
    result = SegmentationResult(_info("segmentation"), mask, [SegmentationClass(0, "background", "#000000"),
                                                             SegmentationClass(1, "organ", "#ff7f0e", 225)])
    window.document.add_result(result)
    qtbot.waitUntil(lambda: labels.data[0, 15, 15] == 1)
    assert labels.data[0, 7, 7] == 7  # the manual edit survives (merge = fill unlabelled only)
    assert labels.data[0, 15, 15] == 1
    assert labels.labels[1].name == "organ" and labels.labels[1].color == "#ff7f0e"
    assert window.canvas.label_overlay.buffer[15, 15] != 0
    panel = window.docks["ResultsDock"].panel
    assert panel.seg_group.isVisibleTo(panel) and "organ" in panel.seg_classes.text()
    window.undo()  # adding the result and writing its mask are one undo step
    assert labels.data[0, 15, 15] == 0 and labels.data[0, 7, 7] == 7
    assert window.document.results == []
    window.redo()
    assert labels.data[0, 15, 15] == 1 and window.document.results == [result]
    window.undo()
    # replace policy
    window.apply_segmentation(result, policy="replace")
    assert labels.data[0, 7, 7] == 1


# -- view ---------------------------------------------------------------------------------------
def test_zoom_fit_and_one_to_one(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    canvas = window.canvas
    canvas.zoom_one_to_one()
    sx, sy = canvas.view.vb.viewPixelSize()
    assert sx == pytest.approx(1.0, rel=0.02) and sy == pytest.approx(1.0, rel=0.02)
    canvas.zoom_to_fit()
    (x0, x1), (y0, y1) = canvas.view.vb.viewRange()
    assert x0 <= 0 and x1 >= 128 and y0 <= 0 and y1 >= 96


def test_cursor_readout_follows_the_mouse(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    viewport = window.canvas.view.viewport()
    vb = window.canvas.view.vb
    scene_pos = vb.mapViewToScene(QtCore.QPointF(35.5, 25.5))
    pos = QtCore.QPointF(window.canvas.view.mapFromScene(scene_pos))
    _mouse(viewport, QtCore.QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
    text = window.cursor_label.text()
    assert "x 35  y 25  z 0" in text and "value 60000" in text


def test_settings_dialog_validates_and_applies(window, qtbot):
    from workbench.gui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.theme_combo.setCurrentText("light")
    dialog.max_pixels_spin.setValue(12.5)
    dialog.plugin_dirs.setPlainText("/a\n\n/b ")
    new = dialog.edited_settings()
    assert new.theme == "light" and new.max_pixels == 12_500_000 and new.plugin_dirs == ["/a", "/b"]


def test_theme_switch(window):
    window.set_theme("light")
    assert window.settings.theme == "light"
    assert QtWidgets.QApplication.instance().palette().color(QtGui.QPalette.ColorRole.Window).lightness() > 200
    window.set_theme("dark")
    assert QtWidgets.QApplication.instance().palette().color(QtGui.QPalette.ColorRole.Window).lightness() < 80


def test_export_mask_writes_png(window, qtbot, gradient_png, tmp_path, load):
    load(window, qtbot, gradient_png)
    with window.document.labels.edit("p") as e:
        e.assign((slice(0, 1), slice(3, 6), slice(4, 9)), 3)
    out = tmp_path / "mask.png"
    window.export_mask(out)
    mask = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (96, 128) and mask.dtype == np.uint8
    assert mask[4, 5] == 3 and int(mask.sum()) == 3 * 15


# -- screenshot -----------------------------------------------------------------------------------
def _run_cli(args, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", WORKBENCH_CONFIG_DIR=str(tmp_path / "cfg"))
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True,
                          env=env, timeout=180)


def test_screenshot_writes_a_non_blank_png(tmp_path, camera_png):
    out = tmp_path / "shot.png"
    proc = _run_cli([str(camera_png), "--screenshot", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    shot = cv2.imread(str(out))
    assert shot is not None and shot.shape[0] >= 600 and shot.shape[1] >= 1000
    assert shot.std() > 20  # not a blank grab
    # the camera image itself is in the grab: many distinct grey levels
    assert len(np.unique(shot[..., 1])) > 100


def test_screenshot_of_a_broken_file_exits_2_with_one_line(tmp_path, corrupt_png):
    out = tmp_path / "shot.png"
    proc = _run_cli([str(corrupt_png), "--screenshot", str(out)], tmp_path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("workbench:")]
    assert len(lines) == 1 and "broken.png" in lines[0]
    assert "Traceback" not in proc.stderr


# -- loading control, panning, tools -----------------------------------------------------------
def test_cancelled_load_keeps_the_document_without_an_error(window, qtbot, gradient_png, stack_npy, load):
    load(window, qtbot, gradient_png)
    before = window.document.image
    with qtbot.waitSignal(window.load_settled, timeout=20_000) as blocker:
        window.open_path(stack_npy)
        assert window.is_loading and window.cancel_button.isVisibleTo(window)
        window.cancel_load()
    assert blocker.args == [False]
    assert window.document.image is before
    assert not window.banner.isVisible() and window.last_error is None


def test_middle_drag_pans(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    viewport = window.canvas.view.viewport()
    (x0, _), (y0, _) = window.canvas.view.vb.viewRange()
    start = QtCore.QPointF(200, 200)
    _drag(viewport, start, start + QtCore.QPointF(50, 30), Qt.MouseButton.MiddleButton)
    (x1, _), (y1, _) = window.canvas.view.vb.viewRange()
    assert x1 < x0 and y1 < y0  # the image followed the mouse right and down


def test_active_tool_gets_left_button_events_in_image_coordinates(window, qtbot, gradient_png, load):
    from workbench.gui.tools.base import BaseCanvasTool, CanvasTool, NavigationTool

    class Recorder(BaseCanvasTool):
        name = "recorder"

        def __init__(self):
            super().__init__()
            self.events = []

        def press(self, ev):
            self.events.append(("press", ev))
            return True

        def move(self, ev):
            self.events.append(("move", ev))
            return True

        def release(self, ev):
            self.events.append(("release", ev))
            return True

    load(window, qtbot, gradient_png)
    tool = Recorder()
    assert isinstance(tool, CanvasTool)
    window.canvas.set_tool(tool)
    assert tool.canvas is window.canvas
    vb, view = window.canvas.view.vb, window.canvas.view
    to_widget = lambda x, y: QtCore.QPointF(view.mapFromScene(vb.mapViewToScene(QtCore.QPointF(x, y))))  # noqa: E731
    _drag(view.viewport(), to_widget(10.5, 20.5), to_widget(40.5, 30.5), Qt.MouseButton.LeftButton, steps=3)
    kinds = [k for k, _ in tool.events]
    assert kinds == ["press", "move", "move", "move", "release"]
    first, last = tool.events[0][1], tool.events[-1][1]
    assert (first.column, first.row, first.z) == (10, 20, 0)
    assert (last.column, last.row) == (40, 30)
    # right drag is W/L, never the tool's
    _drag(view.viewport(), to_widget(10, 10), to_widget(30, 10), Qt.MouseButton.RightButton)
    assert len(tool.events) == 5
    window.canvas.set_tool(None)
    assert isinstance(window.canvas.tool, NavigationTool) and tool.canvas is None
