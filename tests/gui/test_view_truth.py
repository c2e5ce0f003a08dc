"""The view shows what is (issue 11, item 7): the brush circle and the polygon/lasso outline sit under the
cursor at every zoom and pan -- compared in scene coordinates, not by the item's own rectangle."""
from __future__ import annotations

import pytest
from PySide6.QtTest import QTest

from workbench.gui.qt import Qt, QtCore


def widget_pos(canvas, x: float, y: float) -> QtCore.QPoint:
    scene = canvas.view.vb.mapViewToScene(QtCore.QPointF(x, y))
    return canvas.view.mapFromScene(scene)


def cursor_scene(canvas, x: float, y: float) -> QtCore.QPointF:
    return canvas.view.vb.mapViewToScene(QtCore.QPointF(x, y))


@pytest.fixture
def tools(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    window.canvas.zoom_to_fit()
    qtbot.wait(20)
    panel = window.docks["ToolsDock"].panel
    panel.raise_dock()
    return panel


def _zooms_and_pans(canvas):
    vb = canvas.view.vb
    yield "fit"
    vb.scaleBy((0.5, 0.5))  # zoom in 2x
    yield "zoom 2x"
    vb.translateBy(x=7.0, y=-5.0)
    yield "pan"
    vb.scaleBy((3.0, 3.0))
    yield "zoom out"


def test_brush_circle_is_under_the_cursor_at_every_zoom_and_pan(window, qtbot, tools):
    canvas = window.canvas
    tools.activate_tool("brush")
    tools.size_spin.setValue(6.0)
    for state in _zooms_and_pans(canvas):
        qtbot.wait(10)
        for x, y in ((40.0, 30.0), (90.0, 70.0)):
            # the hover position in image coordinates (what the canvas hands the tool on a mouse move;
            # synthetic hover events are not delivered reliably to an unfocused offscreen window)
            tools.brush.update_cursor(x, y)
            circle = tools.brush.cursor_circle
            assert circle is not None and circle.isVisible()
            centre = circle.mapToScene(circle.rect().center())
            want = cursor_scene(canvas, x, y)
            assert abs(centre.x() - want.x()) <= 2.0 and abs(centre.y() - want.y()) <= 2.0, (state, centre, want)
            # the radius on screen is the radius in image pixels times the zoom
            edge = circle.mapToScene(QtCore.QPointF(circle.rect().right(), circle.rect().center().y()))
            want_edge = cursor_scene(canvas, circle.rect().right(), circle.rect().center().y())
            assert abs(edge.x() - want_edge.x()) <= 1.0, state


def test_polygon_outline_is_under_the_clicks_at_every_zoom_and_pan(window, qtbot, tools):
    canvas = window.canvas
    tools.activate_tool("polygon")
    for state in _zooms_and_pans(canvas):
        qtbot.wait(10)
        tools.polygon.cancel()
        points = [(60.0, 50.0), (100.0, 50.0), (100.0, 80.0)]
        for x, y in points:
            QTest.mouseClick(canvas.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                             widget_pos(canvas, x, y))
            qtbot.wait(int(QtCore.QCoreApplication.instance().doubleClickInterval() * 1.2)
                       if hasattr(QtCore.QCoreApplication.instance(), "doubleClickInterval") else 450)
        item = tools.polygon._path_item
        assert item is not None
        path = item.path()
        for k, (x, y) in enumerate(points):
            got = item.mapToScene(path.elementAt(k).x, path.elementAt(k).y)
            want = cursor_scene(canvas, x, y)
            assert abs(got.x() - want.x()) <= 2.0 and abs(got.y() - want.y()) <= 2.0, (state, k, got, want)
        tools.polygon.cancel()


def _results(window):
    import numpy as np

    from workbench.core.image import ImageVolume
    from workbench.inference.results import Detection, DetectionResult, RestorationResult, RunInfo

    image = window.document.image
    info = lambda task, pid: RunInfo(pid, pid, "1", "ab" * 32, "CPUExecutionProvider", task)  # noqa: E731
    noisy = ImageVolume(np.asarray(image.data, np.float32) + 50.0)
    restored = RestorationResult(info=info("restoration", "den"), image=noisy)
    boxes = DetectionResult(info=info("detection", "det"),
                            detections=[Detection(index=0, label="x", score=0.9, box=(10, 10, 40, 40))])
    return restored, boxes


def test_no_boxes_over_a_difference_map_and_another_result_resets_the_compare(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    restored, boxes = _results(window)
    window.document.add_result(restored)
    state = window.view_state
    assert state.restoration is restored and state.compare_mode == "swipe"
    window.document.add_result(boxes)  # a new result is shown: the compare view goes away
    assert state.compare_mode == "off"
    state.set_compare("difference", restoration=restored)
    assert not window.canvas.detection_overlay.isVisible()  # boxes belong to the image, not the noise map
    state.set_compare("off")
    assert window.canvas.detection_overlay.isVisible()


def test_reopened_session_does_not_rerun_run_on_drop_models(tmp_path, qtbot, monkeypatch, gradient_png, load):
    import numpy as np
    import onnx_factory as F

    from workbench.gui.main_window import MainWindow
    from workbench.session import save_session

    root = tmp_path / "plugins"
    F.write_plugin(root / "grey", F.classifier(1, 2, weights=np.array([[4.0, -4.0]])),
                   {"id": "grey", "name": "Grey", "task": "classification",
                    "input": {"color": "gray", "resize": "none", "intensity": {"scale": 1 / 65535}},
                    "output": {"activation": "softmax", "labels": ["bright", "dark"]}})
    monkeypatch.setenv("WORKBENCH_PLUGINS_DIR", str(root))
    window = MainWindow(restore_layout=False, persist=False)
    qtbot.addWidget(window)
    window.show()
    measurements = window.docks.get("MeasurementsDock")
    if measurements is not None:
        measurements.close()
    panel = window.docks["ModelsDock"].panel
    panel.reload()
    window.settings.run_on_drop = ["grey"]
    load(window, qtbot, gradient_png)
    qtbot.waitUntil(lambda: len(window.document.results) == 1, timeout=60_000)
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=60_000)
    session = save_session(window.document, tmp_path / "s.wbsession")
    window.session._mark_saved()
    with qtbot.waitSignal(window.load_settled, timeout=30_000):
        window.session.open_session(session)
    qtbot.wait(300)
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=60_000)
    assert len(window.document.results) == 1  # the saved result, not a second run


def test_threshold_by_default_never_erases_a_hand_drawn_label(window, qtbot, tools):
    import numpy as np

    labels = window.document.labels
    with labels.edit("Brush") as e:  # a manual label 5 across the bright square
        e.assign((slice(0, 1), slice(25, 35), slice(25, 45)), np.uint16(5))
    assert tools.overwrite_combo.currentData() == "background"
    tools.tabs.setCurrentIndex(1)  # Threshold
    tools.set_threshold_range(59000, 61000)  # the square 20:40, 30:50
    tools.th_apply.click()
    data = labels.data[0]
    assert (data[25:35, 25:45] == 5).all()  # the hand-drawn label survives
    assert (data[20:25, 30:50] == tools.options.label).all()  # the rest of the square is labelled
