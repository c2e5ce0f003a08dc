"""Angle, ellipse/rectangle ROI and text arrow (issue 15 item 2) drawn by mouse on a DICOM CT phantom: the known
mean in HU, the known angle, handle edits, one undo stack with the labels, the table and the session."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtTest import QTest

from workbench.core.annotations import Angle, EllipseRoi, RectRoi, TextArrow
from workbench.gui.qt import Qt, QtCore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from io_fixtures import write_dicom_series

LEFT = Qt.MouseButton.LeftButton
NOMOD = Qt.KeyboardModifier.NoModifier


def widget_pos(canvas, x: float, y: float) -> QtCore.QPoint:
    return canvas.view.mapFromScene(canvas.view.vb.mapViewToScene(QtCore.QPointF(x, y)))


def drag(canvas, start, end) -> None:
    viewport = canvas.view.viewport()
    QTest.mousePress(viewport, LEFT, NOMOD, widget_pos(canvas, *start))
    for t in (0.25, 0.5, 0.75, 1.0):
        QTest.mouseMove(viewport, widget_pos(canvas, start[0] + t * (end[0] - start[0]),
                                             start[1] + t * (end[1] - start[1])))
    QTest.mouseRelease(viewport, LEFT, NOMOD, widget_pos(canvas, *end))


def click(canvas, point) -> None:
    viewport = canvas.view.viewport()
    QTest.mouseMove(viewport, widget_pos(canvas, *point))
    QTest.mousePress(viewport, LEFT, NOMOD, widget_pos(canvas, *point))
    QTest.mouseRelease(viewport, LEFT, NOMOD, widget_pos(canvas, *point))


@pytest.fixture
def ct_phantom(tmp_path):
    """Two 60 x 64 CT slices of 0.7 mm (y) x 0.8 mm (x) pixels: air (-1000 HU) with a 24 x 32 px block of
    100 HU on the second slice (stored values 24 and 1124, rescale intercept -1024)."""
    values = np.full((2, 60, 64), 24, np.int16)
    values[1, 20:44, 16:48] = 1124
    write_dicom_series(tmp_path / "ct", n=2, rows=60, cols=64, values=values, shuffle=False)
    return tmp_path / "ct"


def _block(image):
    z = int(np.argmax((image.data > 0).reshape(image.n_slices, -1).any(axis=1)))
    inside = image.data[z] > 0
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    return z, float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


def test_roi_angle_and_text_drawn_by_mouse_measure_the_phantom(window, qtbot, load, ct_phantom, tmp_path):
    load(window, qtbot, ct_phantom)
    image = window.document.image
    assert image.is_ct and image.spacing[1:] == pytest.approx((0.7, 0.8))
    z, x0, y0, x1, y1 = _block(image)
    window.view_state.set_slice(z)
    section = window.docks["MeasurementsDock"].panel.rulers
    canvas, store = window.canvas, section.store

    # a rectangle on the block's outer edges: exactly its 24 x 32 pixels of 100 HU
    section.tool_actions["rectangle"].trigger()
    assert canvas.tool is section.tools["rectangle"]
    drag(canvas, (x0, y0), (x1, y1))
    rect = store.items[-1]
    assert isinstance(rect, RectRoi) and rect.z == z
    m = section.measurements[-1]
    assert m.unit == "HU" and m.roi.pixels == 24 * 32
    assert (m.roi.mean, m.roi.std, m.roi.min, m.roi.max) == (pytest.approx(100.0), pytest.approx(0.0), 100.0, 100.0)
    assert m.roi.area_mm2 == pytest.approx(32 * 0.8 * 24 * 0.7, rel=0.03)

    # an ellipse around the block (a press on a handle would edit it): mean, SD, min, max as numpy says
    section.tool_actions["ellipse"].trigger()
    assert section.tool_actions["rectangle"].isChecked() is False
    drag(canvas, (x0 - 6, y0 - 5), (x1 + 9, y1 + 6))
    ellipse = store.items[-1]
    assert isinstance(ellipse, EllipseRoi)
    ex0, ey0, ex1, ey1 = ellipse.box()
    yy, xx = np.mgrid[0:image.height, 0:image.width] + 0.5
    a, b = (ex1 - ex0) / 2, (ey1 - ey0) / 2
    inside = ((xx - ex0 - a) / a) ** 2 + ((yy - ey0 - b) / b) ** 2 <= 1
    hu = image.data[z].astype(np.float64)
    em = section.measurements[-1]
    assert em.roi.pixels == int(inside.sum()) and em.roi.mean == pytest.approx(hu[inside].mean())
    assert em.roi.std == pytest.approx(hu[inside].std()) and em.roi.min == -1000.0 and em.roi.max == 100.0

    # the angle of a known right triangle: the block's corners (anisotropic pixels, measured in mm)
    section.tool_actions["angle"].trigger()
    drag(canvas, (x1, y0), (x0, y0))  # first arm: from the top-right corner to the vertex (top-left)
    assert len(store.items) == 2  # not added before the second arm
    click(canvas, (x1, y1))  # second arm to the bottom-right corner
    angle = store.items[-1]
    assert isinstance(angle, Angle)
    expected = math.degrees(math.atan2((y1 - y0) * 0.7, (x1 - x0) * 0.8))
    assert section.measurements[-1].value == pytest.approx(expected, abs=1.0)
    assert section.measurements[-1].unit == "\u00b0"

    # a text arrow: drag from the tip to the text, then type it (the dialog answered by the test)
    section.tools["text"].ask = lambda _parent, _current: "  calcification? "
    section.tool_actions["text"].trigger()
    drag(canvas, (x0 + 4, y0 + 4), (x0 - 10, y0 - 12))
    note = store.items[-1]
    assert isinstance(note, TextArrow) and note.label == "calcification?"
    assert section.column("Type") == ["Rectangle ROI 1", "Ellipse ROI 2", "Angle 3", "Text arrow 4"]
    assert section.column("Slice") == [str(z + 1)] * 4
    assert section.column("Unit") == ["HU", "HU", "\u00b0", ""]
    assert section.column("Label")[3] == "calcification?"
    assert section.column("Value")[0].startswith("100.0 \u00b1 0.0 [100.0, 100.0]")
    assert "calcification?" in section.layer.texts()
    assert section.texts()[0].replace("; ", "\n", 1) in section.layer.texts()
    canvas.grab().save(str(tmp_path / "tools.png"))

    # drag the rectangle's bottom-right handle inwards: 8 px narrower, one undo step on the labels' stack
    with window.document.labels.edit("Brush") as e:  # a label edit first: both on one stack
        e.paint((slice(z, z + 1), slice(0, 2), slice(0, 2)), np.ones((1, 2, 2), bool), 1)
    section.tool_actions["rectangle"].trigger()
    drag(canvas, (x1, y1), (x1 - 8, y1))
    edited = store.get(rect.id)
    assert edited.box()[2] == pytest.approx(x1 - 8, abs=0.3) and edited.box()[:2] == rect.box()[:2]
    assert section.measurements[0].roi.pixels == 24 * 24
    window.undo()
    assert store.get(rect.id) == rect and section.measurements[0].roi.pixels == 24 * 32
    window.undo()  # the brush stroke
    assert not window.document.labels.data.any() and len(store.items) == 4
    window.redo()
    window.redo()
    assert store.get(rect.id) == edited

    # the label text, then the session round trip keeps every kind with its label
    section.select(angle.id)
    assert window.view_state.slice_index == z
    store.set_label(angle.id, "hip")
    assert section.column("Label")[2] == "hip"
    from workbench.session import load_session, save_session

    save_session(window.document, tmp_path / "s.wbsession")
    doc, _view = load_session(tmp_path / "s.wbsession")
    assert doc.annotations.items == store.items

    section.delete_selected()
    assert store.get(angle.id) is None
    window.undo()
    assert store.get(angle.id).label == "hip"


def test_a_click_or_a_cancelled_text_adds_nothing(window, qtbot, load, ct_phantom):
    load(window, qtbot, ct_phantom)
    section = window.docks["MeasurementsDock"].panel.rulers
    canvas, store = window.canvas, section.store
    section.tool_actions["ellipse"].trigger()
    click(canvas, (20.0, 20.0))
    section.tools["text"].ask = lambda _parent, _current: None
    section.tool_actions["text"].trigger()
    drag(canvas, (20.0, 20.0), (40.0, 30.0))
    section.tool_actions["angle"].trigger()
    drag(canvas, (10.0, 10.0), (30.0, 10.0))
    section.tool_actions["ruler"].trigger()  # another tool abandons the half-drawn angle
    assert store.items == [] and not window.document.undo.can_undo
    section.tool_actions["ruler"].trigger()
    assert canvas.tool is not section.tools["ruler"]
    section.tool_actions["ellipse"].trigger()
    window.docks["ToolsDock"].panel.activate_tool("brush")  # another dock's tool: the button follows
    assert not section.tool_actions["ellipse"].isChecked() and canvas.tool is not section.tools["ellipse"]
