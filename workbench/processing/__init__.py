"""Classic segmentation tools as pure functions (Qt-free, skimage style).

Arrays in, new arrays out, options keyword-only; ``(y, x)`` planes or ``(z, y, x)`` stacks; spacing in
mm passed explicitly (``None`` = unknown). Interactive tools return ``(box, mask)`` pairs that the caller
writes through ``LabelMap.edit`` so each operation is one undo step. See docs/TOOLS.md.
"""
from ._common import to_scalar
from .brush import dab, gate, stroke, stroke_path
from .islands import component_sizes, keep_largest, label_components, pick, remove_small, split
from .measure import LabelStats, format_table, measure_labels, roi_histogram, to_json
from .morphology import closing, dilate, erode, fill_holes, opening, smooth, structuring_element
from .polygon import polygon
from .region_grow import RegionGrowPreview, confidence_connected, region_grow
from .threshold import (
                        METHODS,
                        Histogram,
                        apply_threshold,
                        classify,
                        histogram,
                        multiotsu_values,
                        otsu_cv2,
                        threshold_range,
                        threshold_value,
)

__all__ = [
    "to_scalar",
    "dab", "stroke", "stroke_path", "gate",
    "polygon",
    "METHODS", "Histogram", "apply_threshold", "classify", "histogram", "multiotsu_values", "otsu_cv2",
    "threshold_range", "threshold_value",
    "region_grow", "confidence_connected", "RegionGrowPreview",
    "label_components", "split", "component_sizes", "keep_largest", "remove_small", "pick",
    "dilate", "erode", "opening", "closing", "fill_holes", "smooth", "structuring_element",
    "LabelStats", "measure_labels", "to_json", "format_table", "roi_histogram",
]
