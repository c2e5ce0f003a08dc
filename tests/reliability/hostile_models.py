"""Hostile ONNX graphs for the reliability suite, built with onnx.helper (nothing downloaded)."""
from __future__ import annotations

import numpy as np
import onnx
import onnx_factory as F
from onnx import TensorProto, helper


def endless_loop(size=(16, 16)) -> onnx.ModelProto:
    """``output = input`` after a Loop of 10**15 iterations that add zero (the hang of issue 11)."""
    h, w = size
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["acc_in", "zero_b"], ["acc_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, None)],
        [F.const("zero_b", np.float32(0.0))])
    nodes = [helper.make_node("Loop", ["trips", "cond", "input"], ["looped"], body=body),
             helper.make_node("Concat", ["looped", "looped"], ["output"], axis=1)]
    inits = [F.const("trips", np.array(10 ** 15, np.int64)), F.const("cond", np.array(True))]
    return F.model(nodes, [F.vi("input", [1, 1, h, w])], [F.vi("output", [1, 2, h, w])], inits)


def string_output(size=(16, 16)) -> onnx.ModelProto:
    """A segmentation-shaped graph whose output is a tensor of strings."""
    h, w = size
    nodes = [helper.make_node("Cast", ["input"], ["output"], to=TensorProto.STRING)]
    return F.model(nodes, [F.vi("input", [1, 1, h, w])], [F.vi("output", [1, 1, h, w], TensorProto.STRING)])


def rank2_output(size=(16, 16)) -> onnx.ModelProto:
    """A 'segmentation' model whose output is a [1, 2] vector (a classifier head)."""
    h, w = size
    nodes = [helper.make_node("ReduceMean", ["input", "axes"], ["m"], keepdims=0),
             helper.make_node("Concat", ["m", "m"], ["output"], axis=1)]
    return F.model(nodes, [F.vi("input", [1, 1, h, w])], [F.vi("output", [1, 2])],
                   [F.const("axes", np.array([2, 3], np.int64))])
