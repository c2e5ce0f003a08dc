"""File > Import model…: the dialog driven with qtbot — guesses in the form, a field corrected, the live
preview follows, Save writes the plugin into the user's plugin folder, the Models dock lists it and runs it."""
from __future__ import annotations

import cv2
import numpy as np
import onnx_factory as F
import pytest
import yaml

from workbench.core.results import SegmentationResult

TIMEOUT = 30_000


pytestmark = pytest.mark.usefixtures("fresh_sessions")


@pytest.fixture
def scan(tmp_path):
    img = np.zeros((60, 80), np.uint8)
    img[10:30, 20:50] = 200
    path = tmp_path / "scan.png"
    cv2.imwrite(str(path), img)
    return path


def _type(qtbot, editor, text):
    from workbench.gui.qt import Qt

    editor.selectAll()
    qtbot.keyClick(editor, Qt.Key.Key_Delete)
    if text:
        qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)


def test_import_dialog_correct_preview_save_run(window, qtbot, tmp_path, scan, load, monkeypatch):
    from workbench.gui.qt import Qt
    from workbench.inference.registry import user_plugins_dir

    monkeypatch.setenv("WORKBENCH_PLUGINS_DIR", str(tmp_path / "no-bundled"))
    measurements = window.docks.get("MeasurementsDock")
    if measurements is not None:
        measurements.close()
    assert window.import_model_action in window.file_menu.actions()
    load(window, qtbot, scan)
    model = tmp_path / "lesions.onnx"
    model.write_bytes(F.threshold_segmenter(1).SerializeToString())
    from workbench.gui.qt import QtCore, QtGui

    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(model))])
    drop = QtGui.QDropEvent(QtCore.QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)  # dropping the .onnx on the window opens the dialog (not the image reader)
    dialog = window.import_dialog
    assert dialog.model_path == model and window.document.image.path == scan
    with qtbot.waitSignal(dialog.preview_ready, timeout=TIMEOUT):
        qtbot.waitUntil(lambda: dialog.proposal is not None, timeout=TIMEOUT)
    assert dialog.editors["task"].currentText() == "segmentation"
    assert dialog.editors["input.color"].currentText() == "gray"
    assert dialog.preview_text == "class 1: 600 px"
    assert "(weak)" in dialog.labels["output.classes"].text()  # names are a guess: marked
    assert len(dialog.candidate_buttons) == len(dialog.proposal.ranking.candidates) >= 5

    # a wrong offset: the preview follows (nothing found), then the field is corrected again
    with qtbot.waitSignal(dialog.preview_ready, timeout=TIMEOUT) as blocker:
        _type(qtbot, dialog.editors["input.intensity.offset"], "-0.5")
    assert blocker.args == ["no class found"]
    with qtbot.waitSignal(dialog.preview_ready, timeout=TIMEOUT) as blocker:
        _type(qtbot, dialog.editors["input.intensity.offset"], "")
    assert blocker.args == ["class 1: 600 px"]
    # a candidate thumbnail puts its normalisation into the form
    raw = next(i for i, c in enumerate(dialog.proposal.ranking.candidates) if c.key == "raw")
    with qtbot.waitSignal(dialog.preview_ready, timeout=TIMEOUT):
        qtbot.mouseClick(dialog.candidate_buttons[raw], Qt.MouseButton.LeftButton)
    assert dialog.editors["input.intensity.scale"].text() == ""
    unit = next(i for i, c in enumerate(dialog.proposal.ranking.candidates) if c.key == "unit")
    with qtbot.waitSignal(dialog.preview_ready, timeout=TIMEOUT):
        qtbot.mouseClick(dialog.candidate_buttons[unit], Qt.MouseButton.LeftButton)
    _type(qtbot, dialog.editors["output.classes"], "background, lesion")
    _type(qtbot, dialog.editors["name"], "Lesion finder")
    _type(qtbot, dialog.editors["id"], "lesion-finder")

    with qtbot.waitSignal(dialog.saved, timeout=TIMEOUT) as saved:
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    folder = user_plugins_dir() / "lesion-finder"
    assert saved.args == [str(folder)]
    manifest = yaml.safe_load((folder / "plugin.yaml").read_text())
    assert manifest["name"] == "Lesion finder" and manifest["output"]["classes"][1] == {"name": "lesion"}
    assert manifest["input"]["intensity"] == {"scale": pytest.approx(1 / 255)}
    assert (folder / "sample.png").is_file() and (folder / "model.onnx").is_file()

    panel = window.docks["ModelsDock"].panel
    assert "lesion-finder" in [p.id for p in panel.plugins]  # listed at once
    panel.run_plugin(panel.selected_plugin())
    qtbot.waitUntil(lambda: len(window.document.results) == 1, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=TIMEOUT)
    result = window.document.results[0]
    assert isinstance(result, SegmentationResult)
    assert [(c.name, c.pixels) for c in result.classes] == [("lesion", 600)]


def test_dialog_refusal_is_one_line_in_the_dialog(window, qtbot, tmp_path):
    from workbench.gui import import_model_dialog as D

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    dialog = D.open_import_dialog(window, bad)
    qtbot.waitUntil(lambda: "not an ONNX file" in dialog.status.text(), timeout=TIMEOUT)
    assert not dialog.save_button.isEnabled()
    dialog.reject()


def test_closing_while_the_model_is_read_ignores_the_late_result(window, qtbot, tmp_path):
    from workbench.gui import import_model_dialog as D
    from workbench.gui.qt import QtCore

    model = tmp_path / "m.onnx"
    model.write_bytes(F.threshold_segmenter(1).SerializeToString())
    dialog = D.open_import_dialog(window, model)
    dialog.reject()  # before the worker has finished
    QtCore.QThreadPool.globalInstance().waitForDone(30_000)
    qtbot.wait(50)
    assert not D._LIVE_JOBS and window.last_error is None


def _rows():
    rows = np.zeros((50, 6), np.float32)
    rows[:, :4] = [40, 30, 20, 20]
    rows[0, 4] = 0.9
    return rows.T[None]


@pytest.mark.parametrize("proto, expect", [
    (lambda: F.classifier(1, 3, weights=np.array([[4.0, 0.0, -4.0]])), "class 2 1.00, class 1 0.00"),
    (lambda: F.constant_output([1, 1, 64, 64], {"output0": _rows()}), "1 detection(s), best class 0 0.90"),
    (lambda: F.identity(["N", 1, "H", "W"]), "restored 60x80"),
])
def test_preview_of_every_task_and_task_fields(qtbot, tmp_path, proto, expect):
    from workbench.core.image import ImageVolume
    from workbench.gui.import_model_dialog import FIELDS, ImportModelDialog

    model = tmp_path / "m.onnx"
    model.write_bytes(proto().SerializeToString())
    img = np.zeros((60, 80), np.uint8)
    img[10:30, 20:50] = 200
    dialog = ImportModelDialog(model, ImageVolume(img), plugins_dir=tmp_path / "plugins")
    qtbot.addWidget(dialog)
    dialog.show()
    with qtbot.waitSignal(dialog.preview_ready, timeout=TIMEOUT) as blocker:
        qtbot.waitUntil(lambda: dialog.proposal is not None, timeout=TIMEOUT)
    assert blocker.args[0].startswith(expect), blocker.args
    task = dialog.editors["task"].currentText()
    for f in FIELDS:  # only the fields of the task are shown (and no 3-D field for a 2-D layout)
        assert dialog.form.isRowVisible(dialog.labels[f.path]) == (task in f.tasks and not f.volume), f.path
    dialog.reject()
