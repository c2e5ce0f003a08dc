"""Models dock: a plugin that wants CUDA and whose session falls back to CPU gets the amber badge with the
reason in its tooltip; a CPU-only plugin keeps the green one."""
from __future__ import annotations

import numpy as np
import onnx_factory as F
import pytest

from workbench.inference import gpu
from workbench.inference.session import clear_session_cache

SEG = {"id": "blobs", "name": "Bright blobs", "task": "segmentation",
       "input": {"color": "gray", "resize": "stretch", "size": [64, 64], "intensity": {"scale": 1 / 65535}},
       "output": {"classes": [{"name": "background"}, {"name": "blob", "color": "#ff0000"}]},
       "runtime": {"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]}}
CLS = {"id": "grey", "name": "Bright or dark", "task": "classification",
       "input": {"color": "gray", "resize": "none", "intensity": {"scale": 1 / 65535}},
       "output": {"activation": "softmax", "labels": ["bright", "dark"]}}


@pytest.fixture(autouse=True)
def _fresh(qtbot, tmp_path, monkeypatch):
    import onnxruntime

    clear_session_cache()
    gpu.reset_fallback()
    real = onnxruntime.get_available_providers
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", *real()])
    monkeypatch.setattr(gpu, "preload_cuda", lambda: "skipped in tests")
    monkeypatch.setattr(gpu, "detect_driver", lambda **kw: gpu.Driver(error="libcuda.so.1 not found"))
    root = tmp_path / "plugins"
    F.write_plugin(root / "blobs", F.threshold_segmenter(1), SEG)
    F.write_plugin(root / "grey", F.classifier(1, 2, weights=np.array([[4.0, -4.0]])), CLS)
    monkeypatch.setenv("WORKBENCH_PLUGINS_DIR", str(root))
    yield
    from workbench.gui.qt import QtCore

    QtCore.QThreadPool.globalInstance().waitForDone(30_000)
    clear_session_cache()
    gpu.reset_fallback()


def test_fallback_badge_and_tooltip(window, qtbot, gradient_png, load, tmp_path):
    measurements = window.docks.get("MeasurementsDock")
    if measurements is not None:
        measurements.close()
    panel = window.docks["ModelsDock"].panel
    panel.reload()
    load(window, qtbot, gradient_png)
    for plugin_id in ("blobs", "grey"):
        panel.select_plugin(plugin_id)
        n = len(window.document.results)
        panel.run_image_button.click()
        qtbot.waitUntil(lambda n=n: len(window.document.results) == n + 1, timeout=60_000)
        qtbot.waitUntil(lambda: not panel.is_busy, timeout=60_000)
    card = panel.cards["blobs"]
    assert card.badge_state == "fallback" and card.badge.text() == "CPU (no GPU)"
    assert "no NVIDIA driver: libcuda.so.1 not found" in card.badge.toolTip()
    assert "workbench doctor" in card.badge.toolTip()
    assert window.document.results[0].info.provider == "CPUExecutionProvider"  # recorded as always
    other = panel.cards["grey"]
    assert other.badge_state == "ready" and other.badge.text() == "CPU"
    card.grab().save(str(tmp_path / "card.png"))
