"""`workbench models import` on graphs built here: every guessing rule, every weak-guess flag, every refusal."""
from __future__ import annotations

import hashlib

import cv2
import numpy as np
import onnx_factory as F
import pytest
from onnx import helper

from workbench.cli import main
from workbench.core.image import ImageVolume
from workbench.core.settings import Settings
from workbench.inference.importer import ImportRefused, propose, write_plugin_folder
from workbench.inference.run import predict
from workbench.inference.spec import load_plugin

pytestmark = pytest.mark.usefixtures("fresh_session_cache")


def _save(tmp_path, proto, name="model.onnx", meta=None, producer=None):
    for k, v in (meta or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    if producer is not None:
        proto.producer_name = producer
    path = tmp_path / name
    path.write_bytes(proto.SerializeToString())
    return path


def _png(path, img):
    cv2.imwrite(str(path), img if img.ndim == 2 else img[..., ::-1])
    return path


def _square(h=60, w=80, value=200, color=False):
    img = np.zeros((h, w), np.uint8)
    img[10:30, 20:50] = value
    return np.repeat(img[..., None], 3, axis=2) if color else img


def _d(proposal, field):
    return next(d for d in proposal.decisions if d.field == field)


# -- input rules ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_layout_and_colour_count(tmp_path, layout):
    p = propose(_save(tmp_path, F.threshold_segmenter(3, layout=layout, out_layout=layout)))
    assert p.manifest["input"]["layout"] == layout and p.manifest["output"]["layout"] == layout
    assert p.manifest["input"]["color"] == "rgb" and not _d(p, "input.layout").weak
    assert _d(p, "input.color").weak  # RGB vs BGR needs a sample
    p1 = propose(_save(tmp_path, F.threshold_segmenter(1), "gray.onnx"))
    assert p1.manifest["input"]["color"] == "gray" and not _d(p1, "input.color").weak


def test_ambiguous_layout_is_weak(tmp_path):
    p = propose(_save(tmp_path, F.identity([1, 3, 8, 3])))
    assert p.manifest["input"]["layout"] == "NCHW" and _d(p, "input.layout").weak


def test_fixed_size_and_dynamic_multiple_of(tmp_path):
    p = propose(_save(tmp_path, F.threshold_segmenter(1, size=[48, 64])))
    assert p.manifest["input"]["size"] == [48, 64] and p.manifest["input"]["resize"] == "stretch"
    nodes = [helper.make_node("Reshape", ["input", "blocks"], ["blk"]),
             helper.make_node("Shape", ["input"], ["shp"]),
             helper.make_node("Reshape", ["blk", "shp"], ["back"]),
             helper.make_node("Concat", ["back", "back"], ["output"], axis=1)]
    proto = F.model(nodes, [F.vi("input", ["N", 1, "H", "W"])], [F.vi("output", ["N", 2, "H", "W"])],
                    [F.const("blocks", np.array([1, -1, 16, 16], np.int64))])
    p = propose(_save(tmp_path, proto, "m16.onnx"))
    assert p.manifest["input"]["multiple_of"] == 16 and p.manifest["input"]["resize"] == "none"
    assert "fails at sizes not a multiple of 16" in _d(p, "input.multiple_of").why


def test_uint8_and_float16_dtypes(tmp_path):
    nodes = [helper.make_node("Cast", ["img"], ["f"], to=1), helper.make_node("Identity", ["f"], ["out"])]
    p = propose(_save(tmp_path, F.model(nodes, [F.vi("img", ["N", 1, "H", "W"], elem=2)],
                                        [F.vi("out", ["N", 1, "H", "W"])]), "u8.onnx"),
                sample=_png(tmp_path / "s.png", _square()))
    assert p.manifest["input"]["dtype"] == "uint8" and p.manifest["input"]["intensity"] == {}
    assert not _d(p, "input.intensity").weak and p.ranking is None
    p16 = propose(_save(tmp_path, F.identity(["N", 1, "H", "W"]), "f16.onnx"))
    assert p16.manifest["input"]["dtype"] == "float32"
    proto = F.model([helper.make_node("Identity", ["x"], ["y"])], [F.vi("x", ["N", 1, "H", "W"], elem=10)],
                    [F.vi("y", ["N", 1, "H", "W"], elem=10)])
    assert propose(_save(tmp_path, proto, "h.onnx")).manifest["input"]["dtype"] == "float16"


def test_volumetric_input_goes_to_the_3d_rules(tmp_path):
    """5-D inputs are imported as 3-D models (tests/unit/test_importer_volume.py has the rules)."""
    p = propose(_save(tmp_path, F.identity([1, 1, 8, 16, 16])))
    assert p.manifest["input"]["layout"] == "NCDHW" and p.manifest["input"]["tile"]["size"] == [8, 16, 16]


# -- task and output rules ---------------------------------------------------------------------------------
def test_classification_logits_probabilities_and_imagenet(tmp_path):
    p = propose(_save(tmp_path, F.classifier(3, 4, size=[16, 16], weights=np.eye(3, 4) * 20 - 5)))
    assert p.manifest["task"] == "classification" and p.manifest["output"]["activation"] == "softmax"
    assert _d(p, "output.activation").weak and _d(p, "output.labels").weak
    soft = F.classifier(1, 3, size=[8, 8])
    soft.graph.node.append(helper.make_node("Softmax", ["logits"], ["prob"], axis=1))
    soft.graph.output[0].name = "prob"
    p = propose(_save(tmp_path, soft, "soft.onnx"))
    assert p.manifest["output"]["activation"] == "none" and not _d(p, "output.activation").weak
    p = propose(_save(tmp_path, F.classifier(3, 1000, size=[32, 32], weights=np.zeros((3, 1000))), "in.onnx",
                      producer="pytorch"))
    assert p.manifest["output"]["labels"][:2] == ["tench", "goldfish"] and _d(p, "output.labels").weak
    assert p.manifest["input"]["intensity"]["mean"] == [0.485, 0.456, 0.406]  # torchvision convention


def test_segmentation_probabilities_multilabel_strided_and_voc(tmp_path):
    p = propose(_save(tmp_path, F.conv_net(1, [4], 3, final="sigmoid")))
    out = p.manifest["output"]
    assert p.manifest["task"] == "segmentation" and out["activation"] == "none" and out["multi_label"] is True
    assert [c["name"] for c in out["classes"]] == ["class 1", "class 2", "class 3"]
    strided = F.threshold_segmenter(1)
    strided.graph.node[-1].CopyFrom(helper.make_node("AveragePool", ["cat"], ["output"], kernel_shape=[4, 4],
                                                     strides=[4, 4]))
    p = propose(_save(tmp_path, strided, "s4.onnx"))
    assert p.manifest["task"] == "segmentation" and "1/4 of the input" in _d(p, "task").why
    p = propose(_save(tmp_path, F.conv_net(3, [], 21), "voc.onnx"))
    classes = [c["name"] for c in p.manifest["output"]["classes"]]
    assert classes[0] == "background" and classes[15] == "person" and _d(p, "output.classes").weak


def test_segmentation_nhwc_out_and_nhw_class_ids(tmp_path):
    p = propose(_save(tmp_path, F.threshold_segmenter(1, out_layout="NHWC", layout="NCHW")))
    assert p.manifest["output"]["layout"] == "NHWC"
    nodes = [helper.make_node("ReduceMax", ["input", "ax"], ["m"], keepdims=0),
             helper.make_node("Cast", ["m"], ["output"], to=7)]
    proto = F.model(nodes, [F.vi("input", ["N", 1, "H", "W"])], [F.vi("output", ["N", "H", "W"], elem=7)],
                    [F.const("ax", np.array([1], np.int64))])
    p = propose(_save(tmp_path, proto, "ids.onnx"))
    assert p.manifest["output"]["layout"] == "NHW"


def _yolo_out(rows: np.ndarray, k_first: bool) -> np.ndarray:
    return (rows.T if k_first else rows)[None].astype(np.float32)


def test_detection_yolov8_and_coco(tmp_path):
    rows = np.zeros((200, 84), np.float32)
    rows[:, :4] = [320, 320, 50, 50]
    rows[0, 4 + 16] = 0.9
    p = propose(_save(tmp_path, F.constant_output([1, 3, 640, 640], {"output0": _yolo_out(rows, True)})))
    out = p.manifest["output"]
    assert p.manifest["task"] == "detection" and out["format"] == "yolov8" and out["labels"][16] == "dog"
    assert _d(p, "output.format").weak and _d(p, "output.labels").weak and _d(p, "input.resize").weak
    assert p.manifest["input"]["resize"] == "letterbox" and p.manifest["input"]["pad_value"] == 114


def test_detection_yolov5_decoded_vs_yolox_offsets_by_running(tmp_path):
    rng = np.random.default_rng(0)
    n = 16 * 16 + 8 * 8 + 4 * 4  # one row per cell of strides 8/16/32 at 128x128
    decoded = np.zeros((n, 7), np.float32)
    decoded[:, :4] = rng.uniform(10, 120, (n, 4))
    decoded[:, 4:] = rng.uniform(0, 1, (n, 3))
    offsets = decoded.copy()
    offsets[:, :4] = rng.uniform(-1, 1.5, (n, 4))
    p5 = propose(_save(tmp_path, F.constant_output([1, 3, 128, 128], {"out": decoded[None]}), "v5.onnx"))
    px = propose(_save(tmp_path, F.constant_output([1, 3, 128, 128], {"out": offsets[None]}), "x.onnx"))
    assert p5.manifest["output"]["format"] == "yolov5" and "decoded pixels" in _d(p5, "output.format").why
    assert px.manifest["output"]["format"] == "yolox" and px.manifest["output"]["strides"] == [8, 16, 32]
    assert px.manifest["input"]["resize"] == "letterbox_topleft"


@pytest.mark.parametrize("normalized", [True, False])
def test_detection_boxes_scores_normalised_or_pixels_and_background(tmp_path, normalized):
    boxes = np.array([[[0.1, 0.1, 0.5, 0.5], [0.5, 0.5, 0.9, 0.9]]], np.float32) * (1 if normalized else 300)
    scores = np.array([[[0.1, 0.9], [0.8, 0.2]]], np.float32)
    p = propose(_save(tmp_path, F.constant_output([1, 3, 300, 300], {"boxes": boxes, "scores": scores})))
    out = p.manifest["output"]
    assert out["format"] == "boxes_scores" and out["boxes"] == "boxes" and out["scores"] == "scores"
    assert out["normalized"] is normalized and out["background_class"] == 0 and out["box_format"] == "xyxy"
    assert _d(p, "output.background_class").weak and p.manifest["input"]["resize"] == "stretch"


def test_restoration_scale_luma_and_residual(tmp_path):
    sr = F.model([helper.make_node("Resize", ["x", "", "s"], ["y"], mode="nearest")], [F.vi("x", ["N", 1, "H", "W"])],
                 [F.vi("y", ["N", 1, "H2", "W2"])], [F.const("s", np.array([1, 1, 2, 2], np.float32))])
    path = _save(tmp_path, sr)
    p = propose(path)
    assert p.manifest["task"] == "restoration" and p.manifest["output"]["scale"] == 2
    assert p.manifest["input"]["color"] == "luma" and _d(p, "input.color").weak  # no sample: a guess
    colour = _png(tmp_path / "c.png", _square(color=True) // 2 + 20)
    p = propose(path, sample=colour)
    assert p.manifest["input"]["color"] == "luma" and not _d(p, "input.color").weak
    p = propose(path, sample=_png(tmp_path / "g.png", _square()))
    assert p.manifest["input"]["color"] == "gray"
    noise = propose(_save(tmp_path, F.affine(["N", 3, "H", "W"], 0.001, 0.0), "res.onnx"),
                    sample=colour)
    assert noise.manifest["task"] == "restoration" and noise.manifest["output"]["residual"] is True


def test_same_size_map_told_apart_by_fidelity(tmp_path):
    sample = _png(tmp_path / "s.png", _square())
    ident = propose(_save(tmp_path, F.identity(["N", 1, "H", "W"]), "id.onnx"), sample=sample)
    sig = propose(_save(tmp_path, F.affine(["N", 1, "H", "W"], 10.0, -5.0, sigmoid=True), "sig.onnx"), sample=sample)
    assert ident.manifest["task"] == "restoration" and sig.manifest["task"] == "segmentation"
    assert sig.manifest["output"]["activation"] == "none" and _d(sig, "task").weak


# -- exporter metadata and labels ----------------------------------------------------------------------
def _ultra(tmp_path, task="detect"):
    rows = np.zeros((100, 6), np.float32)
    rows[:, :4] = [320, 320, 40, 40]
    rows[0, 5] = 0.9
    meta = {"author": "Ultralytics", "task": task, "stride": "32", "imgsz": "[640, 640]",
            "names": "{0: 'cell', 1: 'debris'}"}
    return _save(tmp_path, F.constant_output(["N", 3, "H", "W"], {"output0": _yolo_out(rows, True)}), "u.onnx",
                 meta=meta)


def test_ultralytics_metadata(tmp_path):
    p = propose(_ultra(tmp_path))
    inp, out = p.manifest["input"], p.manifest["output"]
    assert out["format"] == "yolov8" and out["labels"] == ["cell", "debris"] and not _d(p, "output.format").weak
    assert inp["size"] == [640, 640] and inp["resize"] == "letterbox" and inp["pad_value"] == 114
    assert inp["intensity"] == {"scale": 1 / 255} and not _d(p, "input.intensity").weak
    (tmp_path / "seg").mkdir()
    with pytest.raises(ImportRefused, match="'segment'"):
        propose(_ultra(tmp_path / "seg", "segment"))


def test_openvino_metadata_bgr_raw_and_labels_key(tmp_path):
    proto = F.threshold_segmenter(3, threshold=127.5)
    p = propose(_save(tmp_path, proto, meta={"conversion_parameters": "--input_model x", "labels": '["bg", "fg"]'}))
    assert p.manifest["input"]["color"] == "bgr" and p.manifest["input"]["intensity"] == {}
    assert [c["name"] for c in p.manifest["output"]["classes"]] == ["bg", "fg"]


def test_labels_file_and_count_mismatch(tmp_path):
    path = _save(tmp_path, F.classifier(3, 3, size=[16, 16]))
    (tmp_path / "l.txt").write_text("a\nb\nc\n")
    p = propose(path, labels=tmp_path / "l.txt")
    assert p.manifest["output"]["labels"] == ["a", "b", "c"] and not _d(p, "output.labels").weak
    (tmp_path / "l2.txt").write_text("a\nb\n")
    with pytest.raises(Exception, match="2 labels, the model outputs 3 classes"):
        propose(path, labels=tmp_path / "l2.txt")


# -- normalisation ranking --------------------------------------------------------------------------------
def test_ranking_picks_raw_for_a_raw_model_and_unit_for_a_unit_model(tmp_path):
    sample = _png(tmp_path / "s.png", _square())
    raw = propose(_save(tmp_path, F.threshold_segmenter(1, threshold=127.5), "raw.onnx"), sample=sample)
    assert raw.ranking.chosen.key == "raw" and raw.manifest["input"]["intensity"] == {}
    assert "one class everywhere" in next(c for c in raw.ranking.candidates if c.key == "unit").note
    unit = propose(_save(tmp_path, F.threshold_segmenter(1), "unit.onnx"), sample=sample)
    assert unit.ranking.chosen.key == "unit" and unit.manifest["input"]["intensity"] == {"scale": 1 / 255}
    assert "saturated" in next(c for c in unit.ranking.candidates if c.key == "raw").note
    assert _d(unit, "input.intensity").weak  # [-1,1] and ImageNet tie on this sample: said so


def test_ranking_restoration_fidelity_and_rgb_bgr_candidates(tmp_path):
    relu = F.model([helper.make_node("Relu", ["x"], ["y"])], [F.vi("x", ["N", 3, "H", "W"])],
                   [F.vi("y", ["N", 3, "H", "W"])])
    p = propose(_save(tmp_path, relu), sample=_png(tmp_path / "c.png", _square(color=True) // 2 + 60))
    ranking = p.ranking
    assert ranking.chosen.key == "unit" and p.manifest["output"]["range"] == [0.0, 1.0]
    by_key = {(c.key, c.color): c.score for c in ranking.candidates}
    assert by_key[("signed", "rgb")] < by_key[("unit", "rgb")] - 3  # negative half clipped: lower PSNR
    assert {c.color for c in ranking.candidates} == {"rgb", "bgr"}


# -- refusals ---------------------------------------------------------------------------------------------
def _refusals(tmp_path):
    (tmp_path / "text.onnx").write_bytes(b"definitely not a protobuf \xff\xfe")
    broken = F.model([helper.make_node("Add", ["x", "missing"], ["y"])], [F.vi("x", [1, 1, 4, 4])],
                     [F.vi("y", [1, 1, 4, 4])])
    custom = F.model([helper.make_node("Foo", ["x"], ["y"], domain="com.acme")], [F.vi("x", [1, 1, 4, 4])],
                     [F.vi("y", [1, 1, 4, 4])], domains={"com.acme": 1})
    notask = F.constant_output([1, 3, 64, 64], {"o": np.zeros((2, 3), np.float32)})
    twoch = F.identity([1, 2, 16, 16])
    multi = F.model([helper.make_node("Add", ["a", "b"], ["y"])], [F.vi("a", [1, 1, 4, 4]), F.vi("b", [1, 1, 4, 4])],
                    [F.vi("y", [1, 1, 4, 4])])
    return [(tmp_path / "text.onnx", "not an ONNX file"),
            (_save(tmp_path, broken, "broken.onnx"), "cannot load the graph"),
            (_save(tmp_path, custom, "custom.onnx"), "custom-op domain 'com.acme'"),
            (_save(tmp_path, notask, "notask.onnx"), "no output fits a task"),
            (_save(tmp_path, twoch, "twoch.onnx"), "2 channels"),
            (_save(tmp_path, multi, "multi.onnx"), "only models with one image input"),
            (tmp_path / "absent.onnx", "model file not found")]


def test_refusals_one_line_exit_2_nothing_written(tmp_path, capsys):
    for path, message in _refusals(tmp_path):
        target = tmp_path / f"out-{path.stem}"
        assert main(["models", "import", str(path), "-o", str(target)]) == 2, path
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
        assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out-")]  # no staging folder left


def test_forced_task_that_fits_no_output_is_refused(tmp_path):
    with pytest.raises(ImportRefused, match="--task detection: no output fits it"):
        propose(_save(tmp_path, F.threshold_segmenter(1)), task="detection")


def test_existing_target_refused_and_failed_smoke_leaves_nothing(tmp_path):
    p = propose(_save(tmp_path, F.threshold_segmenter(1)))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    with pytest.raises(Exception, match="not an empty folder"):
        write_plugin_folder(p, tmp_path / "full")
    bad = {**p.manifest, "output": {**p.manifest["output"], "name": "nope"}}  # validates, cannot run
    with pytest.raises(Exception, match="does not run"):
        write_plugin_folder(p, tmp_path / "bad", manifest=bad)
    assert not (tmp_path / "bad").exists() and (tmp_path / "full" / "x").read_text() == "keep"
    assert not [q for q in tmp_path.iterdir() if q.name.startswith(".bad")]


# -- the command, end to end ---------------------------------------------------------------------------------
def test_cli_import_writes_a_plugin_that_runs(tmp_path, capsys):
    model = _save(tmp_path, F.threshold_segmenter(3, layout="NHWC", out_layout="NCHW"), "net.onnx")
    sample = _png(tmp_path / "scan.png", _square(color=True))
    (tmp_path / "labels.txt").write_text("background\ntumour\n")
    target = tmp_path / "plugins" / "tumour"
    assert main(["models", "import", str(model), "-o", str(target), "--sample", str(sample), "--labels",
                 str(tmp_path / "labels.txt"), "--name", "Tumour finder"]) == 0
    text = capsys.readouterr().out
    assert "input.layout = NHWC: dim 3 is 3 (channels last)" in text
    assert "normalisation ranking by fraction of pixels" in text and "* [0,1] RGB" in text
    assert f"wrote {target}/plugin.yaml (segmentation, id tumour-finder)" in text
    spec = load_plugin(target)
    assert spec.id == "tumour-finder" and spec.name == "Tumour finder"
    assert spec.sha256 == hashlib.sha256(model.read_bytes()).hexdigest()
    assert [c.name for c in spec.output.classes] == ["background", "tumour"]
    assert spec.sample_path.name == "sample.png"
    result = predict(target, ImageVolume(_square(color=True)[None]), settings=Settings())
    assert result.classes[0].name == "tumour" and result.classes[0].pixels == 600
    assert main(["models", "check", str(target)]) == 0


def test_cli_large_label_list_goes_to_labels_file(tmp_path, capsys):
    model = _save(tmp_path, F.classifier(3, 1000, size=[32, 32], weights=np.zeros((3, 1000))), producer="pytorch")
    assert main(["models", "import", str(model), "-o", str(tmp_path / "inet")]) == 0
    assert "WEAK output.labels" in capsys.readouterr().out
    spec = load_plugin(tmp_path / "inet")
    assert spec.output.labels_file == "labels.txt" and len(spec.labels) == 1000


def test_rgb_bgr_tie_is_a_weak_colour_guess(tmp_path):
    # the model averages the channels: RGB and BGR score the same, so the colour order is a guess
    p = propose(_save(tmp_path, F.threshold_segmenter(3)), sample=_png(tmp_path / "c.png", _square(color=True)))
    assert p.manifest["input"]["color"] == "rgb" and _d(p, "input.color").weak
    assert "tied with" in _d(p, "input.color").why


def test_large_sample_is_probed_at_most_1024_px(tmp_path):
    big = np.zeros((1500, 2100), np.uint8)
    big[300:900, 600:1500] = 200
    p = propose(_save(tmp_path, F.threshold_segmenter(1)), sample=_png(tmp_path / "big.png", big))
    assert p.probe_image.height == 731 and p.probe_image.width == 1024
    assert p.image.height == 1500 and p.ranking.chosen.result.shape == (731, 1024)


def test_more_weak_guesses_dynamic_sizes_box_format_and_bad_metadata_labels(tmp_path):
    p = propose(_save(tmp_path, F.classifier(3, 4), "dyn.onnx"))  # dynamic H, W
    assert p.manifest["input"]["size"] == [224, 224] and _d(p, "input.size").weak
    boxes = np.array([[[50, 50, 20, 20], [100, 80, 30, 40]]], np.float32)  # cx, cy, w, h: x2 < x1
    scores = np.array([[[0.9], [0.8]]], np.float32)
    p = propose(_save(tmp_path, F.constant_output([1, 3, 200, 200], {"boxes": boxes, "scores": scores}), "c.onnx"))
    assert p.manifest["output"]["box_format"] == "cxcywh" and _d(p, "output.box_format").weak
    p = propose(_save(tmp_path, F.classifier(3, 3, size=[16, 16]), "meta.onnx", meta={"names": "['a', 'b']"}))
    weak = [d for d in p.decisions if d.field == "output.labels" and d.weak]
    assert weak and "has 2 labels, the model 3 classes: ignored" in weak[0].why


def test_ultralytics_classify_and_a_bioimageio_folder_note(tmp_path):
    meta = {"author": "Ultralytics", "task": "classify", "stride": "1", "imgsz": "[32, 32]",
            "names": "{0: 'benign', 1: 'malignant'}"}
    p = propose(_save(tmp_path, F.classifier(3, 2, weights=np.eye(3, 2)), meta=meta))
    assert p.manifest["task"] == "classification" and p.manifest["output"]["labels"] == ["benign", "malignant"]
    assert p.manifest["input"]["size"] == [32, 32] and "Ultralytics metadata task 'classify'" in _d(p, "task").why
    (tmp_path / "rdf.yaml").write_text("type: model\n")
    assert _d(propose(tmp_path / "model.onnx"), "meta.bioimageio").weak


def test_a_smoothing_denoiser_on_a_noisy_sample_is_restoration(tmp_path):
    # 3x3 box filter (zero padding): far from the noisy sample (PSNR < 30 dB) but a clean ramp comes back
    w = np.full((1, 1, 3, 3), 1 / 9, np.float32)
    proto = F.model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], [F.vi("x", ["N", 1, "H", "W"])],
                    [F.vi("y", ["N", 1, "H", "W"])], [F.const("w", w)])
    rng = np.random.default_rng(0)
    noisy = np.clip(_square(96, 128).astype(np.float32) + rng.normal(0, 40, (96, 128)), 0, 255).astype(np.uint8)
    p = propose(_save(tmp_path, proto), sample=_png(tmp_path / "n.png", noisy))
    assert p.manifest["task"] == "restoration" and p.manifest["output"]["residual"] is False
    assert "a clean ramp comes back as a ramp" in _d(p, "task").why
