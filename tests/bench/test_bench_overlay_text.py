"""Cost of the overlay text (issue 15) on slice scrolling: the same window scrolled with the corner text on and
off, interleaved step by step so load changes hit both alike. Run:
``flock /tmp/workbench-heavy.lock .venv/bin/python -m pytest -m bench -s tests/bench/test_bench_overlay_text.py``.
"""
from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

pytestmark = pytest.mark.bench


def test_overlay_text_adds_little_to_a_slice_step(qtbot):
    from workbench.core.image import ImageVolume
    from workbench.gui.main_window import MainWindow
    from workbench.gui.qt import QtWidgets

    win = MainWindow(restore_layout=False, persist=False)
    qtbot.addWidget(win)
    win.resize(1366, 768)
    win.show()
    qtbot.waitExposed(win)
    data = np.random.default_rng(0).integers(-1000, 3000, (60, 512, 512)).astype(np.int16)
    win.document.set_image(ImageVolume(data, modality="CT"))
    app = QtWidgets.QApplication.instance()
    app.processEvents()
    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(400):
        on = i % 2 == 0
        win.canvas.overlay_text.set_enabled(on)
        app.processEvents()
        t0 = time.perf_counter()
        win.view_state.set_slice((i * 7) % 60)
        app.processEvents()  # the repaint of the view and the labels
        times[on].append((time.perf_counter() - t0) * 1000.0)
    on_ms, off_ms = statistics.median(times[True]), statistics.median(times[False])
    print(f"\nslice step 512x512 int16 at 1366x768: overlay text on {on_ms:.2f} ms, off {off_ms:.2f} ms, "
          f"ratio {on_ms / off_ms:.3f}")
    assert on_ms < off_ms * 2.0 + 2.0  # generous: the machine is shared
