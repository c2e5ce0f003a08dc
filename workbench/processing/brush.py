"""Brush and eraser: round dabs, gap-free strokes and the intensity gate.

Every function returns ``(box, mask)``: a tuple of slices with explicit bounds (one per axis of ``shape``)
and a bool mask of the box's shape. Only the box is computed, so a dab costs the same on a 512² and on a
4096² image. The caller writes with the label map's edit, where the overwrite rules live::

    with labels.edit("Brush") as e:            # one drag = one undo step
        for p0, p1 in mouse_segments:
            box, mask = stroke(p0, p1, 5, shape=labels.shape)
            e.paint(box, mask, value, overwrite="background")

Coordinates are in pixel-index units of the array, ``(y, x)`` or ``(z, y, x)``, with the centre of pixel
``(i, j)`` at ``(i, j)`` (scikit-image's convention; pyqtgraph scene coordinates, where pixel ``(i, j)``
spans ``[j, j + 1) x [i, i + 1)``, are converted by subtracting 0.5). A pixel belongs to the dab when its
centre is strictly closer than the radius (as in :func:`skimage.draw.disk`); the pixels containing the
end points are always painted, so even a tiny brush leaves a mark.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.errors import ProcessingError
from ._common import Box, axis_spacing, check_finite_number


def _scales(ndim: int, units: str, spacing: Sequence[float] | None, sphere: bool) -> np.ndarray:
    """Size of one index step along every axis, in the radius' unit."""
    if units == "mm":
        sp = axis_spacing(spacing, ndim, required=True, what="the brush radius")
        return np.array(sp, dtype=np.float64)
    if units != "px":
        raise ProcessingError(f"brush units must be 'px' or 'mm', got {units!r}")
    scales = np.ones(ndim, dtype=np.float64)
    if sphere and ndim == 3 and spacing is not None:
        # A radius in in-plane pixels; the slice distance counts in the same physical unit, so the
        # sphere stays round on anisotropic stacks.
        sp = axis_spacing(spacing, 3)
        scales[0] = sp[0] / sp[2]
    return scales


def _empty(ndim: int) -> tuple[Box, np.ndarray]:
    return tuple(slice(0, 0) for _ in range(ndim)), np.zeros((0,) * ndim, dtype=bool)


def stroke(start: Sequence[float], end: Sequence[float], radius: float, *, shape: Sequence[int],
           units: str = "px", spacing: Sequence[float] | None = None, sphere: bool = False,
           image: np.ndarray | None = None, lo: float | None = None,
           hi: float | None = None) -> tuple[Box, np.ndarray]:
    """The pixels within ``radius`` of the segment ``start``-``end`` (a capsule: dabs without gaps).

    Parameters
    ----------
    start, end : sequence of float
        End points in pixel-index coordinates, ``(y, x)`` or ``(z, y, x)`` like ``shape``.
    radius : float
        Brush radius, in pixels (``units="px"``) or mm (``units="mm"``, needs ``spacing``).
    shape : sequence of int
        Shape of the array to paint, ``(y, x)`` or ``(z, y, x)``; the box is clipped to it.
    units : {"px", "mm"}
        Unit of ``radius``. In mm the dab is an ellipse on anisotropic pixels.
    spacing : sequence of float, optional
        Voxel size in mm ``(z, y, x)``; required for mm.
    sphere : bool
        On a stack: a ball through neighbouring slices instead of a disc on the slice of ``start``.
    image : ndarray, optional
        Intensities of shape ``shape``, for the gate ``lo <= image <= hi`` (NaN never passes).
    lo, hi : float, optional
        Gate bounds; either may be omitted (open side).

    Returns
    -------
    box : tuple of slice
        Box of the mask in the array, clipped to ``shape`` (zero-sized when entirely outside).
    mask : ndarray of bool
        The brush footprint inside ``box``.
    """
    shape = tuple(int(n) for n in shape)
    ndim = len(shape)
    if ndim not in (2, 3):
        raise ProcessingError(f"brush: shape must be (y, x) or (z, y, x), got {shape}")
    p0 = np.array([check_finite_number(v, "brush point") for v in start], dtype=np.float64)
    p1 = np.array([check_finite_number(v, "brush point") for v in end], dtype=np.float64)
    if p0.shape != (ndim,) or p1.shape != (ndim,):
        raise ProcessingError(f"brush: points need {ndim} coordinates for shape {shape}")
    radius = check_finite_number(radius, "brush radius")
    if radius < 0:
        raise ProcessingError(f"brush radius must be >= 0, got {radius}")
    scales = _scales(ndim, units, spacing, sphere)

    if ndim == 3 and not sphere:
        # A disc on one slice: the stroke lives on the slice of its start point.
        z = int(np.floor(p0[0] + 0.5))
        if not 0 <= z < shape[0]:
            return _empty(3)
        box2, mask2 = _capsule(p0[1:], p1[1:], radius, shape[1:], scales[1:])
        box = (slice(z, z + 1),) + box2
        mask = mask2[np.newaxis]
        if image is not None and mask.size:
            mask = gate(mask, image, box, lo=lo, hi=hi)
        return box, mask

    box, mask = _capsule(p0, p1, radius, shape, scales)
    if image is not None and mask.size:
        mask = gate(mask, image, box, lo=lo, hi=hi)
    return box, mask


def dab(center: Sequence[float], radius: float, *, shape: Sequence[int], units: str = "px",
        spacing: Sequence[float] | None = None, sphere: bool = False, image: np.ndarray | None = None,
        lo: float | None = None, hi: float | None = None) -> tuple[Box, np.ndarray]:
    """One round dab (a disc, or a ball with ``sphere=True``); see :func:`stroke` for the parameters."""
    return stroke(center, center, radius, shape=shape, units=units, spacing=spacing, sphere=sphere,
                  image=image, lo=lo, hi=hi)


def stroke_path(points: Sequence[Sequence[float]], radius: float, *, shape: Sequence[int],
                units: str = "px", spacing: Sequence[float] | None = None, sphere: bool = False,
                image: np.ndarray | None = None, lo: float | None = None,
                hi: float | None = None) -> tuple[Box, np.ndarray]:
    """The union of the capsules along a polyline, as one ``(box, mask)``; see :func:`stroke`.

    Interactive painting should call :func:`stroke` per mouse move instead (each box stays small); this
    is for replaying a recorded path, e.g. in tests or scripts.
    """
    pts = [tuple(p) for p in points]
    if not pts:
        raise ProcessingError("brush path has no points")
    if len(pts) == 1:
        pts = pts * 2
    parts = [stroke(a, b, radius, shape=shape, units=units, spacing=spacing, sphere=sphere, image=image,
                    lo=lo, hi=hi) for a, b in zip(pts[:-1], pts[1:])]
    parts = [(b, m) for b, m in parts if m.size]
    if not parts:
        return _empty(len(shape))
    ndim = len(shape)
    box = tuple(slice(min(b[a].start for b, _ in parts), max(b[a].stop for b, _ in parts)) for a in range(ndim))
    out = np.zeros(tuple(s.stop - s.start for s in box), dtype=bool)
    for b, m in parts:
        sub = tuple(slice(b[a].start - box[a].start, b[a].stop - box[a].start) for a in range(ndim))
        out[sub] |= m
    return box, out


def gate(mask: np.ndarray, image: np.ndarray, box: Box, *, lo: float | None = None,
         hi: float | None = None) -> np.ndarray:
    """``mask`` restricted to where ``lo <= image[box] <= hi`` ("paint only within the intensity range").

    Returns a new mask; NaN pixels never pass. With neither bound the mask is returned unchanged (copied).
    """
    region = np.asarray(image)[box]
    if region.ndim == mask.ndim + 1 or region.shape != mask.shape:
        raise ProcessingError(f"brush gate: image box {region.shape} does not match the mask {mask.shape} "
                              "(pass a scalar image of the painted array's shape)")
    out = mask.copy()
    if lo is not None:
        out &= region >= check_finite_number(lo, "gate low bound")
    if hi is not None:
        out &= region <= check_finite_number(hi, "gate high bound")
    if lo is not None and hi is not None and float(lo) > float(hi):
        raise ProcessingError(f"brush gate: low bound {lo} is above the high bound {hi}")
    return out


def _capsule(p0: np.ndarray, p1: np.ndarray, radius: float, shape: tuple[int, ...],
             scales: np.ndarray) -> tuple[Box, np.ndarray]:
    """Pixels whose centre is closer than ``radius`` (in scaled units) to the segment p0-p1."""
    ndim = len(shape)
    ext = radius / scales  # half-extent in index units along every axis
    # Tight box: a centre must be strictly closer than the radius along each axis, and the pixels
    # holding the end points are always in.
    ends = np.floor(np.stack([p0, p1]) + 0.5).astype(np.int64)
    lo_idx = np.minimum(np.floor(np.minimum(p0, p1) - ext).astype(np.int64) + 1, ends.min(axis=0))
    hi_idx = np.maximum(np.ceil(np.maximum(p0, p1) + ext).astype(np.int64), ends.max(axis=0) + 1)
    lo_c = np.clip(lo_idx, 0, shape)
    hi_c = np.clip(hi_idx, 0, shape)
    if np.any(hi_c <= lo_c):
        return _empty(ndim)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo_c, hi_c))
    # Offsets (in the radius' unit) of every pixel centre of the box from p0, one broadcastable axis each.
    d = [((np.arange(lo_c[a], hi_c[a], dtype=np.float64) - p0[a]) * scales[a]).reshape(
        [-1 if i == a else 1 for i in range(ndim)]) for a in range(ndim)]
    v = (p1 - p0) * scales
    vv = float(v @ v)
    if vv == 0.0:
        dist2 = sum(di * di for di in d)
    else:
        t = sum(di * vi for di, vi in zip(d, v)) / vv
        np.clip(t, 0.0, 1.0, out=t)
        dist2 = sum((di - t * vi) ** 2 for di, vi in zip(d, v))
    mask = np.asarray(dist2 < radius * radius)
    if mask.shape != tuple(hi_c - lo_c):
        mask = np.broadcast_to(mask, tuple(hi_c - lo_c)).copy()
    # The pixels holding the end points are always painted (tiny brushes, off-centre clicks).
    for p in (p0, p1):
        idx = np.floor(p + 0.5).astype(np.int64)
        if np.all(idx >= lo_c) and np.all(idx < hi_c):
            mask[tuple(idx - lo_c)] = True
    return box, mask
