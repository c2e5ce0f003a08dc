"""What an annotation measures (issue 15 item 2): ROI intensity statistics and one row per annotation.

:func:`roi_mask` and :func:`roi_stats` are pure functions on a 2-D plane: the pixels of an ellipse or rectangle
ROI are those whose *centre* lies inside the shape (pixel ``(r, c)`` covers ``[c, c+1) x [r, r+1)``, so its
centre is ``(c + 0.5, r + 0.5)``), and only the shape's bounding box is ever read, so a small ROI on a large
image costs what it covers. Intensities are the image's values as the reader gives them: Hounsfield units for
CT (the modality LUT is applied), the stored values otherwise; NaN pixels count towards the size, not the
statistics. :func:`measure_annotation` turns any :mod:`workbench.core.annotations` annotation into an
:class:`AnnotationMeasurement` (value, unit, text): the one source of the Measurements table, the CSV/JSON
export and the case report.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..core.annotations import Angle, Annotation, EllipseRoi, RectRoi, Ruler, TextArrow
from ..core.errors import ProcessingError
from ..core.image import ImageVolume
from ._common import to_scalar

ROI_KINDS = ("ellipse", "rectangle")


@dataclass(frozen=True)
class RoiStats:
    """The statistics of one ROI. ``area_mm2`` is the shape's geometric area (``None`` without a known
    spacing); ``pixels`` the number of pixels whose centre lies inside; intensity fields are ``None`` when no
    finite pixel value is inside."""

    pixels: int
    area_px: float
    area_mm2: float | None
    mean: float | None
    std: float | None
    min: float | None
    max: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def roi_mask(shape: tuple[int, int], *, kind: str,
             box: tuple[float, float, float, float]) -> tuple[tuple[slice, slice], np.ndarray]:
    """The pixels of an ROI on a plane of ``shape`` ``(height, width)``.

    Parameters
    ----------
    shape : (int, int)
        Height and width of the plane.
    kind : {"ellipse", "rectangle"}
        The ellipse inscribed in ``box``, or the box itself.
    box : (x0, y0, x1, y1)
        Image coordinates of the box (``x0 <= x1``, ``y0 <= y1``; continuous, see the module docstring).

    Returns
    -------
    (slices, mask)
        ``(rows, columns)`` slices of the crop of the plane that holds the ROI, and a boolean mask of that
        crop (empty slices when the ROI lies outside the plane).
    """
    if kind not in ROI_KINDS:
        raise ProcessingError(f"ROI kind must be one of {', '.join(ROI_KINDS)}, got {kind!r}")
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x1 < x0 or y1 < y0:
        raise ProcessingError(f"bad ROI box {box!r}")
    height, width = int(shape[0]), int(shape[1])
    # pixel centres c + 0.5 in [x0, x1]  <=>  c in [ceil(x0 - 0.5), floor(x1 - 0.5)]
    c0, c1 = max(0, math.ceil(x0 - 0.5)), min(width, math.floor(x1 - 0.5) + 1)
    r0, r1 = max(0, math.ceil(y0 - 0.5)), min(height, math.floor(y1 - 0.5) + 1)
    c1, r1 = max(c0, c1), max(r0, r1)
    crop = (slice(r0, r1), slice(c0, c1))
    if kind == "rectangle":
        return crop, np.ones((r1 - r0, c1 - c0), dtype=bool)
    a, b = (x1 - x0) / 2.0, (y1 - y0) / 2.0
    if a <= 0 or b <= 0:
        return crop, np.zeros((r1 - r0, c1 - c0), dtype=bool)
    xs = (np.arange(c0, c1, dtype=np.float64) + 0.5 - (x0 + a)) / a
    ys = (np.arange(r0, r1, dtype=np.float64) + 0.5 - (y0 + b)) / b
    return crop, ys[:, None] ** 2 + xs[None, :] ** 2 <= 1.0


def roi_stats(plane: np.ndarray, *, kind: str, box: tuple[float, float, float, float],
              spacing: tuple[float, float] | None = None) -> RoiStats:
    """Area and intensity statistics (mean, population SD, min, max) of an ROI on a scalar plane.

    Parameters
    ----------
    plane : ndarray
        A ``(y, x)`` scalar image (HU for CT).
    kind, box
        See :func:`roi_mask`.
    spacing : (dy, dx), optional
        Pixel size in mm; ``None`` when unknown (``area_mm2`` is then ``None``).

    Returns
    -------
    RoiStats
    """
    plane = np.asarray(plane)
    if plane.ndim != 2:
        raise ProcessingError(f"roi_stats expects a (y, x) plane, got shape {plane.shape}")
    crop, mask = roi_mask(plane.shape, kind=kind, box=box)
    x0, y0, x1, y1 = box
    area_px = (x1 - x0) * (y1 - y0) * (math.pi / 4.0 if kind == "ellipse" else 1.0)
    area_mm2 = area_px * spacing[0] * spacing[1] if spacing is not None else None
    values = plane[crop][mask].astype(np.float64, copy=False)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return RoiStats(int(mask.sum()), area_px, area_mm2, None, None, None, None)
    mean = float(finite.mean())
    return RoiStats(int(mask.sum()), area_px, area_mm2, mean, float(np.sqrt(np.mean((finite - mean) ** 2))),
                    float(finite.min()), float(finite.max()))


@dataclass(frozen=True)
class AnnotationMeasurement:
    """What an annotation measures: ``value`` in ``unit`` (length mm/px, angle °, ROI mean HU/raw; ``None``
    for a note), a one-line ``text`` for tables and captions, and the ROI's statistics."""

    id: int
    kind: str
    title: str
    z: int
    value: float | None
    unit: str
    text: str
    label: str
    roi: RoiStats | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["roi"] = self.roi.as_dict() if self.roi is not None else None
        return d


def _num(value: float | None, digits: int = 1) -> str:
    return "\u2014" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def intensity_unit(image: ImageVolume) -> str:
    """``"HU"`` for CT, ``"raw"`` (the stored values) otherwise."""
    return "HU" if image.is_ct else "raw"


def measure_annotation(annotation: Annotation, image: ImageVolume, *,
                       plane: np.ndarray | None = None) -> AnnotationMeasurement:
    """The measurement of one annotation on ``image``.

    Parameters
    ----------
    annotation : Annotation
    image : ImageVolume
    plane : ndarray, optional
        The scalar plane of the annotation's slice, when the caller has it already (colour: its luma).

    Returns
    -------
    AnnotationMeasurement
    """
    spacing = tuple(float(s) for s in image.spacing) if image.spacing_known else None
    common = dict(id=annotation.id, kind=annotation.kind, title=annotation.title, z=annotation.z,
                  label=annotation.label)
    if isinstance(annotation, Ruler):
        if spacing is not None:
            mm = annotation.length_mm(spacing)  # type: ignore[arg-type]
            return AnnotationMeasurement(value=mm, unit="mm", text=f"{mm:.1f} mm", **common)  # type: ignore[arg-type]
        px = annotation.length_px()
        return AnnotationMeasurement(value=px, unit="px", text=f"{px:.1f} px", **common)  # type: ignore[arg-type]
    if isinstance(annotation, Angle):
        deg = annotation.degrees(spacing)  # type: ignore[arg-type]
        return AnnotationMeasurement(value=deg, unit="\u00b0", text=f"{_num(deg)}\u00b0", **common)  # type: ignore[arg-type]
    if isinstance(annotation, (EllipseRoi, RectRoi)):
        if plane is None:
            if not 0 <= annotation.z < image.n_slices:
                raise ProcessingError(f"{annotation.title} {annotation.id}: slice {annotation.z + 1} is not in "
                                      f"the image ({image.n_slices} slices)")
            plane = to_scalar(image.slice(annotation.z)[None])[0]
        stats = roi_stats(plane, kind=annotation.kind, box=annotation.box(),
                          spacing=(spacing[1], spacing[2]) if spacing is not None else None)
        unit = intensity_unit(image)
        area = f"{stats.area_mm2:.1f} mm\u00b2" if stats.area_mm2 is not None else f"{stats.area_px:.0f} px\u00b2"
        if stats.mean is None:
            text = f"{area}; no finite values"
        else:
            text = (f"{area}; mean {_num(stats.mean)} \u00b1 {_num(stats.std)} {unit} "
                    f"[{_num(stats.min)}, {_num(stats.max)}]")
        return AnnotationMeasurement(value=stats.mean, unit=unit, text=text, roi=stats, **common)  # type: ignore[arg-type]
    if isinstance(annotation, TextArrow):
        return AnnotationMeasurement(value=None, unit="", text=annotation.label, **common)  # type: ignore[arg-type]
    raise ProcessingError(f"unknown annotation {annotation!r}")


def measure_annotations(annotations: Sequence[Annotation], image: ImageVolume) -> list[AnnotationMeasurement]:
    """:func:`measure_annotation` of each, in order (the scalar plane of a slice is computed once)."""
    planes: dict[int, np.ndarray] = {}
    out = []
    for a in annotations:
        plane = None
        if isinstance(a, (EllipseRoi, RectRoi)) and 0 <= a.z < image.n_slices:
            if a.z not in planes:
                planes[a.z] = to_scalar(image.slice(a.z)[None])[0]
            plane = planes[a.z]
        out.append(measure_annotation(a, image, plane=plane))
    return out


__all__ = ["ROI_KINDS", "RoiStats", "roi_mask", "roi_stats", "AnnotationMeasurement", "measure_annotation",
           "measure_annotations", "intensity_unit"]
