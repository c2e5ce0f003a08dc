"""Crash recovery (issue 11, item 2) with a real kill -9: an app process (offscreen Qt) opens an image,
completes label edits, is killed mid-edit; the next start restores every completed edit."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
from rel_helpers import ROOT

from workbench.io import read_image, write_png
from workbench.session.recovery import RecoveryStore, orphans

CHILD = textwrap.dedent('''
    import os, sys, time
    from workbench.core.settings import load_settings
    from workbench.gui.app import create_app
    from workbench.gui.main_window import MainWindow

    app = create_app()
    w = MainWindow(load_settings(), restore_layout=False, persist=True)
    w.show()
    w.open_path(sys.argv[1])
    deadline = time.monotonic() + 60
    while (w.document.image is None or w.is_loading) and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    def pump(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.005)
    for k in range(int(sys.argv[2])):  # completed operations, each one undo step like a brush stroke
        with w.document.labels.edit("Brush") as e:
            e.assign((slice(0, 1), slice(2 + 3 * k, 4 + 3 * k), slice(5, 20)), k + 1)
        pump(0.05 if k % 2 else 0.4)  # some edits in quick succession, some far apart
        print("op", k + 1, flush=True)
    while w.recovery.store.written_generation < w.recovery.generation:
        pump(0.02)
    print("saved", w.recovery.store.path, flush=True)
    # mid-editing: a stroke is under way (not completed) when the kill comes
    edit = w.document.labels.edit("Brush")
    e = edit.__enter__()
    e.assign((slice(0, 1), slice(30, 40), slice(30, 40)), 9)
    print("editing", flush=True)
    pump(600)
''')


def test_kill_9_mid_edit_then_restore(tmp_path, qtbot, monkeypatch):
    config = tmp_path / "cfg"
    img = write_png(tmp_path / "scan.png", (np.arange(48 * 64).reshape(48, 64) % 200).astype(np.uint8))
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    env = {**os.environ, "WORKBENCH_CONFIG_DIR": str(config), "QT_QPA_PLATFORM": "offscreen"}
    n_ops = 6
    child = subprocess.Popen([sys.executable, str(script), str(img), str(n_ops)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 90
        lines = []
        while time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if line.startswith("editing"):
                break
        assert lines and lines[-1] == "editing", (lines, child.stderr.read() if child.poll() is not None else "")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    found = orphans(config / "data" / "recovery")
    assert len(found) == 1
    # the next start (in this process, as run_gui does it) restores without asking when told to
    monkeypatch.setenv("WORKBENCH_CONFIG_DIR", str(config))
    monkeypatch.setenv("WORKBENCH_RECOVER", "yes")
    from workbench.core.settings import load_settings
    from workbench.gui.main_window import MainWindow

    window = MainWindow(load_settings(), restore_layout=False, persist=True)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.load_settled, timeout=30_000):
        assert window.recovery.offer_restore()
    labels = window.document.labels.data
    expected = np.zeros(labels.shape, labels.dtype)
    for k in range(n_ops):
        expected[0, 2 + 3 * k:4 + 3 * k, 5:20] = k + 1
    assert np.array_equal(labels, expected)  # every completed edit, not the stroke under way (9)
    assert window.session.dirty and window.session.path is None  # restored work is unsaved work
    assert not found[0].exists()  # offered once
    window.recovery.close()
    assert orphans(config / "data" / "recovery") == []


def test_clean_close_and_save_leave_nothing(tmp_path):
    from workbench.core.document import Document
    from workbench.session import capture

    store = RecoveryStore(tmp_path / "rec")
    doc = Document(read_image(write_png(tmp_path / "a.png", np.zeros((8, 8), np.uint8))))
    with doc.labels.edit("b") as e:
        e.assign((slice(0, 1), slice(0, 2), slice(0, 2)), 1)
    store.save(capture(doc), 1)
    assert store.wait_written(1)
    assert store.path.exists()
    # a live store's file is not an orphan (its lock is held)
    assert orphans(tmp_path / "rec") == []
    store.clear(1)
    assert not store.path.exists()
    store.save(capture(doc), 1)  # an older snapshot than the clear: never written again
    time.sleep(0.2)
    assert not store.path.exists()
    store.close()
    assert list((tmp_path / "rec").iterdir()) == []
