"""Real-world ONNX quirks, each a tiny model built with onnx.helper; actual numbers are asserted."""
from __future__ import annotations

import numpy as np
import onnx_factory as F
import pytest
from onnx import helper

from workbench.core.image import ImageVolume
from workbench.core.settings import Settings
from workbench.inference.run import Engine, predict

pytestmark = pytest.mark.usefixtures("fresh_session_cache")


def _square_image(h=60, w=80, box=(10, 30, 20, 50), value=200, dtype=np.uint8, color=False):
    img = np.zeros((h, w), dtype=dtype)
    y0, y1, x0, x1 = box
    img[y0:y1, x0:x1] = value
    if color:
        img = np.repeat(img[..., None], 3, axis=2)
    return ImageVolume(img[None] if color else img)


def _expected_mask(h=60, w=80, box=(10, 30, 20, 50)):
    m = np.zeros((h, w), np.uint16)
    m[box[0]:box[1], box[2]:box[3]] = 1
    return m


SEG_OUT = {"classes": [{"name": "background"}, {"name": "fg"}]}


def _seg(tmp_path, proto, inp, out=None, name="seg"):
    manifest = {"id": name, "task": "segmentation", "input": inp, "output": {**SEG_OUT, **(out or {})}}
    return F.write_plugin(tmp_path / name, proto, manifest)


@pytest.mark.parametrize("layout, out_layout", [("NHWC", "NHWC"), ("NCHW", "NHWC"), ("NHWC", "NCHW")])
def test_layouts_in_and_out(tmp_path, layout, out_layout):
    proto = F.threshold_segmenter(3, layout=layout, out_layout=out_layout)
    folder = _seg(tmp_path, proto, {"layout": layout, "color": "rgb", "resize": "none",
                                    "intensity": {"scale": 1 / 255}}, {"layout": out_layout})
    result = predict(folder, _square_image(color=True), settings=Settings())
    np.testing.assert_array_equal(result.mask[0], _expected_mask())


def test_output_without_batch_dim(tmp_path):
    folder = _seg(tmp_path, F.threshold_segmenter(1, batch_out=False),
                  {"color": "gray", "resize": "none", "intensity": {"scale": 1 / 255}})
    result = predict(folder, _square_image(), settings=Settings())
    np.testing.assert_array_equal(result.mask[0], _expected_mask())


def test_symbolic_dims_with_multiple_of_pad_and_crop(tmp_path):
    # a model that only accepts multiples of 32 (Reshape into 32x32 blocks) proves the padding happened
    nodes = [helper.make_node("Shape", ["input"], ["shp"]),
             helper.make_node("Reshape", ["input", "blocks"], ["blk"]),
             helper.make_node("Reshape", ["blk", "shp"], ["back"]),
             helper.make_node("Sub", ["back", "half"], ["d"]),
             helper.make_node("Neg", ["d"], ["nd"]),
             helper.make_node("Concat", ["nd", "d"], ["output"], axis=1)]
    proto = F.model(nodes, [F.vi("input", ["batch", 1, "height", "width"])],
                    [F.vi("output", ["batch", 2, "height", "width"])],
                    [F.const("blocks", np.array([1, -1, 32, 32], np.int64)), F.const("half", np.float32(0.5))])
    folder = _seg(tmp_path, proto, {"color": "gray", "resize": "none", "multiple_of": 32,
                                    "intensity": {"scale": 1 / 255}})
    engine = Engine(folder, settings=Settings())
    prep = engine.prepare_plane(_square_image(), 0)
    assert prep.tensor.shape == (1, 1, 64, 96)  # 60x80 padded up to multiples of 32
    result = predict(engine, _square_image())
    assert result.mask.shape == (1, 60, 80)
    np.testing.assert_array_equal(result.mask[0], _expected_mask())


def test_initializers_listed_as_graph_inputs(tmp_path):
    # old exporters (IR 3) list every weight as a graph input: the image is still the one real input
    nodes = [helper.make_node("Mul", ["data", "k"], ["fg"]), helper.make_node("Sub", ["fg", "t"], ["fg2"]),
             helper.make_node("Neg", ["fg2"], ["bg"]), helper.make_node("Concat", ["bg", "fg2"], ["prob"], axis=1)]
    proto = F.model(nodes, [F.vi("data", [1, 1, 60, 80]), F.vi("k", []), F.vi("t", [])],
                    [F.vi("prob", [1, 2, 60, 80])],
                    [F.const("k", np.float32(1.0)), F.const("t", np.float32(0.5))], ir_version=3, opset=9)
    assert len(proto.graph.input) == 3
    folder = _seg(tmp_path, proto, {"color": "gray", "resize": "none", "intensity": {"scale": 1 / 255}})
    result = predict(folder, _square_image(), settings=Settings())
    np.testing.assert_array_equal(result.mask[0], _expected_mask())


def test_numeric_tensor_names(tmp_path):
    proto = F.threshold_segmenter(1, name_in="0", name_out="517")
    folder = _seg(tmp_path, proto, {"name": "0", "color": "gray", "resize": "none",
                                    "intensity": {"scale": 1 / 255}}, {"name": "517"})
    result = predict(folder, _square_image(), settings=Settings())
    np.testing.assert_array_equal(result.mask[0], _expected_mask())


def test_bgr_model(tmp_path):
    # logits = per-channel means: a BGR model sees red in channel 2
    manifest = {"id": "cls", "task": "classification",
                "input": {"color": "bgr", "resize": "stretch", "size": [16, 16], "intensity": {"scale": 1 / 255}},
                "output": {"labels": ["blue", "green", "red"], "activation": "none"}}
    folder = F.write_plugin(tmp_path / "cls", F.classifier(3, 3, size=[16, 16]), manifest)
    img = np.zeros((1, 20, 30, 3), np.uint8)
    img[..., 0] = 255  # pure red in RGB
    result = predict(folder, ImageVolume(img), settings=Settings())
    assert result.top[0].label == "red" and result.top[0].score == pytest.approx(1.0)
    assert result.scores[:2] == pytest.approx([0.0, 0.0])


def test_minus127_over_128_scaling(tmp_path):
    # (x - 127) / 128 as scale + offset; identity model; output range [-1, 1] maps back to 0..255 exactly
    manifest = {"id": "res", "task": "restoration",
                "input": {"color": "gray", "resize": "none", "intensity": {"scale": 1 / 128, "offset": -127 / 128}},
                "output": {"range": [-1, 1]}}
    folder = F.write_plugin(tmp_path / "res", F.identity(["N", 1, "H", "W"]), manifest)
    engine = Engine(folder, settings=Settings())
    plane = np.array([[0, 127, 255, 31]], np.uint8)
    prep = engine.prepare_plane(ImageVolume(plane), 0)
    np.testing.assert_allclose(prep.tensor[0, 0, 0], [-127 / 128, 0.0, 1.0, -0.75], atol=1e-6)
    result = predict(engine, ImageVolume(plane))
    assert result.image.data.dtype == np.uint8
    np.testing.assert_array_equal(result.image.data[0], plane)


def test_raw_0_255_inputs_float_and_uint8(tmp_path):
    # threshold at 127.5 raw units: no intensity section at all
    proto = F.threshold_segmenter(1, threshold=127.5)
    folder = _seg(tmp_path, proto, {"color": "gray", "resize": "none"})
    engine = Engine(folder, settings=Settings())
    assert engine.prepare_plane(_square_image(), 0).tensor.max() == 200.0
    np.testing.assert_array_equal(predict(engine, _square_image()).mask[0], _expected_mask())
    # a graph with a uint8 input: the tensor is uint8, values untouched
    nodes = [helper.make_node("Cast", ["img"], ["f"], to=1)] + list(proto.graph.node)
    for n in nodes[1:]:
        n.input[:] = ["f" if i == "input" else i for i in n.input]
    p8 = F.model(nodes, [F.vi("img", ["N", 1, "H", "W"], elem=2)], list(proto.graph.output),
                 list(proto.graph.initializer))
    folder8 = _seg(tmp_path, p8, {"color": "gray", "resize": "none", "dtype": "uint8"}, name="seg8")
    engine8 = Engine(folder8, settings=Settings())
    t = engine8.prepare_plane(_square_image(), 0).tensor
    assert t.dtype == np.uint8 and t.max() == 200
    np.testing.assert_array_equal(predict(engine8, _square_image()).mask[0], _expected_mask())


def test_letterbox_topleft_114_and_box_inversion(tmp_path):
    # yolov8 output [1, 4+C, N] with two known boxes (cx, cy, w, h in model pixels of a 640x640 input)
    boxes = np.array([[320.0, 100.0, 200.0, 100.0],   # class 1, score 0.9
                      [100.0, 200.0, 50.0, 60.0]])    # class 0, score 0.8
    out = np.zeros((1, 6, 3), np.float32)
    out[0, :4, :2] = boxes.T
    out[0, 4 + 1, 0] = 0.9
    out[0, 4 + 0, 1] = 0.8
    out[0, 4 + 0, 2] = 0.1  # below the threshold
    manifest = {"id": "det", "task": "detection",
                "input": {"color": "rgb", "resize": "letterbox_topleft", "pad_value": 114,
                          "intensity": {"scale": 1 / 255}},
                "output": {"format": "yolov8", "labels": ["cat", "dog"], "score_threshold": 0.25}}
    folder = F.write_plugin(tmp_path / "det", F.constant_output([1, 3, 640, 640], {"out": out}), manifest)
    image = ImageVolume(np.full((1, 320, 480, 3), 10, np.uint8))  # scale 640/480 = 4/3, content 427x640
    engine = Engine(folder, settings=Settings())
    prep = engine.prepare_plane(image, 0)
    assert prep.geometry.pad == (0, 0) and prep.geometry.content_hw == (427, 640)
    assert prep.tensor[0, :, 500, 10] == pytest.approx(114 / 255)
    assert prep.tensor[0, :, 10, 10] == pytest.approx(10 / 255)
    result = predict(engine, image)
    assert [d.label for d in result.detections] == ["dog", "cat"]
    r = 640 / 480
    dog = np.array([320 - 100, 100 - 50, 320 + 100, 100 + 50]) / np.array([r, 427 / 320, r, 427 / 320])
    np.testing.assert_allclose(result.detections[0].box, dog, atol=0.01)
    cat = np.array([75, 170, 125, 230]) / np.array([r, 427 / 320, r, 427 / 320])
    np.testing.assert_allclose(result.detections[1].box, cat, atol=0.01)
    assert result.detections[0].score == pytest.approx(0.9)


def test_centered_letterbox_box_inversion_clipped(tmp_path):
    out = np.zeros((1, 5, 1), np.float32)
    out[0, :, 0] = [320, 320, 700, 100, 0.95]  # wider than the image: clipped to it
    manifest = {"id": "det", "task": "detection",
                "input": {"color": "rgb", "resize": "letterbox", "pad_value": 114},
                "output": {"format": "yolov8", "labels": ["x"]}}
    folder = F.write_plugin(tmp_path / "det", F.constant_output([1, 3, 640, 640], {"out": out}), manifest)
    image = ImageVolume(np.zeros((1, 320, 640, 3), np.uint8))  # content 320x640, 160 px bands top and bottom
    result = predict(folder, image, settings=Settings())
    np.testing.assert_allclose(result.detections[0].box, [0, 270 - 160, 640, 370 - 160], atol=0.01)


def test_boxes_scores_with_background_column(tmp_path):
    boxes = np.array([[[0.1, 0.1, 0.5, 0.5], [0.5, 0.5, 0.9, 0.9], [0.2, 0.6, 0.3, 0.7]]], np.float32)
    scores = np.array([[[0.1, 0.85, 0.05],    # face
                        [0.2, 0.1, 0.7],      # hand
                        [0.9, 0.05, 0.05]]],  # background wins, face/hand below threshold
                      np.float32)
    manifest = {"id": "det", "task": "detection", "input": {"color": "rgb", "resize": "stretch"},
                "output": {"format": "boxes_scores", "boxes": "boxes", "scores": "scores", "normalized": True,
                           "background_class": 0, "labels": ["background", "face", "hand"]}}
    folder = F.write_plugin(tmp_path / "det", F.constant_output([1, 3, 300, 300], {"boxes": boxes, "scores": scores}),
                            manifest)
    image = ImageVolume(np.zeros((1, 200, 400, 3), np.uint8))
    result = predict(folder, image, settings=Settings())
    assert [(d.index, d.label) for d in result.detections] == [(1, "face"), (2, "hand")]
    np.testing.assert_allclose(result.detections[0].box, [40, 20, 200, 100], atol=0.01)
    np.testing.assert_allclose(result.detections[1].box, [200, 100, 360, 180], atol=0.01)


def _sr_model():
    nodes = [helper.make_node("Resize", ["y", "", "scales"], ["up"], mode="nearest")]
    return F.model(nodes, [F.vi("y", [1, 1, 224, 224])], [F.vi("up", [1, 1, 672, 672])],
                   [F.const("scales", np.array([1, 1, 3, 3], np.float32))])


def test_fixed_224_luma_x3_super_resolution_on_larger_image(tmp_path):
    manifest = {"id": "sr", "task": "restoration",
                "input": {"color": "luma", "resize": "tile", "tile": {"size": 224, "overlap": 32},
                          "intensity": {"scale": 1 / 255}},
                "output": {"scale": 3, "range": [0, 1]}}
    folder = F.write_plugin(tmp_path / "sr", _sr_model(), manifest)
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:300, 0:400]
    rgb = np.stack([(xx * 0.6) % 256, (yy * 0.8) % 256, np.full_like(xx, 90)], axis=2)
    rgb = np.clip(rgb + rng.normal(0, 3, rgb.shape), 0, 255).astype(np.uint8)
    engine = Engine(folder, settings=Settings())
    steps = []
    result = predict(engine, ImageVolume(rgb[None]), progress=lambda d, t, m: steps.append((d, t)))
    assert steps[-1][0] == steps[-1][1] == 4  # 2 x 2 tiles of 224 over 300 x 400
    out = result.image.data[0]
    assert out.shape == (900, 1200, 3) and out.dtype == np.uint8 and result.scale == 3
    luma_in = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    luma_out = out.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    expected = np.repeat(np.repeat(luma_in, 3, axis=0), 3, axis=1)
    assert np.abs(luma_out - expected).max() < 2.0  # nearest x3 of Y, seamless across tiles
    assert result.image.spacing[1:] == pytest.approx((1 / 3, 1 / 3))


def test_outputs_already_sigmoided_in_graph(tmp_path):
    # one channel: sigmoid((x - 0.5) * 10) inside the graph; activation none, threshold 0.5
    proto = F.affine(["N", 1, "H", "W"], 10.0, -5.0, sigmoid=True)
    folder = _seg(tmp_path, proto, {"color": "gray", "resize": "none", "intensity": {"scale": 1 / 255}},
                  {"activation": "none", "threshold": 0.5, "classes": [{"name": "lesion"}]})
    result = predict(folder, _square_image(), settings=Settings())
    np.testing.assert_array_equal(result.mask[0], _expected_mask())
    assert [(c.value, c.name, c.pixels) for c in result.classes] == [(1, "lesion", 600)]
