"""Model results as plain data: what a plugin run produced, in the original image's geometry.

The GUI shows them, the document stores them (undoably), exports write them. Fields may be added;
existing names are an interface between the engine, the GUI and the exports.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.image import ImageVolume


@dataclass
class RunInfo:
    """Provenance recorded with every result and written into every export."""

    plugin_id: str
    plugin_name: str
    plugin_version: str
    sha256: str
    provider: str  # the provider actually used, from session.get_providers()[0]
    task: str
    source_path: str | None = None
    timing_ms: dict[str, float] = field(default_factory=dict)
    slice_indices: list[int] = field(default_factory=list)  # slices the model ran on


@dataclass
class ClassScore:
    index: int
    label: str
    score: float


@dataclass
class ClassificationResult:
    """Scores of every class; ``top`` is sorted by score, highest first."""

    info: RunInfo
    scores: np.ndarray  # (C,) probabilities (or raw scores with activation none)
    labels: list[str]
    top: list[ClassScore]
    multi_label: bool = False
    slice_scores: np.ndarray | None = None  # (S, C) per slice run; ``scores`` is their mean

    @property
    def nbytes(self) -> int:
        return int(self.scores.nbytes)


@dataclass
class SegmentationClass:
    value: int
    name: str
    color: str
    pixels: int = 0
    area_mm2: float | None = None


@dataclass
class SegmentationResult:
    """A label mask with the image's ``(z, y, x)`` shape and the classes it holds (background = 0)."""

    info: RunInfo
    mask: np.ndarray  # uint16, same (z, y, x) as the image
    classes: list[SegmentationClass]
    probabilities: np.ndarray | None = None  # optional (C, z, y, x) float16 — not kept by default

    @property
    def nbytes(self) -> int:
        return int(self.mask.nbytes + (self.probabilities.nbytes if self.probabilities is not None else 0))


@dataclass
class Detection:
    """One box in pixel coordinates of the original image: ``[x1, y1, x2, y2]``."""

    index: int  # class index (score column, background column included)
    label: str
    score: float
    box: tuple[float, float, float, float]
    slice_index: int = 0


@dataclass
class DetectionCandidates:
    """What a custom decoder may return instead of finished :class:`Detection` s: raw candidates of one
    slice, before thresholding; the engine applies ``output.score_threshold``, class-aware NMS
    (``output.iou_threshold``, ``max_detections``) and maps the boxes back to the original image, exactly
    as for the built-in detection formats.

    ``boxes``: ``(N, 4)`` in pixels of the model input (``ctx.model_hw``), ``xyxy`` unless ``box_format``
    says ``xywh`` / ``cxcywh``; ``normalized=True`` for coordinates in [0, 1] of the model input.
    ``scores``: ``(N, C)`` per-class scores (each candidate takes its best class) or ``(N,)`` with
    ``class_ids`` ``(N,)`` integers. Scores are compared with ``score_threshold`` as they are: apply your
    sigmoid/softmax first. Validated by the engine (shapes, finite values); see docs/PLUGINS.md.
    """

    boxes: Any
    scores: Any
    class_ids: Any = None
    box_format: str = "xyxy"
    normalized: bool = False


@dataclass
class DetectionResult:
    info: RunInfo
    detections: list[Detection]

    @property
    def nbytes(self) -> int:
        return 64 * len(self.detections)


@dataclass
class RestorationResult:
    """The restored image (``scale`` times larger for super-resolution), in the input's value scale."""

    info: RunInfo
    image: ImageVolume
    scale: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return int(self.image.data.nbytes)


Result = ClassificationResult | SegmentationResult | DetectionResult | RestorationResult
