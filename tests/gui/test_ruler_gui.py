"""The ruler (issue 15 item 2): drawn by mouse on a phantom of known size, edited by its handle, undoable,
listed in the Measurements dock and saved in the session."""
from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest
from PySide6.QtTest import QTest

from workbench.gui.qt import Qt, QtCore

LEFT = Qt.MouseButton.LeftButton
NOMOD = Qt.KeyboardModifier.NoModifier


def widget_pos(canvas, x: float, y: float) -> QtCore.QPoint:
    scene = canvas.view.vb.mapViewToScene(QtCore.QPointF(x, y))
    return canvas.view.mapFromScene(scene)


def drag(canvas, start, end) -> None:
    viewport = canvas.view.viewport()
    QTest.mousePress(viewport, LEFT, NOMOD, widget_pos(canvas, *start))
    for t in (0.25, 0.5, 0.75, 1.0):
        QTest.mouseMove(viewport, widget_pos(canvas, start[0] + t * (end[0] - start[0]),
                                             start[1] + t * (end[1] - start[1])))
    QTest.mouseRelease(viewport, LEFT, NOMOD, widget_pos(canvas, *end))


@pytest.fixture
def phantom(tmp_path):
    """A 100 x 80 px slice of 0.8 mm (x) by 0.5 mm (y) pixels holding a 40 x 40 px square: 32 mm x 20 mm."""
    data = np.zeros((100, 80, 1), np.int16)
    data[30:70, 20:60, 0] = 1000
    path = tmp_path / "phantom.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([0.8, 0.5, 1.0, 1.0])), str(path))
    return path


def test_ruler_drawn_by_mouse_measures_the_phantom_and_edits_undo_and_save(window, qtbot, load, phantom,
                                                                              tmp_path):
    load(window, qtbot, phantom)
    image = window.document.image
    assert image.spacing[1:] == pytest.approx((0.5, 0.8))
    square = image.data[0] > 500
    cols, rows = np.flatnonzero(square.any(axis=0)), np.flatnonzero(square.any(axis=1))
    left, right, top = float(cols[0]), float(cols[-1] + 1), float(rows[0])  # the square's outer edges
    y = (rows[0] + rows[-1] + 1) / 2
    section = window.docks["MeasurementsDock"].panel.rulers
    canvas = window.canvas
    section.ruler_button.click()
    assert canvas.tool is section.tool
    drag(canvas, (left, y), (right, y))
    store = section.store
    assert len(store.rulers) == 1
    ruler = store.rulers[0]
    assert ruler.length_mm(image.spacing) == pytest.approx(32.0, abs=0.3)  # 40 px x 0.8 mm
    assert section.lengths() == [f"{ruler.length_mm(image.spacing):.1f} mm"]
    assert section.layer.texts() == section.lengths()
    canvas.grab().save(str(tmp_path / "ruler.png"))

    # drag the right-hand handle to the square's top edge: dx 32 mm, dy ~ (y - top) * 0.5 mm
    drag(canvas, ruler.p1, (right, top))
    moved = store.rulers[0]
    assert moved.id == ruler.id and moved.p0 == ruler.p0
    assert moved.length_mm(image.spacing) == pytest.approx(math.hypot(32.0, (y - top) * 0.5), abs=0.3)
    window.undo()
    assert store.rulers[0] == ruler and section.lengths()[0].startswith(f"{ruler.length_mm(image.spacing):.1f}")

    # saved in the session, restored on open
    from workbench.session import load_session, save_session

    save_session(window.document, tmp_path / "s.wbsession")
    doc, _view = load_session(tmp_path / "s.wbsession")
    assert doc.annotations.rulers == [ruler]

    window.undo()
    assert store.rulers == [] and section.lengths() == [] and section.layer.texts() == []
    section.ruler_button.click()
    assert canvas.tool is not section.tool


def test_tool_previews_are_drawn_in_image_coordinates(window, qtbot, load, phantom):
    """canvas.add_preview_item: a preview line at image (10, 10) is shown where image pixel (10, 10) is."""
    from workbench.gui.qt import QtWidgets

    load(window, qtbot, phantom)
    canvas = window.canvas
    line = QtWidgets.QGraphicsLineItem(10, 10, 90, 10)
    canvas.add_preview_item(line)
    start = canvas.view.vb.mapViewToScene(QtCore.QPointF(10, 10))
    assert line.mapToScene(QtCore.QPointF(10, 10)) == start
    canvas.clear_preview()
    assert line.scene() is None
