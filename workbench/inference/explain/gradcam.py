"""Grad-CAM (Selvaraju et al. 2017) for plugins that declare it (``explain:`` in plugin.yaml).

Workbench never computes gradients. It does not need them for the one architecture this is offered
for: a last feature map ``A`` (K channels) -> global average pooling -> a linear layer ``W`` (n_classes x
K) -> the logits. There the gradient of logit ``c`` with respect to ``A_k`` at every pixel is
``W[c, k] / (h * w)``, so Grad-CAM's channel weights are ``W[c, :]`` up to a positive constant and
Grad-CAM equals CAM (Zhou et al. 2016): ``ReLU(sum_k W[c, k] A_k)``. The plugin therefore declares the
graph output holding ``A`` and a ``.npy`` file with ``W``; a plugin whose head is anything else must not
declare it (the map would be wrong, and nothing here can tell). Cost: one model run.
"""
from __future__ import annotations

from typing import Any, Generator

import numpy as np

from ..preprocess import resize_plane
from ._common import (
    BatchRunner,
    Cancel,
    ExplainError,
    Explanation,
    Progress,
    batch_scores,
    resolve_class,
    tensor_hw,
    to_image,
    whole_tensor,
)


def class_weights(spec: Any) -> np.ndarray:
    """The declared ``(n_classes, K)`` weights, checked."""
    decl = spec.explain
    path = (spec.folder / decl.class_weights).resolve()
    if not path.is_file() or spec.folder.resolve() not in path.parents:
        raise spec.error("explain.class_weights", f"{decl.class_weights} not found in the plugin folder")
    try:
        w = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise spec.error("explain.class_weights", f"cannot read {decl.class_weights} ({exc})") from exc
    if w.ndim != 2:
        raise spec.error("explain.class_weights", f"expected an (n_classes, K) array, got shape {list(w.shape)}")
    return w.astype(np.float32)


def gradcam(engine: Any, plane: Any, *, target: str | int | None = None, batch_size: int = 1,
            cancel: Cancel = None) -> Generator[Progress, None, Explanation]:
    """Grad-CAM of one preprocessed slice of a classification plugin that declares ``explain:``.

    Returns
    -------
    Explanation
        ``map`` = ``ReLU(sum_k W[c, k] A_k)`` upsampled to the image, in the units of the logit.
    """
    spec = engine.spec
    decl = spec.explain
    if decl is None:
        raise ExplainError(f"--method gradcam: {spec.id} declares no feature map and class weights "
                           "(explain: in plugin.yaml); use occlusion or rise")
    model = engine.model
    if decl.feature_map not in model.output_names:
        raise spec.error("explain.feature_map", f"graph has no output {decl.feature_map!r} "
                                                f"(outputs: {', '.join(repr(n) for n in model.output_names)})")
    weights = class_weights(spec)
    tensor = whole_tensor(plane, spec.id)
    runner = BatchRunner(model, tensor, batch_size=batch_size, cancel=cancel)
    yield (0, 1, "Grad-CAM")
    outputs = runner.run_one(tensor)
    scores = batch_scores({k: v for k, v in outputs.items() if k != decl.feature_map}
                          if spec.output.name is None else outputs, spec)[0]
    index, label = resolve_class(spec, scores, target)
    feat = np.asarray(outputs[decl.feature_map], dtype=np.float32)
    if feat.ndim != 4 or feat.shape[0] != 1:
        raise spec.error("explain.feature_map", f"expected a (1, K, h, w) feature map, got {list(feat.shape)}")
    chw = feat[0] if decl.layout == "NCHW" else feat[0].transpose(2, 0, 1)
    if weights.shape != (scores.shape[0], chw.shape[0]):
        raise spec.error("explain.class_weights", f"shape {list(weights.shape)} does not match "
                                                  f"{scores.shape[0]} classes x {chw.shape[0]} feature channels")
    cam = np.maximum(np.tensordot(weights[index], chw, axes=1), 0.0).astype(np.float32)
    h, w = tensor_hw(tensor, spec.input.layout)
    model_map = resize_plane(cam, (h, w))  # the feature map spans the whole model input
    yield (1, 1, "Grad-CAM")
    top = int(np.argmax(scores))
    labels = list(spec.labels or [])
    return Explanation(
        method="gradcam", plugin_id=spec.id, task=spec.task, map=to_image(model_map, plane),
        units=f"class activation for {label} (logit units, ReLU)", slice_index=plane.index,
        parameters={"feature_map": decl.feature_map, "class_weights": decl.class_weights,
                    "feature_hw": [int(chw.shape[1]), int(chw.shape[2])], "model_input_hw": [h, w]},
        cost=runner.finish(), target={"index": index, "label": label, "score": float(scores[index])},
        top={"index": top, "label": labels[top] if top < len(labels) else f"class {top}",
             "score": float(scores[top])})
