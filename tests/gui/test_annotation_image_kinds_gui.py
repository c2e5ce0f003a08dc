"""Annotations on a 2-D RGB image and on a 16-bit image (issue 15 item 2 follow-up): drawn by mouse, shown on
the canvas, ROI statistics in the image's raw values (luma for colour) with the Unit column saying so, kept
through undo/redo and the session."""
from __future__ import annotations

import numpy as np
import pytest
from test_annotation_tools_gui import drag

from workbench.core.annotations import RectRoi, Ruler
from workbench.gui.qt import QtGui
from workbench.io import write_png, write_tiff


def _yellow(window) -> np.ndarray:
    """The canvas grabbed as an (h, w, 3) array, True where the annotation colour is."""
    img = window.canvas.view.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
    rgb = arr[:, :img.width() * 3].reshape(img.height(), img.width(), 3)
    return (rgb[..., 0] > 200) & (rgb[..., 1] > 180) & (rgb[..., 2] < 80)


def _check(window, qtbot, load, path, tmp_path, *, unit, inside, outside):
    load(window, qtbot, path)
    image = window.document.image
    section = window.docks["MeasurementsDock"].panel.rulers
    canvas, store = window.canvas, section.store
    before = int(_yellow(window).sum())
    section.tool_actions["rectangle"].trigger()
    drag(canvas, (16.0, 20.0), (48.0, 44.0))  # exactly the block
    section.tool_actions["ruler"].trigger()
    drag(canvas, (4.0, 50.0), (44.0, 50.0))
    rect, ruler = store.items
    assert isinstance(rect, RectRoi) and isinstance(ruler, Ruler) and rect.z == ruler.z == 0
    m = section.measurements[0]
    assert m.unit == unit and section.column("Unit") == [unit, "px"]
    assert m.roi.pixels == 24 * 32 and m.roi.mean == pytest.approx(inside, rel=1e-5)
    assert (m.roi.min, m.roi.max) == (pytest.approx(inside, rel=1e-5), pytest.approx(inside, rel=1e-5))
    assert section.measurements[1].value == pytest.approx(40.0, abs=0.3)  # mouse positions: screen pixels
    assert any(f"{unit} [" in t for t in section.layer.texts())
    qtbot.waitUntil(lambda: int(_yellow(window).sum()) > before + 50, timeout=5000)  # drawn on the canvas
    canvas.grab().save(str(tmp_path / f"annotations_{path.stem}.png"))
    # moved onto the background by its inside: the raw background value
    section.tool_actions["rectangle"].trigger()
    drag(canvas, (30.0, 30.0), (30.0 - 14.0, 30.0 - 18.0))
    # the box (2, 2)-(34, 26) overlaps the block (columns 16..47, rows 20..43) in 18 x 6 pixels
    assert section.measurements[0].roi.mean == pytest.approx((inside * 108 + outside * 660) / 768, rel=1e-5)
    window.undo()
    assert store.items[0] == rect
    # the session keeps them and they are drawn again on the re-opened image
    from workbench.session import load_session, save_session

    save_session(window.document, tmp_path / "s.wbsession")
    doc, _view = load_session(tmp_path / "s.wbsession")
    assert doc.annotations.items == store.items
    assert doc.image.data.dtype == image.data.dtype and doc.image.is_color == image.is_color
    return image


def test_annotations_on_a_2d_rgb_image(window, qtbot, load, tmp_path):
    rgb = np.zeros((60, 64, 3), np.uint8)
    rgb[...] = (10, 20, 30)
    rgb[20:44, 16:48] = (200, 100, 50)
    path = write_png(tmp_path / "photo.png", rgb)
    luma = lambda c: 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]  # noqa: E731 (Rec. 601, as to_scalar)
    image = _check(window, qtbot, load, path, tmp_path, unit="raw luma", inside=luma((200, 100, 50)),
                   outside=luma((10, 20, 30)))
    assert image.is_color and image.n_slices == 1


def test_annotations_on_a_16_bit_image(window, qtbot, load, tmp_path):
    grey = np.full((60, 64), 1000, np.uint16)
    grey[20:44, 16:48] = 40000  # beyond int16 and beyond 8-bit display: the raw stored value is measured
    path = write_tiff(tmp_path / "sixteen.tif", grey)
    image = _check(window, qtbot, load, path, tmp_path, unit="raw", inside=40000.0, outside=1000.0)
    assert image.data.dtype == np.uint16 and not image.is_ct
