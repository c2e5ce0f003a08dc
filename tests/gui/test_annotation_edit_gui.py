"""Editing annotations by mouse (issue 15 item 2 follow-up): drag an ROI's inside to move it (statistics follow,
one undo step), double-click a text arrow to edit its text (one undo step), and the case report's reader name
kept in the settings file across restarts."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtTest import QTest

from workbench.core.annotations import EllipseRoi, RectRoi, TextArrow

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from io_fixtures import write_dicom_series
from test_annotation_tools_gui import LEFT, NOMOD, drag, widget_pos

from workbench.gui.qt import Qt


@pytest.fixture
def phantom(tmp_path):
    """One 60 x 64 CT slice: air (-1000 HU) with a 24 x 32 px block of 100 HU at rows 20..43, columns 16..47."""
    values = np.full((1, 60, 64), 24, np.int16)
    values[0, 20:44, 16:48] = 1124
    write_dicom_series(tmp_path / "ct", n=1, rows=60, cols=64, values=values, shuffle=False)
    return tmp_path / "ct"


@pytest.mark.parametrize("kind, cls", [("rectangle", RectRoi), ("ellipse", EllipseRoi)])
def test_dragging_an_roi_inside_moves_it_whole_and_its_statistics_follow(window, qtbot, load, phantom, kind, cls):
    load(window, qtbot, phantom)
    section = window.docks["MeasurementsDock"].panel.rulers
    canvas, store = window.canvas, section.store
    section.tool_actions[kind].trigger()
    drag(canvas, (2.0, 2.0), (12.0, 12.0))  # in the air, top left
    [roi] = store.items
    assert isinstance(roi, cls) and section.measurements[0].roi.mean == pytest.approx(-1000.0)
    steps = len(window.document.undo)
    drag(canvas, (7.0, 7.0), (27.0, 25.0))  # press inside (not on a handle), drop on the block
    [moved] = store.items
    assert moved.id == roi.id and len(window.document.undo) == steps + 1
    (x0, y0, x1, y1), (a0, b0, a1, b1) = roi.box(), moved.box()
    assert (a0 - x0, b0 - y0) == (pytest.approx(20.0, abs=0.3), pytest.approx(18.0, abs=0.3))
    assert (a1 - a0, b1 - b0) == (pytest.approx(x1 - x0), pytest.approx(y1 - y0))  # same size
    m = section.measurements[0]
    assert m.roi.mean == pytest.approx(100.0) and m.roi.min == 100.0 and m.unit == "HU"
    assert any("100.0 \u00b1 0.0" in t for t in section.layer.texts())  # the caption on the canvas too
    window.undo()
    assert store.items == [roi] and section.measurements[0].roi.mean == pytest.approx(-1000.0)
    window.redo()
    assert store.items == [moved]

    # Shift + drag inside draws a new ROI there instead of moving this one
    viewport = canvas.view.viewport()
    shift = Qt.KeyboardModifier.ShiftModifier
    start, end = widget_pos(canvas, 28.0, 26.0), widget_pos(canvas, 34.0, 31.0)
    QTest.mousePress(viewport, LEFT, shift, start)
    QTest.mouseMove(viewport, end)
    QTest.mouseRelease(viewport, LEFT, shift, end)
    assert len(store.items) == 2 and store.get(roi.id) == moved


def test_double_clicking_a_text_arrow_edits_its_text(window, qtbot, load, phantom):
    load(window, qtbot, phantom)
    section = window.docks["MeasurementsDock"].panel.rulers
    canvas, store = window.canvas, section.store
    tool = section.tools["text"]
    tool.ask = lambda _parent, _current: "cyst"
    section.tool_actions["text"].trigger()
    drag(canvas, (30.0, 30.0), (10.0, 50.0))
    [note] = store.items
    assert isinstance(note, TextArrow) and note.label == "cyst"
    steps = len(window.document.undo)
    asked = []
    tool.ask = lambda _parent, current: asked.append(current) or "  simple cyst "
    # on the text itself (it sits right of and below the arrow's tail, in screen pixels)
    text_item = section.layer.text_items[note.id]
    centre = canvas.view.mapFromScene(text_item.sceneBoundingRect().center())
    QTest.mouseDClick(canvas.view.viewport(), LEFT, NOMOD, centre)
    assert asked == ["cyst"]
    assert store.items == [TextArrow(note.id, note.z, note.p0, note.p1, "simple cyst")]
    assert len(window.document.undo) == steps + 1 and "simple cyst" in section.layer.texts()
    assert section.column("Label") == ["simple cyst"]
    # on the arrow's shaft, answered with the same text: no new step; cancelled: nothing either
    tool.ask = lambda _parent, current: current
    QTest.mouseDClick(canvas.view.viewport(), LEFT, NOMOD, widget_pos(canvas, 20.0, 40.0))
    tool.ask = lambda _parent, _current: None
    QTest.mouseDClick(canvas.view.viewport(), LEFT, NOMOD, widget_pos(canvas, 20.0, 40.0))
    assert len(window.document.undo) == steps + 1 and len(store.items) == 1
    window.undo()
    assert store.items == [note] and "cyst" in section.layer.texts()
    # a double-click on empty image adds nothing and asks nothing
    asked.clear()
    tool.ask = lambda _parent, current: asked.append(current) or "x"
    QTest.mouseDClick(canvas.view.viewport(), LEFT, NOMOD, widget_pos(canvas, 55.0, 5.0))
    assert not asked and store.items == [note]


def test_the_reader_name_is_kept_in_the_settings_file_across_restarts(window, qtbot, load, phantom, tmp_path):
    from workbench.core.settings import load_settings, settings_path
    from workbench.gui.main_window import MainWindow

    load(window, qtbot, phantom)
    window._persist = True  # the test window does not write settings unless told (WORKBENCH_CONFIG_DIR is tmp)
    actions = window.case_report
    dialog = actions.report_dialog()
    assert dialog.reader_edit.text() == ""
    dialog.reader_edit.setText("  Dr. B. Reader ")
    dialog.folder_edit.setText(str(tmp_path / "report"))
    with qtbot.waitSignal(actions.settled, timeout=60_000) as blocker:
        dialog.accept()
    assert blocker.args == [True], window.last_error
    assert load_settings(settings_path()).report_reader == "Dr. B. Reader"

    again = MainWindow(load_settings(), restore_layout=False, persist=False)  # the next start of the app
    qtbot.addWidget(again)
    load(again, qtbot, phantom)
    assert again.case_report.reader == "Dr. B. Reader"
    offered = again.case_report.report_dialog()
    assert offered.reader_edit.text() == "Dr. B. Reader"
    offered.reject()
