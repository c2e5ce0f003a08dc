"""The "Similar cases" dock: search the index by the shown slice or a drawn region, thumbnails, open on click."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.unit.test_similar_search import library, projection_encoder, texture
from workbench.gui.qt import Qt, QtCore
from workbench.gui.tools.base import CanvasEvent
from workbench.similar.build import index_folder


@pytest.fixture
def indexed(tmp_path) -> tuple[Path, list[Path]]:
    enc = projection_encoder(tmp_path / "enc")
    paths = library(tmp_path / "lib", 6)
    db = tmp_path / "lib.wbindex"
    index_folder(tmp_path / "lib", db, enc)
    return db, paths


@pytest.fixture
def similar(window):
    dock = window.docks["SimilarCasesDock"]
    dock.show()
    dock.raise_()
    return dock.panel


def _event(x: float, y: float) -> CanvasEvent:
    return CanvasEvent(x, y, 0, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier, QtCore.QPointF(0, 0))


def test_search_by_slice_lists_thumbnails_and_opens_on_click(window, qtbot, similar, indexed, load, tmp_path):
    db, paths = indexed
    load(window, qtbot, paths[2])
    similar.set_index(db)
    qtbot.mouseClick(similar.search_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not similar.is_busy and similar.results.count() > 0, timeout=20_000)
    assert similar.hits[0].path == str(paths[2].resolve()) and similar.hits[0].score == pytest.approx(1, abs=1e-4)
    assert similar.results.count() == 6 and "6 similar images" in similar.status.text()
    first = similar.results.item(0)
    assert not first.icon().isNull() and first.text().startswith("1.000\nimg002.png")
    # a click opens the hit in the window
    target = similar.results.item(3)
    want = similar.hits[3].path
    with qtbot.waitSignal(window.load_settled, timeout=20_000):
        similar.results.itemClicked.emit(target)
    assert str(window.document.image.path) == want


def test_drawn_region_searches_by_that_region(window, qtbot, similar, indexed, load, tmp_path):
    db, paths = indexed
    canvas = np.zeros((100, 160), np.uint8)
    canvas[20:84, 80:144] = texture(4)
    composite = tmp_path / "composite.png"
    cv2.imwrite(str(composite), canvas)
    load(window, qtbot, composite)
    similar.set_index(db)
    similar.roi_button.setChecked(True)
    tool = window.canvas.tool
    assert tool.name == "similar-roi"
    tool.press(_event(80.2, 20.5))
    tool.move(_event(120.0, 60.0))
    tool.release(_event(143.6, 83.4))
    qtbot.waitUntil(lambda: not similar.is_busy and similar.results.count() > 0, timeout=20_000)
    assert similar.hits[0].path == str(paths[4].resolve()) and similar.hits[0].score > 0.999
    assert "region 80,20,144,84" not in similar.status.text()  # replaced by the result line
    similar.roi_button.setChecked(False)
    assert window.canvas.tool.name == "navigate"


def test_errors_are_one_line_in_the_dock(window, qtbot, similar, load, tmp_path, gradient_png):
    similar.search()
    assert similar.status.text() == "Open an image first"
    load(window, qtbot, gradient_png)
    similar.set_index(tmp_path / "missing.wbindex")
    similar.search()
    qtbot.waitUntil(lambda: not similar.is_busy, timeout=20_000)
    assert "index not found" in similar.status.text() and "\n" not in similar.status.text()
    assert similar.search_button.isEnabled()


def test_run_on_an_embedding_model_opens_the_similar_cases_dock(window, qtbot, load, tmp_path):
    """Run on the bundled similar-case encoder queues no inference (it makes vectors, not results): the
    Similar cases dock comes forward and the status line says how to use the encoder."""
    from workbench.inference.registry import find_plugin

    spec = find_plugin("similar-encoder")
    assert spec.task == "embedding"
    path = tmp_path / "img.png"
    cv2.imwrite(str(path), (np.arange(64 * 64).reshape(64, 64) % 251).astype(np.uint8))
    load(window, qtbot, path)
    dock = window.docks["SimilarCasesDock"]
    dock.hide()
    runs = window.docks["ModelsDock"].panel  # the RunsSection mixin
    runs.run_plugin(spec)
    assert dock.isVisible()
    assert runs._job is None and not runs._queue
    assert "Similar cases dock" in window.statusBar().currentMessage()
