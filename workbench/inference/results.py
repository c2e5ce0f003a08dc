"""The model result types, for plugin code outside this repository (custom decoders import them from here).

Their home is :mod:`workbench.core.results` (the document holds them, so they belong to the core layer);
code inside the package imports them from there. This module stays because plugins written against the
plugin contract import ``workbench.inference.results``.
"""
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

__all__ = ["RunInfo", "ClassScore", "ClassificationResult", "SegmentationClass", "SegmentationResult",
           "Detection", "DetectionResult", "RestorationResult", "Result"]
