"""Decoders (classification, segmentation, detection families, restoration) and the decoder hook."""
from __future__ import annotations

import threading

import numpy as np
import onnx_factory as F
import pytest
from onnx import helper

from workbench.core.errors import CancelledError, PluginError
from workbench.core.image import ImageVolume
from workbench.core.settings import Settings
from workbench.inference import decoders
from workbench.inference.decoders import DECODERS, nms, softmax
from workbench.inference.run import Engine, predict, run_plugin

pytestmark = pytest.mark.usefixtures("fresh_session_cache")


def _const_plugin(tmp_path, task, outputs, output, inp=None, shape=(1, 3, 64, 64), name="p"):
    manifest = {"id": name, "task": task, "input": inp or {"color": "rgb", "resize": "stretch"}, "output": output}
    return F.write_plugin(tmp_path / name, F.constant_output(list(shape), outputs), manifest)


def _rgb(h=64, w=64):
    return ImageVolume(np.zeros((1, h, w, 3), np.uint8))


def test_registry_is_a_dict_by_name():
    assert {"classification", "segmentation", "restoration", "detection:yolov8", "detection:yolov5",
            "detection:yolox", "detection:boxes_scores"} <= set(DECODERS)


def test_classification_softmax_topk_and_labels(tmp_path):
    logits = np.array([[1.0, 3.0, 2.0, 0.0]], np.float32)
    folder = _const_plugin(tmp_path, "classification", {"logits": logits},
                           {"labels": ["a", "b", "c", "d"], "top_k": 2})
    result = predict(folder, _rgb(), settings=Settings())
    expected = softmax(logits[0])
    np.testing.assert_allclose(result.scores, expected, rtol=1e-6)
    assert [(t.index, t.label) for t in result.top] == [(1, "b"), (2, "c")]
    assert result.top[0].score == pytest.approx(float(expected[1]))


def test_classification_sigmoid_and_label_count_mismatch(tmp_path):
    folder = _const_plugin(tmp_path, "classification", {"logits": np.array([[0.0, 2.0]], np.float32)},
                           {"labels": ["x", "y"], "activation": "sigmoid"})
    result = predict(folder, _rgb(), settings=Settings())
    assert result.multi_label and result.scores == pytest.approx([0.5, 1 / (1 + np.exp(-2))])
    folder = _const_plugin(tmp_path, "classification", {"logits": np.zeros((1, 3), np.float32)},
                           {"labels": ["x", "y"]}, name="q")
    with pytest.raises(PluginError, match="output.labels: 2 labels, the model outputs 3 scores"):
        predict(folder, _rgb(), settings=Settings())


def test_yolov5_objectness_times_class(tmp_path):
    rows = np.array([[[32, 32, 20, 20, 0.9, 0.5, 1.0],     # 0.9 x 1.0 -> class 1
                      [32, 32, 20, 20, 0.2, 1.0, 0.0]]],   # 0.2 -> below threshold
                    np.float32)
    folder = _const_plugin(tmp_path, "detection", {"out": rows},
                           {"format": "yolov5", "labels": ["a", "b"], "score_threshold": 0.25})
    result = predict(folder, _rgb(128, 128), settings=Settings())
    assert len(result.detections) == 1
    d = result.detections[0]
    assert (d.index, d.label) == (1, "b") and d.score == pytest.approx(0.9)
    np.testing.assert_allclose(d.box, [44, 44, 84, 84])  # stretch 64 -> 128: x2


def test_yolox_grid_stride_decoding(tmp_path):
    strides = [8, 16, 32]
    n = sum((64 // s) ** 2 for s in strides)  # 64 + 16 + 4 cells
    rows = np.zeros((1, n, 6), np.float32)
    # cell (y=2, x=3) of stride 8 -> row 2*8+3; offsets (0.5, 0.5), log-size 0 -> 1 stride wide
    rows[0, 19] = [0.5, 0.5, np.log(2.0), 0.0, 0.9, 1.0]
    folder = _const_plugin(tmp_path, "detection", {"out": rows}, {"format": "yolox", "labels": ["obj"]})
    result = predict(folder, _rgb(), settings=Settings())
    assert len(result.detections) == 1
    np.testing.assert_allclose(result.detections[0].box, [28 - 8, 20 - 4, 28 + 8, 20 + 4])
    bad = _const_plugin(tmp_path, "detection", {"out": np.zeros((1, 10, 6), np.float32)},
                        {"format": "yolox", "labels": ["obj"]}, name="bad")
    with pytest.raises(PluginError, match="output.strides"):
        predict(bad, _rgb(), settings=Settings())


def test_class_aware_nms():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    classes = np.array([0, 0, 1, 0])
    keep = nms(boxes, scores, classes, iou_threshold=0.5, max_detections=10)
    assert keep.tolist() == [0, 2, 3]  # box 1 suppressed by 0 (same class); box 2 is another class
    assert nms(boxes[:0], scores[:0], classes[:0], iou_threshold=0.5, max_detections=10).size == 0
    assert nms(boxes, scores, classes, iou_threshold=0.5, max_detections=2).tolist() == [0, 2]


def test_detection_empty_output(tmp_path):
    folder = _const_plugin(tmp_path, "detection", {"out": np.zeros((1, 6, 0), np.float32)},
                           {"format": "yolov8", "labels": ["a", "b"]})
    assert predict(folder, _rgb(), settings=Settings()).detections == []


def test_boxes_scores_pixel_xywh_single_score_column(tmp_path):
    out = {"b": np.array([[[10, 20, 30, 40]]], np.float32), "s": np.array([[0.7]], np.float32)}
    folder = _const_plugin(tmp_path, "detection", out, {"format": "boxes_scores", "boxes": "b", "scores": "s",
                                                        "box_format": "xywh", "labels": ["thing"]})
    d = predict(folder, _rgb(), settings=Settings()).detections
    assert len(d) == 1 and d[0].label == "thing"
    np.testing.assert_allclose(d[0].box, [10, 20, 40, 60])


def test_segmentation_multi_label_values_and_area(tmp_path):
    # 3 sigmoid channels over a 2x2 image
    logits = np.full((1, 3, 2, 2), -5.0, np.float32)
    logits[0, 0, 0, 0] = 5.0
    logits[0, 2, 0, 0] = 6.0   # strongest above threshold wins
    logits[0, 1, 1, 1] = 5.0
    manifest_out = {"activation": "sigmoid", "multi_label": True, "threshold": 0.5,
                    "classes": [{"name": "a"}, {"name": "b"}, {"name": "c", "value": 9}]}
    folder = _const_plugin(tmp_path, "segmentation", {"o": logits}, manifest_out,
                           inp={"color": "gray", "resize": "none"}, shape=(1, 1, 2, 2))
    image = ImageVolume(np.zeros((2, 2), np.uint8), spacing=(1, 0.5, 0.25), spacing_known=True)
    result = predict(folder, image, settings=Settings())
    np.testing.assert_array_equal(result.mask[0], [[9, 0], [0, 2]])
    by = {c.name: c for c in result.classes}
    assert by["a"].pixels == 0 and by["b"].pixels == 1 and by["c"].value == 9
    assert by["c"].area_mm2 == pytest.approx(0.125)


def test_segmentation_nhw_class_ids(tmp_path):
    ids = np.array([[[0, 1], [2, 2]]], np.int64)
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0),
             helper.make_node("Cast", ["m"], ["mi"], to=7), helper.make_node("Mul", ["mi", "zero"], ["z"]),
             helper.make_node("Add", ["ids", "z"], ["out"])]
    proto = F.model(nodes, [F.vi("x", [1, 1, 2, 2])], [F.vi("out", [1, 2, 2], elem=7)],
                    [F.const("ids", ids), F.const("zero", np.int64(0))])
    manifest = {"id": "nhw", "task": "segmentation", "input": {"color": "gray", "resize": "stretch"},
                "output": {"layout": "NHW", "classes": [{"name": "bg"}, {"name": "a"}, {"name": "b"}]}}
    folder = F.write_plugin(tmp_path / "nhw", proto, manifest)
    result = predict(folder, ImageVolume(np.zeros((4, 4), np.uint8)), settings=Settings())
    np.testing.assert_array_equal(result.mask[0], np.kron(ids[0], np.ones((2, 2), np.int64)))


def test_restoration_residual_16bit(tmp_path):
    # the model predicts "noise" = 0.1 * input; clean = input - noise = 0.9 * input, back in uint16
    manifest = {"id": "dn", "task": "restoration",
                "input": {"color": "gray", "resize": "none", "intensity": {"scale": 1 / 65535}},
                "output": {"residual": True, "range": [0, 1]}}
    folder = F.write_plugin(tmp_path / "dn", F.affine(["N", 1, "H", "W"], 0.1, 0.0), manifest)
    data = np.array([[0, 1000, 65535]], np.uint16)
    result = predict(folder, ImageVolume(data), settings=Settings())
    assert result.image.data.dtype == np.uint16
    np.testing.assert_array_equal(result.image.data[0, 0], [0, 900, 58982])


def test_restoration_scale_mismatch_is_reported(tmp_path):
    manifest = {"id": "sr", "task": "restoration", "input": {"color": "gray", "resize": "none"},
                "output": {"scale": 2}}
    folder = F.write_plugin(tmp_path / "sr", F.identity(["N", 1, "H", "W"]), manifest)
    with pytest.raises(PluginError, match="output.scale: model output is 8x8 for a 8x8 input"):
        predict(folder, ImageVolume(np.zeros((8, 8), np.uint8)), settings=Settings())


def test_stack_runs_slice_by_slice_with_progress_and_cancel(tmp_path):
    folder = F.write_plugin(tmp_path / "seg", F.threshold_segmenter(1),
                            {"id": "seg", "task": "segmentation", "input": {"color": "gray", "resize": "none"},
                             "output": {"classes": [{"name": "bg"}, {"name": "fg"}]}})
    data = np.zeros((4, 8, 8), np.float32)
    data[1, 2:4, 2:4] = 1.0
    data[3] = 1.0
    image = ImageVolume(data)
    steps = []
    result = predict(folder, image, settings=Settings(), progress=lambda d, t, m: steps.append((d, t)))
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert result.mask.shape == (4, 8, 8) and result.mask[1].sum() == 4 and result.mask[3].sum() == 64
    sub = predict(folder, image, slices=[3], settings=Settings())
    assert sub.mask[1].sum() == 0 and sub.mask[3].sum() == 64 and sub.info.slice_indices == [3]
    cancel = threading.Event()
    gen = run_plugin(folder, image, settings=Settings(), cancel=cancel)
    next(gen)
    cancel.set()
    with pytest.raises(CancelledError):
        next(gen)


def test_custom_decoder_only_when_trusted(tmp_path):
    code = "import numpy as np\n\ndef decode(outputs, ctx):\n    return np.array([0.25, 0.75], np.float32)\n"
    manifest = {"id": "custom", "task": "classification", "input": {"color": "rgb", "resize": "stretch"},
                "output": {"labels": ["p", "q"], "decoder": "mydecoder:decode"}}
    folder = F.write_plugin(tmp_path / "custom", F.constant_output([1, 3, 8, 8], {"o": np.zeros((1, 5))}),
                            manifest, files={"mydecoder.py": code})
    with pytest.raises(PluginError, match=r"output.decoder: mydecoder:decode is code shipped with the plugin; "
                                          r"it runs only after you trust the plugin: run `workbench models "
                                          r"trust .*custom` \(trust is recorded in .*settings.json\)"):
        Engine(folder, settings=Settings())
    # trust by id (the old settings key) is no longer honoured: any folder can claim an id
    with pytest.raises(PluginError, match=r"trust by id in trusted_plugins is no longer honoured"):
        Engine(folder, settings=Settings(trusted_plugins=["custom"]))
    from workbench.inference.spec import load_plugin
    from workbench.inference.trust import content_hash

    digest = content_hash(load_plugin(folder)).sha256
    result = predict(folder, _rgb(8, 8), settings=Settings(trusted_code=[{"sha256": digest}]))
    assert result.top[0].label == "q" and result.top[0].score == pytest.approx(0.75)


def test_sigmoid_and_softmax_are_stable():
    assert np.isfinite(decoders.sigmoid(np.array([-1e4, 1e4]))).all()
    np.testing.assert_allclose(softmax(np.array([1000.0, 1000.0])), [0.5, 0.5])
