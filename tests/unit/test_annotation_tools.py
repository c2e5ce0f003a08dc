"""Angles, ellipse/rectangle ROIs and text arrows (issue 15 item 2): their geometry, ROI statistics against numpy,
undo steps on the document's one stack, the session round trip and the CSV/JSON export."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from workbench.core.annotations import Angle, EllipseRoi, RectRoi, Ruler, TextArrow, annotations_of
from workbench.core.document import Document
from workbench.core.errors import ExportError, ProcessingError
from workbench.core.image import ImageVolume
from workbench.export.annotations import CSV_COLUMNS, write_annotations
from workbench.processing.roi import measure_annotation, measure_annotations, roi_mask, roi_stats


def test_angle_of_a_known_triangle_in_pixels_and_in_mm():
    # the 3-4-5 triangle: the angle at (0, 0) between (4, 0) and (0, 3) is 90 deg, at (4, 0) atan(3/4)
    right = Angle(1, 0, (4.0, 0.0), (0.0, 0.0), (0.0, 3.0))
    assert right.degrees() == pytest.approx(90.0)
    acute = Angle(2, 0, (0.0, 0.0), (4.0, 0.0), (0.0, 3.0))
    assert acute.degrees() == pytest.approx(math.degrees(math.atan2(3, 4)))
    # anisotropic pixels: 45 deg in pixels is atan(dy/dx) in mm
    diag = Angle(3, 0, (10.0, 0.0), (0.0, 0.0), (10.0, 10.0))
    assert diag.degrees() == pytest.approx(45.0)
    assert diag.degrees((1.0, 2.0, 1.0)) == pytest.approx(math.degrees(math.atan2(2.0, 1.0)))
    straight = Angle(4, 0, (0.0, 0.0), (5.0, 5.0), (10.0, 10.0))
    assert straight.degrees() == pytest.approx(180.0)
    assert Angle(5, 0, (1.0, 1.0), (1.0, 1.0), (3.0, 3.0)).degrees() is None  # an arm of no length


def test_roi_mask_takes_the_pixels_whose_centre_is_inside():
    crop, mask = roi_mask((10, 10), kind="rectangle", box=(2.0, 3.0, 5.0, 4.0))
    assert crop == (slice(3, 4), slice(2, 5)) and mask.all()
    crop, mask = roi_mask((10, 10), kind="ellipse", box=(0.0, 0.0, 10.0, 10.0))
    yy, xx = np.mgrid[0:10, 0:10] + 0.5
    assert crop == (slice(0, 10), slice(0, 10))
    np.testing.assert_array_equal(mask, (xx - 5) ** 2 + (yy - 5) ** 2 <= 25)
    crop, mask = roi_mask((10, 10), kind="rectangle", box=(20.0, 20.0, 30.0, 30.0))
    assert mask.size == 0  # outside the plane: nothing, no error
    with pytest.raises(ProcessingError, match="ROI kind"):
        roi_mask((4, 4), kind="polygon", box=(0, 0, 1, 1))


@pytest.mark.parametrize("kind", ["ellipse", "rectangle"])
def test_roi_stats_agree_with_numpy(kind):
    rng = np.random.default_rng(3)
    plane = rng.normal(40.0, 12.0, (64, 80)).astype(np.float32)
    plane[30, 30] = np.nan  # inside both ROIs: counted in pixels, not in the statistics
    box = (12.3, 8.7, 51.9, 47.2)
    stats = roi_stats(plane, kind=kind, box=box, spacing=(0.5, 0.8))
    yy, xx = np.mgrid[0:64, 0:80] + 0.5
    x0, y0, x1, y1 = box
    if kind == "rectangle":
        inside = (xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1)
        area = (x1 - x0) * (y1 - y0)
    else:
        a, b = (x1 - x0) / 2, (y1 - y0) / 2
        inside = ((xx - x0 - a) / a) ** 2 + ((yy - y0 - b) / b) ** 2 <= 1
        area = math.pi * a * b
    values = plane[inside].astype(np.float64)
    assert stats.pixels == int(inside.sum())
    assert stats.area_px == pytest.approx(area) and stats.area_mm2 == pytest.approx(area * 0.4)
    assert stats.mean == pytest.approx(np.nanmean(values))
    assert stats.std == pytest.approx(np.nanstd(values))
    assert (stats.min, stats.max) == (pytest.approx(np.nanmin(values)), pytest.approx(np.nanmax(values)))
    assert roi_stats(plane, kind=kind, box=box).area_mm2 is None  # unknown spacing


def test_roi_stats_degenerate_inputs():
    nan = np.full((8, 8), np.nan)
    stats = roi_stats(nan, kind="rectangle", box=(0, 0, 8, 8))
    assert stats.pixels == 64 and stats.mean is None and stats.std is None
    const = roi_stats(np.full((8, 8), 7, np.uint16), kind="ellipse", box=(0, 0, 8, 8))
    assert (const.mean, const.std, const.min, const.max) == (7.0, 0.0, 7.0, 7.0)
    one = roi_stats(np.arange(16, dtype=np.int16).reshape(4, 4), kind="rectangle", box=(1.0, 2.0, 2.0, 3.0))
    assert one.pixels == 1 and one.mean == 9.0
    with pytest.raises(ProcessingError, match="plane"):
        roi_stats(np.zeros((2, 4, 4)), kind="rectangle", box=(0, 0, 1, 1))


def _ct(values: np.ndarray, spacing=(1.0, 0.5, 0.5)) -> ImageVolume:
    return ImageVolume(values, spacing=spacing, spacing_known=True, modality="CT")


def test_measure_annotation_of_each_kind_on_a_ct_phantom():
    data = np.full((2, 40, 40), -1000, np.int16)
    data[1, 10:30, 10:30] = 50  # a 20 x 20 px (10 x 10 mm) square of 50 HU on slice 2
    image = _ct(data)
    assert image.is_ct
    ruler, angle, rect, ellipse, note = measure_annotations([
        Ruler(1, 1, (10.0, 20.0), (30.0, 20.0)),
        Angle(2, 1, (30.0, 10.0), (10.0, 10.0), (10.0, 30.0)),
        RectRoi(3, 1, (12.0, 12.0), (28.0, 28.0)),
        EllipseRoi(4, 1, (8.0, 8.0), (32.0, 32.0)),
        TextArrow(5, 1, (10.0, 10.0), (2.0, 2.0), label="cyst?"),
    ], image)
    assert (ruler.value, ruler.unit, ruler.text) == (pytest.approx(10.0), "mm", "10.0 mm")
    assert (angle.value, angle.unit) == (pytest.approx(90.0), "\u00b0")
    assert rect.unit == "HU" and rect.value == pytest.approx(50.0) and rect.roi.std == 0.0
    assert rect.roi.area_mm2 == pytest.approx(16 * 16 * 0.25)
    assert ellipse.roi.min == -1000 and ellipse.roi.max == 50
    assert "mean" in rect.text and "HU" in rect.text
    assert note.value is None and note.text == "cyst?" and note.label == "cyst?"
    raw = measure_annotation(RectRoi(1, 0, (0, 0), (4, 4)), ImageVolume(np.ones((1, 8, 8), np.uint8)))
    assert raw.unit == "raw" and raw.roi.area_mm2 is None and "px\u00b2" in raw.text


def test_every_kind_is_one_undo_step_on_the_label_maps_stack():
    doc = Document(ImageVolume(np.zeros((2, 30, 30), np.uint8)))
    store = annotations_of(doc)
    assert store.undo is doc.undo
    with doc.labels.edit("Brush") as e:
        e.paint((slice(0, 1), slice(0, 2), slice(0, 2)), np.ones((1, 2, 2), bool), 1)
    angle = store.add_annotation(Angle(0, 1, (1, 1), (5, 5), (9, 1)))
    roi = store.add_annotation(EllipseRoi(0, 0, (2, 2), (10, 8)))
    note = store.add_annotation(TextArrow(0, 0, (3, 3), (12, 12), label="here"))
    assert [a.id for a in store.items] == [1, 2, 3] and len(doc.undo) == 4
    moved = store.update(roi.with_handle(2, (0.0, 20.0)))  # the (p0.x, p1.y) corner
    assert moved.box() == (0.0, 2.0, 10.0, 20.0)
    store.set_label(note.id, "=cmd|calc")
    store.move(angle.id, p2=(9.0, 9.0))
    assert store.get(angle.id).p2 == (9.0, 9.0)
    store.remove(angle.id)
    assert store.get(angle.id) is None
    for _ in range(3):
        doc.undo.undo()
    assert store.get(roi.id) == moved and store.get(note.id).label == "here" and store.get(angle.id) == angle
    doc.undo.undo()
    assert store.get(roi.id) == roi
    doc.undo.undo()
    doc.undo.undo()
    doc.undo.undo()
    assert store.items == [] and doc.labels.data.any()  # the brush stroke is the next step down
    doc.undo.undo()
    assert not doc.labels.data.any()


def test_all_kinds_round_trip_through_the_session(tmp_path):
    from workbench.io import read_image, write_tiff
    from workbench.session import load_session, save_session

    path = write_tiff(tmp_path / "img.tif", np.zeros((2, 16, 16), np.uint16))
    doc = Document(read_image(path))
    store = annotations_of(doc)
    store.add(1, (2.5, 3.0), (10.0, 12.25))
    for item in (Angle(0, 0, (1, 1), (5, 5), (9, 1), label="knee"), EllipseRoi(0, 1, (2, 2), (10, 8)),
                 RectRoi(0, 0, (1, 1), (4, 6)), TextArrow(0, 1, (3, 3), (12, 12), label="n\u00f6te")):
        store.add_annotation(item)
    save_session(doc, tmp_path / "a.wbsession")
    back, _ = load_session(tmp_path / "a.wbsession")
    assert back.annotations.items == store.items
    assert [type(a) for a in back.annotations.items] == [Ruler, Angle, EllipseRoi, RectRoi, TextArrow]


def test_csv_and_json_exports_hold_every_measurement_and_escape_formulas(tmp_path):
    data = np.zeros((1, 20, 20), np.int16)
    data[0, 5:15, 5:15] = 100
    image = _ct(data, spacing=(1.0, 1.0, 1.0))
    items = [Ruler(1, 0, (5.0, 5.0), (15.0, 5.0)), RectRoi(2, 0, (5.0, 5.0), (15.0, 15.0), label="=SUM(A1)"),
             TextArrow(3, 0, (1.0, 1.0), (8.0, 8.0), label="@note")]
    out = write_annotations(items, image, tmp_path / "m.csv")
    with out.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == CSV_COLUMNS
    assert rows[1][1:5] == ["ruler", "1", "10", "mm"]
    rect = dict(zip(CSV_COLUMNS, rows[2]))
    assert (rect["type"], rect["mean"], rect["std"], rect["area_mm2"], rect["pixels"], rect["unit"]) == \
        ("rectangle", "100", "0", "100", "100", "HU")
    assert rect["label"] == "'=SUM(A1)" and rows[3][12] == "'@note"
    assert rect["points"] == "5.00 5.00 15.00 15.00"
    doc = json.loads(write_annotations(items, image, tmp_path / "m.json").read_text(encoding="utf-8"))
    assert doc["intensity_unit"] == "HU" and doc["spacing_mm"] == [1.0, 1.0, 1.0]
    assert [a["type"] for a in doc["annotations"]] == ["ruler", "rectangle", "text"]
    assert doc["annotations"][1]["roi"]["mean"] == 100.0 and doc["annotations"][1]["label"] == "=SUM(A1)"
    with pytest.raises(ExportError, match="use .csv or .json"):
        write_annotations(items, image, tmp_path / "m.xlsx")
