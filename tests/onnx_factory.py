"""Tiny ONNX models built with onnx.helper inside the tests (nothing is downloaded), and plugin folders.

Every builder returns an ``onnx.ModelProto``; :func:`write_plugin` saves it with a plugin.yaml whose
sha256 matches.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import yaml
from onnx import TensorProto, helper, numpy_helper

OPSET = 18
FLOAT = TensorProto.FLOAT


def vi(name: str, shape: list[Any], elem: int = FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def model(nodes, inputs, outputs, initializers=(), *, opset: int = OPSET, ir_version: int = 8,
          domains: dict[str, int] | None = None) -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), list(initializers))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in (domains or {}).items()]
    m = helper.make_model(graph, opset_imports=opsets, producer_name="workbench-tests")
    m.ir_version = ir_version
    return m


def write_plugin(folder: Path, proto: onnx.ModelProto | bytes, manifest: dict, *, files: dict[str, Any] | None = None,
                 sha256: str | None = None) -> Path:
    """Write ``model.onnx`` and ``plugin.yaml`` (sha256 filled in) into ``folder``; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = proto if isinstance(proto, bytes) else proto.SerializeToString()
    model_file = manifest.get("model", {}).get("file", "model.onnx")
    (folder / model_file).write_bytes(data)
    manifest = {"schema_version": 1, "version": "1.0.0", "name": manifest.get("id", "test"), **manifest}
    manifest["model"] = {"file": model_file, "sha256": sha256 or hashlib.sha256(data).hexdigest()}
    (folder / "plugin.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    for name, content in (files or {}).items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, np.ndarray):
            import cv2

            cv2.imwrite(str(path), content if content.ndim == 2 else content[..., ::-1])
        else:
            path.write_text(str(content), encoding="utf-8")
    return folder


# -- building blocks -------------------------------------------------------------------------------
def identity(shape_in: list[Any], *, name_in: str = "input", name_out: str = "output") -> onnx.ModelProto:
    return model([helper.make_node("Identity", [name_in], [name_out])],
                 [vi(name_in, shape_in)], [vi(name_out, shape_in)])


def affine(shape: list[Any], scale: float, offset: float, *, name_in: str = "input",
           name_out: str = "output", sigmoid: bool = False) -> onnx.ModelProto:
    """``output = input * scale + offset`` (optionally sigmoid-ed inside the graph)."""
    nodes = [helper.make_node("Mul", [name_in, "s"], ["m"]),
             helper.make_node("Add", ["m", "o"], ["pre" if sigmoid else name_out])]
    if sigmoid:
        nodes.append(helper.make_node("Sigmoid", ["pre"], [name_out]))
    return model(nodes, [vi(name_in, shape)], [vi(name_out, shape)],
                 [const("s", np.float32(scale)), const("o", np.float32(offset))])


def constant_output(shape_in: list[Any], outputs: dict[str, np.ndarray], *, name_in: str = "images"
                    ) -> onnx.ModelProto:
    """A model whose outputs are fixed tensors (known boxes/scores), still depending on the input."""
    nodes = [helper.make_node("ReduceMean", [name_in], ["mean"], keepdims=0),
             helper.make_node("Mul", ["mean", "zero"], ["z"])]
    inits = [const("zero", np.float32(0.0))]
    outs = []
    for i, (name, arr) in enumerate(outputs.items()):
        arr = np.asarray(arr, dtype=np.float32)
        inits.append(const(f"c{i}", arr))
        nodes.append(helper.make_node("Add", [f"c{i}", "z"], [name]))
        outs.append(vi(name, list(arr.shape)))
    return model(nodes, [vi(name_in, shape_in)], outs, inits)


def conv_net(channels_in: int, widths: list[int], channels_out: int, *, size: list[Any] | None = None,
             seed: int = 0, final: str | None = None, name_in: str = "input", name_out: str = "output",
             layout_out: str = "NCHW") -> onnx.ModelProto:
    """A stack of 3x3 convs + ReLU (a U-Net-sized workload without the down/up path)."""
    rng = np.random.default_rng(seed)
    h, w = (size or ["H", "W"])
    nodes, inits = [], []
    prev, prev_c = name_in, channels_in
    for i, c in enumerate([*widths, channels_out]):
        wname, bname, out = f"w{i}", f"b{i}", f"x{i}"
        inits += [const(wname, (rng.standard_normal((c, prev_c, 3, 3)) * (1.0 / np.sqrt(9 * prev_c))).astype(
            np.float32)), const(bname, np.zeros(c, np.float32))]
        nodes.append(helper.make_node("Conv", [prev, wname, bname], [out], pads=[1, 1, 1, 1]))
        if i < len(widths):
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"]))
            out = f"r{i}"
        prev, prev_c = out, c
    if final == "sigmoid":
        nodes.append(helper.make_node("Sigmoid", [prev], ["fin"]))
        prev = "fin"
    if layout_out == "NHWC":
        nodes.append(helper.make_node("Transpose", [prev], [name_out], perm=[0, 2, 3, 1]))
        shape_out = ["N", h, w, channels_out]
    else:
        nodes.append(helper.make_node("Identity", [prev], [name_out]))
        shape_out = ["N", channels_out, h, w]
    return model(nodes, [vi(name_in, ["N", channels_in, h, w])], [vi(name_out, shape_out)], inits)


def classifier(channels_in: int, n_classes: int, *, size: list[int] | None = None, weights: np.ndarray | None = None,
               name_in: str = "input", name_out: str = "logits") -> onnx.ModelProto:
    """GlobalAveragePool -> Flatten -> Gemm: logits = mean(channel) @ W (a deterministic classifier)."""
    h, w = size or ["H", "W"]
    W = np.asarray(weights if weights is not None else np.eye(channels_in, n_classes), np.float32)
    nodes = [helper.make_node("GlobalAveragePool", [name_in], ["gap"]),
             helper.make_node("Flatten", ["gap"], ["flat"]),
             helper.make_node("Gemm", ["flat", "W", "B"], [name_out])]
    return model(nodes, [vi(name_in, ["N", channels_in, h, w])], [vi(name_out, ["N", n_classes])],
                 [const("W", W), const("B", np.zeros(n_classes, np.float32))])


def threshold_segmenter(channels_in: int = 1, *, size: list[Any] | None = None, threshold: float = 0.5,
                        layout: str = "NCHW", out_layout: str = "NCHW", batch_out: bool = True,
                        name_in: str = "input", name_out: str = "output") -> onnx.ModelProto:
    """Two-class logits: channel 1 = (mean over channels - threshold) * 10, channel 0 = its negative."""
    h, w = size or ["H", "W"]
    c_axis = 1 if layout == "NCHW" else 3
    nodes = [helper.make_node("ReduceMean", [name_in, "axes"], ["m"], keepdims=1),
             helper.make_node("Sub", ["m", "t"], ["d"]),
             helper.make_node("Mul", ["d", "k"], ["fg"]),
             helper.make_node("Neg", ["fg"], ["bg"]),
             helper.make_node("Concat", ["bg", "fg"], ["cat"], axis=c_axis)]
    inits = [const("axes", np.array([c_axis], np.int64)), const("t", np.float32(threshold)),
             const("k", np.float32(10.0))]
    cur = "cat"
    if layout != out_layout:
        perm = [0, 2, 3, 1] if out_layout == "NHWC" else [0, 3, 1, 2]
        nodes.append(helper.make_node("Transpose", [cur], ["tr"], perm=perm))
        cur = "tr"
    out_shape = ["N", 2, h, w] if out_layout == "NCHW" else ["N", h, w, 2]
    if not batch_out:
        nodes.append(helper.make_node("Squeeze", [cur, "ax0"], [name_out]))
        inits.append(const("ax0", np.array([0], np.int64)))
        out_shape = out_shape[1:]
    else:
        nodes.append(helper.make_node("Identity", [cur], [name_out]))
    in_shape = ["N", channels_in, h, w] if layout == "NCHW" else ["N", h, w, channels_in]
    return model(nodes, [vi(name_in, in_shape)], [vi(name_out, out_shape)], inits)


def tiny_add_model() -> onnx.ModelProto:
    """``y = x + 1`` on a [1, 1, 4, 4] float input: the smoke model of ``workbench doctor``."""
    return model([helper.make_node("Add", ["x", "one"], ["y"])], [vi("x", [1, 1, 4, 4])], [vi("y", [1, 1, 4, 4])],
                 [const("one", np.ones((1, 1, 1, 1), np.float32))], ir_version=7, opset=13)
