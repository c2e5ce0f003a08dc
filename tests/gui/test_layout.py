"""Issue 15 item 4: the image gets the room -- toolbar, dock layout, reachable Apply buttons, reset, memory."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.core.image import ImageVolume
from workbench.gui.qt import QtCore, QtGui, QtWidgets


def _window(qtbot, size, **kwargs):
    from workbench.gui.main_window import MainWindow
    from workbench.gui.theme import apply_theme

    apply_theme(QtWidgets.QApplication.instance(), "dark")  # the shipped look (bold dock titles are wider)
    kwargs.setdefault("restore_layout", False)
    kwargs.setdefault("persist", False)
    win = MainWindow(**kwargs)
    qtbot.addWidget(win)
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    return win


def _stack() -> ImageVolume:
    rng = np.random.default_rng(0)
    return ImageVolume(rng.integers(0, 1000, (6, 200, 300)).astype(np.uint16), spacing=(2.0, 0.8, 0.8),
                       spacing_known=True)


def _settle(qtbot):
    qtbot.wait(30)
    QtWidgets.QApplication.processEvents()


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_canvas_gets_most_of_the_window(qtbot, size):
    win = _window(qtbot, size)
    win.document.set_image(_stack())
    _settle(qtbot)
    assert (win.width(), win.height()) == size
    # the image area: the canvas, or the view area holding it (several views of a volume share it)
    area = win.stack.currentWidget()
    assert win.canvas.isVisible() and (area is win.canvas or area.isAncestorOf(win.canvas))
    fraction = area.width() * area.height() / (win.width() * win.height())
    assert fraction >= 0.6, f"image area {area.width()}x{area.height()} is {fraction:.0%} of {size}"
    # every dock but the closed Measurements one is in the one tabbed column at the right
    column = [d for d in win.docks.values() if d.objectName() != "MeasurementsDock"]
    right = QtCore.Qt.DockWidgetArea.RightDockWidgetArea
    assert all(win.dockWidgetArea(d) == right for d in column)
    first = column[0]
    assert {d.objectName() for d in win.tabifiedDockWidgets(first)} == {d.objectName() for d in column[1:]}
    assert not win.docks["MeasurementsDock"].isVisible()


def _out_of_view(dock: QtWidgets.QDockWidget, buttons=None) -> list[str]:
    """Visible push buttons of ``dock`` not wholly inside the dock, or cut by a scroll area's viewport."""
    bad = []
    area = dock.rect()
    for button in dock.findChildren(QtWidgets.QPushButton):
        if not button.isVisibleTo(dock) or (buttons is not None and button.text() not in buttons):
            continue
        rect = QtCore.QRect(button.mapTo(dock, QtCore.QPoint(0, 0)), button.size())
        if not area.contains(rect):
            bad.append(f"{button.text()!r} at {rect} outside the dock {area}")
        parent = button.parentWidget()
        while parent is not None and parent is not dock:
            if isinstance(parent, QtWidgets.QScrollArea):
                viewport = parent.viewport()
                shown = QtCore.QRect(viewport.mapTo(dock, QtCore.QPoint(0, 0)), viewport.size())
                if not shown.contains(rect):
                    bad.append(f"{button.text()!r} needs scrolling: {rect} outside the viewport {shown}")
            parent = parent.parentWidget()
    return bad


def test_apply_buttons_are_in_view_without_scrolling_at_1366x768(qtbot):
    win = _window(qtbot, (1366, 768))
    win.document.set_image(_stack())  # a stack: the 3-D options and per-slice buttons are shown too
    _settle(qtbot)
    checked = 0
    for name, dock in win.docks.items():
        dock.show()
        dock.raise_()
        _settle(qtbot)
        tabs = dock.panel.tabs if name == "ToolsDock" else None
        for index in range(tabs.count() if tabs is not None else 1):
            if tabs is not None:
                tabs.setCurrentIndex(index)
                _settle(qtbot)
            assert _out_of_view(dock) == [], (name, index)
            checked += sum(b.isVisibleTo(dock) for b in dock.findChildren(QtWidgets.QPushButton))
    tools = win.docks["ToolsDock"].panel
    for button in (tools.th_apply, tools.grow_apply, tools.keep_largest_button):
        assert button.text()  # the named Apply buttons exist (and were among those checked)
    assert checked > 20


def test_results_dock_keeps_explain_in_view_with_many_results(qtbot):
    from workbench.core.results import (
        ClassificationResult,
        ClassScore,
        Detection,
        DetectionResult,
        RestorationResult,
        RunInfo,
    )

    win = _window(qtbot, (1366, 768))
    win.document.set_image(_stack())
    image = win.document.image

    def info(task):
        return RunInfo("t", "T", "1", "0" * 64, "CPUExecutionProvider", task)

    win.document.add_result(DetectionResult(info("detection"), [Detection(0, "x", 0.9, (1, 1, 20, 20))]))
    win.document.add_result(ClassificationResult(info("classification"), np.array([0.7, 0.3]), ["a", "b"],
                                                 [ClassScore(0, "a", 0.7), ClassScore(1, "b", 0.3)]))
    win.document.add_result(RestorationResult(info("restoration"), ImageVolume(np.asarray(image.data, np.float32))))
    dock = win.docks["ResultsDock"]
    dock.raise_()
    _settle(qtbot)
    assert _out_of_view(dock, buttons={"Explain", "Remove"}) == []


def test_toolbar_has_the_common_actions_and_every_registered_tool(qtbot):
    from workbench.gui.tool_registry import register_tool, tool_registry
    from workbench.gui.tools.base import BaseCanvasTool

    win = _window(qtbot, (1366, 768))
    bar = win.toolbar
    actions = bar.actions()
    for action in (win.open_action, win.session.save_action, win.undo_action, win.redo_action,
                   bar.run_model_action, win.session.export_mask_action, win.zoom_fit_action):
        assert action in actions
        assert not action.icon().isNull()
    keys = [e.key for e in tool_registry(win).entries]
    assert {"navigate", "brush", "eraser", "polygon", "grow", "pick", "ai", "ruler"} <= set(keys)
    assert bar.tool_keys == keys
    # tooltips name the shortcut
    assert "(Ctrl+O)" in win.open_action.toolTip() or "Ctrl+O" in win.open_action.toolTip()
    assert tool_registry(win).get("brush").action.toolTip().startswith("Brush (B)")
    assert "(E)" in tool_registry(win).get("eraser").action.toolTip()

    # a tool registered later (a new dock's) appears on the toolbar by itself
    class Probe(BaseCanvasTool):
        name = "probe"

    probe = Probe()
    register_tool(win, "probe", "Probe", "a test tool", activate=lambda: win.canvas.set_tool(probe),
                  tool=lambda: probe, group="measure")
    assert bar.tool_keys[-1] == "probe"
    assert not tool_registry(win).get("probe").action.icon().isNull()


def test_toolbar_tool_buttons_follow_the_active_tool(qtbot, gradient_png, load):
    from workbench.gui.tool_registry import tool_registry

    win = _window(qtbot, (1366, 768))
    load(win, qtbot, gradient_png)
    registry = tool_registry(win)
    tools = win.docks["ToolsDock"].panel
    button = win.toolbar.widgetForAction(registry.get("polygon").action)
    button.click()  # the toolbar button
    assert win.canvas.tool is tools.polygon
    assert registry.get("polygon").action.isChecked()
    tools.activate_tool("brush")  # the dock's button or the shortcut B: the toolbar follows
    assert registry.get("brush").action.isChecked() and not registry.get("polygon").action.isChecked()
    win.toolbar.widgetForAction(registry.get("ruler").action).click()
    assert win.canvas.tool is win.docks["MeasurementsDock"].panel.rulers.tool
    assert win.docks["MeasurementsDock"].isVisible()  # the measurement tool opens its dock
    assert registry.get("ruler").action.isChecked() and not registry.get("brush").action.isChecked()
    tools.escape()
    assert registry.get("navigate").action.isChecked()


def test_run_model_action_runs_the_selected_model(qtbot, gradient_png, load, tmp_path, monkeypatch):
    import onnx_factory as F

    root = tmp_path / "plugins"
    F.write_plugin(root / "grey", F.classifier(1, 2, weights=np.array([[4.0, -4.0]])),
                   {"id": "grey", "name": "Grey", "task": "classification",
                    "input": {"color": "gray", "resize": "none", "intensity": {"scale": 1 / 65535}},
                    "output": {"activation": "softmax", "labels": ["bright", "dark"]}})
    monkeypatch.setenv("WORKBENCH_PLUGINS_DIR", str(root))
    win = _window(qtbot, (1366, 768))
    win.docks["ModelsDock"].panel.reload()
    assert not win.toolbar.run_model_action.isEnabled()  # nothing open
    load(win, qtbot, gradient_png)
    assert win.toolbar.run_model_action.isEnabled()
    win.toolbar.run_model_action.trigger()
    qtbot.waitUntil(lambda: len(win.document.results) == 1, timeout=60_000)


def test_reset_layout_and_the_layout_is_remembered(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CONFIG_DIR", str(tmp_path))
    win = _window(qtbot, (1366, 768), restore_layout=True, persist=True)
    models, tools = win.docks["ModelsDock"], win.docks["ToolsDock"]
    left = QtCore.Qt.DockWidgetArea.LeftDockWidgetArea
    win.addDockWidget(left, tools)  # the user drags Tools to the left and hides the toolbar
    win.toolbar.hide()
    assert win.dockWidgetArea(tools) == left
    win.close()  # saves the layout
    assert (tmp_path / "window.ini").is_file()

    again = _window(qtbot, (1366, 768), restore_layout=True, persist=True)
    assert again.dockWidgetArea(again.docks["ToolsDock"]) == left  # remembered
    assert not again.toolbar.isVisible()
    again.reset_layout_action.trigger()
    _settle(qtbot)
    right = QtCore.Qt.DockWidgetArea.RightDockWidgetArea
    assert again.dockWidgetArea(again.docks["ToolsDock"]) == right
    assert again.toolbar.isVisible()
    assert again.docks["ToolsDock"] in again.tabifiedDockWidgets(again.docks["ModelsDock"])
    assert models is not None
    again.close()


def test_toolbar_icons_are_drawn_for_every_name():
    from workbench.gui.icons import SHAPES, icon

    for name in [*SHAPES, "something-new"]:
        pixmap = icon(name).pixmap(24, 24)
        image = pixmap.toImage().convertToFormat(QtGui.QImage.Format.Format_ARGB32)
        alpha = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), -1, 4)[..., 3]
        assert alpha.max() > 0, name  # something was drawn


def test_screenshot_at_a_window_size(tmp_path, camera_png):
    import os
    import subprocess
    import sys

    import cv2

    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", WORKBENCH_CONFIG_DIR=str(tmp_path / "cfg"))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True,
                              env=env, timeout=180)

    proc = cli(str(camera_png), "--screenshot", str(out), "--window-size", "1366x768")
    assert proc.returncode == 0, proc.stderr
    assert cv2.imread(str(out)).shape[:2] == (768, 1366)
    bad = cli(str(camera_png), "--window-size", "big")
    assert bad.returncode == 2 and "WIDTHxHEIGHT" in bad.stderr and "Traceback" not in bad.stderr


def test_icons_follow_the_theme(qtbot):
    win = _window(qtbot, (1366, 768))

    def ink(action):
        image = action.icon().pixmap(24, 24).toImage().convertToFormat(QtGui.QImage.Format.Format_ARGB32)
        px = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), -1, 4)
        drawn = px[..., 3] > 200
        return float(px[..., :3][drawn].mean())

    dark = ink(win.open_action)
    win.set_theme("light")
    qtbot.wait(20)
    light = ink(win.open_action)
    assert dark > 150 and light < 100, (dark, light)  # light strokes on dark, dark strokes on light
    win.set_theme("dark")
