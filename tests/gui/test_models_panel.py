"""The Models dock: listing plugins, running them in a worker, cancel, run on drop, errors, label-map apply.

Plugins are tiny ONNX graphs written into a tmp plugin folder (tests/onnx_factory.py) and found through
``WORKBENCH_PLUGINS_DIR``; the last test runs the real bundled plugins when they are present.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx_factory as F
import pytest

from workbench.core.results import ClassificationResult, DetectionResult, RestorationResult, SegmentationResult
from workbench.core.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 60_000

SEG = {"id": "blobs", "name": "Bright blobs", "task": "segmentation", "description": "Finds bright squares.",
       "input": {"color": "gray", "resize": "stretch", "size": [64, 64], "intensity": {"scale": 1 / 65535}},
       "output": {"classes": [{"name": "background"}, {"name": "blob", "color": "#ff0000"}]},
       "meta": {"license": "MIT", "intended_use": "tests only"}}
CLS = {"id": "grey", "name": "Bright or dark", "task": "classification",
       "input": {"color": "gray", "resize": "none", "intensity": {"scale": 1 / 65535}},
       "output": {"activation": "softmax", "labels": ["bright", "dark"]}}
SLOW = {"id": "slow", "name": "Slow smoother", "task": "restoration",
        "input": {"color": "gray", "resize": "none", "intensity": {"scale": 1 / 65535}},
        "output": {"range": [0, 1]}}


pytestmark = pytest.mark.usefixtures("fresh_sessions")


@pytest.fixture
def plugins(tmp_path, monkeypatch) -> Path:
    """A plugin root with a segmenter, a classifier, a slow restoration model and one broken plugin.yaml."""
    root = tmp_path / "plugins"
    F.write_plugin(root / "blobs", F.threshold_segmenter(1), SEG)
    F.write_plugin(root / "grey", F.classifier(1, 2, weights=np.array([[4.0, -4.0]])), CLS)
    F.write_plugin(root / "slow", F.conv_net(1, [24, 24], 1, seed=1), SLOW)
    broken = root / "broken"
    broken.mkdir()
    (broken / "plugin.yaml").write_text("schema_version: 1\nid: Broken Plugin\n", encoding="utf-8")
    monkeypatch.setenv("WORKBENCH_PLUGINS_DIR", str(root))
    return root


def _panel(window):
    # The Measurements dock measures in a background job that is deleted with its window while its pool
    # thread still runs (pytest-qt then fails whichever test is running); it measures only while visible
    # and plays no part here.
    measurements = window.docks.get("MeasurementsDock")
    if measurements is not None:
        measurements.close()
    panel = window.docks["ModelsDock"].panel
    panel.reload()  # the window was built before the fixture pointed discovery at the tmp plugins
    return panel


def _wait_idle(qtbot, panel, timeout=RUN_TIMEOUT):
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=timeout)


def _click(qtbot, button):
    from workbench.gui.qt import Qt

    assert button.isVisible() and button.isEnabled()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_dock_lists_plugins_badges_and_problems(window, plugins, qtbot):
    panel = _panel(window)
    assert [p.id for p in panel.plugins] == ["blobs", "grey", "slow"]
    card = panel.cards["blobs"]
    assert card.name_label.full_text() == "Bright blobs"
    assert card.version_label.text() == "1.0.0" and card.task_chip.text() == "segmentation"
    assert card.badge.text() == "not loaded" and card.badge_state == "idle"
    assert panel.count_label.text() == "3 model plugins"
    # the broken plugin is listed with its one-line reason, collapsed until asked for
    assert panel.problems_button.isVisible() and panel.problems_button.text() == "⚠ 1 plugin problem"
    assert not panel.problems_list.isVisible()
    panel.problems_button.click()
    assert panel.problems_list.isVisible() and panel.problems_list.count() == 1
    message = panel.problems_list.item(0).text()
    assert "broken" in message and "plugin.yaml" in message and "\n" not in message
    # the model card of the selected plugin; no image yet -> run buttons disabled
    panel.select_plugin("blobs")
    assert "Finds bright squares." in panel.card_label.text() and "tests only" in panel.card_label.text()
    assert not panel.run_image_button.isEnabled()


def test_run_on_image_adds_a_classification_result(window, plugins, qtbot, gradient_png, load):
    panel = _panel(window)
    load(window, qtbot, gradient_png)
    panel.select_plugin("grey")
    assert panel.run_image_button.isVisible() and not panel.run_stack_button.isVisible()
    _click(qtbot, panel.run_image_button)
    assert panel.is_busy and panel.progress_box.isVisible()
    qtbot.waitUntil(lambda: len(window.document.results) == 1, timeout=RUN_TIMEOUT)
    _wait_idle(qtbot, panel)
    result = window.document.results[0]
    assert isinstance(result, ClassificationResult) and result.top[0].label == "bright"
    assert result.info.provider == "CPUExecutionProvider"
    card = panel.cards["grey"]
    assert card.badge.text() == "CPU" and card.badge_state == "ready"
    assert panel.cards["blobs"].badge.text() == "not loaded"
    assert not panel.progress_box.isVisible()
    assert "bright" in panel.result_label.text() and "CPU" in panel.result_label.text()
    assert window.last_error is None
    # one undo step takes the result away again
    window.undo()
    assert window.document.results == []


def test_segmentation_merges_into_labels_and_every_step_is_undoable(window, plugins, qtbot, gradient_png, load,
                                                                     monkeypatch):
    from workbench.gui.qt import QtWidgets

    panel = _panel(window)
    load(window, qtbot, gradient_png)
    labels = window.document.labels
    with labels.edit("manual") as e:  # a manual edit overlapping the bright square (rows 20:40, cols 30:50)
        e.paint((slice(0, 1), slice(30, 50), slice(40, 60)), True, 7)
    manual = labels.data.copy()
    panel.select_plugin("blobs")
    _click(qtbot, panel.run_image_button)
    qtbot.waitUntil(lambda: bool((labels.data == 1).any()), timeout=RUN_TIMEOUT)
    _wait_idle(qtbot, panel)
    (result,) = window.document.results
    assert isinstance(result, SegmentationResult)
    blob = next(c for c in result.classes if c.name == "blob")
    assert abs(blob.pixels - 400) <= 60
    # merge (the default): the label table comes from the result, manual pixels survive
    assert labels.labels[1].name == "blob" and labels.labels[1].color == "#ff0000"
    assert (labels.data[manual == 7] == 7).all()
    assert labels.data[0, 25, 35] == 1 and labels.data[0, 80, 100] == 0
    assert panel.apply_box.isVisible()
    merged = labels.data.copy()

    window.undo()  # one model run = one undo step: the mask leaves the label map and the result goes
    assert np.array_equal(labels.data, manual) and window.document.results == []
    assert not panel.apply_box.isVisible()
    assert window.document.undo.undo_name == "manual"
    window.redo()
    assert np.array_equal(labels.data, merged) and len(window.document.results) == 1

    # replace asks first; "Cancel" leaves everything as it is
    answers = [QtWidgets.QMessageBox.StandardButton.Cancel]
    monkeypatch.setattr(QtWidgets.QMessageBox, "question", lambda *a, **k: answers.pop(0))
    _click(qtbot, panel.replace_button)
    assert np.array_equal(labels.data, merged)
    answers.append(QtWidgets.QMessageBox.StandardButton.Yes)
    _click(qtbot, panel.replace_button)
    assert np.array_equal(labels.data, result.mask)  # manual label 7 overwritten
    window.undo()  # one step brings the manual edit back
    assert np.array_equal(labels.data, merged)
    # merge again after the user erased the model's pixels: only unlabelled pixels are written
    with labels.edit("erase") as e:
        e.assign((slice(0, 1), slice(0, 96), slice(0, 128)), manual)
    _click(qtbot, panel.merge_button)
    assert np.array_equal(labels.data, merged)


def test_cancel_stops_a_whole_stack_run(window, plugins, qtbot, tmp_path, load):
    path = tmp_path / "big_stack.npy"
    rng = np.random.default_rng(0)
    np.save(path, rng.integers(0, 4000, size=(300, 96, 96), dtype=np.uint16))
    panel = _panel(window)
    load(window, qtbot, path)
    before = window.document.labels.data.copy()
    panel.select_plugin("slow")
    assert panel.run_stack_button.isVisible() and panel.run_slice_button.isVisible()
    assert not panel.run_image_button.isVisible()
    _click(qtbot, panel.run_stack_button)
    qtbot.waitUntil(lambda: panel.progress.maximum() == 300 and panel.progress.value() >= 1, timeout=RUN_TIMEOUT)
    _click(qtbot, panel.cancel_button)
    _wait_idle(qtbot, panel)
    assert window.document.results == []
    assert "cancelled" in panel.result_label.text() and window.last_error is None
    assert np.array_equal(window.document.labels.data, before)
    assert not panel.progress_box.isVisible()
    # the session exists now: its provider is shown although the run was cancelled
    assert panel.cards["slow"].badge.text() == "CPU"


def test_run_on_this_slice_of_a_stack(window, plugins, qtbot, stack_npy, load):
    panel = _panel(window)
    load(window, qtbot, stack_npy)
    window.view_state.set_slice(4)
    panel.select_plugin("slow")
    _click(qtbot, panel.run_slice_button)
    qtbot.waitUntil(lambda: len(window.document.results) == 1, timeout=RUN_TIMEOUT)
    result = window.document.results[0]
    assert isinstance(result, RestorationResult) and result.info.slice_indices == [4]
    assert result.image.n_slices == 1
    assert "slice 5" in panel.result_label.text()


def test_opening_another_image_discards_the_running_job(window, plugins, qtbot, tmp_path, gradient_png, load):
    path = tmp_path / "big_stack.npy"
    np.save(path, np.zeros((300, 96, 96), np.uint16))
    panel = _panel(window)
    load(window, qtbot, path)
    panel.select_plugin("slow")
    _click(qtbot, panel.run_stack_button)
    qtbot.waitUntil(lambda: panel.progress.value() >= 1, timeout=RUN_TIMEOUT)
    load(window, qtbot, gradient_png)
    _wait_idle(qtbot, panel)
    assert window.document.results == [] and window.last_error is None
    assert "another image was opened" in panel.result_label.text()


def _drop(window, qtbot, path) -> None:
    """Drag ``path`` onto the window the way a file manager does."""
    from workbench.gui.qt import Qt, QtCore, QtGui, QtWidgets

    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(path))])
    pos = QtCore.QPointF(window.width() / 2, window.height() / 2)
    enter = QtGui.QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                  Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(window, enter)
    drop = QtGui.QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.load_settled, timeout=20_000) as blocker:
        QtWidgets.QApplication.sendEvent(window, drop)
    assert blocker.args == [True], window.last_error


def test_drop_an_image_and_see_the_segmentation(window, plugins, qtbot, gradient_png):
    panel = _panel(window)
    panel.cards["blobs"].drop_check.setChecked(True)  # persist=False: kept in memory only
    assert window.settings.run_on_drop == ["blobs"]
    _drop(window, qtbot, gradient_png)
    labels = window.document.labels
    qtbot.waitUntil(lambda: bool((labels.data == 1).any()), timeout=RUN_TIMEOUT)
    assert isinstance(window.document.results[0], SegmentationResult)
    assert labels.data[0, 30, 40] == 1 and labels.labels[1].name == "blob"
    assert window.canvas.isVisible()


def test_run_on_drop_is_saved_and_runs_on_every_opened_image(plugins, qtbot, gradient_png, stack_npy, load):
    from workbench.gui.main_window import MainWindow

    window = MainWindow(restore_layout=False, persist=True)  # the config dir is a per-test tmp folder
    qtbot.addWidget(window)
    window.show()
    panel = _panel(window)
    _click(qtbot, panel.cards["grey"].drop_check)
    assert window.settings.run_on_drop == ["grey"] and load_settings().run_on_drop == ["grey"]

    _drop(window, qtbot, gradient_png)
    qtbot.waitUntil(lambda: len(window.document.results) == 1, timeout=RUN_TIMEOUT)
    assert isinstance(window.document.results[0], ClassificationResult)
    assert Path(window.document.results[0].info.source_path).name == "ramp.png"

    # a stack: run on drop takes the slice shown first (the middle one), not the whole stack
    load(window, qtbot, stack_npy)
    qtbot.waitUntil(lambda: len(window.document.results) == 1, timeout=RUN_TIMEOUT)
    _wait_idle(qtbot, panel)
    assert window.document.results[0].info.slice_indices == [window.view_state.slice_index] == [3]

    # the box reflects the saved settings in a fresh window, and unticking saves too
    other = MainWindow(load_settings(), restore_layout=False, persist=True)  # as run_gui builds it
    qtbot.addWidget(other)
    other_panel = _panel(other)
    assert other_panel.cards["grey"].drop_check.isChecked()
    assert not other_panel.cards["blobs"].drop_check.isChecked()
    other_panel.cards["grey"].drop_check.setChecked(False)
    assert load_settings().run_on_drop == []


def test_a_bad_plugin_shows_one_line_and_keeps_the_document(window, plugins, qtbot, gradient_png, load):
    F.write_plugin(plugins / "tampered", F.threshold_segmenter(1), {**SEG, "id": "tampered", "name": "Tampered"},
                   sha256="0" * 64)
    # fixed 64x64 input, no resizing: a 96x128 image cannot be fed to it
    F.write_plugin(plugins / "fixed", F.threshold_segmenter(1, size=[64, 64]),
                   {**SEG, "id": "fixed", "name": "Fixed size", "input": {**SEG["input"], "resize": "none",
                                                                          "size": None}})
    panel = _panel(window)
    load(window, qtbot, gradient_png)
    labels = window.document.labels
    with labels.edit("manual") as e:
        e.paint((slice(0, 1), slice(0, 10), slice(0, 10)), True, 3)
    manual = labels.data.copy()
    undo_depth = window.document.undo.undo_name

    for plugin_id, words in (("tampered", "tampered/plugin.yaml: model.sha256"),
                             ("fixed", "Fixed size: " + str(gradient_png) + ": image of 96x128 pixels does not fit")):
        window.last_error = None
        panel.select_plugin(plugin_id)
        _click(qtbot, panel.run_image_button)
        qtbot.waitUntil(lambda: window.last_error is not None, timeout=RUN_TIMEOUT)
        _wait_idle(qtbot, panel)
        assert "\n" not in window.last_error and words in window.last_error, window.last_error
        assert window.banner.isVisible()
        card = panel.cards[plugin_id]
        assert card.badge_state == "error" and card.badge.toolTip() == window.last_error
        assert window.document.results == []
        assert np.array_equal(labels.data, manual) and window.document.undo.undo_name == undo_depth

    # the other plugins still run afterwards
    panel.select_plugin("blobs")
    _click(qtbot, panel.run_image_button)
    qtbot.waitUntil(lambda: len(window.document.results) == 1, timeout=RUN_TIMEOUT)


def test_queued_runs_run_one_after_another(window, plugins, qtbot, gradient_png, load):
    panel = _panel(window)
    load(window, qtbot, gradient_png)
    for plugin_id in ("grey", "blobs"):
        panel.select_plugin(plugin_id)
        panel.run_selected("image")
    assert panel.is_busy
    qtbot.waitUntil(lambda: len(window.document.results) == 2, timeout=RUN_TIMEOUT)
    assert [type(r) for r in window.document.results] == [ClassificationResult, SegmentationResult]


BUNDLED = ("quality", "brain-tissue", "denoiser", "focal-spot")
_TASK_TYPES = {"classification": ClassificationResult, "segmentation": SegmentationResult,
               "detection": DetectionResult, "restoration": RestorationResult}


@pytest.mark.parametrize("plugin_id", BUNDLED)
def test_bundled_plugin_runs_from_the_dock(window, qtbot, load, monkeypatch, plugin_id):
    folder = REPO / "plugins" / plugin_id
    if not (folder / "plugin.yaml").is_file():
        pytest.skip(f"bundled plugin {plugin_id} not present")
    monkeypatch.delenv("WORKBENCH_PLUGINS_DIR", raising=False)
    panel = _panel(window)
    spec = next((p for p in panel.plugins if p.id == plugin_id), None)
    assert spec is not None, panel.problems
    image = spec.sample_path or REPO / "assets" / "samples" / "mri_t1_noisy.png"
    load(window, qtbot, image)
    panel.select_plugin(plugin_id)
    panel.run_default()
    qtbot.waitUntil(lambda: bool(window.document.results) or window.last_error is not None, timeout=120_000)
    assert window.last_error is None, window.last_error
    assert isinstance(window.document.results[0], _TASK_TYPES[spec.task])
    assert panel.cards[plugin_id].badge_state == "ready"
