"""Tiny promptable plugins of both shapes (onnx.helper), for the contract, CLI and GUI tests.

- channels: a ``(1, 4, S, S)`` input (image, include, exclude, previous); the output logits are the include
  channel minus 0.5 (with ``encoding: distance`` a cone peaking on the click) minus the exclude channel.
- encoder/decoder (SAM's input/output names): the encoder average-pools the image 4x into
  ``image_embeddings``; the decoder draws a cone of radius R around its first point, in the model frame,
  plus 0 x the embedding's mean (so that the embedding is a real input).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import yaml
from onnx import helper
from onnx_factory import const, model, vi, write_plugin


def channels_model(size: int, gated: bool = False):
    """``gated``: the mask is also limited to where the image is bright (normalised value > 0.5), so that
    an object that ends on some slice of a stack ends the propagation there."""
    nodes = [
        helper.make_node("Slice", ["input", "s1", "e2", "ax"], ["inc"]),
        helper.make_node("Slice", ["input", "e2", "e3", "ax"], ["exc"]),
        helper.make_node("Sub", ["inc", "half"], ["a0"]),
    ]
    if gated:
        nodes += [helper.make_node("Slice", ["input", "s0", "s1", "ax"], ["img"]),
                  helper.make_node("Sub", ["img", "half"], ["g"]),
                  helper.make_node("Min", ["a0", "g"], ["a"])]
    else:
        nodes += [helper.make_node("Identity", ["a0"], ["a"])]
    nodes += [helper.make_node("Sub", ["a", "exc"], ["output"])]
    inits = [const("s0", np.array([0], np.int64)), const("s1", np.array([1], np.int64)),
             const("e2", np.array([2], np.int64)),
             const("e3", np.array([3], np.int64)),
             const("ax", np.array([1], np.int64)), const("half", np.array(0.5, np.float32))]
    return model(nodes, [vi("input", [1, 4, size, size])], [vi("output", [1, 1, size, size])], inits)


def channels_plugin(folder: Path, *, size: int = 64, encoding: str = "distance", radius: float = 6.0,
                    gated: bool = False, **prompt) -> Path:
    return write_plugin(folder, channels_model(size, gated), {
        "id": "tiny-click", "task": "promptable",
        "input": {"color": "gray", "intensity": {"percentile": [0.5, 99.5]}},
        "prompt": {"kind": "channels", "size": size, "encoding": encoding, "radius": radius, "context": 0.4,
                   "min_size": 16, **prompt},
    })


def encoder_model(size: int):
    nodes = [helper.make_node("AveragePool", ["image"], ["image_embeddings"], kernel_shape=[4, 4], strides=[4, 4])]
    return model(nodes, [vi("image", [1, 1, size, size])], [vi("image_embeddings", [1, 1, size // 4, size // 4])])


def decoder_model(size: int, radius: float, low: int):
    gy, gx = np.mgrid[0:size, 0:size].astype(np.float32)
    nodes = [
        helper.make_node("Slice", ["point_coords", "z1", "o1", "one"], ["p0"]),  # (1, 1, 2): the first point
        helper.make_node("Reshape", ["p0", "shape2"], ["p"]),
        helper.make_node("Slice", ["p", "z1", "o1", "z1"], ["px"]),
        helper.make_node("Slice", ["p", "o1", "t1", "z1"], ["py"]),
        helper.make_node("Sub", ["gx", "px"], ["dx"]),
        helper.make_node("Sub", ["gy", "py"], ["dy"]),
        helper.make_node("Mul", ["dx", "dx"], ["dx2"]),
        helper.make_node("Mul", ["dy", "dy"], ["dy2"]),
        helper.make_node("Add", ["dx2", "dy2"], ["d2"]),
        helper.make_node("Sqrt", ["d2"], ["d"]),
        helper.make_node("Sub", ["r", "d"], ["cone"]),
        helper.make_node("ReduceMean", ["image_embeddings"], ["em"], keepdims=0),
        helper.make_node("Mul", ["em", "zero"], ["em0"]),
        helper.make_node("Add", ["cone", "em0"], ["c2"]),
        helper.make_node("Reshape", ["c2", "mshape"], ["masks"]),
        helper.make_node("Resize", ["masks", "", "", "lowshape"], ["low_res_masks"], mode="linear"),
        helper.make_node("ReduceMax", ["masks"], ["iou_predictions"], keepdims=0),
    ]
    inits = [const("z1", np.array([0], np.int64)), const("o1", np.array([1], np.int64)),
             const("t1", np.array([2], np.int64)), const("one", np.array([1], np.int64)),
             const("shape2", np.array([2], np.int64)), const("gx", gx), const("gy", gy),
             const("r", np.array(radius, np.float32)), const("zero", np.array(0.0, np.float32)),
             const("mshape", np.array([1, 1, size, size], np.int64)),
             const("lowshape", np.array([1, 1, low, low], np.int64))]
    inputs = [vi("image_embeddings", [1, 1, size // 4, size // 4]), vi("point_coords", [1, "n", 2]),
              vi("point_labels", [1, "n"]), vi("mask_input", [1, 1, low, low]), vi("has_mask_input", [1]),
              vi("orig_im_size", [2])]
    outputs = [vi("masks", [1, 1, size, size]), vi("iou_predictions", []), vi("low_res_masks", [1, 1, low, low])]
    return model(nodes, inputs, outputs, inits)


def encoder_decoder_plugin(folder: Path, *, size: int = 64, radius: float = 5.0, **prompt) -> Path:
    low = size // 4
    dec = decoder_model(size, radius, low).SerializeToString()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "decoder.onnx").write_bytes(dec)
    write_plugin(folder, encoder_model(size), {
        "id": "tiny-sam", "task": "promptable",
        "model": {"file": "encoder.onnx"},
        "input": {"name": "image", "color": "gray", "intensity": {"percentile": [0.5, 99.5]}},
        "prompt": {"kind": "encoder_decoder", "size": size, "mask_input_size": low,
                   "decoder": {"file": "decoder.onnx", "sha256": hashlib.sha256(dec).hexdigest()}, **prompt},
    })
    return folder


def edit_manifest(folder: Path, **changes) -> None:
    path = folder / "plugin.yaml"
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
