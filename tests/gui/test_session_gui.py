"""Sessions and exports in the window: save / open (menu, drop, command line), whole-label-map export, the
unsaved-changes prompt (pytest-qt, real widgets; file dialogs and message boxes monkeypatched)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtTest import QTest

from workbench.core.results import Detection, DetectionResult, RunInfo, SegmentationClass, SegmentationResult
from workbench.gui.qt import Qt, QtCore, QtGui, QtWidgets

LEFT = Qt.MouseButton.LeftButton
NOMOD = Qt.KeyboardModifier.NoModifier
Box = QtWidgets.QMessageBox.StandardButton


def _paint_with_brush(window, qtbot, points, value=1):
    """A real brush stroke on the canvas (B selects the brush)."""
    canvas = window.canvas
    canvas.zoom_to_fit()
    qtbot.wait(20)
    window.docks["ToolsDock"].panel.raise_dock()
    window.view_state.set_active_label(value)
    canvas.view.setFocus()
    QTest.keyClick(canvas.view, Qt.Key.Key_B)

    def pos(x, y):
        return canvas.view.mapFromScene(canvas.view.vb.mapViewToScene(QtCore.QPointF(x, y)))

    viewport = canvas.view.viewport()
    QTest.mousePress(viewport, LEFT, NOMOD, pos(*points[0]))
    for p in points[1:]:
        QTest.mouseMove(viewport, pos(*p))
    QTest.mouseRelease(viewport, LEFT, NOMOD, pos(*points[-1]))


def _new_window(qtbot):
    from workbench.gui.main_window import MainWindow

    win = MainWindow(restore_layout=False, persist=False)
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    qtbot.waitExposed(win)
    return win


def _save(window, qtbot, path):
    with qtbot.waitSignal(window.session.job_settled, timeout=20_000) as blocker:
        assert window.session.save_to(path)
    assert blocker.args == [True], window.last_error


def test_menu_has_the_session_and_export_actions(window):
    texts = [a.text() for a in window.file_menu.actions() if not a.isSeparator()]
    for wanted in ("Open &session…", "&Save session", "Save session &as…", "&Export mask…",
                   "Export &measurements CSV…", "Export &report…", "&Quit"):
        assert wanted in texts
    assert texts.index("&Save session") < texts.index("&Export mask…") < texts.index("&Quit")
    assert window.session.save_action.shortcut() == QtGui.QKeySequence(QtGui.QKeySequence.StandardKey.Save)
    assert window.session.save_as_action.shortcut() == QtGui.QKeySequence("Ctrl+Shift+S")
    assert not window.session.save_action.isEnabled()  # nothing open yet


def test_paint_save_and_open_in_a_new_window(window, qtbot, gradient_png, tmp_path, load):
    load(window, qtbot, gradient_png)
    _paint_with_brush(window, qtbot, [(10.5, 30.5), (60.5, 30.5)], value=2)
    window.document.labels.set_label(2, name="lesion", color="#ff0000")
    window.view_state.set_window(1234.0, 567.0)
    window.view_state.set_label_style(2, opacity=0.25, outline=True)
    det = DetectionResult(RunInfo("faces", "Faces", "1.0", "0" * 64, "CPUExecutionProvider", "detection"),
                          [Detection(0, "face", 0.9, (5.0, 6.0, 20.0, 30.0))])
    window.document.add_result(det)
    painted = window.document.labels.data.copy()
    assert painted.any() and window.session.dirty and window.isWindowModified()

    path = tmp_path / "case.wbsession"
    _save(window, qtbot, path)
    assert path.is_file() and not window.session.dirty and not window.isWindowModified()
    assert window.session.path == path and "case.wbsession" in window.windowTitle()

    other = _new_window(qtbot)
    with qtbot.waitSignal(other.load_settled, timeout=20_000) as blocker:
        other.open_path(path)
    assert blocker.args == [True], other.last_error
    assert np.array_equal(other.document.labels.data, painted)
    assert other.document.labels.labels[2].name == "lesion"
    assert other.view_state.window == (1234.0, 567.0)
    assert other.view_state.label_style(2).opacity == 0.25 and other.view_state.label_style(2).outline
    assert len(other.document.results) == 1 and other.document.results[0].detections == det.detections
    assert not other.session.dirty and other.session.path == path
    assert not other.document.undo.can_undo  # the history is not saved
    assert str(path.resolve()) in other.settings.recent_files


def test_a_saved_segmentation_is_not_merged_into_the_labels_again(window, qtbot, gradient_png, tmp_path, load):
    load(window, qtbot, gradient_png)
    mask = np.zeros((1, 96, 128), np.uint16)
    mask[0, 10:20, 10:20] = 1
    seg = SegmentationResult(RunInfo("seg", "Seg", "1.0", "0" * 64, "CPUExecutionProvider", "segmentation"), mask,
                             [SegmentationClass(1, "organ", "#00ff00")])
    window.document.add_result(seg)  # merged into the label map
    with window.document.labels.edit("Eraser") as e:  # the user erases part of it
        e.assign((slice(0, 1), slice(10, 20), slice(10, 15)), 0)
    expected = window.document.labels.data.copy()
    path = tmp_path / "seg.wbsession"
    _save(window, qtbot, path)
    other = _new_window(qtbot)
    with qtbot.waitSignal(other.load_settled, timeout=20_000):
        other.open_path(path)
    assert np.array_equal(other.document.labels.data, expected)
    assert not other.document.undo.can_undo


def test_drop_a_session_file_opens_it(window, qtbot, gradient_png, tmp_path, load):
    load(window, qtbot, gradient_png)
    with window.document.labels.edit("p") as e:
        e.assign((slice(0, 1), slice(3, 6), slice(4, 9)), 3)
    path = tmp_path / "drop.wbsession"
    _save(window, qtbot, path)
    other = _new_window(qtbot)
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(path))])
    enter = QtGui.QDragEnterEvent(QtCore.QPoint(50, 50), Qt.DropAction.CopyAction, mime, LEFT, NOMOD)
    QtWidgets.QApplication.sendEvent(other, enter)
    assert enter.isAccepted()
    drop = QtGui.QDropEvent(QtCore.QPointF(50, 50), Qt.DropAction.CopyAction, mime, LEFT, NOMOD)
    with qtbot.waitSignal(other.load_settled, timeout=20_000) as blocker:
        QtWidgets.QApplication.sendEvent(other, drop)
    assert blocker.args == [True]
    assert int(other.document.labels.data.sum()) == 3 * 15


def test_a_broken_session_keeps_the_open_document(window, qtbot, gradient_png, tmp_path, load):
    load(window, qtbot, gradient_png)
    before = window.document.image
    bad = tmp_path / "bad.wbsession"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with qtbot.waitSignal(window.load_settled, timeout=20_000) as blocker:
        window.open_path(bad)
    assert blocker.args == [False]
    assert window.document.image is before
    assert "bad.wbsession" in window.last_error and "\n" not in window.last_error
    assert not window.progress.isVisible()


def test_export_mask_of_a_stack_to_nifti(window, qtbot, stack_npy, tmp_path, load, monkeypatch):
    from workbench.io import read_image

    load(window, qtbot, stack_npy)
    with window.document.labels.edit("p") as e:
        e.assign((slice(1, 4), slice(5, 12), slice(6, 20)), 4)
        e.assign((slice(5, 6), slice(0, 3), slice(0, 3)), 300)
    out = tmp_path / "stack_mask.nii.gz"
    chosen = {}

    def fake_save(parent, title, default, filters):
        chosen["default"], chosen["filters"] = default, filters
        return str(out), filters.split(";;")[0]

    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", staticmethod(fake_save))
    with qtbot.waitSignal(window.session.job_settled, timeout=20_000) as blocker:
        window.session.export_mask_action.trigger()
    assert blocker.args == [True], window.last_error
    # a stack from a .npy: TIFF first; PNG (one slice) and DICOM SEG (not DICOM) are not offered
    assert chosen["default"].endswith("stack_mask.tif")
    assert "PNG" not in chosen["filters"] and "DICOM" not in chosen["filters"] and "NIfTI" in chosen["filters"]
    back = read_image(out)
    assert back.shape == (6, 40, 50) and np.array_equal(back.data, window.document.labels.data)
    prov = json.loads((tmp_path / "stack_mask.nii.gz.provenance.json").read_text())
    assert prov["source"]["path"].endswith("stack.npy")


def test_export_measurements_and_report(window, qtbot, gradient_png, tmp_path, load, monkeypatch):
    load(window, qtbot, gradient_png)
    with window.document.labels.edit("p") as e:
        e.assign((slice(0, 1), slice(20, 40), slice(30, 50)), 1)
    csv_path = tmp_path / "m.csv"
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(csv_path), "CSV (*.csv)")))
    with qtbot.waitSignal(window.session.job_settled, timeout=20_000) as blocker:
        window.session.export_csv_action.trigger()
    assert blocker.args == [True], window.last_error
    lines = csv_path.read_text().splitlines()
    assert lines[1].startswith("1,label 1,400,") and ",60000," in lines[1]  # the bright square: min = max
    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(tmp_path / "rep")))
    with qtbot.waitSignal(window.session.job_settled, timeout=60_000) as blocker:
        window.session.export_report_action.trigger()
    assert blocker.args == [True], window.last_error
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == ["ramp_labels_report.html",
                                                                     "ramp_labels_report.pdf"]


def test_export_errors_are_shown_once(window, qtbot, stack_npy, tmp_path, load):
    load(window, qtbot, stack_npy)
    with qtbot.waitSignal(window.session.job_settled, timeout=20_000) as blocker:
        window.session.export_mask(tmp_path / "stack.png")
    assert blocker.args == [False]
    assert "PNG holds one slice" in window.last_error and window.banner.isVisible()


# -- unsaved changes --------------------------------------------------------------------------------------
@pytest.fixture
def edited(window, qtbot, gradient_png, load, monkeypatch):
    # any prompt a test does not expect answers Discard instead of blocking on a real modal box
    monkeypatch.setattr(QtWidgets.QMessageBox, "question", staticmethod(lambda *a, **k: Box.Discard))
    load(window, qtbot, gradient_png)
    assert not window.session.dirty  # opening is not an edit
    with window.document.labels.edit("p") as e:
        e.assign((slice(0, 1), slice(3, 6), slice(4, 9)), 1)
    assert window.session.dirty and window.isWindowModified()
    return window


def _answer(monkeypatch, button):
    asked = []

    def fake_question(*args, **kwargs):
        asked.append(args[2])
        return button

    monkeypatch.setattr(QtWidgets.QMessageBox, "question", staticmethod(fake_question))
    return asked


def test_quit_with_unsaved_edits_cancel_keeps_the_window(edited, monkeypatch):
    asked = _answer(monkeypatch, Box.Cancel)
    edited.quit_action.trigger()
    assert asked and "ramp.png" in asked[0]
    assert edited.isVisible() and edited.session.dirty


def test_quit_with_unsaved_edits_discard_closes(edited, monkeypatch):
    asked = _answer(monkeypatch, Box.Discard)
    edited.quit_action.trigger()
    assert len(asked) == 1 and not edited.isVisible()


def test_quit_with_unsaved_edits_save_writes_then_closes(edited, qtbot, tmp_path, monkeypatch):
    asked = _answer(monkeypatch, Box.Save)
    target = tmp_path / "closing.wbsession"
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(target), "")))
    edited.quit_action.trigger()
    assert edited.isVisible()  # the save runs in a worker first
    qtbot.waitUntil(lambda: not edited.isVisible(), timeout=20_000)
    assert target.is_file() and len(asked) == 1 and not edited.session.dirty


def test_saved_then_quit_asks_nothing(edited, qtbot, tmp_path, monkeypatch):
    asked = _answer(monkeypatch, Box.Cancel)
    _save(edited, qtbot, tmp_path / "s.wbsession")
    edited.quit_action.trigger()
    assert not edited.isVisible() and not asked


def test_close_from_code_never_asks(edited, monkeypatch):
    asked = _answer(monkeypatch, Box.Cancel)
    assert edited.close()  # not spontaneous: scripts, tests and --screenshot close without a modal box
    assert not asked


def test_opening_a_session_over_unsaved_edits_asks_first(edited, qtbot, tmp_path, monkeypatch):
    path = tmp_path / "other.wbsession"
    _save(edited, qtbot, path)
    with edited.document.labels.edit("more") as e:
        e.assign((slice(0, 1), slice(50, 60), slice(50, 60)), 2)
    asked = _answer(monkeypatch, Box.Cancel)
    assert not edited.session.open_session(path)
    assert len(asked) == 1 and edited.session.dirty and (edited.document.labels.data == 2).any()


def test_dropping_an_image_over_unsaved_edits_cancel_keeps_them(edited, qtbot, camera_png, monkeypatch):
    asked = _answer(monkeypatch, Box.Cancel)
    edited.open_path(camera_png)  # what a drop, File > Open and a recent file all call
    assert len(asked) == 1 and "opening another image" in asked[0]
    assert not edited.is_loading and edited.document.image.path.name == "ramp.png"
    assert edited.session.dirty and (edited.document.labels.data == 1).any()


def test_dropping_an_image_over_unsaved_edits_discard_opens_it(edited, qtbot, camera_png, load, monkeypatch):
    asked = _answer(monkeypatch, Box.Discard)
    load(edited, qtbot, camera_png)
    assert len(asked) == 1 and edited.document.image.path.name == "camera.png"
    assert not edited.session.dirty and not edited.document.labels.data.any()


def test_discard_then_a_failed_load_keeps_the_edits_and_the_prompt(edited, qtbot, corrupt_png, load, monkeypatch):
    asked = _answer(monkeypatch, Box.Discard)
    load(edited, qtbot, corrupt_png, expect=False)
    assert edited.document.image.path.name == "ramp.png" and (edited.document.labels.data == 1).any()
    assert edited.session.dirty  # the edits were not replaced: closing still asks
    edited.quit_action.trigger()
    assert len(asked) == 2


def test_save_then_open_writes_the_session_before_the_new_image(edited, qtbot, camera_png, tmp_path, monkeypatch):
    _answer(monkeypatch, Box.Save)
    target = tmp_path / "before-next.wbsession"
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "")))
    with qtbot.waitSignal(edited.load_settled, timeout=30_000) as blocker:
        edited.open_path(camera_png)
    assert blocker.args == [True] and target.is_file()
    assert edited.document.image.path.name == "camera.png" and not edited.session.dirty


def test_unsaved_model_results_alone_do_not_ask_before_the_next_image(window, qtbot, gradient_png, camera_png,
                                                                         load, monkeypatch):
    load(window, qtbot, gradient_png)
    mask = np.zeros((1, 96, 128), np.uint16)
    mask[0, 10:20, 10:20] = 1
    seg = SegmentationResult(RunInfo("seg", "Seg", "1.0", "0" * 64, "CPUExecutionProvider", "segmentation"), mask,
                             [SegmentationClass(1, "organ", "#00ff00")])
    window.document.add_result(seg)  # merged into the label map, in the same (automatic) undo step
    assert window.session.dirty and not window.session.hand_edited
    window.undo()
    window.redo()  # undoing and redoing a model run is not a hand edit either
    assert not window.session.hand_edited
    load(window, qtbot, camera_png)  # the fixture's patched question() fails the test if anything asks
    assert window.document.image.path.name == "camera.png"

    window.document.add_result(SegmentationResult(seg.info, np.zeros((1, 512, 512), np.uint16) + 1,
                                                  [SegmentationClass(1, "organ", "#00ff00")]))
    with window.document.labels.edit("Eraser") as e:  # a hand correction of the model's mask
        e.assign((slice(0, 1), slice(0, 5), slice(0, 5)), 0)
    assert window.session.hand_edited
    asked = _answer(monkeypatch, Box.Cancel)
    window.open_path(gradient_png)
    assert len(asked) == 1 and window.document.image.path.name == "camera.png"


def test_quit_asks_about_unsaved_model_results_too(window, qtbot, gradient_png, load, monkeypatch):
    load(window, qtbot, gradient_png)
    det = DetectionResult(RunInfo("faces", "Faces", "1.0", "0" * 64, "CPUExecutionProvider", "detection"),
                          [Detection(0, "face", 0.9, (5.0, 6.0, 20.0, 30.0))])
    window.document.add_result(det)  # a whole-stack run can take minutes: closing the window still asks
    asked = _answer(monkeypatch, Box.Cancel)
    window.quit_action.trigger()
    assert len(asked) == 1 and window.isVisible()


def test_an_edit_after_saving_makes_it_dirty_again(edited, qtbot, tmp_path):
    _save(edited, qtbot, tmp_path / "s.wbsession")
    assert not edited.session.dirty and not edited.isWindowModified()
    edited.undo()
    assert edited.session.dirty and edited.isWindowModified()


# -- command line -------------------------------------------------------------------------------------------
def test_command_line_opens_a_session_for_a_screenshot(window, qtbot, gradient_png, tmp_path, load):
    load(window, qtbot, gradient_png)
    with window.document.labels.edit("p") as e:
        e.assign((slice(0, 1), slice(10, 60), slice(10, 80)), 1)
    path = tmp_path / "cli.wbsession"
    _save(window, qtbot, path)
    shot = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", WORKBENCH_CONFIG_DIR=str(tmp_path / "cfg"))
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", str(path), "--screenshot", str(shot)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    import cv2

    img = cv2.imread(str(shot))
    assert img is not None and img.std() > 5
