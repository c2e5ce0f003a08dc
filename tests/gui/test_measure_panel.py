"""The Measurements dock shows what workbench.processing.measure computes, refreshes and exports."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from workbench.core.image import ImageVolume
from workbench.processing import measure_labels, roi_histogram


@pytest.fixture
def measure(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    dock = window.docks["MeasurementsDock"]
    dock.show()
    dock.raise_()
    return dock.panel


def _settle(qtbot, panel):
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=20_000)


def _paint(labels):
    with labels.edit("setup") as e:
        e.assign((slice(0, 1), slice(20, 40), slice(30, 50)), np.uint16(1))
        e.assign((slice(0, 1), slice(60, 70), slice(0, 90)), np.uint16(2))
    labels.set_label(2, name="ramp band")


def test_table_matches_the_core_measurements(window, qtbot, measure):
    labels = window.document.labels
    _paint(labels)
    _settle(qtbot, measure)
    image = window.document.image
    expected = measure_labels(labels.data, image.data, spacing=None, names={1: "label 1", 2: "ramp band"})
    assert [s.as_dict() for s in measure.stats] == [s.as_dict() for s in expected]
    assert measure.table.rowCount() == 2
    assert measure.cell_text(1, "pixels") == "400"
    assert measure.cell_text(2, "name") == "ramp band"
    assert measure.cell_text(2, "mean") == f"{expected[1].mean:.4g}"
    assert measure.cell_text(1, "perimeter_px") == f"{expected[0].perimeter_px:.4g}"
    assert measure.cell_text(1, "area_mm2") is None  # spacing unknown: no physical column


def test_table_follows_edits_and_undo(window, qtbot, measure):
    labels = window.document.labels
    _paint(labels)
    _settle(qtbot, measure)
    with labels.edit("more") as e:
        e.assign((slice(0, 1), slice(0, 5), slice(0, 5)), np.uint16(1))
    _settle(qtbot, measure)
    assert measure.cell_text(1, "pixels") == "425"
    window.undo_action.trigger()
    _settle(qtbot, measure)
    assert measure.cell_text(1, "pixels") == "400"


def test_physical_units_and_hu_for_ct(window, qtbot):
    data = np.full((3, 32, 32), -1000, np.int16)
    data[:, 8:24, 8:24] = 40
    volume = ImageVolume(data, spacing=(2.0, 0.5, 0.5), modality="CT", spacing_known=True)
    window.document.set_image(volume)
    dock = window.docks["MeasurementsDock"]
    dock.show()
    dock.raise_()
    panel = dock.panel
    labels = window.document.labels
    with labels.edit("organ") as e:
        e.assign((slice(0, 3), slice(8, 24), slice(8, 24)), np.uint16(3))
    _settle(qtbot, panel)
    headers = [panel.table.horizontalHeaderItem(i).text() for i in range(panel.table.columnCount())]
    assert "Volume mm³" in headers and "Mean (HU)" in headers
    assert float(panel.cell_text(3, "volume_mm3")) == pytest.approx(3 * 16 * 16 * 2.0 * 0.25)
    assert panel.cell_text(3, "mean") == "40"


def test_csv_export_and_roi_histogram(window, qtbot, measure, tmp_path):
    labels = window.document.labels
    _paint(labels)
    _settle(qtbot, measure)
    measure.select_label(2)
    expected = roi_histogram(window.document.image.data, labels.data == 2, bins=64)
    assert measure.roi_hist is not None
    assert measure.roi_hist.counts.sum() == expected.counts.sum() == 900
    assert np.allclose(measure.roi_hist.edges, expected.edges)
    path = tmp_path / "m.csv"
    assert measure.export_csv(path)
    rows = list(csv.DictReader(path.open()))
    assert [r["label"] for r in rows] == ["1", "2"] and rows[0]["pixels"] == "400"
    assert not list(tmp_path.glob(".m.*"))  # no temporary left behind


def test_export_to_an_unwritable_place_shows_the_error(window, qtbot, measure, tmp_path):
    _paint(window.document.labels)
    _settle(qtbot, measure)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert not measure.export_csv(blocker / "sub" / "m.csv")
    assert window.last_error and "m.csv" in window.last_error
