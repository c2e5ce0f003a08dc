"""Output decoders, registered by name: model outputs of one slice -> a result in the original geometry.

The registry is a dict keyed by ``task`` (``detection:<format>`` for detection); adding a model family
means registering one decoder, never a new branch in the engine. A decoder has ``decode(outputs, ctx)``;
decoders that support ``resize: tile`` also have ``dense(outputs, ctx)`` (a per-tile float map in the
tile's geometry, blended by the engine) and ``from_dense(dense, ctx)`` (the blended map in the original
geometry -> the result).

Per-slice return values: classification -> ``(C,)`` scores; segmentation -> ``(H, W)`` uint16 mask;
detection -> list of :class:`Detection`; restoration -> ``(H*s, W*s[, 3])`` array in the input's dtype.

A plugin may name its own decoder (``output.decoder: module:function``, a .py file of the plugin folder)
with the same signature as ``decode``; it runs only when the user trusted the plugin's exact content
(:mod:`workbench.inference.trust`) because it is arbitrary code. :mod:`workbench.inference.custom_decoder`
loads it and validates what it returns.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..core.errors import InferenceError
from ..core.image import ImageVolume
from ..core.labels import default_color
from ..core.results import Detection
from ..core.settings import Settings
from .preprocess import PreparedPlane, luma_to_rgb, resize_plane
from .results import DetectionCandidates  # noqa: F401 (re-exported for plugin authors)
from .spec import PluginSpec


@dataclass
class DecodeContext:
    """Everything a decoder may need about the slice being decoded (documented for plugin authors in
    docs/PLUGINS.md, "Writing a decoder").

    Attributes
    ----------
    spec : PluginSpec
        The validated plugin.yaml (``spec.output``, ``spec.labels``, ``spec.folder``...).
    image : ImageVolume
        The whole image being run (all slices, raw values).
    prepared : PreparedPlane
        The slice as the model saw it: ``index``, ``geometry`` (``src_hw``, ``dst_hw``, ``pad``, ``scale``,
        ``boxes_to_source()``, ``to_source()``), ``intensity``, ``tensor``, ``source_dtype``/``source_shape``.
    input_tensor : ndarray or None
        The tensor given to the model (a tile in tile mode).
    """

    spec: PluginSpec
    image: ImageVolume
    prepared: PreparedPlane
    input_tensor: np.ndarray | None = None  # what the model saw (a tile in tile mode)

    @property
    def model_hw(self) -> tuple[int, int]:
        """(height, width) of the model input in pixels: the frame of raw detection candidates."""
        t = self.input_tensor
        if t is None:
            return self.prepared.geometry.dst_hw
        return (t.shape[2], t.shape[3]) if self.spec.input.layout == "NCHW" else (t.shape[1], t.shape[2])

    @property
    def params(self) -> dict[str, Any]:
        """``output.params`` of the manifest: the decoder's own free-form parameters (strides, anchors...)."""
        return self.spec.output.params

    @property
    def labels(self) -> list[str]:
        """Class labels (``output.labels`` / ``labels_file``)."""
        return self.spec.labels

    @property
    def slice_index(self) -> int:
        """Index of the slice being decoded in ``image`` (0 for 2D images)."""
        return self.prepared.index

    @property
    def source_hw(self) -> tuple[int, int]:
        """(height, width) of the original slice: the shape a segmentation mask must have."""
        return self.prepared.geometry.src_hw

    def error(self, message: str) -> InferenceError:
        """An error to ``raise`` for outputs the decoder cannot use (one line, names the plugin)."""
        return InferenceError(message, path=self.spec.id)


# -- shared helpers -------------------------------------------------------------------------------
def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax (float32)."""
    x = np.asarray(x, dtype=np.float32)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # tanh form: no overflow warnings for large |x|


def activate(x: np.ndarray, activation: str, axis: int = -1) -> np.ndarray:
    if activation == "softmax":
        return softmax(x, axis=axis)
    if activation == "sigmoid":
        return sigmoid(x)
    return np.asarray(x, dtype=np.float32)


def _output(outputs: dict[str, np.ndarray], ctx: DecodeContext, name: str | None = None) -> np.ndarray:
    name = name or ctx.spec.output.name
    if name is None:
        return next(iter(outputs.values()))
    return outputs[name]


def _squeeze_batch(arr: np.ndarray, ndim: int) -> np.ndarray:
    """Drop a leading batch dimension of 1 if present (some exporters leave it out)."""
    while arr.ndim > ndim and arr.shape[0] == 1:
        arr = arr[0]
    return arr


def label_of(labels: list[str], index: int) -> str:
    return labels[index] if 0 <= index < len(labels) else f"class {index}"


# -- classification -------------------------------------------------------------------------------
class ClassificationDecoder:
    tileable = False

    def decode(self, outputs: dict[str, np.ndarray], ctx: DecodeContext) -> np.ndarray:
        arr = np.asarray(_output(outputs, ctx), dtype=np.float32)
        if arr.size == 0 or (arr.ndim > 1 and arr.shape[0] != 1 and arr.ndim != 1):
            raise ctx.error(f"classification output has shape {list(arr.shape)}; expected [1, C] or [C]")
        scores = activate(arr.reshape(-1), ctx.spec.output.activation)
        labels = ctx.spec.labels
        if labels and len(labels) != scores.shape[0]:
            raise ctx.spec.error("output.labels", f"{len(labels)} labels, the model outputs "
                                                  f"{scores.shape[0]} scores")
        return scores


# -- segmentation ---------------------------------------------------------------------------------
def class_values(spec: PluginSpec, n_channels: int) -> np.ndarray:
    """Mask value of each output channel (``classes[i].value`` or the channel index; multi_label: i+1)."""
    out = spec.output
    binary = n_channels == 1
    values = []
    for i in range(n_channels):
        cls = out.classes[i] if out.classes and i < len(out.classes) else None
        if binary:
            last = out.classes[-1] if out.classes else None
            values.append(last.value if last is not None and last.value is not None else 1)
        elif cls is not None and cls.value is not None:
            values.append(cls.value)
        else:
            values.append(i + 1 if out.multi_label else i)
    return np.asarray(values, dtype=np.uint16)


def argmax_max(chw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index and value of the largest channel of a ``(C, h, w)`` array.

    For few channels a running comparison is 3-5x faster than ``np.argmax(axis=0)``, which walks the
    channel axis with a stride of h*w; this is the hot loop of segmentation post-processing.
    """
    n = chw.shape[0]
    if n > 16:
        best = np.argmax(chw, axis=0)
        return best.astype(np.uint16), np.take_along_axis(chw, best[np.newaxis], axis=0)[0]
    top = np.array(chw[0], dtype=np.float32, copy=True)
    best = np.zeros(top.shape, dtype=np.uint16)
    for c in range(1, n):
        better = np.greater(chw[c], top)
        best[better] = c
        np.maximum(top, chw[c], out=top)
    return best, top


class SegmentationDecoder:
    """Channels -> class ids in model geometry -> nearest resize to the image (argmax before upsampling:
    upsampling C float maps first costs C times more and gives the same ids away from edges)."""

    tileable = True

    def _chw(self, arr: np.ndarray, ctx: DecodeContext) -> np.ndarray:
        """``(C, h, w)`` scores (a view where possible), or ``(h, w)`` class ids for NHW outputs."""
        layout = ctx.spec.output.layout
        if layout == "NHW":
            ids = _squeeze_batch(arr, 2)
            if ids.ndim != 2:
                raise ctx.error(f"segmentation output has shape {list(arr.shape)}; NHW expects [1, H, W]")
            return ids
        a = _squeeze_batch(arr, 3)
        if a.ndim == 2:  # [H, W] single-channel output without batch or channel dim
            if arr.ndim < 3 and min(a.shape) < min(8, *ctx.model_hw):
                # a rank-2 [1, C] vector (a classifier's output) is not a mask: it would decode as empty
                raise ctx.error(f"segmentation output has shape {list(arr.shape)} (rank {arr.ndim}); a mask "
                                f"needs [N, C, H, W] or [H, W] near the input size {list(ctx.model_hw)}")
            return a[np.newaxis]
        if a.ndim != 3:
            raise ctx.error(f"segmentation output has shape {list(arr.shape)}; {layout} expects 4 dims")
        return a if layout == "NCHW" else a.transpose(2, 0, 1)

    def _ids(self, chw: np.ndarray, ctx: DecodeContext, *, probabilities: bool) -> np.ndarray:
        """(C, h, w) scores -> (h, w) uint16 mask values."""
        out = ctx.spec.output
        n = chw.shape[0]
        values = class_values(ctx.spec, n)
        if n == 1 or out.multi_label:
            t = out.threshold
            if not probabilities and out.activation == "sigmoid":
                # sigmoid(x) > t  <=>  x > logit(t): threshold the logits, no exp over the whole map
                t = float(np.log(t / (1.0 - t))) if 0.0 < t < 1.0 else (-np.inf if t <= 0 else np.inf)
            elif not probabilities and out.activation == "softmax" and n > 1:
                chw = softmax(chw, axis=0)
            best, top = argmax_max(chw)
            ids = values[best]
            ids[~(top > t)] = 0
            return ids
        best, _ = argmax_max(chw)  # argmax is invariant to softmax: skip it
        return best if np.array_equal(values, np.arange(n)) else values[best]

    def decode(self, outputs: dict[str, np.ndarray], ctx: DecodeContext) -> np.ndarray:
        chw = self._chw(_output(outputs, ctx), ctx)
        geo = ctx.prepared.geometry
        if chw.ndim == 2:
            return geo.to_source(chw.astype(np.uint16), nearest=True)
        chw = geo.crop_content(chw, channel_first=True)  # crop before argmax: padding is wasted work
        ids = self._ids(chw, ctx, probabilities=False)
        return resize_plane(ids, geo.src_hw, nearest=True)

    def dense(self, outputs: dict[str, np.ndarray], ctx: DecodeContext) -> np.ndarray:
        """(h, w, C) probabilities of one tile (one-hot for class-id outputs) for blending."""
        chw = self._chw(_output(outputs, ctx), ctx)
        if chw.ndim == 2:  # class ids: one-hot so that overlapping tiles can vote
            n = len(ctx.spec.output.classes or []) or int(chw.max()) + 1
            ids = np.clip(chw.astype(np.int64), 0, n - 1)
            return np.eye(n, dtype=np.float32)[ids]
        act = ctx.spec.output.activation
        if chw.shape[0] == 1 and act == "softmax":
            act = "none"  # a softmax over one channel is constant 1: take the values as they are
        probs = np.ascontiguousarray(activate(chw, act, axis=0).transpose(1, 2, 0))
        th, tw = ctx.model_hw
        if probs.shape[:2] != (th, tw):
            probs = resize_plane(probs, (th, tw))
            if probs.ndim == 2:
                probs = probs[..., np.newaxis]
        return probs

    def from_dense(self, dense: np.ndarray, ctx: DecodeContext) -> np.ndarray:
        chw = dense.transpose(2, 0, 1)
        if ctx.spec.output.layout == "NHW":
            values = np.asarray([c.value if c.value is not None else i
                                 for i, c in enumerate(ctx.spec.output.classes or [])] or
                                list(range(chw.shape[0])), dtype=np.uint16)
            return values[argmax_max(chw)[0]]
        return self._ids(chw, ctx, probabilities=True)


# -- detection ------------------------------------------------------------------------------------
def _cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    out = np.empty_like(b, dtype=np.float32)
    out[:, 0] = b[:, 0] - b[:, 2] / 2
    out[:, 1] = b[:, 1] - b[:, 3] / 2
    out[:, 2] = b[:, 0] + b[:, 2] / 2
    out[:, 3] = b[:, 1] + b[:, 3] / 2
    return out


def to_xyxy(boxes: np.ndarray, box_format: str) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if box_format == "cxcywh":
        return _cxcywh_to_xyxy(boxes)
    if box_format == "xywh":
        out = boxes.copy()
        out[:, 2:] += out[:, :2]
        return out
    return boxes


def nms(boxes_xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, *, iou_threshold: float,
        max_detections: int) -> np.ndarray:
    """Class-aware non-maximum suppression (cv2.dnn.NMSBoxesBatched); indices sorted by score."""
    if len(scores) == 0:
        return np.zeros(0, dtype=np.intp)
    xywh = boxes_xyxy.astype(np.float64).copy()
    xywh[:, 2:] -= xywh[:, :2]
    keep = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.astype(float).tolist(),
                                   class_ids.astype(int).tolist(), 0.0, float(iou_threshold))
    kept = np.asarray(keep, dtype=np.intp).reshape(-1)
    kept = kept[np.argsort(-scores[kept], kind="stable")]
    return kept[:max_detections]


class _DetectionBase:
    tileable = False

    def candidates(self, outputs, ctx) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes xyxy in model-input pixels, scores, class ids) before thresholding."""
        raise NotImplementedError

    def n_classes(self, ctx: DecodeContext) -> int | None:
        return len(ctx.spec.labels) or None

    def decode(self, outputs: dict[str, np.ndarray], ctx: DecodeContext) -> list[Detection]:
        return finish_detections(*self.candidates(outputs, ctx), ctx)


def finish_detections(boxes: np.ndarray, scores: np.ndarray, cls: np.ndarray,
                      ctx: DecodeContext) -> list[Detection]:
    """Candidates (xyxy in model-input pixels, scores, class ids) -> threshold, class-aware NMS, boxes in
    the original image: the one pipeline of every built-in format and of custom raw candidates."""
    out = ctx.spec.output
    sel = scores >= out.score_threshold
    boxes, scores, cls = boxes[sel], scores[sel], cls[sel]
    keep = nms(boxes, scores, cls, iou_threshold=out.iou_threshold, max_detections=out.max_detections)
    boxes = ctx.prepared.geometry.boxes_to_source(boxes[keep])
    labels = ctx.spec.labels
    dets = []
    for b, s, c in zip(boxes, scores[keep], cls[keep]):
        if b[2] <= b[0] or b[3] <= b[1]:
            continue  # entirely in the letterbox padding: nothing of the image inside
        dets.append(Detection(index=int(c), label=label_of(labels, int(c)), score=float(s),
                              box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                              slice_index=ctx.prepared.index))
    return dets


def _rows(arr: np.ndarray, width: int | None, min_width: int, ctx: DecodeContext, fmt: str) -> np.ndarray:
    """(N, K) rows from [1, K, N], [1, N, K], [K, N] or [N, K] (exporters differ)."""
    a = _squeeze_batch(np.asarray(arr, dtype=np.float32), 2)
    if a.ndim != 2:
        raise ctx.error(f"{fmt} output has shape {list(arr.shape)}; expected [1, K, N] or [1, N, K]")
    if width is not None:
        if a.shape[1] == width:
            return a
        if a.shape[0] == width:
            return a.T
        raise ctx.spec.error("output.labels", f"{fmt} output {list(arr.shape)} does not have "
                                              f"{width} = {width - min_width} labels + {min_width} columns")
    # no labels: the box/score axis is the short one
    return a if a.shape[1] <= a.shape[0] else a.T


class YoloV8Decoder(_DetectionBase):
    """``[1, 4+C, N]`` (cx, cy, w, h, C class scores), no objectness."""

    def candidates(self, outputs, ctx):
        n = self.n_classes(ctx)
        rows = _rows(_output(outputs, ctx), n + 4 if n else None, 4, ctx, "yolov8")
        cls_scores = rows[:, 4:]
        if cls_scores.shape[1] == 0:
            raise ctx.error("yolov8 output has no class columns")
        cls = cls_scores.argmax(axis=1)
        scores = cls_scores[np.arange(len(rows)), cls]
        return _cxcywh_to_xyxy(rows[:, :4]), scores, cls


class YoloV5Decoder(_DetectionBase):
    """``[1, N, 5+C]`` (cx, cy, w, h, objectness, C class scores); score = objectness x class score."""

    def candidates(self, outputs, ctx):
        n = self.n_classes(ctx)
        rows = _rows(_output(outputs, ctx), n + 5 if n else None, 5, ctx, self.name)
        return self._from_rows(rows, ctx)

    name = "yolov5"

    def _from_rows(self, rows, ctx):
        cls_scores = rows[:, 5:]
        if cls_scores.shape[1] == 0:
            raise ctx.error(f"{self.name} output has no class columns")
        cls = cls_scores.argmax(axis=1)
        scores = rows[:, 4] * cls_scores[np.arange(len(rows)), cls]
        return _cxcywh_to_xyxy(rows[:, :4]), scores, cls


class YoloXDecoder(YoloV5Decoder):
    """YOLOX exported without ``decode_in_inference``: per-cell offsets; ``xy = (out + grid) * stride``,
    ``wh = exp(out) * stride`` over the grids of ``output.strides``."""

    name = "yolox"

    def candidates(self, outputs, ctx):
        n = self.n_classes(ctx)
        rows = _rows(_output(outputs, ctx), n + 5 if n else None, 5, ctx, self.name).copy()
        th, tw = ctx.model_hw
        grids, strides = [], []
        for s in ctx.spec.output.strides:
            hs, ws = th // s, tw // s
            yv, xv = np.meshgrid(np.arange(hs), np.arange(ws), indexing="ij")
            grids.append(np.stack((xv, yv), axis=2).reshape(-1, 2))
            strides.append(np.full((hs * ws, 1), s))
        grid = np.concatenate(grids).astype(np.float32)
        stride = np.concatenate(strides).astype(np.float32)
        if grid.shape[0] != rows.shape[0]:
            raise ctx.spec.error("output.strides", f"strides {ctx.spec.output.strides} at input {th}x{tw} give "
                                                   f"{grid.shape[0]} cells, the model outputs {rows.shape[0]}")
        rows[:, :2] = (rows[:, :2] + grid) * stride
        rows[:, 2:4] = np.exp(np.minimum(rows[:, 2:4], 20.0)) * stride
        return self._from_rows(rows, ctx)


class BoxesScoresDecoder(_DetectionBase):
    """Already-decoded ``boxes`` [1, N, 4] and ``scores`` [1, N, C] (or [1, N]) outputs."""

    def candidates(self, outputs, ctx):
        out = ctx.spec.output
        boxes = _squeeze_batch(np.asarray(outputs[out.boxes], dtype=np.float32), 2)
        scores = _squeeze_batch(np.asarray(outputs[out.scores], dtype=np.float32), 2)
        if boxes.ndim != 2 or boxes.shape[-1] != 4:
            raise ctx.error(f"boxes output {out.boxes!r} has shape {list(outputs[out.boxes].shape)}; "
                            "expected [1, N, 4]")
        if scores.ndim == 1:
            scores = scores[:, np.newaxis]
        if scores.shape[0] != boxes.shape[0]:
            if scores.shape[1] == boxes.shape[0]:
                scores = scores.T
            else:
                raise ctx.error(f"scores output {list(outputs[out.scores].shape)} does not match "
                                f"{boxes.shape[0]} boxes")
        columns = np.arange(scores.shape[1])
        if out.background_class is not None:
            if out.background_class >= scores.shape[1]:
                raise ctx.spec.error("output.background_class", f"{out.background_class} but scores have "
                                                                f"{scores.shape[1]} columns")
            keep_cols = columns != out.background_class
            scores, columns = scores[:, keep_cols], columns[keep_cols]
        if scores.shape[1] == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.intp)
        best = scores.argmax(axis=1)
        best_scores = scores[np.arange(len(scores)), best]
        xyxy = to_xyxy(boxes, out.box_format)
        if out.normalized:
            th, tw = ctx.model_hw
            xyxy[:, [0, 2]] *= tw
            xyxy[:, [1, 3]] *= th
        return xyxy, best_scores, columns[best]


# -- restoration ----------------------------------------------------------------------------------
class RestorationDecoder:
    """Model output -> image in the input's value scale and dtype (range clip, residual, luma merge)."""

    tileable = True

    def dense(self, outputs: dict[str, np.ndarray], ctx: DecodeContext) -> np.ndarray:
        """(h*s, w*s, C) float32 in model units (residual already applied)."""
        spec = ctx.spec
        arr = np.asarray(_output(outputs, ctx), dtype=np.float32)
        a = _squeeze_batch(arr, 3)
        if a.ndim == 2:
            a = a[..., np.newaxis] if spec.output.layout == "NHWC" else a[np.newaxis]
        if a.ndim != 3:
            raise ctx.error(f"restoration output has shape {list(arr.shape)}; expected 4 dims")
        hwc = a.transpose(1, 2, 0) if spec.output.layout == "NCHW" else a
        th, tw = ctx.model_hw
        s = spec.output.scale
        if hwc.shape[:2] != (th * s, tw * s):
            fy = hwc.shape[0] / th
            raise spec.error("output.scale", f"model output is {hwc.shape[0]}x{hwc.shape[1]} for a {th}x{tw} "
                                             f"input ({fy:g}x), the manifest says scale {s}")
        if spec.output.residual:
            hwc = self._input_units(ctx, s) - hwc
        return np.ascontiguousarray(hwc)

    def _input_units(self, ctx: DecodeContext, s: int) -> np.ndarray:
        """The model input in model units before mean/std, (h*s, w*s, C)."""
        t = ctx.input_tensor
        if t is None:
            raise InferenceError(f"{ctx.spec.id}: a residual restoration needs the model input, which was not kept")
        t = t[0].transpose(1, 2, 0) if ctx.spec.input.layout == "NCHW" else t[0]
        imap = ctx.prepared.intensity
        x = t.astype(np.float32)
        if not (np.allclose(imap.a, imap.a0) and np.allclose(imap.b, imap.b0)):
            x = (x - imap.b) / imap.a * imap.a0 + imap.b0
        if s != 1:
            x = resize_plane(x, (x.shape[0] * s, x.shape[1] * s))
            if x.ndim == 2:
                x = x[..., np.newaxis]
        return x

    def from_dense(self, dense: np.ndarray, ctx: DecodeContext) -> np.ndarray:
        spec = ctx.spec
        prep = ctx.prepared
        s = spec.output.scale
        h, w = prep.geometry.src_hw
        img = dense[: h * s, : w * s]  # tile mode pads small images up to one tile
        # dense is the engine's own buffer (blended tiles or a fresh model output): work in place,
        # a copy of a 2048x2048 float image costs as much as a tile's inference
        if img.dtype != np.float32 or not img.flags.writeable:
            img = img.astype(np.float32)
        if spec.output.range is not None:
            np.clip(img, spec.output.range[0], spec.output.range[1], out=img)
        prep.intensity.to_raw(img)
        color = spec.input.color
        src_color = len(prep.source_shape) == 3
        if color == "luma" and prep.chroma is not None:
            chroma = resize_plane(prep.chroma, (h * s, w * s)) if s != 1 else prep.chroma
            img = luma_to_rgb(img[..., 0], chroma)
        elif color == "bgr":
            img = img[..., ::-1]
        if img.shape[-1] == 3 and not src_color:
            img = img.mean(axis=2)  # a gray image through an RGB model: give back a gray image
        elif img.shape[-1] == 1:
            img = img[..., 0]
        return cast_like(img, prep.source_dtype)

    def decode(self, outputs: dict[str, np.ndarray], ctx: DecodeContext) -> np.ndarray:
        dense = self.dense(outputs, ctx)
        geo = ctx.prepared.geometry
        restored = geo.to_source(dense, factor=ctx.spec.output.scale)
        if restored.ndim == 2:
            restored = restored[..., np.newaxis]
        return self.from_dense(restored, ctx)


def cast_like(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float values -> ``dtype``: rounded and clipped to the integer range, float kept as float32."""
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        if values.dtype == np.float32 and values.flags.writeable:
            np.rint(values, out=values)
            np.clip(values, info.min, info.max, out=values)
            return values.astype(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    if dtype == np.bool_:
        return values > 0.5
    return values.astype(np.float32, copy=False)


# -- registry -------------------------------------------------------------------------------------
DECODERS: dict[str, Any] = {
    "classification": ClassificationDecoder(),
    "segmentation": SegmentationDecoder(),
    "restoration": RestorationDecoder(),
    "detection:yolov8": YoloV8Decoder(),
    "detection:yolov5": YoloV5Decoder(),
    "detection:yolox": YoloXDecoder(),
    "detection:boxes_scores": BoxesScoresDecoder(),
}


def register_decoder(key: str, decoder: Any) -> None:
    """Add a built-in decoder (``task`` or ``detection:<format>``); it needs ``decode(outputs, ctx)``."""
    if not callable(getattr(decoder, "decode", None)):
        raise TypeError("a decoder needs a decode(outputs, ctx) method")
    DECODERS[key] = decoder


def decoder_for(spec: PluginSpec, settings: Settings | None = None) -> Any:
    """The decoder of a plugin: its trusted ``output.decoder`` or the built-in one for its task/format.

    Raises
    ------
    PluginError
        A custom decoder of an untrusted plugin, or no decoder for the task/format.
    """
    if spec.output.decoder is not None:
        from .custom_decoder import load_custom_decoder  # trust check, import, return validation

        return load_custom_decoder(spec, settings)
    key = f"detection:{spec.output.format}" if spec.task == "detection" else spec.task
    if key not in DECODERS:
        raise spec.error("output.format" if spec.task == "detection" else "task", f"no decoder for {key!r}")
    return DECODERS[key]


def default_class_color(i: int) -> str:
    return default_color(max(1, i))
