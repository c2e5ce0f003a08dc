"""The ruler: drag to measure a distance in mm on the shown slice; drag an end handle to edit it.

The ruler is one of the annotation tools of :mod:`.annotate` (one model, one layer, one store for every
measurement kind); this module keeps its names for code that imports them from here.
"""
from __future__ import annotations

from typing import Any

from ...core.annotations import Ruler
from .annotate import GRAB_PX, HANDLE_PX, AnnotationLayer, RulerTool

RULER_COLOR = "#ffd400"

RulerLayer = AnnotationLayer


def ruler_text(ruler: Ruler, image: Any) -> str:
    """``"32.0 mm"`` (known spacing) or ``"40.0 px"``."""
    if image is not None and image.spacing_known:
        return f"{ruler.length_mm(image.spacing):.1f} mm"
    return f"{ruler.length_px():.1f} px"


__all__ = ["RULER_COLOR", "HANDLE_PX", "GRAB_PX", "RulerLayer", "RulerTool", "ruler_text"]
