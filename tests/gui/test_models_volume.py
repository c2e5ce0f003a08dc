"""The Models dock runs a 3-D plugin on the whole volume: progress per tile, the label map of every slice,
per-class voxels; double-click on a stack runs the whole volume too; cancel leaves the labels alone."""
from __future__ import annotations

import numpy as np
import onnx_factory as F
import onnx_factory_v2 as F2
import pytest

from workbench.core.settings import Settings
from workbench.inference.results import SegmentationResult
from workbench.inference.run import predict
from workbench.io.reader import read_image

RUN_TIMEOUT = 60_000
VOL = {"id": "vol3d", "name": "Volume model", "task": "segmentation",
       "input": {"color": "gray", "layout": "NCDHW", "resize": "tile", "tile": {"size": [8, 16, 16], "overlap": 2},
                 "intensity": {"standardize": True}},
       "output": {"classes": [{"name": "background"}, {"name": "organ", "color": "#00ff00"}]}}


pytestmark = pytest.mark.usefixtures("fresh_sessions")


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    root = tmp_path / "plugins"
    proto, _ = F2.conv3d_net(1, 2, kernel=3, hidden=4, seed=2)
    folder = F.write_plugin(root / "vol3d", proto, VOL)
    monkeypatch.setenv("WORKBENCH_PLUGINS_DIR", str(root))
    return folder


def _panel(window):
    measurements = window.docks.get("MeasurementsDock")
    if measurements is not None:
        measurements.close()
    panel = window.docks["ModelsDock"].panel
    panel.reload()
    return panel


def test_dock_runs_a_3d_model_on_the_whole_volume(window, plugin, qtbot, tmp_path, load):
    path = tmp_path / "vol.npy"
    np.save(path, (np.random.default_rng(0).random((20, 40, 36)) * 1000).astype(np.int16))
    panel = _panel(window)
    load(window, qtbot, path)
    window.view_state.set_slice(7)
    panel.select_plugin("vol3d")
    assert panel.run_stack_button.isVisible() and not panel.run_slice_button.isVisible()
    seen = []
    panel.run_default()  # double-click on a stack: the shown slice for 2-D models, the volume for 3-D
    qtbot.waitUntil(lambda: (seen.append(panel.progress.maximum()) or len(window.document.results) == 1),
                    timeout=RUN_TIMEOUT)
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=RUN_TIMEOUT)
    (result,) = window.document.results
    assert isinstance(result, SegmentationResult) and result.info.slice_indices == list(range(20))
    expected = predict(plugin, read_image(path), settings=Settings()).mask
    np.testing.assert_array_equal(window.document.labels.data, expected)
    assert all(expected[z].any() for z in range(20))  # every slice got labels
    assert max(seen) == 3 * 3 * 3  # tiles along z, y, x: the progress bar counts tiles
    organ = next(c for c in result.classes if c.name == "organ")
    assert f"{organ.pixels:,} voxels" in window.docks["ResultsDock"].panel.seg_classes.text()
