"""Grad-CAM where a plugin declares its feature map and class weights (``explain:``): the peak lies in the
region the explained class reads, through a stretch to the model input; one model run; refused (one
line) for plugins that declare nothing or declare it wrongly."""
from __future__ import annotations

import numpy as np
import onnx_factory as F
import pytest
from explain_models import cam_classifier

from workbench.core.errors import PluginError
from workbench.core.image import ImageVolume
from workbench.inference.explain import ExplainError, methods_for, run_explain
from workbench.inference.run import Engine
from workbench.inference.spec import load_plugin

A, B = (4, 12, 4, 12), (18, 28, 20, 30)  # model-input regions read by class 0 and class 1


pytestmark = pytest.mark.usefixtures("fresh_session_cache")


def _plugin(tmp_path, explain=True, weights=None):
    manifest = {"id": "cam", "task": "classification",
                "input": {"color": "gray", "resize": "stretch", "size": [32, 32]},
                "output": {"name": "logits", "activation": "softmax", "labels": ["left", "right"]}}
    files = {}
    if explain:
        manifest["explain"] = {"feature_map": "features", "class_weights": "cam_weights.npy"}
        import io

        buf = io.BytesIO()
        np.save(buf, np.eye(2, dtype=np.float32) * 4.0 if weights is None else weights)
        files["cam_weights.npy"] = buf.getvalue()
    return F.write_plugin(tmp_path / "cam", cam_classifier(A, B), manifest, files=files)


def _image():
    """64x48 (H x W) image: bright where the stretched regions A and B land (scale 2 x 1.5)."""
    img = np.zeros((64, 48), np.float32)
    img[8:24, 6:18] = 1.0  # region A in the image
    img[36:56, 30:45] = 0.4  # region B in the image (dimmer: "left" is the top class)
    return ImageVolume(img[np.newaxis])


def test_gradcam_points_at_the_region_of_the_explained_class(tmp_path):
    engine = Engine(_plugin(tmp_path))
    assert methods_for(engine.spec) == ("occlusion", "rise", "gradcam")
    left = run_explain(engine, _image(), method="gradcam")
    assert left.target["label"] == "left" and left.cost.model_runs == 1
    assert left.map.shape == (64, 48)
    assert 8 <= left.peak["y"] < 24 and 6 <= left.peak["x"] < 18
    right = run_explain(engine, _image(), method="gradcam", target="right")
    assert 36 <= right.peak["y"] < 56 and 30 <= right.peak["x"] < 45
    assert right.map[8:24, 6:18].max() == 0.0  # ReLU of class 1's map is 0 where only class 0 reads


def test_gradcam_refused_without_or_with_a_wrong_declaration(tmp_path):
    plain = Engine(_plugin(tmp_path / "a", explain=False))
    assert methods_for(plain.spec) == ("occlusion", "rise")
    with pytest.raises(ExplainError, match="declares no feature map and class weights"):
        run_explain(plain, _image(), method="gradcam")
    wrong = Engine(_plugin(tmp_path / "b", weights=np.ones((3, 2), np.float32)))
    with pytest.raises(PluginError, match=r"explain.class_weights: shape \[3, 2\] does not match 2 classes"):
        run_explain(wrong, _image(), method="gradcam")
    spec = load_plugin(_plugin(tmp_path / "c"))
    assert spec.explain.feature_map == "features" and spec.explain.layout == "NCHW"
