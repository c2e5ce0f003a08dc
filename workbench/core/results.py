"""Model results as plain data: what a plugin run produced, in the original image's geometry.

The GUI shows them, the document stores them (undoably), exports write them. Fields may be added;
existing names are an interface between the engine, the GUI and the exports.

Each result type is the home of what is said about it: ``summary()`` (the one line of the command line,
the batch summary and the Models dock), ``sentence(image)`` (the report's summary) and, for all types,
:func:`overlay_slice` (the slice its picture shows). Their files are written in one place per format:
the prediction JSON (:mod:`workbench.export.prediction`) and the session entries
(:mod:`workbench.session.write` / :mod:`~workbench.session.read`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .image import ImageVolume


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

    def summary(self) -> str:
        top = self.top[0] if self.top else None
        return f"{top.label} ({top.score:.3f})" if top else "no classes"

    def sentence(self, image: ImageVolume) -> str:
        if not self.top:
            return "No class scores."
        t = self.top[0]
        return f"Top class: {t.label} (score {t.score:.3f})."


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

    def summary(self) -> str:
        parts = [f"{c.name}: {c.pixels} px" for c in self.classes if c.pixels]
        return ", ".join(parts) if parts else "nothing segmented"

    def sentence(self, image: ImageVolume) -> str:
        found = [c for c in self.classes if c.pixels]
        if not found:
            return "Nothing segmented."
        unit = "voxels" if image.n_slices > 1 else "px"
        parts = []
        for c in found:
            part = f"{c.name} {c.pixels:,} {unit}"
            if c.area_mm2 is not None and image.n_slices == 1:
                part += f" ({c.area_mm2:,.1f} mm\u00b2)"
            parts.append(part)
        return f"{len(found)} class{'es' if len(found) != 1 else ''} found: " + "; ".join(parts) + "."


@dataclass
class Detection:
    """One box in pixel coordinates of the original image: ``[x1, y1, x2, y2]``."""

    index: int  # class index (score column, background column included)
    label: str
    score: float
    box: tuple[float, float, float, float]
    slice_index: int = 0


@dataclass
class DetectionResult:
    info: RunInfo
    detections: list[Detection]

    @property
    def nbytes(self) -> int:
        return 64 * len(self.detections)

    def summary(self) -> str:
        n = len(self.detections)
        return f"{n} detection{'s' if n != 1 else ''}"

    def sentence(self, image: ImageVolume) -> str:
        n = len(self.detections)
        if not n:
            return "No detections."
        counts: dict[str, int] = {}
        for d in self.detections:
            counts[d.label] = counts.get(d.label, 0) + 1
        listed = ", ".join(f"{k} \u00d7 {v}" for k, v in counts.items())
        return f"{n} detection{'s' if n != 1 else ''}: {listed}."


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

    def summary(self) -> str:
        return f"restored {self.image.height}x{self.image.width}"

    def sentence(self, image: ImageVolume) -> str:
        r = self.image
        scale = f" (scale \u00d7{self.scale})." if self.scale != 1 else "."
        return f"Restored image: {image.width} \u00d7 {image.height} \u2192 {r.width} \u00d7 {r.height} px{scale}"


Result = ClassificationResult | SegmentationResult | DetectionResult | RestorationResult


def overlay_slice(result: Result) -> int:
    """The slice a picture of ``result`` shows (overlay PNG, report picture and its caption).

    The slice the model ran on with the most labelled pixels (segmentation) or boxes (detection); on a tie
    the first of them in the order the model ran; other results: the first slice the model ran on.
    """
    ran = result.info.slice_indices or [0]
    if isinstance(result, SegmentationResult) and len(ran) > 1:
        counts = [int(np.count_nonzero(result.mask[i])) for i in ran]
        return ran[counts.index(max(counts))]
    if isinstance(result, DetectionResult) and result.detections and len(ran) > 1:
        per = {i: 0 for i in ran}
        for d in result.detections:
            per[d.slice_index] = per.get(d.slice_index, 0) + 1
        return max(per, key=lambda k: per[k])  # the first key of the largest count
    return ran[0]
