"""Build model.onnx and sample.png of the anchor-free example and write the model's sha256 into plugin.yaml.

    python build_model.py [FOLDER]      (default: the folder of this script)

The graph is tiny and made of standard operators only: per stride level an AveragePool of the image,
then 1x1 convolutions into class logits (cls_<s>, red -> "large" at stride 16, green -> "small" at
stride 8) and box distances (reg_<s>, half a stride on each side: the box is the cell). Deterministic:
the same bytes, hence the same sha256, on every run.
"""
from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE = 64
LEVELS = {8: [[0, 0, 0], [0, 20, 0]], 16: [[20, 0, 0], [0, 0, 0]]}  # 1x1 conv weights: (class, RGB)


def build() -> onnx.ModelProto:
    nodes, inits, outputs = [], [], []
    reg_w = np.zeros((4, 3, 1, 1), np.float32)
    reg_b = np.full(4, 0.5, np.float32)
    inits += [numpy_helper.from_array(reg_w, "reg_w"), numpy_helper.from_array(reg_b, "reg_b")]
    for s, weights in LEVELS.items():
        w = np.asarray(weights, np.float32).reshape(2, 3, 1, 1)
        inits += [numpy_helper.from_array(w, f"cls_w_{s}"),
                  numpy_helper.from_array(np.full(2, -10.0, np.float32), f"cls_b_{s}")]
        nodes += [helper.make_node("AveragePool", ["images"], [f"pool_{s}"], kernel_shape=[s, s], strides=[s, s]),
                  helper.make_node("Conv", [f"pool_{s}", f"cls_w_{s}", f"cls_b_{s}"], [f"cls_{s}"]),
                  helper.make_node("Conv", [f"pool_{s}", "reg_w", "reg_b"], [f"reg_{s}"])]
        g = SIZE // s
        outputs += [helper.make_tensor_value_info(f"cls_{s}", TensorProto.FLOAT, [1, 2, g, g]),
                    helper.make_tensor_value_info(f"reg_{s}", TensorProto.FLOAT, [1, 4, g, g])]
    graph = helper.make_graph(nodes, "anchor_free_example",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
                              outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="workbench-example")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def sample() -> np.ndarray:
    """A 96x128 RGB image: a red 32 px square and a green 16 px square (letterboxed to 64x64 by the plugin)."""
    img = np.zeros((96, 128, 3), np.uint8)
    img[16:48, 64:96, 0] = 255  # red: "large" at stride 16 after the 0.5x letterbox
    img[64:80, 16:32, 1] = 255  # green: "small" at stride 8
    return img


def main(folder: Path) -> None:
    data = build().SerializeToString()
    (folder / "model.onnx").write_bytes(data)
    import cv2

    cv2.imwrite(str(folder / "sample.png"), sample()[..., ::-1])
    manifest = folder / "plugin.yaml"
    text = manifest.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^(  sha256: )[0-9a-f]{64}$", lambda m: m.group(1) + hashlib.sha256(data).hexdigest(), text)
    manifest.write_text(text, encoding="utf-8")
    print(f"wrote {folder / 'model.onnx'} (sha256 {hashlib.sha256(data).hexdigest()}) and {folder / 'sample.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
