"""Fixtures for GUI tests: a main window that persists nothing, small images written to tmp."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

SKIMAGE_CAMERA = Path(cv2.__file__).resolve().parents[1] / "skimage" / "data" / "camera.png"


@pytest.fixture(autouse=True)
def no_unexpected_modal_box(monkeypatch):
    """A message box no test expected fails the test instead of blocking the suite on a modal dialog
    (tests that expect one patch ``QMessageBox.question`` themselves, after this)."""
    from workbench.gui.qt import QtWidgets

    def unexpected(*args, **kwargs):
        raise AssertionError(f"unexpected modal message box: {args[1:3]}")

    monkeypatch.setattr(QtWidgets.QMessageBox, "question", staticmethod(unexpected))


@pytest.fixture
def fresh_sessions(qtbot):
    """Model tests start and end with no cached ONNX session; before qtbot closes the windows, the model runs
    still in the pool (cancelled by then) are let finish. Use with ``pytest.mark.usefixtures``."""
    from workbench.gui.qt import QtCore
    from workbench.inference.session import clear_session_cache

    clear_session_cache()
    yield
    QtCore.QThreadPool.globalInstance().waitForDone(30_000)
    clear_session_cache()


@pytest.fixture
def window(qtbot):
    from workbench.gui.main_window import MainWindow

    win = MainWindow(restore_layout=False, persist=False)
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.cancel_load()
    qtbot.waitUntil(lambda: not win.is_loading, timeout=10_000)


@pytest.fixture
def gradient_png(tmp_path) -> Path:
    """A 96x128 16-bit PNG with a horizontal ramp 0..4000 and a bright square."""
    img = np.tile(np.linspace(0, 4000, 128, dtype=np.float64), (96, 1)).astype(np.uint16)
    img[20:40, 30:50] = 60000
    path = tmp_path / "ramp.png"
    assert cv2.imwrite(str(path), img)
    return path


@pytest.fixture
def stack_npy(tmp_path) -> Path:
    """A (6, 40, 50) uint16 stack whose slice z is filled with 100 * z (+ a ramp)."""
    z = np.arange(6, dtype=np.uint16)[:, None, None] * 100
    data = z + np.tile(np.arange(50, dtype=np.uint16), (6, 40, 1))
    path = tmp_path / "stack.npy"
    np.save(path, data)
    return path


@pytest.fixture
def corrupt_png(tmp_path) -> Path:
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"this is not a png body" * 4)
    return path


@pytest.fixture
def camera_png() -> Path:
    return SKIMAGE_CAMERA


@pytest.fixture
def load():
    """``load(window, qtbot, path, expect=True)``: open ``path`` and wait until the load settled."""

    def _load(window, qtbot, path, *, expect: bool = True):
        with qtbot.waitSignal(window.load_settled, timeout=20_000) as blocker:
            window.open_path(path)
        assert blocker.args == [expect], window.last_error
        return blocker.args[0]

    return _load
