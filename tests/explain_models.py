"""Tiny ONNX models whose explanation is known (built with onnx.helper): a classifier that reads one
region only, a segmenter that is not flip-equivariant where its logits are ambiguous."""
from __future__ import annotations

import numpy as np
import onnx_factory as F
from onnx import helper


def region_classifier(region: tuple[int, int, int, int], *, size=("H", "W"), k: float = 2.0, batch="N"):
    """Two classes; logit 0 = k * mean of input[rows y0:y1, cols x0:x1], logit 1 = its negative: the output
    depends on that region only."""
    y0, y1, x0, x1 = region
    nodes = [helper.make_node("Slice", ["input", "starts", "ends", "axes"], ["roi"]),
             helper.make_node("ReduceMean", ["roi", "rm_axes"], ["m"], keepdims=1),
             helper.make_node("Flatten", ["m"], ["flat"]),
             helper.make_node("Mul", ["flat", "w"], ["logits"])]
    inits = [F.const("starts", np.array([y0, x0], np.int64)), F.const("ends", np.array([y1, x1], np.int64)),
             F.const("axes", np.array([2, 3], np.int64)), F.const("rm_axes", np.array([1, 2, 3], np.int64)),
             F.const("w", np.array([[k, -k]], np.float32))]
    return F.model(nodes, [F.vi("input", [batch, 1, *size])], [F.vi("logits", [batch, 2])], inits)


def ramp_segmenter(size: int = 16, ramp: float = 3.0):
    """fg logit = 10 * (x - 0.5) + ramp(column), bg = -fg: ambiguous where x = 0.5, and there the label
    follows the column ramp -- so a horizontal flip changes it, a vertical one does not."""
    col = np.linspace(-1.0, 1.0, size, dtype=np.float32) * ramp
    bias = np.broadcast_to(col, (1, 1, size, size)).astype(np.float32)
    nodes = [helper.make_node("Sub", ["input", "half"], ["d"]),
             helper.make_node("Mul", ["d", "k"], ["s"]),
             helper.make_node("Add", ["s", "bias"], ["fg"]),
             helper.make_node("Neg", ["fg"], ["bg"]),
             helper.make_node("Concat", ["bg", "fg"], ["output"], axis=1)]
    inits = [F.const("half", np.float32(0.5)), F.const("k", np.float32(10.0)), F.const("bias", bias)]
    return F.model(nodes, [F.vi("input", ["N", 1, size, size])], [F.vi("output", ["N", 2, size, size])], inits)


def cam_classifier(region_a: tuple[int, int, int, int], region_b: tuple[int, int, int, int], *, size: int = 32,
                   weight: float = 4.0):
    """A GAP + linear head over a 2-channel feature map at half resolution: feature 0 = the input inside
    region A, feature 1 = the input inside region B (pooled 2x2); logits = GAP(features) @ (weight * I).
    Outputs ``logits`` and ``features``; the class weights Grad-CAM needs are ``weight * I`` (2 x 2)."""
    masks = np.zeros((1, 2, size, size), np.float32)
    for k, (y0, y1, x0, x1) in enumerate((region_a, region_b)):
        masks[0, k, y0:y1, x0:x1] = 1.0
    nodes = [helper.make_node("Mul", ["input", "masks"], ["masked"]),
             helper.make_node("AveragePool", ["masked"], ["features"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["features"], ["gap"]),
             helper.make_node("Flatten", ["gap"], ["flat"]),
             helper.make_node("Gemm", ["flat", "W", "B"], ["logits"])]
    inits = [F.const("masks", masks), F.const("W", np.eye(2, dtype=np.float32) * weight),
             F.const("B", np.zeros(2, np.float32))]
    return F.model(nodes, [F.vi("input", ["N", 1, size, size])],
                   [F.vi("logits", ["N", 2]), F.vi("features", ["N", 2, size // 2, size // 2])], inits)
