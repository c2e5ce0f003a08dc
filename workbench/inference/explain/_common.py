"""Shared machinery of the explanation methods: the explanation record, batched model runs that count
their cost, class scores of a batch, baselines, window sizes and the peak.

Every method perturbs the *model input tensor* (after the plugin's declared preprocessing) and maps its
map back to the image geometry with the engine's own :class:`~workbench.inference.preprocess.Geometry`
(padding cropped, letterbox/stretch scaling undone), so a saliency pixel sits over the image pixel the
model saw there.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import cv2
import numpy as np

from ...core.cancel import Cancel, is_cancelled
from ...core.errors import CancelledError, InferenceError, WorkbenchError
from ..decoders import activate
from ..preprocess import Geometry, PreparedPlane

Progress = tuple[int, int, str]

#: Largest batch tensor handed to one ``session.run`` (bytes): bounds the memory of a batched run.
MAX_BATCH_BYTES = 64 * 1024 * 1024


class ExplainError(WorkbenchError):
    """An explanation cannot be computed as asked (wrong task for the method, unknown class...)."""


def whole_tensor(plane: PreparedPlane, plugin_id: str, what: str = "explanations") -> np.ndarray:
    """The slice's one model input tensor; a tiled plugin's plane has none (the methods perturb the whole
    input), which is refused in one line."""
    if plane.tensor is None:
        raise ExplainError(f"{plugin_id}: {what} of tiled plugins (resize: tile) are not supported")
    return plane.tensor


@dataclass
class Cost:
    """What an explanation cost: model runs (one image through the model = one run), ``session.run``
    calls (a batch of runs is one call), wall time ``ms`` (everything: perturbing, running, averaging)
    and ``inference_ms`` (inside ``session.run``); ``run_ms`` is one unbatched run of the unperturbed
    input, measured in the same process, so ``multiple`` = ``ms / run_ms``."""

    model_runs: int = 0
    session_calls: int = 0
    ms: float = 0.0
    inference_ms: float = 0.0
    run_ms: float = 0.0
    batch_size: int = 1

    @property
    def multiple(self) -> float:
        return self.ms / self.run_ms if self.run_ms > 0 else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {"model_runs": self.model_runs, "session_calls": self.session_calls, "ms": round(self.ms, 3),
                "inference_ms": round(self.inference_ms, 3), "one_run_ms": round(self.run_ms, 3),
                "multiple_of_one_run": round(self.multiple, 2) if self.run_ms > 0 else None,
                "batch_size": self.batch_size}


@dataclass
class Explanation:
    """A per-pixel map in the image geometry of one slice, plus what produced it.

    ``map`` is float32 ``(H, W)``: saliency (classification; larger = the pixel supports the class more)
    or uncertainty (segmentation; 0 = certain, 1 = maximally uncertain). ``units`` names what a value is.
    """

    method: str
    plugin_id: str
    task: str
    map: np.ndarray
    units: str
    slice_index: int = 0
    parameters: dict[str, Any] = field(default_factory=dict)
    cost: Cost = field(default_factory=Cost)
    target: dict[str, Any] | None = None  # classification: {"index", "label", "score"}
    top: dict[str, Any] | None = None  # classification: the top class of the unperturbed input
    summary: list[dict[str, Any]] = field(default_factory=list)  # segmentation: per-label rows
    mask: np.ndarray | None = None  # segmentation: (H, W) label values of the unperturbed prediction
    info: Any = None  # the RunInfo of the plugin run (plugin id/name/version/sha256, provider)

    @property
    def peak(self) -> dict[str, Any]:
        """Where the map is largest, in image pixels ``(x, y)`` (the first such pixel)."""
        return peak_of(self.map)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description (no pixel data, no source path)."""
        info = self.info
        plugin = ({"id": info.plugin_id, "name": info.plugin_name, "version": info.plugin_version,
                   "sha256": info.sha256, "provider": info.provider} if info is not None else self.plugin_id)
        return {"method": self.method, "plugin": plugin, "task": self.task, "units": self.units,
                "slice": self.slice_index, "shape": [int(s) for s in self.map.shape],
                "parameters": self.parameters, "cost": self.cost.as_dict(), "target": self.target,
                "top_class": self.top, "peak": self.peak,
                "range": [float(np.min(self.map)), float(np.max(self.map))], "summary": self.summary}

    @property
    def nbytes(self) -> int:
        return int(self.map.nbytes + (self.mask.nbytes if self.mask is not None else 0))


def peak_of(arr: np.ndarray) -> dict[str, Any]:
    """The maximum of a map in pixels ``(x, y)``. Occlusion maps have flat plateaus (a window's drop is
    spread over its footprint): of all pixels at the maximum, the one nearest their centroid is taken,
    not the first one, whose top-left bias would move the peak towards the image origin."""
    a = np.asarray(arr, dtype=np.float64)
    top = float(a.max())
    tol = 1e-6 * max(abs(top), 1e-12)
    ys, xs = np.nonzero(a >= top - tol)
    cy, cx = ys.mean(), xs.mean()
    k = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
    y, x = int(ys[k]), int(xs[k])
    return {"x": x, "y": y, "value": float(a[y, x])}


# -- batched runs --------------------------------------------------------------------------------
class BatchRunner:
    """Runs many input tensors of one shape through a model, batched when the graph's batch dim is
    dynamic, counting every run; checks cancel between ``session.run`` calls.

    A graph that declares a dynamic batch but cannot run one (a Reshape to 1 inside) fails on the
    first batched call; the runner then falls back to one image per call and says so in ``cost``.
    """

    def __init__(self, model: Any, sample: np.ndarray, *, batch_size: int = 16, cancel: Cancel = None) -> None:
        self.model = model
        self.cancel = cancel
        self.cost = Cost()
        self.t0 = time.perf_counter()
        fixed = getattr(model.input, "batch", None)
        per_image = max(1, int(sample.nbytes))
        if fixed is not None:
            self.batch = int(fixed)  # a fixed batch: chunks of exactly that size (the last one padded)
            self.dynamic = False
        else:
            self.batch = max(1, min(int(batch_size), MAX_BATCH_BYTES // per_image))
            self.dynamic = True
        self.cost.batch_size = self.batch

    def _call(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        if is_cancelled(self.cancel):
            raise CancelledError()
        t0 = time.perf_counter()
        outs = self.model.run(tensor)
        self.cost.inference_ms += (time.perf_counter() - t0) * 1000.0
        self.cost.session_calls += 1
        self.cost.model_runs += int(tensor.shape[0])
        return outs

    def run_one(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        """One unbatched run (the unperturbed input); its time becomes ``cost.run_ms``."""
        t0 = time.perf_counter()
        if self.dynamic or self.batch == 1:
            outs = self._call(tensor)
        else:
            outs = {k: v[:1] for k, v in self._call(np.repeat(tensor, self.batch, axis=0)).items()}
        self.cost.run_ms = (time.perf_counter() - t0) * 1000.0
        return outs

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run ``(n, ...)`` inputs; outputs with a leading dim of ``n``, in order."""
        n = batch.shape[0]
        if not self.dynamic:
            parts = []
            for start in range(0, n, self.batch):
                chunk = batch[start:start + self.batch]
                real = chunk.shape[0]
                if real < self.batch:
                    chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch - real, axis=0)])
                parts.append({k: v[:real] for k, v in self._call(chunk).items()})
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if n > 1 and self.batch > 1:
            try:
                return self._call(batch)
            except InferenceError:
                if self.cost.session_calls > 1:  # batches worked before: a real failure
                    raise
                self.batch = self.cost.batch_size = 1  # the graph cannot batch after all
        singles = [self._call(batch[i:i + 1]) for i in range(n)]
        return {k: np.concatenate([o[k] for o in singles]) for k in singles[0]}

    def finish(self) -> Cost:
        """The cost, with the wall time since the runner was made."""
        self.cost.ms = (time.perf_counter() - self.t0) * 1000.0
        return self.cost

    def batches(self, total: int) -> Iterator[tuple[int, int]]:
        """``(start, stop)`` index ranges of ``total`` runs in chunks of the batch size."""
        step = max(1, self.batch)
        for start in range(0, total, step):
            yield start, min(total, start + step)


def batch_scores(outputs: dict[str, np.ndarray], spec: Any) -> np.ndarray:
    """``(n, C)`` class scores of a batch of classification outputs (the plugin's activation applied)."""
    name = spec.output.name
    arr = np.asarray(outputs[name] if name is not None else next(iter(outputs.values())), dtype=np.float32)
    n = arr.shape[0] if arr.ndim > 1 else 1
    arr = arr.reshape(n, -1)
    return activate(arr, spec.output.activation, axis=-1)


# -- geometry, baselines, sizes ------------------------------------------------------------------
def tensor_hw(tensor: np.ndarray, layout: str) -> tuple[int, int]:
    return (tensor.shape[2], tensor.shape[3]) if layout == "NCHW" else (tensor.shape[1], tensor.shape[2])


def content_box(geo: Geometry) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the image content inside the model input."""
    return geo.pad[0], geo.pad[1], geo.content_hw[0], geo.content_hw[1]


def to_image(model_map: np.ndarray, plane: PreparedPlane) -> np.ndarray:
    """A ``(h, w)`` map over the whole model input -> ``(H, W)`` float32 over the image slice."""
    out = plane.geometry.to_source(np.ascontiguousarray(model_map, dtype=np.float32))
    return np.ascontiguousarray(out, dtype=np.float32)


def baseline_tensor(tensor: np.ndarray, plane: PreparedPlane, layout: str, kind: str, sigma: float) -> np.ndarray:
    """What "removed" pixels are replaced with: the blurred input or its per-channel mean (both in model
    units, computed over the image content so that letterbox padding does not leak in)."""
    if kind not in ("blur", "mean"):
        raise ExplainError(f"--baseline {kind}: expected blur or mean")
    t, left, h, w = content_box(plane.geometry)
    base = np.array(tensor, dtype=np.float32, copy=True)
    chans = base.shape[1] if layout == "NCHW" else base.shape[3]
    for c in range(chans):
        view = base[0, c, t:t + h, left:left + w] if layout == "NCHW" else base[0, t:t + h, left:left + w, c]
        if kind == "mean":
            view[...] = float(view.mean())
        else:
            view[...] = cv2.GaussianBlur(np.ascontiguousarray(view), (0, 0), sigmaX=float(sigma),
                                         borderType=cv2.BORDER_REFLECT)
    return base.astype(tensor.dtype, copy=False)


def window_px(value: float, length: int, what: str) -> int:
    """A size given in pixels (>= 1) or as a fraction of the model input side (0 < value < 1)."""
    v = float(value)
    if not v > 0:
        raise ExplainError(f"--{what} {value}: must be > 0 (pixels, or a fraction of the model input below 1)")
    px = int(round(v * length)) if v < 1 else int(round(v))
    return max(1, min(length, px))


def spatial_mask(mask_hw: np.ndarray, layout: str) -> np.ndarray:
    """``(n, h, w)`` -> broadcastable against ``(n, C, h, w)`` or ``(n, h, w, C)``."""
    return mask_hw[:, np.newaxis] if layout == "NCHW" else mask_hw[..., np.newaxis]


def resolve_class(spec: Any, scores: np.ndarray, wanted: str | int | None) -> tuple[int, str]:
    """The class to explain: the top one by default, else a label (case-insensitive) or an index."""
    labels = list(spec.labels or [f"class {i}" for i in range(scores.shape[0])])
    if wanted is None or wanted == "":
        i = int(np.argmax(scores))
        return i, labels[i] if i < len(labels) else f"class {i}"
    text = str(wanted).strip()
    lower = [lab.lower() for lab in labels]
    if text.lower() in lower:
        i = lower.index(text.lower())
        return i, labels[i]
    if text.isdigit() and int(text) < scores.shape[0]:
        return int(text), labels[int(text)]
    raise ExplainError(f"--class {wanted}: not a class of {spec.id} (classes: {', '.join(labels)})")
