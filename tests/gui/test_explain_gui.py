"""The Explain section of the Results dock: a heat map computed in a worker (progress, cancel), drawn over
the image on its slice (colormap, opacity, toggle, legend), exported as float TIFF, PNG, JSON and report."""
from __future__ import annotations

import json

import cv2
import numpy as np
import onnx_factory as F
import pytest
import tifffile
from explain_models import region_classifier

TIMEOUT = 60_000
CLS = {"id": "roi", "name": "Region reader", "task": "classification",
       "input": {"color": "gray", "resize": "none", "intensity": {"scale": 1 / 255}},
       "output": {"activation": "softmax", "labels": ["bright", "dark"]}}
SEG = {"id": "blobs", "name": "Bright blobs", "task": "segmentation",
       "input": {"color": "gray", "resize": "none", "intensity": {"scale": 1 / 255}},
       "output": {"classes": [{"name": "background"}, {"name": "blob", "color": "#ff0000"}]}}


pytestmark = pytest.mark.usefixtures("fresh_sessions")


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    root = tmp_path / "plugins"
    F.write_plugin(root / "roi", region_classifier((20, 40, 60, 90)), CLS)
    F.write_plugin(root / "blobs", F.threshold_segmenter(1), SEG)
    monkeypatch.setenv("WORKBENCH_PLUGINS_DIR", str(root))
    return root


@pytest.fixture
def scan(tmp_path):
    img = np.zeros((64, 120), np.uint8)
    img[20:40, 60:90] = 220  # what the classifier reads
    img[45:60, 5:25] = 220  # a distractor it ignores
    path = tmp_path / "scan.png"
    cv2.imwrite(str(path), img)
    return path


def _section(window):
    measurements = window.docks.get("MeasurementsDock")
    if measurements is not None:
        measurements.close()
    section = window.explain_section
    section.reload_plugins()  # the window was built before the fixture pointed discovery at tmp plugins
    return section


def _choose(section, plugin_id, method):
    section.model_combo.setCurrentIndex(section.model_combo.findData(plugin_id))
    section.method_combo.setCurrentIndex(section.method_combo.findData(method))


def test_explain_shows_heatmap_layer_and_exports(window, plugins, scan, qtbot, load, tmp_path):
    load(window, qtbot, scan)
    section = _section(window)
    _choose(section, "roi", "rise")
    section.amount_spin.setValue(200)
    assert section.class_combo.isVisible() and section.class_combo.count() == 3  # top class + 2 labels
    section.run_button.click()
    qtbot.waitUntil(lambda: section.job is None, timeout=TIMEOUT)
    assert window.last_error is None
    store = section.store
    assert len(store.items) == 1 and section.list.count() == 1
    expl = store.items[0]
    assert expl.method == "rise" and expl.cost.model_runs == 201
    assert 20 <= expl.peak["y"] < 40 and 60 <= expl.peak["x"] < 90
    layer = section.layer
    assert layer.shown and layer.rgba.shape == (64, 120, 4)
    alpha = layer.rgba[..., 3].astype(int)
    assert alpha[30, 75] > alpha[52, 15]  # the region the model reads is drawn, the distractor barely
    # style: opacity scales alpha, toggle hides, colormap recolours; the legend follows
    before = alpha[30, 75]
    section.opacity_slider.setValue(30)
    assert layer.rgba[30, 75, 3] < before
    section.cmap_combo.setCurrentText("viridis")
    assert section.legend.cmap == "viridis" and "p(bright)" in section.legend.units
    section.show_check.setChecked(False)
    assert not layer.shown
    section.show_check.setChecked(True)
    assert layer.shown
    # in the Results dock, below its scrolling sections: the Explain button never needs scrolling (issue 15)
    assert section.parentWidget() is window.docks["ResultsDock"].panel
    written = section.export_to(tmp_path / "out")
    assert {"tiff", "png", "json", "report_html", "report_pdf"} <= set(written)
    sal = tifffile.imread(written["tiff"])
    assert sal.dtype == np.float32 and sal.shape == (64, 120)
    data = json.loads(written["json"].read_text())
    assert data["cost"]["model_runs"] == 201 and data["plugin"]["id"] == "roi"
    html = written["report_html"].read_text()
    assert "does not say that the prediction is right" in html and str(tmp_path) not in html
    # stored in sessions: saved, then restored into the window (list, layer and style come back)
    from workbench.session import read_session, save_session

    saved = save_session(window.document, tmp_path / "case")
    # a new image clears the heat maps
    load(window, qtbot, scan)
    assert store.items == [] and not layer.shown and section.list.count() == 0
    window.session.restore(read_session(saved))
    assert section.list.count() == 1 and layer.shown
    assert section.cmap_combo.currentText() == "viridis" and section.opacity_slider.value() == 30
    np.testing.assert_array_equal(section.store.items[0].map, expl.map)


def test_explain_segmenter_uncertainty_and_cancel(window, plugins, scan, qtbot, load):
    load(window, qtbot, scan)
    section = _section(window)
    _choose(section, "blobs", "entropy")
    assert not section.class_combo.isVisible() and not section.amount_spin.isVisible()
    section.run_button.click()
    qtbot.waitUntil(lambda: section.job is None, timeout=TIMEOUT)
    expl = section.store.items[-1]
    assert expl.method == "entropy" and expl.map.shape == (64, 120) and expl.summary
    assert section.legend.vrange == (0.0, 1.0)
    assert "blob: mean" in section.caption.text() and "background: mean" in section.caption.text()
    # cancel: a long RISE run stops and adds nothing
    _choose(section, "roi", "rise")
    section.amount_spin.setValue(20000)
    section.run_button.click()
    assert section.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: section.progress.maximum() == 20000 and section.progress.value() >= 16,
                    timeout=TIMEOUT)
    section.cancel_button.click()
    qtbot.waitUntil(lambda: section.job is None, timeout=TIMEOUT)
    assert len(section.store.items) == 1 and window.last_error is None
