"""Decoder of the anchor-free example detector (docs/PLUGINS.md, "Writing a decoder").

The model has one classification map and one box-regression map per stride level (FCOS-style, no anchors):
``cls_<s>`` ``[1, C, H/s, W/s]`` class logits and ``reg_<s>`` ``[1, 4, H/s, W/s]`` distances (left, top,
right, bottom) from the cell centre to the box edges, in units of the stride. ``output.params.levels``
names the outputs of each level, so the same decoder serves exports with other output names (numeric
ones included: ``cls: 845``).
"""
from __future__ import annotations

import numpy as np

from workbench.inference.decoders import DecodeContext, nms, sigmoid
from workbench.inference.results import Detection, DetectionCandidates


def _candidates(outputs: dict[str, np.ndarray], ctx: DecodeContext) -> tuple[np.ndarray, np.ndarray]:
    """All cells of all levels: (N, 4) xyxy boxes in model-input pixels and (N, C) class probabilities."""
    boxes, scores = [], []
    for level in ctx.params["levels"]:
        stride = float(level["stride"])
        cls = outputs[str(level["cls"])][0]  # (C, h, w) logits
        reg = outputs[str(level["reg"])][0]  # (4, h, w) distances in strides
        n_classes, h, w = cls.shape
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = (xx + 0.5) * stride, (yy + 0.5) * stride
        left, top, right, bottom = reg * stride
        boxes.append(np.stack([cx - left, cy - top, cx + right, cy + bottom], axis=-1).reshape(-1, 4))
        scores.append(sigmoid(cls).reshape(n_classes, -1).T)
    return np.concatenate(boxes), np.concatenate(scores)


def decode(outputs: dict[str, np.ndarray], ctx: DecodeContext) -> DetectionCandidates:
    """Raw candidates: the engine applies score_threshold, class-aware NMS and maps the boxes back."""
    boxes, scores = _candidates(outputs, ctx)
    return DetectionCandidates(boxes=boxes, scores=scores)


def decode_finished(outputs: dict[str, np.ndarray], ctx: DecodeContext) -> list[Detection]:
    """The same detector, finished by the decoder itself: threshold, NMS and boxes in image pixels."""
    out = ctx.spec.output
    boxes, scores = _candidates(outputs, ctx)
    cls = scores.argmax(axis=1)
    best = scores[np.arange(len(scores)), cls]
    sel = best >= out.score_threshold
    boxes, best, cls = boxes[sel], best[sel], cls[sel]
    keep = nms(boxes, best, cls, iou_threshold=out.iou_threshold, max_detections=out.max_detections)
    image_boxes = ctx.prepared.geometry.boxes_to_source(boxes[keep])  # undo letterbox/stretch, clip
    return [Detection(index=int(c), label=ctx.labels[int(c)], score=float(s), box=tuple(float(v) for v in b),
                      slice_index=ctx.slice_index)
            for b, s, c in zip(image_boxes, best[keep], cls[keep])]
