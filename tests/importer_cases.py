"""The quirk models of tests/unit/test_inference_quirks.py with their hand-written manifests, for measuring
the importer: which fields does ``models import`` get right unaided, with the quirk's sample and without?

Used by tests/unit/test_importer_quirks.py and scripts/importer_table.py (the table in docs/PLUGINS.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import onnx_factory as F
from onnx import helper

SEG_OUT = {"classes": [{"name": "background"}, {"name": "fg"}]}


def square(h=60, w=80, box=(10, 30, 20, 50), value=200, color=False) -> np.ndarray:
    img = np.zeros((h, w), np.uint8)
    y0, y1, x0, x1 = box
    img[y0:y1, x0:x1] = value
    return np.repeat(img[..., None], 3, axis=2) if color else img


def _multiple_32():
    nodes = [helper.make_node("Shape", ["input"], ["shp"]),
             helper.make_node("Reshape", ["input", "blocks"], ["blk"]),
             helper.make_node("Reshape", ["blk", "shp"], ["back"]),
             helper.make_node("Sub", ["back", "half"], ["d"]),
             helper.make_node("Neg", ["d"], ["nd"]),
             helper.make_node("Concat", ["nd", "d"], ["output"], axis=1)]
    return F.model(nodes, [F.vi("input", ["batch", 1, "height", "width"])],
                   [F.vi("output", ["batch", 2, "height", "width"])],
                   [F.const("blocks", np.array([1, -1, 32, 32], np.int64)), F.const("half", np.float32(0.5))])


def _ir3():
    nodes = [helper.make_node("Mul", ["data", "k"], ["fg"]), helper.make_node("Sub", ["fg", "t"], ["fg2"]),
             helper.make_node("Neg", ["fg2"], ["bg"]), helper.make_node("Concat", ["bg", "fg2"], ["prob"], axis=1)]
    return F.model(nodes, [F.vi("data", [1, 1, 60, 80]), F.vi("k", []), F.vi("t", [])], [F.vi("prob", [1, 2, 60, 80])],
                   [F.const("k", np.float32(1.0)), F.const("t", np.float32(0.5))], ir_version=3, opset=9)


def _uint8_seg():
    proto = F.threshold_segmenter(1, threshold=127.5)
    nodes = [helper.make_node("Cast", ["img"], ["f"], to=1)] + list(proto.graph.node)
    for n in nodes[1:]:
        n.input[:] = ["f" if i == "input" else i for i in n.input]
    return F.model(nodes, [F.vi("img", ["N", 1, "H", "W"], elem=2)], list(proto.graph.output),
                   list(proto.graph.initializer))


def _yolov8_out():
    out = np.zeros((1, 6, 3), np.float32)
    out[0, :4, :2] = np.array([[320.0, 100.0, 200.0, 100.0], [100.0, 200.0, 50.0, 60.0]]).T
    out[0, 5, 0], out[0, 4, 1], out[0, 4, 2] = 0.9, 0.8, 0.1
    return out


def _boxes_scores():
    boxes = np.array([[[0.1, 0.1, 0.5, 0.5], [0.5, 0.5, 0.9, 0.9], [0.2, 0.6, 0.3, 0.7]]], np.float32)
    scores = np.array([[[0.1, 0.85, 0.05], [0.2, 0.1, 0.7], [0.9, 0.05, 0.05]]], np.float32)
    return F.constant_output([1, 3, 300, 300], {"boxes": boxes, "scores": scores})


def _sr():
    nodes = [helper.make_node("Resize", ["y", "", "scales"], ["up"], mode="nearest")]
    return F.model(nodes, [F.vi("y", [1, 1, 224, 224])], [F.vi("up", [1, 1, 672, 672])],
                   [F.const("scales", np.array([1, 1, 3, 3], np.float32))])


def _sr_sample() -> np.ndarray:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:300, 0:400]
    rgb = np.stack([(xx * 0.6) % 256, (yy * 0.8) % 256, np.full_like(xx, 90)], axis=2)
    return np.clip(rgb + rng.normal(0, 3, rgb.shape), 0, 255).astype(np.uint8)


def _ramp() -> np.ndarray:
    yy, xx = np.mgrid[0:48, 0:64]
    return ((xx * 4 + yy) % 256).astype(np.uint8)


def _red() -> np.ndarray:
    img = np.zeros((20, 30, 3), np.uint8)
    img[..., 0] = 255
    return img


@dataclass
class Case:
    name: str
    build: Callable[[], Any]
    manifest: dict[str, Any]  # the hand-written manifest of the quirk test (task, input, output)
    sample: Callable[[], np.ndarray]
    volume: bool = False  # a 3-D model: the sample is a (z, y, x) volume, written as NIfTI


def _seg(inp, out=None):
    return {"task": "segmentation", "input": inp, "output": {**SEG_OUT, **(out or {})}}


U = {"scale": 1 / 255}
CASES = [
    Case("NHWC in, NHWC out", lambda: F.threshold_segmenter(3, layout="NHWC", out_layout="NHWC"),
         _seg({"layout": "NHWC", "color": "rgb", "resize": "none", "intensity": U}, {"layout": "NHWC"}),
         lambda: square(color=True)),
    Case("NCHW in, NHWC out", lambda: F.threshold_segmenter(3, layout="NCHW", out_layout="NHWC"),
         _seg({"layout": "NCHW", "color": "rgb", "resize": "none", "intensity": U}, {"layout": "NHWC"}),
         lambda: square(color=True)),
    Case("NHWC in, NCHW out", lambda: F.threshold_segmenter(3, layout="NHWC", out_layout="NCHW"),
         _seg({"layout": "NHWC", "color": "rgb", "resize": "none", "intensity": U}, {"layout": "NCHW"}),
         lambda: square(color=True)),
    Case("output without batch dim", lambda: F.threshold_segmenter(1, batch_out=False),
         _seg({"color": "gray", "resize": "none", "intensity": U}), square),
    Case("symbolic dims, multiple of 32", _multiple_32,
         _seg({"color": "gray", "resize": "none", "multiple_of": 32, "intensity": U}), square),
    Case("initializers listed as inputs (IR 3)", _ir3,
         _seg({"color": "gray", "resize": "none", "intensity": U}), square),
    Case("numeric tensor names", lambda: F.threshold_segmenter(1, name_in="0", name_out="517"),
         _seg({"name": "0", "color": "gray", "resize": "none", "intensity": U}, {"name": "517"}), square),
    Case("BGR classifier", lambda: F.classifier(3, 3, size=[16, 16]),
         {"task": "classification", "input": {"color": "bgr", "resize": "stretch", "size": [16, 16], "intensity": U},
          "output": {"labels": ["blue", "green", "red"], "activation": "none"}}, _red),
    Case("(x - 127) / 128 restoration", lambda: F.identity(["N", 1, "H", "W"]),
         {"task": "restoration", "input": {"color": "gray", "resize": "none",
                                           "intensity": {"scale": 1 / 128, "offset": -127 / 128}},
          "output": {"range": [-1, 1]}}, _ramp),
    Case("raw 0-255 float input", lambda: F.threshold_segmenter(1, threshold=127.5),
         _seg({"color": "gray", "resize": "none"}), square),
    Case("uint8 input", _uint8_seg, _seg({"color": "gray", "resize": "none", "dtype": "uint8"}), square),
    Case("yolov8, top-left letterbox 114", lambda: F.constant_output([1, 3, 640, 640], {"out": _yolov8_out()}),
         {"task": "detection", "input": {"color": "rgb", "resize": "letterbox_topleft", "pad_value": 114,
                                         "intensity": U},
          "output": {"format": "yolov8", "labels": ["cat", "dog"], "score_threshold": 0.25}},
         lambda: np.full((320, 480, 3), 10, np.uint8)),
    Case("yolov8, centred letterbox", lambda: F.constant_output(
        [1, 3, 640, 640], {"out": np.array([[[320], [320], [700], [100], [0.95]]], np.float32)}),
         {"task": "detection", "input": {"color": "rgb", "resize": "letterbox", "pad_value": 114},
          "output": {"format": "yolov8", "labels": ["x"]}}, lambda: np.zeros((320, 640, 3), np.uint8)),
    Case("boxes + scores, background column", _boxes_scores,
         {"task": "detection", "input": {"color": "rgb", "resize": "stretch"},
          "output": {"format": "boxes_scores", "boxes": "boxes", "scores": "scores", "normalized": True,
                     "background_class": 0, "labels": ["background", "face", "hand"]}},
         lambda: np.zeros((200, 400, 3), np.uint8)),
    Case("fixed 224 luma x3 super-resolution", _sr,
         {"task": "restoration", "input": {"color": "luma", "resize": "tile", "tile": {"size": 224, "overlap": 32},
                                           "intensity": U}, "output": {"scale": 3, "range": [0, 1]}}, _sr_sample),
    Case("sigmoid inside the graph", lambda: F.affine(["N", 1, "H", "W"], 10.0, -5.0, sigmoid=True),
         _seg({"color": "gray", "resize": "none", "intensity": U},
              {"activation": "none", "threshold": 0.5, "classes": [{"name": "lesion"}]}), square),
]


def _leaves(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and k not in ("intensity", "tile"):
            out.update(_leaves(v, key + "."))
        else:
            out[key] = v
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) or isinstance(b, dict):
        a, b = a or {}, b or {}
        keys = set(a) | set(b)
        return all(_same(a.get(k), b.get(k)) for k in keys)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-4, abs_tol=1e-6)
        except (TypeError, ValueError):
            return False
    return a == b


def _value(spec_dump: dict[str, Any], key: str) -> Any:
    cur: Any = spec_dump
    for part in key.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def fields_right(case: Case, folder: Path, *, with_sample: bool) -> dict[str, bool]:
    """Import ``case``'s model (unaided: no --task, no --labels) and compare every field its hand-written
    manifest sets, plus the task; class names count as right when the class count is (names cannot be
    guessed)."""
    from workbench.core.errors import WorkbenchError
    from workbench.inference.importer import propose
    from workbench.inference.importer.probe import spec_from_manifest

    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "model.onnx"
    model.write_bytes(case.build().SerializeToString())
    sample = None
    if with_sample and case.volume:
        import nibabel as nib

        sample = folder / "sample.nii.gz"
        nib.save(nib.Nifti1Image(case.sample().transpose(2, 1, 0), np.diag([0.8, 0.8, 2.5, 1.0])), sample)
    elif with_sample:
        img = case.sample()
        sample = folder / "sample.png"
        cv2.imwrite(str(sample), img if img.ndim == 2 else img[..., ::-1])
    try:
        proposal = propose(model, sample=sample)
    except WorkbenchError as exc:  # a refusal counts as every field wrong
        wrong: dict[str, Any] = {k: False for k in ["task", *_leaves({k: v for k, v in case.manifest.items()
                                                                      if k != "task"})]}
        wrong["error"] = str(exc)
        return wrong
    base = {"schema_version": 1, "id": "t", "name": "t", "version": "1", "model": {"file": "m", "sha256": "0" * 64}}
    truth = spec_from_manifest({**base, **case.manifest}).model_dump()
    got = spec_from_manifest({**base, **{k: v for k, v in proposal.manifest.items() if k not in base}}).model_dump()
    result = {"task": truth["task"] == got["task"]}
    for key in _leaves({k: v for k, v in case.manifest.items() if k != "task"}):
        t, g = _value(truth, key), _value(got, key)
        if key == "output.classes":
            result[key] = len(t or []) == len(g or [])
        elif key == "input.intensity":
            result[key] = _same({k: v for k, v in (t or {}).items() if v is not None},
                                {k: v for k, v in (g or {}).items() if v is not None})
        else:
            result[key] = _same(t, g)
    return result


def table(tmp: Path, cases: list[Case] | None = None, what: str = "quirk model") -> str:
    """The markdown table of docs/PLUGINS.md ("Importing a model")."""
    cases = CASES if cases is None else cases
    rows = [f"| {what} | fields set by hand | right without a sample | right with the sample "
            "| missed (with sample) |",
            "|---|---|---|---|---|"]
    totals = [0, 0, 0]
    for i, case in enumerate(cases):
        without = fields_right(case, tmp / f"{i}a", with_sample=False)
        with_s = fields_right(case, tmp / f"{i}b", with_sample=True)
        keys = [k for k in with_s if k != "error"]
        n_wo = sum(bool(without.get(k)) for k in keys)
        n_w = sum(bool(with_s.get(k)) for k in keys)
        totals[0] += len(keys)
        totals[1] += n_wo
        totals[2] += n_w
        missed = ", ".join(f"`{k}`" for k in keys if not with_s.get(k)) or "-"
        rows.append(f"| {case.name} | {len(keys)} | {n_wo} | {n_w} | {missed} |")
    rows.append(f"| **all {len(cases)}** | **{totals[0]}** | **{totals[1]}** | **{totals[2]}** | |")
    return "\n".join(rows)


# -- volumetric (5-D input) models: tests/unit/test_inference_volume.py and test_importer_volume.py --------------
def threshold3d(threshold: float, gain: float, *, layout: str = "NCDHW", dims=("D", "H", "W")):
    """Two-class logits per voxel: class 1 = (x - threshold) * gain, class 0 its negative."""
    axis = 1 if layout == "NCDHW" else 4
    nodes = [helper.make_node("Sub", ["input", "t"], ["d"]), helper.make_node("Mul", ["d", "k"], ["fg"]),
             helper.make_node("Neg", ["fg"], ["bg"]), helper.make_node("Concat", ["bg", "fg"], ["output"], axis=axis)]
    inits = [F.const("t", np.float32(threshold)), F.const("k", np.float32(gain))]
    shape_in = ["N", 1, *dims] if layout == "NCDHW" else ["N", *dims, 1]
    shape_out = ["N", 2, *dims] if layout == "NCDHW" else ["N", *dims, 2]
    return F.model(nodes, [F.vi("input", shape_in)], [F.vi("output", shape_out)], inits)


def pooled3d():
    """A U-Net-like skip: max-pool 2, upsample 2, add to the input -> only even sizes run."""
    nodes = [helper.make_node("MaxPool", ["input"], ["p"], kernel_shape=[2, 2, 2], strides=[2, 2, 2]),
             helper.make_node("Resize", ["p", "", "scales"], ["u"], mode="nearest"),
             helper.make_node("Add", ["input", "u"], ["s"]), helper.make_node("Neg", ["s"], ["n"]),
             helper.make_node("Concat", ["n", "s"], ["output"], axis=1)]
    inits = [F.const("scales", np.array([1, 1, 2, 2, 2], np.float32))]
    return F.model(nodes, [F.vi("input", ["N", 1, "D", "H", "W"])], [F.vi("output", ["N", 2, "D", "H", "W"])],
                   inits)


def ct_volume(shape=(20, 40, 48), seed=0) -> np.ndarray:
    """Air (-1000 HU) around a box of soft tissue (40 HU), a little noise: no voxel near any threshold."""
    vol = np.full(shape, -1000.0, np.float32)
    z, y, x = shape
    vol[z // 4: 3 * z // 4, y // 4: 3 * y // 4, x // 5: 4 * x // 5] = 40.0
    return (vol + np.random.default_rng(seed).normal(0, 15, shape)).astype(np.int16)


def _rand_volume() -> np.ndarray:
    return (np.random.default_rng(0).random((12, 20, 24)) * 255).astype(np.uint8)


def _conv3d(**kw):
    import onnx_factory_v2 as F2

    return F2.conv3d_net(1, 3, **kw)[0]


SEG3 = {"classes": [{"name": "background"}, {"name": "a"}, {"name": "b"}]}
CASES_3D = [
    Case("3-D conv net, whole volume padded to 8", lambda: _conv3d(kernel=3, hidden=4),
         {"task": "segmentation", "input": {"layout": "NCDHW", "color": "gray", "resize": "none", "multiple_of": 8},
          "output": {**SEG3, "layout": "NCDHW"}}, _rand_volume, volume=True),
    Case("3-D 1x1x1 conv, NDHWC tiles", lambda: _conv3d(kernel=1, layout="NDHWC", seed=2),
         {"task": "segmentation", "input": {"layout": "NDHWC", "color": "gray", "resize": "tile",
                                            "tile": {"size": [8, 16, 16], "overlap": [2, 4, 6]}},
          "output": {**SEG3, "layout": "NDHWC"}}, _rand_volume, volume=True),
    Case("3-D fixed 8x32x32 NDHWC, HU threshold", lambda: threshold3d(-500.0, 0.01, layout="NDHWC", dims=(8, 32, 32)),
         {"task": "segmentation", "input": {"layout": "NDHWC", "color": "gray", "resize": "tile",
                                            "tile": {"size": [8, 32, 32], "overlap": [2, 8, 8]}},
          "output": {"layout": "NDHWC", "classes": [{"name": "background"}, {"name": "body"}]}},
         lambda: ct_volume((12, 40, 44), seed=1), volume=True),
    Case("3-D z-scored input, whole volume", lambda: threshold3d(0.0, 10.0),
         {"task": "segmentation", "input": {"layout": "NCDHW", "color": "gray", "resize": "none",
                                            "intensity": {"standardize": True}},
          "output": {"classes": [{"name": "background"}, {"name": "body"}]}}, ct_volume, volume=True),
]


# -- the bundled plugins (real trained models): their own plugin.yaml is the truth -------------------------
REPO = Path(__file__).resolve().parents[1]
BUNDLED = ("brain-tissue", "denoiser", "focal-spot", "quality")


def bundled_right(plugin: str, *, with_sample: bool) -> dict[str, bool]:
    """Import ``plugins/<plugin>/model.onnx`` unaided and compare with the fields of its plugin.yaml."""
    import yaml

    from workbench.core.errors import WorkbenchError
    from workbench.inference.importer import propose
    from workbench.inference.importer.probe import spec_from_manifest

    folder = REPO / "plugins" / plugin
    raw = yaml.safe_load((folder / "plugin.yaml").read_text(encoding="utf-8"))
    labels_file = raw["output"].pop("labels_file", None)
    if labels_file:
        raw["output"]["labels"] = [s.strip() for s in (folder / labels_file).read_text().splitlines() if s.strip()]
    truth_fields = {"task": raw["task"], "input": raw["input"], "output": raw["output"]}
    try:
        proposal = propose(folder / "model.onnx", sample=folder / "sample.png" if with_sample else None)
    except WorkbenchError as exc:
        return {"task": False, "error": str(exc)}  # type: ignore[dict-item]
    base = {"schema_version": 1, "id": "t", "name": "t", "version": "1", "model": {"file": "m", "sha256": "0" * 64}}
    truth = spec_from_manifest({**base, **truth_fields}).model_dump()
    got = spec_from_manifest({**base, **{k: v for k, v in proposal.manifest.items() if k not in base}}).model_dump()
    result = {"task": truth["task"] == got["task"]}
    for key in _leaves({k: v for k, v in truth_fields.items() if k != "task"}):
        if key.split(".")[-1] in ("color",) and key.startswith("output."):
            continue
        t, g = _value(truth, key), _value(got, key)
        if key == "output.classes":
            result[key] = len(t or []) == len(g or [])
        elif key == "input.intensity":
            result[key] = _same({k: v for k, v in (t or {}).items() if v is not None},
                                {k: v for k, v in (g or {}).items() if v is not None})
        else:
            result[key] = _same(t, g)
    return result


def bundled_table() -> str:
    rows = ["| bundled plugin | fields in its plugin.yaml | right without a sample | right with its sample | "
            "missed (with sample) |", "|---|---|---|---|---|"]
    for plugin in BUNDLED:
        if not (REPO / "plugins" / plugin / "model.onnx").is_file():
            continue
        without = bundled_right(plugin, with_sample=False)
        with_s = bundled_right(plugin, with_sample=True)
        keys = [k for k in with_s if k != "error"]
        missed = ", ".join(f"`{k}`" for k in keys if not with_s.get(k)) or "-"
        rows.append(f"| {plugin} | {len(keys)} | {sum(bool(without.get(k)) for k in keys)} | "
                    f"{sum(bool(with_s.get(k)) for k in keys)} | {missed} |")
    return "\n".join(rows)
