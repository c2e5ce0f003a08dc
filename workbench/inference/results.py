"""The model result types, for plugin code outside this repository (custom decoders import them from here).

Their home is :mod:`workbench.core.results` (the document holds them, so they belong to the core layer);
code inside the package imports them from there. This module stays because plugins written against the
plugin contract import ``workbench.inference.results``.

:class:`DetectionCandidates` is defined here: it is not a result but what a custom decoder may return
instead of finished detections (the engine finishes them).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.results import (
    ClassificationResult,
    ClassScore,
    Detection,
    DetectionResult,
    RestorationResult,
    Result,
    RunInfo,
    SegmentationClass,
    SegmentationResult,
)


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


__all__ = ["RunInfo", "ClassScore", "ClassificationResult", "SegmentationClass", "SegmentationResult",
           "Detection", "DetectionResult", "RestorationResult", "Result", "DetectionCandidates"]
