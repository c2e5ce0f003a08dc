"""Mask morphology in physical units: fill holes, dilate / erode / open / close by a radius, smoothing.

A radius in mm on anisotropic pixels is an ellipse (an ellipsoid on a stack): the structuring element is
every offset whose physical length is at most the radius. 2D uses OpenCV on the mask's bounding box plus
a margin (cost follows the object, not the image); 3D uses the exact Euclidean distance transform with
the voxel spacing (cost independent of the radius). Both treat the image border the same way: outside
the image counts as neither foreground for dilation nor background for erosion, so a mask touching the
border is not eaten from the border.

On a stack, every function works in 3D unless ``per_slice=True``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.errors import ProcessingError
from ._common import axis_spacing, bbox_of, bool_mask, check_finite_number, grow_box


def _radius_scales(radius: float, units: str, spacing: Sequence[float] | None, ndim: int,
                   what: str) -> tuple[float, tuple[float, ...]]:
    """``(radius, per-axis size of a pixel in the radius' unit)``."""
    r = check_finite_number(radius, what)
    if r < 0:
        raise ProcessingError(f"{what} must be >= 0, got {r:g}")
    if units == "mm":
        return r, axis_spacing(spacing, ndim, required=True, what=what)
    if units != "px":
        raise ProcessingError(f"{what}: units must be 'px' or 'mm', got {units!r}")
    if ndim == 3 and spacing is not None:
        sp = axis_spacing(spacing, 3)
        return r, (sp[0] / sp[2], 1.0, 1.0)  # in-plane pixels; slices at their physical distance
    return r, (1.0,) * ndim


#: cells of a ball beyond which we refuse rather than allocate (400 MB of bool; a ball that size is
#: larger than any image the radius could sensibly apply to)
MAX_BALL_CELLS = 400_000_000


def _check_extent(r: float, scales: Sequence[float], what: str) -> None:
    cells = 1.0
    for s in scales:
        cells *= 2 * np.floor(r / s + 1e-9) + 1
    if cells > MAX_BALL_CELLS:
        raise ProcessingError(f"{what} {r:g} gives a ball of {cells:.3g} pixels (limit {MAX_BALL_CELLS:,}); "
                              "give a smaller radius")


def structuring_element(radius: float, *, units: str = "px", spacing: Sequence[float] | None = None,
                        ndim: int = 2) -> np.ndarray:
    """The (elliptical) ball of ``radius``: offsets whose physical length is ``<= radius``.

    Returns a bool array with odd side lengths, centred on the middle element.
    """
    r, scales = _radius_scales(radius, units, spacing, ndim, "radius")
    _check_extent(r, scales, "radius")
    half = [int(np.floor(r / s + 1e-9)) for s in scales]
    grids = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    d2 = sum((g * s) ** 2 for g, s in zip(grids, scales))
    return np.asarray(d2 <= r * r * (1 + 1e-9))


def _plane_op(mask: np.ndarray, op: str, kernel: np.ndarray) -> np.ndarray:
    """Dilate or erode one plane with OpenCV, working on the mask's box plus the kernel's reach."""
    import cv2

    box = bbox_of(mask)
    if box is None:
        return np.zeros(mask.shape, dtype=bool)
    ky, kx = kernel.shape[0] // 2, kernel.shape[1] // 2
    # One extra pixel so that, inside the crop, "outside the crop" only ever borders background.
    crop_box = grow_box(box, (ky + 1, kx + 1), mask.shape)
    crop = np.ascontiguousarray(mask[crop_box]).view(np.uint8)
    k = kernel.view(np.uint8)
    if op == "dilate":
        res = cv2.dilate(crop, k)
    else:
        # OpenCV's default border for erosion is "foreground": the image edge does not erode. Crop edges
        # inside the image are >= the kernel reach away from any foreground, so they cannot either.
        res = cv2.erode(crop, k)
    out = np.zeros(mask.shape, dtype=bool)
    out[crop_box] = res.view(bool)
    return out


def _volume_op(mask: np.ndarray, op: str, radius: float, scales: tuple[float, ...]) -> np.ndarray:
    from scipy import ndimage as ndi

    box = bbox_of(mask)
    if box is None:
        return np.zeros(mask.shape, dtype=bool)
    if op == "dilate":
        margin = [int(np.floor(radius / s + 1e-9)) + 1 for s in scales]
        crop_box = grow_box(box, margin, mask.shape)
        crop = mask[crop_box]
        dist = ndi.distance_transform_edt(~crop, sampling=scales)
        res = dist <= radius * (1 + 1e-9)
    else:
        crop_box = box
        crop = mask[crop_box]
        # Pad with foreground where the crop touches the image border: the border must not erode; pad
        # with background elsewhere (outside the box is background).
        padded = np.pad(crop, 1, constant_values=False)
        for axis, (s, n) in enumerate(zip(crop_box, mask.shape)):
            idx_lo: list[slice | int] = [slice(None)] * mask.ndim
            idx_hi: list[slice | int] = [slice(None)] * mask.ndim
            idx_lo[axis] = 0
            idx_hi[axis] = -1
            if s.start == 0:
                padded[tuple(idx_lo)] = True
            if s.stop == n:
                padded[tuple(idx_hi)] = True
        dist = ndi.distance_transform_edt(padded, sampling=scales)
        inner = tuple(slice(1, -1) for _ in range(mask.ndim))
        res = dist[inner] > radius * (1 + 1e-9)
        res &= crop
    out = np.zeros(mask.shape, dtype=bool)
    out[crop_box] = res
    return out


def _morph(mask: np.ndarray, op: str, radius: float, units: str, spacing, per_slice: bool) -> np.ndarray:
    m = bool_mask(mask)
    if m.ndim == 3 and per_slice:
        out = np.zeros(m.shape, dtype=bool)
        for z in range(m.shape[0]):
            out[z] = _morph(m[z], op, radius, units, spacing, False)
        return out
    sp2 = None if spacing is None else axis_spacing(spacing, m.ndim if m.ndim == 2 else 3)
    r, scales = _radius_scales(radius, units, sp2, m.ndim, f"{op} radius")
    if m.ndim == 2:
        kernel = structuring_element(r, units="mm", spacing=scales, ndim=2)
        if kernel.size == 1:
            return m.copy()
        return _plane_op(m, op, kernel)
    if all(r < s for s in scales):
        return m.copy()
    return _volume_op(m, op, r, scales)


def dilate(mask: np.ndarray, radius: float, *, units: str = "px", spacing: Sequence[float] | None = None,
           per_slice: bool = False) -> np.ndarray:
    """Grow ``mask`` by ``radius`` (px, or mm with ``spacing``): every pixel within the radius of it.

    Parameters
    ----------
    mask : ndarray of bool
        ``(y, x)`` or ``(z, y, x)``.
    radius : float
        Radius in ``units``.
    units : {"px", "mm"}
        In px on a stack the slice distance is scaled by the spacing when given (a round ball).
    spacing : sequence of float, optional
        Voxel size in mm ``(z, y, x)``; required for mm.
    per_slice : bool
        On a stack, work slice by slice in 2D.
    """
    return _morph(mask, "dilate", radius, units, spacing, per_slice)


def erode(mask: np.ndarray, radius: float, *, units: str = "px", spacing: Sequence[float] | None = None,
          per_slice: bool = False) -> np.ndarray:
    """Shrink ``mask`` by ``radius``: keep the pixels whose whole ball lies inside it (see :func:`dilate`)."""
    return _morph(mask, "erode", radius, units, spacing, per_slice)


def opening(mask: np.ndarray, radius: float, *, units: str = "px", spacing: Sequence[float] | None = None,
            per_slice: bool = False) -> np.ndarray:
    """Erode then dilate: removes parts thinner than the ball (see :func:`dilate`)."""
    return dilate(erode(mask, radius, units=units, spacing=spacing, per_slice=per_slice), radius, units=units,
                  spacing=spacing, per_slice=per_slice)


def closing(mask: np.ndarray, radius: float, *, units: str = "px", spacing: Sequence[float] | None = None,
            per_slice: bool = False) -> np.ndarray:
    """Dilate then erode: closes gaps narrower than the ball (see :func:`dilate`)."""
    return erode(dilate(mask, radius, units=units, spacing=spacing, per_slice=per_slice), radius, units=units,
                 spacing=spacing, per_slice=per_slice)


def fill_holes(mask: np.ndarray, *, per_slice: bool = False) -> np.ndarray:
    """Fill the holes: background not connected to the image border (4-connected in 2D, 6 in 3D).

    Matches :func:`scipy.ndimage.binary_fill_holes`; 2D floods the background from the border with
    ``cv2.floodFill`` instead, which is ~50x faster on 2048² than scipy's iterated dilation.
    """
    import cv2
    from scipy import ndimage as ndi

    m = bool_mask(mask)
    if m.ndim == 3 and per_slice:
        out = np.zeros(m.shape, dtype=bool)
        for z in range(m.shape[0]):
            out[z] = fill_holes(m[z]) if m[z].any() else False
        return out
    if m.ndim == 3:
        return ndi.binary_fill_holes(m)
    h, w = m.shape
    if h == 0 or w == 0:
        return m.copy()
    # Pad by one background pixel so that one flood from the corner reaches all border background.
    canvas = np.zeros((h + 2, w + 2), dtype=np.uint8)
    canvas[1:-1, 1:-1] = m
    ff = np.zeros((h + 4, w + 4), dtype=np.uint8)
    cv2.floodFill(canvas, ff, (0, 0), 0, 0, 0, 4 | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
    outside = ff[2:-2, 2:-2].view(bool)
    return ~outside


def smooth(mask: np.ndarray, radius: float, *, method: str = "gaussian", units: str = "px",
           spacing: Sequence[float] | None = None, per_slice: bool = False) -> np.ndarray:
    """Smooth the outline of ``mask``.

    ``"gaussian"`` blurs the mask with sigma = ``radius`` and re-thresholds at 0.5 (rounds corners,
    removes bumps smaller than the radius, keeps the area about the same); ``"median"`` is the majority
    vote over the ball of ``radius``.
    """
    import cv2
    from scipy import ndimage as ndi

    m = bool_mask(mask)
    if method not in ("gaussian", "median"):
        raise ProcessingError(f"smooth: method must be 'gaussian' or 'median', got {method!r}")
    if m.ndim == 3 and per_slice:
        out = np.zeros(m.shape, dtype=bool)
        for z in range(m.shape[0]):
            out[z] = smooth(m[z], radius, method=method, units=units, spacing=spacing)
        return out
    r, scales = _radius_scales(radius, units, spacing, m.ndim, "smoothing radius")
    if r == 0 or not m.any():
        return m.copy()
    if method == "gaussian":
        sigma = [r / s for s in scales]
        if max(sigma) > 4 * max(m.shape):  # scipy's kernel is 8 sigma long: 1e12 would be 15 TiB
            raise ProcessingError(f"smoothing radius {radius:g} {units} is {max(sigma):.3g} pixels, more than 4x "
                                  f"the image ({'x'.join(map(str, m.shape))}); give a smaller radius")
        if m.ndim == 2:
            blurred = cv2.GaussianBlur(m.astype(np.float32), (0, 0), sigmaX=sigma[1], sigmaY=sigma[0],
                                       borderType=cv2.BORDER_REPLICATE)
        else:
            blurred = ndi.gaussian_filter(m.astype(np.float32), sigma=sigma, mode="nearest")
        return blurred >= 0.5
    footprint = structuring_element(r, units="mm", spacing=scales, ndim=m.ndim)
    # A majority vote over the ball: more than half of the ball's pixels are foreground.
    if m.ndim == 2:
        counts = cv2.filter2D(m.astype(np.float32), -1, footprint.astype(np.float32),
                              borderType=cv2.BORDER_REPLICATE)
    else:
        counts = ndi.convolve(m.astype(np.float32), footprint.astype(np.float32), mode="nearest")
    return counts * 2 > float(footprint.sum()) + 0.5
