"""Display transforms and the dirty-rectangle label overlay."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.gui.display import (
    WindowRenderer,
    apply_window,
    cursor_readout,
    line_profile,
    slice_histogram,
    slice_position_text,
)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64, np.uint32])
def test_apply_window_matches_the_definition(dtype):
    rng = np.random.default_rng(0)
    plane = rng.integers(0, 250, size=(37, 53)).astype(dtype)
    center, width = 120.0, 100.0
    expected = np.clip((plane.astype(np.float64) - (center - width / 2)) * 255.0 / width, 0, 255)
    out = apply_window(plane, center, width)
    assert out.dtype == np.uint8 and out.shape == plane.shape
    assert np.abs(out.astype(int) - np.round(expected)).max() <= 1
    # values below the window stay black (convertScaleAbs alone would fold them back up)
    assert out[plane < center - width / 2].max(initial=0) == 0
    inverted = apply_window(plane, center, width, invert=True)
    assert np.array_equal(inverted, 255 - out)


def test_apply_window_edge_cases():
    f = np.array([[np.nan, -1e30, 0.0, 1e30, np.inf]], np.float32)
    assert apply_window(f, 0.0, 10.0).tolist() == [[0, 0, 128, 255, 255]]
    assert apply_window(np.zeros((1, 1), np.uint16), 0.0, 0.0).tolist() == [[128]]  # zero width is clamped
    assert apply_window(np.array([[0], [9], [20]], np.uint16), 10.0, 10.0).tolist() == [[0], [102], [255]]
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (10, 128, 250)
    assert apply_window(rgb, 127.5, 255.0)[0, 0].tolist() == [10, 128, 250]
    renderer = WindowRenderer()
    a = renderer.render(np.ones((4, 4), np.uint16) * 100, 100, 50)
    b = renderer.render(np.ones((4, 4), np.uint16) * 200, 100, 50)
    assert a[0, 0] in (127, 128) and b[0, 0] == 255
    assert a.tolist() == renderer.render(np.ones((4, 4), np.uint16) * 100, 100, 50).tolist()  # no stale scratch


def test_histogram_profile_and_texts():
    counts, edges = slice_histogram(np.array([[0, 0, 1, 3]], np.uint16), bins=3)
    assert counts.tolist() == [2, 1, 1] and edges[0] == 0 and edges[-1] == 3
    counts, _ = slice_histogram(np.full((3, 3), np.nan, np.float32))
    assert counts.sum() == 0
    profile = line_profile(np.arange(100, dtype=np.float32).reshape(10, 10), (0, 2), (9, 2))
    assert profile.tolist() == list(range(20, 30))
    from workbench.core.image import ImageVolume

    image = ImageVolume(np.zeros((3, 4, 5), np.int16), spacing=(2.5, 0.5, 0.5), origin=(10, 0, 0),
                        spacing_known=True, modality="CT",
                        metadata={"RescaleSlope": 1.0, "RescaleIntercept": -1024.0})
    text = cursor_readout(image, 2, 4.9, 3.1)
    assert "x 4  y 3  z 2" in text and "HU 0" in text and "raw 1024" in text and "(2.0, 1.5, 15.0) mm" in text
    assert cursor_readout(image, 0, 5.0, 0.0) is None and cursor_readout(image, 0, -0.5, 0.0) is None
    assert slice_position_text(image, 1) == "slice 2/3  ·  12.5 mm"


def test_label_overlay_dirty_rect_equals_full_redraw(qtbot):
    from workbench.core.labels import LabelMap
    from workbench.gui.overlays import LabelOverlayItem
    from workbench.gui.view_state import ViewState

    labels = LabelMap((2, 64, 80))
    state = ViewState()
    state.set_label_style(3, outline=True)
    item = LabelOverlayItem()
    item.set_labels(labels, 1)
    labels.ensure_label(2)
    labels.ensure_label(3)
    item.set_style(labels, state)
    rng = np.random.default_rng(3)
    for _ in range(30):
        y, x = rng.integers(0, 60, size=2)
        value = int(rng.integers(0, 4))
        with labels.edit("dab") as e:
            e.paint((slice(1, 2), slice(y, y + 7), slice(x, x + 9)), np.ones((1, 7, 9), bool), value)
    incremental = item.buffer.copy()
    item.refresh()
    assert np.array_equal(incremental, item.buffer)
    assert incremental.any()
    # an edit on another slice does not touch the shown one
    with labels.edit("other") as e:
        e.assign((slice(0, 1), slice(0, 64), slice(0, 80)), 2)
    assert np.array_equal(item.buffer, incremental)
