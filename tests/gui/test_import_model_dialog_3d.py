"""File > Import model… with a volumetric (5-D input) model over an open CT volume: the 3-D fields in the
form, the preview on the crop the candidates ran on, a corrected field, Save, and the saved plugin run."""
from __future__ import annotations

import numpy as np
import onnx_factory as F
import pytest
import yaml
from onnx import helper

TIMEOUT = 30_000


pytestmark = pytest.mark.usefixtures("fresh_sessions")


def _hu_threshold():
    """Two-class logits per voxel: (x + 500) / 100 (an HU threshold at -500)."""
    nodes = [helper.make_node("Sub", ["input", "t"], ["d"]), helper.make_node("Mul", ["d", "k"], ["fg"]),
             helper.make_node("Neg", ["fg"], ["bg"]), helper.make_node("Concat", ["bg", "fg"], ["output"], axis=1)]
    inits = [F.const("t", np.float32(-500.0)), F.const("k", np.float32(0.01))]
    return F.model(nodes, [F.vi("input", ["N", 1, "D", "H", "W"])], [F.vi("output", ["N", 2, "D", "H", "W"])],
                   inits)


def test_import_dialog_3d_model_on_a_volume(qtbot, tmp_path):
    from workbench.core.image import ImageVolume
    from workbench.gui.import_model_dialog import ImportModelDialog
    from workbench.gui.qt import Qt
    from workbench.inference.run import Engine, predict

    vol = np.full((12, 40, 40), -1000, np.int16)
    vol[3:9, 10:30, 10:30] = 40
    image = ImageVolume(vol, spacing=(2.0, 0.8, 0.8), spacing_known=True, modality="CT")
    model = tmp_path / "lungs.onnx"
    model.write_bytes(_hu_threshold().SerializeToString())
    dialog = ImportModelDialog(model, image, plugins_dir=tmp_path / "plugins")
    qtbot.addWidget(dialog)
    dialog.show()
    with qtbot.waitSignal(dialog.preview_ready, timeout=TIMEOUT) as blocker:
        qtbot.waitUntil(lambda: dialog.proposal is not None, timeout=TIMEOUT)
    assert dialog.editors["input.layout"].currentText() == "NCDHW"
    assert dialog.editors["input.tile.size"].text() == "96, 96, 96"
    assert dialog.form.isRowVisible(dialog.labels["input.spacing"])  # 3-D fields shown for a 3-D layout
    assert "(weak)" in dialog.labels["input.spacing"].text()
    assert blocker.args == ["12x40x40 crop, middle slice: class 1: 400 px"]
    assert dialog.proposal.ranking.chosen.key == "raw"
    assert len(dialog.candidate_buttons) == len(dialog.proposal.ranking.candidates) >= 5

    # a wrong z-score: the preview follows (the threshold at -500 finds everything), then back to raw
    with qtbot.waitSignal(dialog.preview_ready, timeout=TIMEOUT) as blocker:
        dialog.set_field("input.intensity.standardize", True)
    assert blocker.args == ["12x40x40 crop, middle slice: class 1: 1600 px"]
    with qtbot.waitSignal(dialog.preview_ready, timeout=TIMEOUT):
        dialog.set_field("input.intensity.standardize", False)
    dialog.set_field("input.tile.overlap", [2, 8, 8])
    dialog.set_field("output.classes", [{"name": "background"}, {"name": "body"}])
    dialog.set_field("id", "body-3d")
    with qtbot.waitSignal(dialog.saved, timeout=TIMEOUT) as saved:
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    folder = tmp_path / "plugins" / "body-3d"
    assert saved.args == [str(folder)]
    manifest = yaml.safe_load((folder / "plugin.yaml").read_text())
    assert manifest["input"]["tile"] == {"size": [96, 96, 96], "overlap": [2, 8, 8]}
    assert manifest["input"]["intensity"] == {} and manifest["input"]["orientation"] == "display"
    assert "spacing" not in manifest["input"]
    mask = predict(Engine(folder), image).mask
    np.testing.assert_array_equal(mask, (vol > -500).astype(np.uint16))


def test_2d_layout_hides_the_3d_fields(qtbot, tmp_path):
    from workbench.core.image import ImageVolume
    from workbench.gui.import_model_dialog import ImportModelDialog

    model = tmp_path / "m.onnx"
    model.write_bytes(F.threshold_segmenter(1).SerializeToString())
    dialog = ImportModelDialog(model, ImageVolume(np.zeros((30, 40), np.uint8)), plugins_dir=tmp_path / "p")
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.preview_ready, timeout=TIMEOUT):
        qtbot.waitUntil(lambda: dialog.proposal is not None, timeout=TIMEOUT)
    assert not dialog.form.isRowVisible(dialog.labels["input.spacing"])
    assert "orientation" not in dialog.manifest()["input"] and "spacing" not in dialog.manifest()["input"]
    dialog.reject()
