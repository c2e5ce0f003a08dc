"""Per-pixel uncertainty of a segmentation plugin, from its own softmax/sigmoid outputs.

- ``entropy``: Shannon entropy of the class probabilities divided by its maximum (``ln C``; a sigmoid
  channel is a two-class problem), so 0 = one class has probability 1, 1 = all classes equally likely.
  Multi-label sigmoid outputs: the largest per-channel value (the most uncertain label).
- ``margin``: ``1 - (p_first - p_second)`` of the two most likely classes (sigmoid: ``1 - |2p - 1|``).
- ``tta``: test-time augmentation. The model input is flipped as declared (``h``, ``v``, ``hv``), run,
  the output flipped back; the map is the fraction of the ``1 + len(flips)`` runs whose label differs
  from the unflipped run's. 0 = every run agrees.

Each is summarised per label of the unperturbed prediction: pixels, mean uncertainty and the fraction of
pixels above ``threshold``. These maps say where the *model* hesitates; they are not calibrated error
probabilities and say nothing about errors the model makes confidently.
"""
from __future__ import annotations

from typing import Any, Generator

import numpy as np

from ...core.image import ImageVolume
from ..decoders import DecodeContext, class_values
from ..preprocess import PreparedPlane, resize_plane
from ._common import BatchRunner, Cancel, ExplainError, Explanation, Progress, whole_tensor

FLIPS = ("h", "v", "hv")
UNITS = {"entropy": "normalised entropy (0 = certain, 1 = all classes equally likely)",
         "margin": "1 - margin between the two most likely classes (0 = certain)",
         "tta": "fraction of flipped runs that disagree with the unflipped label"}


def _flip_axes(kind: str, layout: str) -> tuple[int, ...]:
    h_ax, w_ax = (2, 3) if layout == "NCHW" else (1, 2)
    return {"h": (w_ax,), "v": (h_ax,), "hv": (h_ax, w_ax)}[kind]


def _item(outputs: dict[str, np.ndarray], i: int, n: int) -> dict[str, np.ndarray]:
    return {k: (v[i:i + 1] if v.ndim >= 1 and v.shape[0] == n else v) for k, v in outputs.items()}


def _probabilities(engine: Any, outputs: dict[str, np.ndarray], ctx: DecodeContext) -> np.ndarray:
    """``(h, w, C)`` probabilities over the model input (the decoder's own activation)."""
    spec = engine.spec
    if spec.output.layout == "NHW":
        raise ExplainError(f"{spec.id}: the model outputs class ids (output.layout NHW), not probabilities: "
                           "entropy and margin need softmax or sigmoid scores (use --method tta)")
    probs = engine.decoder.dense(outputs, ctx)
    if spec.output.activation == "none" and (probs.min() < -1e-4 or probs.max() > 1 + 1e-4):
        raise ExplainError(f"{spec.id}: output.activation is none and the outputs are not probabilities "
                           f"(range {probs.min():.3g}..{probs.max():.3g}); declare softmax or sigmoid")
    return probs


def _to_image(probs: np.ndarray, plane: PreparedPlane) -> np.ndarray:
    content = plane.geometry.crop_content(probs)
    out = resize_plane(np.ascontiguousarray(content, dtype=np.float32), plane.geometry.src_hw)
    return out if out.ndim == 3 else out[..., np.newaxis]


def entropy_map(probs: np.ndarray, *, multi_label: bool = False) -> np.ndarray:
    """Normalised entropy of ``(H, W, C)`` probabilities -> ``(H, W)`` float32 in [0, 1]."""
    p = np.clip(probs.astype(np.float64), 1e-12, 1.0)
    if p.shape[2] == 1 or multi_label:
        q = 1.0 - p
        q = np.clip(q, 1e-12, 1.0)
        h = -(p * np.log(p) + q * np.log(q)) / np.log(2.0)
        return h.max(axis=2).astype(np.float32)
    p = p / p.sum(axis=2, keepdims=True)
    return (-(p * np.log(p)).sum(axis=2) / np.log(p.shape[2])).astype(np.float32)


def margin_map(probs: np.ndarray, *, multi_label: bool = False) -> np.ndarray:
    """``1 - (p1 - p2)`` of ``(H, W, C)`` probabilities (sigmoid channels: ``1 - |2p - 1|``)."""
    p = probs.astype(np.float32)
    if p.shape[2] == 1 or multi_label:
        return (1.0 - np.abs(2.0 * p - 1.0)).max(axis=2).astype(np.float32)
    top2 = -np.partition(-p, 1, axis=2)[..., :2]
    return np.clip(1.0 - (top2[..., 0] - top2[..., 1]), 0.0, 1.0).astype(np.float32)


def label_summary(spec: Any, mask: np.ndarray, values: np.ndarray, threshold: float) -> list[dict[str, Any]]:
    """Per label of ``mask``: pixels, mean of ``values`` and the fraction above ``threshold``."""
    names: dict[int, str] = {}
    declared = spec.output.classes or []
    vals = class_values(spec, max(len(declared), 1)) if declared else np.arange(0)
    for i, cls in enumerate(declared):
        names.setdefault(int(vals[i]) if i < len(vals) else i, cls.name)
    rows = []
    for value in np.unique(mask):
        sel = mask == value
        v = values[sel]
        rows.append({"value": int(value), "name": names.get(int(value), "background" if value == 0 else
                                                            f"class {value}"),
                     "pixels": int(sel.sum()), "mean_uncertainty": round(float(v.mean()), 6),
                     "uncertain_fraction": round(float((v > threshold).mean()), 6)})
    return rows


def uncertainty(engine: Any, image: ImageVolume, plane: PreparedPlane, *, method: str = "entropy",
                flips: tuple[str, ...] | list[str] = ("h", "v"), threshold: float = 0.5, batch_size: int = 16,
                cancel: Cancel = None) -> Generator[Progress, None, Explanation]:
    """Uncertainty map of one preprocessed slice of a segmentation plugin.

    Parameters
    ----------
    engine : Engine
        A segmentation plugin bound to its session.
    image : ImageVolume
        The image ``plane`` was prepared from (the decoder reads its geometry).
    plane : PreparedPlane
    method : {"entropy", "margin", "tta"}
    flips : sequence of {"h", "v", "hv"}
        The test-time augmentations of ``tta`` (cost: 1 + len(flips) model runs).
    threshold : float
        Uncertainty above which a pixel counts as uncertain in the per-label summary.
    batch_size : int
    cancel : threading.Event or callable, optional

    Returns
    -------
    Explanation
        ``map`` in [0, 1]; ``mask`` the unperturbed prediction; ``summary`` one row per label.
    """
    spec = engine.spec
    if method not in UNITS:
        raise ExplainError(f"--method {method}: expected one of {', '.join(UNITS)} for a segmentation plugin")
    flips = tuple(flips) if method == "tta" else ()
    bad = [f for f in flips if f not in FLIPS]
    if bad:
        raise ExplainError(f"--flips {bad[0]}: expected h, v or hv")
    if method == "tta" and not flips:
        raise ExplainError("--flips: tta needs at least one flip (h, v, hv)")
    layout = spec.input.layout
    tensor = whole_tensor(plane, spec.id, "uncertainty maps")
    ctx = DecodeContext(spec, image, plane, tensor)
    runner = BatchRunner(engine.model, tensor, batch_size=batch_size, cancel=cancel)
    total = 1 + len(flips)
    yield (0, total, method)
    probs0 = _to_image(_probabilities(engine, runner.run_one(tensor), ctx), plane)
    mask = engine.decoder.from_dense(probs0, ctx).astype(np.uint16)
    multi = bool(spec.output.multi_label)
    if method == "entropy":
        values = entropy_map(probs0, multi_label=multi)
    elif method == "margin":
        values = margin_map(probs0, multi_label=multi)
    else:
        batch = np.concatenate([np.flip(tensor, axis=_flip_axes(f, layout)) for f in flips])
        outs = runner.run(np.ascontiguousarray(batch))
        disagree = np.zeros(mask.shape, np.float32)
        for i, f in enumerate(flips):
            probs = _probabilities(engine, _item(outs, i, len(flips)), ctx)
            probs = np.ascontiguousarray(np.flip(probs, axis=tuple(a - (2 if layout == "NCHW" else 1)
                                                                   for a in _flip_axes(f, layout))))
            ids = engine.decoder.from_dense(_to_image(probs, plane), ctx)
            disagree += (ids != mask)
        values = disagree / float(total)
    yield (total, total, method)
    return Explanation(method=method, plugin_id=spec.id, task=spec.task, map=np.ascontiguousarray(values, np.float32),
                       units=UNITS[method], slice_index=plane.index,
                       parameters={"flips": list(flips), "threshold": float(threshold),
                                   "activation": spec.output.activation, "multi_label": multi},
                       cost=runner.finish(), summary=label_summary(spec, mask, values, float(threshold)), mask=mask)
