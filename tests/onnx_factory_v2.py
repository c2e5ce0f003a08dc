"""Graph builders for the plugin engine v2 tests (3-D conv nets, fp16/int I/O wrappers, dynamic shapes).

Kept apart from onnx_factory.py so that several branches can extend the factories without colliding.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper
from onnx_factory import const, model, vi

FLOAT = TensorProto.FLOAT


def with_io_types(proto: onnx.ModelProto, *, elem_in: int | None = None, elem_out: int | None = None
                  ) -> onnx.ModelProto:
    """Wrap a float graph so that its (first) input and/or output have another element type, with Cast
    nodes inside the graph -- an fp16 or uint8/int64 deployment export in miniature."""
    g = proto.graph
    nodes = list(g.node)
    inputs, outputs = list(g.input), list(g.output)
    if elem_in is not None:
        old = inputs[0]
        inner = old.name + "_f32"
        for node in nodes:
            node.input[:] = [inner if n == old.name else n for n in node.input]
        nodes.insert(0, helper.make_node("Cast", [old.name], [inner], to=FLOAT))
        dims = [d.dim_param or d.dim_value for d in old.type.tensor_type.shape.dim]
        inputs[0] = vi(old.name, dims, elem_in)
    if elem_out is not None:
        old = outputs[0]
        inner = old.name + "_f32"
        for node in nodes:
            node.output[:] = [inner if n == old.name else n for n in node.output]
        nodes.append(helper.make_node("Cast", [inner], [old.name], to=elem_out))
        dims = [d.dim_param or d.dim_value for d in old.type.tensor_type.shape.dim]
        outputs[0] = vi(old.name, dims, elem_out)
    return model(nodes, inputs, outputs, list(g.initializer))


def pool_unpool(*, name_in: str = "input", name_out: str = "output", levels: int = 2) -> onnx.ModelProto:
    """``out = x + up(maxpool(x))`` repeated ``levels`` times: a U-Net skip in miniature. Fails at run
    time unless H and W are multiples of ``2 ** levels`` (the skip Add sees mismatched shapes).
    Output: two-class logits (background = -fg)."""
    nodes, inits = [], [const("scales", np.array([1, 1, 2, 2], np.float32)), const("k", np.float32(10.0)),
                        const("t", np.float32(0.5))]
    cur = name_in
    for i in range(levels):
        nodes += [helper.make_node("MaxPool", [cur], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2])]
        cur = f"p{i}"
    for i in reversed(range(levels)):
        skip = name_in if i == 0 else f"p{i - 1}"
        nodes += [helper.make_node("Resize", [cur, "", "scales"], [f"u{i}"], mode="nearest"),
                  helper.make_node("Add", [f"u{i}", skip], [f"a{i}"])]
        cur = f"a{i}"
    # fg logit = (a0 / 2**levels... ) keep it simple: (cur - t) * k
    nodes += [helper.make_node("Sub", [cur, "t"], ["d"]), helper.make_node("Mul", ["d", "k"], ["fg"]),
              helper.make_node("Neg", ["fg"], ["bg"]), helper.make_node("Concat", ["bg", "fg"], [name_out], axis=1)]
    return model(nodes, [vi(name_in, ["N", 1, "H", "W"])], [vi(name_out, ["N", 2, "H", "W"])], inits)


def pool_unpool_reference(x: np.ndarray, levels: int = 2) -> np.ndarray:
    """numpy reference of :func:`pool_unpool`'s foreground logit for a ``(H, W)`` array."""
    pyramid = [x.astype(np.float64)]
    for _ in range(levels):
        p = pyramid[-1]
        h, w = p.shape
        pyramid.append(p.reshape(h // 2, 2, w // 2, 2).max(axis=(1, 3)))
    cur = pyramid[-1]
    for i in reversed(range(levels)):
        cur = np.repeat(np.repeat(cur, 2, axis=0), 2, axis=1) + pyramid[i]
    return (cur - 0.5) * 10.0


def conv3d_net(channels_in: int, channels_out: int, *, kernel: int = 3, seed: int = 0, layout: str = "NCDHW",
               dims: list[Any] | None = None, batch: Any = "N", name_in: str = "input", name_out: str = "output",
               hidden: int = 0) -> tuple[onnx.ModelProto, list[tuple[np.ndarray, np.ndarray]]]:
    """3-D convolutions (same padding; ReLU between layers) in either layout.

    Returns the graph and its ``(weight, bias)`` list, for a scipy reference in the tests.
    """
    rng = np.random.default_rng(seed)
    d, h, w = dims or ["D", "H", "W"]
    nodes, inits, params = [], [], []
    cur = name_in
    if layout == "NDHWC":
        nodes.append(helper.make_node("Transpose", [cur], ["tin"], perm=[0, 4, 1, 2, 3]))
        cur = "tin"
    widths = ([hidden] if hidden else []) + [channels_out]
    prev_c = channels_in
    pad = kernel // 2
    for i, c in enumerate(widths):
        wgt = (rng.standard_normal((c, prev_c, kernel, kernel, kernel)) / np.sqrt(prev_c * kernel ** 3)).astype(
            np.float32)
        bias = (rng.standard_normal(c) * 0.1).astype(np.float32)
        params.append((wgt, bias))
        inits += [const(f"w{i}", wgt), const(f"b{i}", bias)]
        nodes.append(helper.make_node("Conv", [cur, f"w{i}", f"b{i}"], [f"c{i}"], pads=[pad] * 6))
        cur = f"c{i}"
        if i < len(widths) - 1:
            nodes.append(helper.make_node("Relu", [cur], [f"r{i}"]))
            cur = f"r{i}"
        prev_c = c
    if layout == "NDHWC":
        nodes.append(helper.make_node("Transpose", [cur], [name_out], perm=[0, 2, 3, 4, 1]))
        shape_in, shape_out = [batch, d, h, w, channels_in], [batch, d, h, w, channels_out]
    else:
        nodes.append(helper.make_node("Identity", [cur], [name_out]))
        shape_in, shape_out = [batch, channels_in, d, h, w], [batch, channels_out, d, h, w]
    return model(nodes, [vi(name_in, shape_in)], [vi(name_out, shape_out)], inits), params


def conv3d_reference(x: np.ndarray, params: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """scipy reference of :func:`conv3d_net` on a ``(C, D, H, W)`` array (zero padding, cross-correlation)."""
    from scipy.ndimage import correlate

    cur = x.astype(np.float64)
    for i, (wgt, bias) in enumerate(params):
        out = np.empty((wgt.shape[0],) + cur.shape[1:])
        for o in range(wgt.shape[0]):
            acc = np.full(cur.shape[1:], float(bias[o]))
            for c in range(cur.shape[0]):
                acc += correlate(cur[c], wgt[o, c].astype(np.float64), mode="constant", cval=0.0)
            out[o] = acc
        cur = out if i == len(params) - 1 else np.maximum(out, 0.0)
    return cur
