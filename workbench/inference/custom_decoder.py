"""A plugin's own decoder (``output.decoder: module:function``): trust check, import, and a guard that
turns anything the function does wrong into one line naming the plugin, the decoder and the problem.

The function is called as ``function(outputs, ctx)`` for every slice (``outputs``: the model outputs by
name, ``ctx``: :class:`~workbench.inference.decoders.DecodeContext`) and returns, by task:

- classification: ``(C,)`` scores;
- segmentation: an ``(H, W)`` integer mask of the slice's original size (``ctx.source_hw``);
- detection: a list of :class:`~workbench.inference.results.Detection` (finished: boxes in image pixels)
  or :class:`~workbench.inference.results.DetectionCandidates` (raw: the engine thresholds, runs class-aware
  NMS and maps the boxes back, the same code as the built-in formats);
- restoration: the restored plane, ``(H*s, W*s)`` or ``(H*s, W*s, C)``.

A return value is checked here, before it reaches the result, the overlay or the JSON writer: a wrong type
fails at once with :class:`InferenceError` (exit 2 in ``predict``; one failed item in ``batch``).
"""
from __future__ import annotations

import dataclasses
import sys
import types
import weakref
from typing import Any, Callable

import numpy as np

from ..core.errors import CancelledError, InferenceError, WorkbenchError
from ..core.results import Detection, box4
from ..core.settings import Settings, load_settings
from .decoders import DecodeContext, cast_like, finish_detections, to_xyxy
from .results import DetectionCandidates
from .spec import PluginSpec, _display
from .trust import is_trusted, untrusted_message

_EXPECTED = {
    "classification": "a (C,) array of scores",
    "segmentation": "an (H, W) integer mask of the slice's size",
    "detection": "a list of Detection or a DetectionCandidates",
    "restoration": "the restored (H*s, W*s[, C]) array",
}


class DecoderReturnError(Exception):
    """Internal: what is wrong with a return value (becomes the one-line :class:`InferenceError`)."""


def describe(value: Any) -> str:
    """A short description of a value for error messages: ``None``, ``dict``, ``ndarray (3, 3) float32``."""
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"ndarray {tuple(value.shape)} {value.dtype}"
    if isinstance(value, (list, tuple)):
        inner = f" of {type(value[0]).__name__}" if value else ""
        return f"{type(value).__name__}{inner} (length {len(value)})"
    return type(value).__name__


def _array(value: Any, what: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        arr = value
    elif isinstance(value, (list, tuple)) and all(isinstance(v, (int, float, np.number)) for v in value):
        arr = np.asarray(value)
    else:
        raise DecoderReturnError(f"returned {describe(value)}; expected {what}")
    if arr.dtype.kind not in "biuf":
        raise DecoderReturnError(f"returned {describe(arr)}; expected {what} of numbers")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DecoderReturnError(f"returned {describe(arr)} with NaN or Inf values")
    return arr


def _classification(value: Any, ctx: DecodeContext) -> np.ndarray:
    arr = _array(value, _EXPECTED["classification"])
    scores = arr.reshape(-1).astype(np.float32) if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[0] == 1) else None
    if scores is None or scores.size == 0:
        raise DecoderReturnError(f"returned {describe(arr)}; expected {_EXPECTED['classification']}")
    labels = ctx.labels
    if labels and len(labels) != scores.size:
        raise DecoderReturnError(f"returned {scores.size} scores for {len(labels)} labels")
    return scores


def _segmentation(value: Any, ctx: DecodeContext) -> np.ndarray:
    arr = _array(value, _EXPECTED["segmentation"])
    h, w = ctx.source_hw
    if arr.shape != (h, w):
        raise DecoderReturnError(f"returned {describe(arr)}; expected an integer mask of shape ({h}, {w}), "
                                 "the slice's size")
    if arr.dtype.kind == "f":
        raise DecoderReturnError(f"returned {describe(arr)}; a mask holds integer class values, not floats")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 65535):
        raise DecoderReturnError(f"returned mask values {int(arr.min())}..{int(arr.max())}; expected 0..65535")
    return arr.astype(np.uint16, copy=False)


def _detections(value: Any, ctx: DecodeContext) -> list[Detection]:
    if isinstance(value, DetectionCandidates):
        return finish_detections(*candidates_to_arrays(value, ctx), ctx)
    if not isinstance(value, (list, tuple)):
        raise DecoderReturnError(f"returned {describe(value)}; expected {_EXPECTED['detection']}")
    out = []
    for i, det in enumerate(value):
        if not isinstance(det, Detection):
            raise DecoderReturnError(f"returned a list whose item {i} is {describe(det)}; expected Detection")
        box = np.asarray(det.box, dtype=np.float64).reshape(-1)
        if box.size != 4 or not np.isfinite(box).all() or box[2] < box[0] or box[3] < box[1]:
            raise DecoderReturnError(f"Detection {i} has box {det.box!r}; expected finite [x1, y1, x2, y2] "
                                     "with x1 <= x2, y1 <= y2 (image pixels)")
        if not np.isfinite(float(det.score)):
            raise DecoderReturnError(f"Detection {i} has score {det.score!r}")
        label = det.label or (ctx.labels[det.index] if 0 <= det.index < len(ctx.labels) else f"class {det.index}")
        out.append(dataclasses.replace(det, index=int(det.index), label=str(label), score=float(det.score),
                                       box=box4(box), slice_index=ctx.slice_index))
    return out


def candidates_to_arrays(cand: DetectionCandidates, ctx: DecodeContext) -> tuple[np.ndarray, np.ndarray,
                                                                                  np.ndarray]:
    """Validate raw candidates -> (xyxy boxes in model-input pixels, scores, class ids)."""
    boxes = _array(cand.boxes, "DetectionCandidates.boxes (N, 4)").astype(np.float32)
    scores = _array(cand.scores, "DetectionCandidates.scores (N,) or (N, C)").astype(np.float32)
    if boxes.size == 0 and scores.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.intp)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise DecoderReturnError(f"returned DetectionCandidates.boxes {describe(boxes)}; expected (N, 4)")
    n = boxes.shape[0]
    if scores.ndim == 2 and scores.shape[0] == n and scores.shape[1] > 0:
        if cand.class_ids is not None:
            raise DecoderReturnError("returned per-class scores (N, C) and class_ids: give one or the other")
        cls = scores.argmax(axis=1)
        scores = scores[np.arange(n), cls]
    elif scores.ndim == 1 and scores.shape[0] == n:
        if cand.class_ids is None:
            cls = np.zeros(n, np.intp)  # one class
        else:
            ids = _array(cand.class_ids, "DetectionCandidates.class_ids (N,)")
            if ids.shape != (n,) or ids.dtype.kind == "f" and not np.array_equal(ids, np.rint(ids)):
                raise DecoderReturnError(f"returned DetectionCandidates.class_ids {describe(ids)}; expected ({n},) "
                                         "integers")
            cls = ids.astype(np.intp)
    else:
        raise DecoderReturnError(f"returned DetectionCandidates.scores {describe(scores)} for {n} boxes; "
                                 f"expected ({n},) or ({n}, C)")
    if cand.box_format not in ("xyxy", "xywh", "cxcywh"):
        raise DecoderReturnError(f"returned DetectionCandidates.box_format {cand.box_format!r}; expected xyxy, "
                                 "xywh or cxcywh")
    xyxy = to_xyxy(boxes, cand.box_format)
    if cand.normalized:
        th, tw = ctx.model_hw
        xyxy[:, [0, 2]] *= tw
        xyxy[:, [1, 3]] *= th
    return xyxy, scores, cls


def _restoration(value: Any, ctx: DecodeContext) -> np.ndarray:
    arr = _array(value, _EXPECTED["restoration"])
    s = ctx.spec.output.scale
    h, w = ctx.source_hw
    if arr.ndim not in (2, 3) or arr.shape[:2] != (h * s, w * s) or arr.ndim == 3 and arr.shape[2] not in (1, 3):
        raise DecoderReturnError(f"returned {describe(arr)}; expected ({h * s}, {w * s}) or ({h * s}, {w * s}, C) "
                                 f"with C 1 or 3 (the slice x output.scale {s})")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    dtype = ctx.prepared.source_dtype
    return arr if arr.dtype == dtype else cast_like(arr.astype(np.float32), dtype)


_VALIDATORS: dict[str, Callable[[Any, DecodeContext], Any]] = {
    "classification": _classification, "segmentation": _segmentation, "detection": _detections,
    "restoration": _restoration}


class CustomDecoder:
    """A trusted plugin's ``module:function`` behind the built-in decoders' ``decode`` interface."""

    tileable = False

    def __init__(self, spec: PluginSpec, function: Callable[[dict[str, np.ndarray], DecodeContext], Any]) -> None:
        self.spec = spec
        self.function = function
        self._image: weakref.ref | None = None  # the image of the slices decoded so far
        self._shape: tuple[int, ...] | None = None

    def _fail(self, problem: str, ctx: DecodeContext) -> InferenceError:
        where = f" on slice {ctx.slice_index}" if ctx.image.n_slices > 1 else ""
        return InferenceError(f"output.decoder {self.spec.output.decoder} of plugin {self.spec.id}{where}: "
                              f"{problem}", path=_display(self.spec.manifest_path))

    def decode(self, outputs: dict[str, np.ndarray], ctx: DecodeContext) -> Any:
        try:
            value = self.function(outputs, ctx)
        except CancelledError:
            raise
        except WorkbenchError as exc:  # ctx.error(...) raised by the decoder: its own message
            raise self._fail(exc.reason, ctx) from exc
        # the plugin's code can raise anything (sys.exit included): it is the plugin's fault, one line
        except (Exception, SystemExit) as exc:
            raise self._fail(f"raised {type(exc).__name__}: {exc}", ctx) from exc
        try:
            checked = _VALIDATORS[self.spec.task](value, ctx)
            if self.spec.task in ("classification", "restoration"):  # an image's slices are stacked
                same_image = self._image is not None and self._image() is ctx.image
                if same_image and checked.shape != self._shape:
                    what = "scores" if self.spec.task == "classification" else "shape"
                    raise DecoderReturnError(f"returned {what} {checked.shape}, {self._shape} before")
                self._image, self._shape = weakref.ref(ctx.image), checked.shape
            return checked
        except DecoderReturnError as exc:
            raise self._fail(str(exc), ctx) from None


def _module_path(spec: PluginSpec):
    module_name = spec.output.decoder.split(":")[0]  # type: ignore[union-attr]
    return module_name, spec.folder / (module_name.replace(".", "/") + ".py")


def _import(spec: PluginSpec, source: bytes) -> Callable:
    """Execute the decoder module from ``source`` (the hashed bytes; no bytecode cache is read or written)."""
    module_name, path = _module_path(spec)
    func_name = spec.output.decoder.split(":")[1]  # type: ignore[union-attr]
    unique = f"workbench_plugin_{spec.id.replace('-', '_')}_{module_name.replace('.', '_')}"
    module = types.ModuleType(unique)
    module.__file__ = str(path)
    try:
        code = compile(source, str(path), "exec", dont_inherit=True)
        sys.modules[unique] = module
        exec(code, module.__dict__)
    # the plugin's code can raise anything while importing: report it as the plugin's fault
    except (Exception, SystemExit) as exc:
        sys.modules.pop(unique, None)
        raise spec.error("output.decoder", f"importing {path.name} failed: {type(exc).__name__}: {exc}") from exc
    func = getattr(module, func_name, None)
    if not callable(func):
        raise spec.error("output.decoder", f"{path.name} has no function {func_name!r}")
    return func


def load_custom_decoder(spec: PluginSpec, settings: Settings | None = None) -> CustomDecoder:
    """The plugin's own decoder, if the user trusted the plugin's current content.

    Raises
    ------
    PluginError
        Not trusted (the message names the command to run and the settings file), or the module fails
        to import / has no such function.
    """
    settings = settings if settings is not None else load_settings()
    _, path = _module_path(spec)
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise spec.error("output.decoder", f"cannot read {path.name}: {exc}") from exc
    rel = path.relative_to(spec.folder).as_posix()
    if not is_trusted(spec, settings, sources={rel: source}):
        raise spec.error("output.decoder", untrusted_message(spec, settings))
    return CustomDecoder(spec, _import(spec, source))
