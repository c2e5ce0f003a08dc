"""Viewer benchmarks (offscreen Qt). Run: ``.venv/bin/python -m pytest -m bench -s tests/bench/test_bench_viewer.py``.

Each benchmark measures the viewer's path and a named pyqtgraph baseline in the same run and prints ms and
the ratio; asserts keep generous margins because the shared machine is noisy.
"""
from __future__ import annotations

import gc
import time
import tracemalloc

import numpy as np
import pytest

pytestmark = pytest.mark.bench

N = 2048


def _median_ms(fn, repeat: int = 25, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return float(np.median(times))


@pytest.fixture
def canvas(qtbot):
    from workbench.core.document import Document
    from workbench.core.image import ImageVolume
    from workbench.gui.canvas import CanvasWidget
    from workbench.gui.view_state import ViewState

    rng = np.random.default_rng(0)
    data = rng.integers(0, 4096, size=(4, N, N), dtype=np.uint16)
    doc = Document(ImageVolume(data))
    state = ViewState()
    widget = CanvasWidget(doc, state)
    qtbot.addWidget(widget)
    widget.resize(900, 900)
    widget.show()
    state.reset(doc.image)
    return widget


def test_bench_slice_swap(canvas):
    """A new 2048² uint16 slice with its window applied, through to the QImage pyqtgraph draws."""
    from workbench.gui.qt import pg

    state, item = canvas.view_state, canvas.image_item
    data = canvas.document.image.data
    c, w = state.window
    lo, hi = c - w / 2, c + w / 2
    frames = iter(range(10 ** 9))

    baseline_item = pg.ImageItem(axisOrder="row-major")

    def baseline():  # bare pyqtgraph: the uint16 slice with levels, pyqtgraph maps it to 8-bit
        baseline_item.setImage(data[next(frames) % 4], levels=(lo, hi), autoLevels=False)
        baseline_item.render()

    def ours():
        state.set_slice((state.slice_index + 1) % 4)
        item.render()

    base_ms = _median_ms(baseline)
    ours_ms = _median_ms(ours)
    print(f"\nslice swap 2048² uint16: viewer {ours_ms:.2f} ms, pyqtgraph setImage+levels {base_ms:.2f} ms, "
          f"ratio {ours_ms / base_ms:.2f}")
    assert canvas.last_frame.dtype == np.uint8
    assert ours_ms < 2.0 * base_ms


def test_bench_window_level_step(canvas):
    """One step of a right-drag W/L: re-window the shown slice."""
    state, item = canvas.view_state, canvas.image_item
    c, w = state.window
    steps = iter(range(10 ** 9))
    plane = canvas.document.image.data[state.slice_index]
    from workbench.gui.qt import pg

    baseline_item = pg.ImageItem(plane, axisOrder="row-major", levels=(c - w / 2, c + w / 2))

    def baseline():  # pyqtgraph's own W/L: new levels on the 16-bit image, re-rendered
        k = next(steps) % 50
        baseline_item.setLevels((c - w / 2 + k, c + w / 2 + k))
        baseline_item.render()

    def ours():
        k = next(steps) % 50
        state.set_window(c + k + 0.5, w)
        item.render()

    base_ms = _median_ms(baseline)
    ours_ms = _median_ms(ours)
    print(f"\nW/L step 2048² uint16: viewer {ours_ms:.2f} ms, pyqtgraph setLevels {base_ms:.2f} ms, "
          f"ratio {ours_ms / base_ms:.2f}")
    assert ours_ms < 2.0 * base_ms


def test_bench_label_overlay_dab(canvas):
    """Overlay update after one brush dab (radius 12) on a 2048² label map, including the repaint."""
    from workbench.gui.qt import QtCore, QtGui, QtWidgets, pg

    labels = canvas.document.labels
    overlay = canvas.label_overlay
    labels.ensure_label(1)
    yy, xx = np.mgrid[-12:13, -12:13]
    disk = (yy ** 2 + xx ** 2) <= 144
    rng = np.random.default_rng(1)
    z = canvas.view_state.slice_index
    target = QtGui.QImage(N, N, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
    option = QtWidgets.QStyleOptionGraphicsItem()

    def dab_box():
        y, x = (int(v) for v in rng.integers(20, N - 20, size=2))
        return (slice(z, z + 1), slice(y - 12, y + 13), slice(x - 12, x + 13))

    # the edit itself (core), so the overlay's share is reported on its own
    def edit():
        with labels.edit("dab") as e:
            e.paint(dab_box(), disk[None], 1)

    labels.data_changed.disconnect(overlay.on_data_changed)
    edit_ms = _median_ms(edit)

    def ours():
        box = dab_box()
        labels.data[box][disk[None]] = 1
        overlay.on_data_changed(box)  # recolour the rect and schedule its repaint
        y0, x0 = box[1].start - 1, box[2].start - 1
        option.exposedRect = QtCore.QRectF(x0, y0, 27, 27)
        painter = QtGui.QPainter(target)
        overlay.paint(painter, option)  # what Qt paints for the dirty rect
        painter.end()

    rgba = np.zeros((N, N, 4), np.uint8)
    baseline_item = pg.ImageItem(axisOrder="row-major")

    def baseline():  # pyqtgraph: the whole RGBA overlay handed over again
        box = dab_box()
        rgba[box[1], box[2]][disk] = (255, 127, 14, 128)
        baseline_item.setImage(rgba, levels=(0, 255), autoLevels=False)
        baseline_item.render()

    base_ms = _median_ms(baseline, repeat=15)
    ours_ms = _median_ms(ours, repeat=50)
    print(f"\nlabel dab on 2048²: overlay update {ours_ms:.3f} ms, pyqtgraph full setImage {base_ms:.2f} ms, "
          f"ratio {ours_ms / base_ms:.3f} (the core edit with undo recording: {edit_ms:.2f} ms)")
    assert ours_ms < 0.5 * base_ms


def test_bench_volume_shown_without_copy(qtbot):
    """A 512x512x300 volume opened in the main window allocates far less than one more volume."""
    from workbench.core.image import ImageVolume
    from workbench.gui.main_window import MainWindow

    volume = np.zeros((300, 512, 512), np.int16)
    volume[:, 100:400, 100:400] = 40
    volume[:, 200:300, 200:300] = 700
    image = ImageVolume(volume, spacing=(1.0, 0.7, 0.7), modality="CT", spacing_known=True)
    win = MainWindow(restore_layout=False, persist=False)
    qtbot.addWidget(win)
    win.show()
    gc.collect()
    tracemalloc.start()
    win.document.set_image(image)
    for z in range(0, 300, 30):
        win.view_state.set_slice(z)
    qtbot.wait(10)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    label_map = win.document.labels.data.nbytes  # the editable mask: part of the document, not a copy
    viewer_peak = peak - label_map
    ratio = viewer_peak / volume.nbytes
    print(f"\n512x512x300 int16 ({volume.nbytes / 2**20:.0f} MiB): peak allocation {peak / 2**20:.1f} MiB "
          f"= label map {label_map / 2**20:.0f} MiB + viewer {viewer_peak / 2**20:.1f} MiB "
          f"({ratio:.3f} x the volume)")
    assert win.document.image.data is volume  # shown as is, never converted
    assert ratio < 0.25
