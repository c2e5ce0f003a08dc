"""Qt-free pictures of a result for the import dialog: the image with the mask, boxes, top classes or the
restored image, as an RGB uint8 array (the dialog only wraps it in a QImage)."""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ...core.image import ImageVolume, percentile_window
from ...core.labels import default_color
from ...core.results import ClassificationResult, DetectionResult, RestorationResult, SegmentationResult


def display_rgb(plane: np.ndarray) -> np.ndarray:
    """A plane (gray or RGB, any dtype) as display RGB uint8 (robust min/max for non-uint8)."""
    plane = np.asarray(plane)
    if plane.ndim == 3 and plane.shape[2] == 4:
        plane = plane[..., :3]
    if plane.dtype != np.uint8:
        lo, hi = percentile_window(plane.astype(np.float32))
        hi = hi if hi > lo else lo + 1
        plane = np.clip((plane.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(plane[..., None], 3, axis=2) if plane.ndim == 2 else plane)


def _hex(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def part_of(result: Any, z: int = 0) -> Any:
    """The per-slice part of an engine :class:`Result` (what a decoder returns for one slice)."""
    if isinstance(result, SegmentationResult):
        return result.mask[z]
    if isinstance(result, ClassificationResult):
        return result.scores
    if isinstance(result, DetectionResult):
        return [d for d in result.detections if d.slice_index == z]
    if isinstance(result, RestorationResult):
        return result.image.data[min(z, result.image.n_slices - 1)]
    return result


def render(image: ImageVolume, task: str, part: Any, labels: list[str] | None = None, *,
           max_side: int = 360) -> tuple[np.ndarray, str]:
    """``(RGB uint8 picture, one-line summary)`` of one slice's decoded output on ``image``'s middle slice."""
    z = image.n_slices // 2
    rgb = display_rgb(image.slice(z))
    text = ""
    if task == "segmentation":
        mask = np.asarray(part)
        values = [int(v) for v in np.unique(mask) if v != 0]
        for v in values:
            sel = mask == v
            rgb[sel] = (0.45 * rgb[sel] + 0.55 * np.array(_hex(default_color(v)))).astype(np.uint8)
        text = ", ".join(f"class {v}: {int((mask == v).sum())} px" for v in values) or "no class found"
    elif task == "detection":
        for d in part:
            x0, y0, x1, y1 = (int(round(c)) for c in d.box)
            color = _hex(default_color(d.index + 1))
            cv2.rectangle(rgb, (x0, y0), (x1, y1), color, max(1, rgb.shape[0] // 200))
        text = f"{len(part)} detection(s)" + (f", best {part[0].label} {part[0].score:.2f}" if part else "")
    elif task == "classification":
        scores = np.asarray(part, dtype=np.float32)
        order = np.argsort(-scores)[:3]
        names = labels or []
        text = ", ".join(f"{names[i] if i < len(names) else f'class {i}'} {scores[i]:.2f}" for i in order)
    else:
        rgb = display_rgb(np.asarray(part))
        text = f"restored {rgb.shape[0]}x{rgb.shape[1]}"
    h, w = rgb.shape[:2]
    f = min(1.0, max_side / max(h, w))
    if f < 1.0:
        rgb = cv2.resize(rgb, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
    elif max_side // max(h, w) >= 2:  # a small image or 3-D crop: whole pixels enlarged, to be seen
        k = max_side // max(h, w)
        rgb = cv2.resize(rgb, (w * k, h * k), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(rgb), text
