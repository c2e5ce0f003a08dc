"""Shared argument checks and small helpers of the processing functions.

Conventions of the whole package (skimage style):

- arrays are row-major ``(y, x)`` for a plane or ``(z, y, x)`` for a stack, scalar valued (convert colour
  with :func:`to_scalar` first);
- functions return new arrays and never modify their inputs; options are keyword-only;
- ``spacing`` is the voxel size in mm along ``(z, y, x)`` (or ``(y, x)``), taken from
  :attr:`ImageVolume.spacing` and passed only when it is known: ``None`` means "unknown", and any option in
  mm then raises :class:`ProcessingError`;
- ``connectivity`` 4 or 8 works plane by plane (on a stack: every slice on its own), 6, 18 or 26 works in 3D;
- a *box* is a tuple of slices with explicit bounds, the format :meth:`LabelEdit.paint` takes.
"""
from __future__ import annotations

from typing import Literal, Sequence, overload

import numpy as np

from ..core.errors import ProcessingError

Box = tuple[slice, ...]

# The in-plane and 3D connectivities we accept, and the scipy.ndimage structure rank each maps to.
PLANE_CONNECTIVITY = {4: 1, 8: 2}
VOLUME_CONNECTIVITY = {6: 1, 18: 2, 26: 3}

# dtypes cv2.inRange handles natively (others go through numpy comparisons).
_CV_RANGE_DTYPES = (np.uint8, np.uint16, np.int16, np.float32)


def scalar_array(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Check that ``image`` is a 2D ``(y, x)`` or 3D ``(z, y, x)`` numeric array and return it."""
    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise ProcessingError(f"{name}: expected a (y, x) or (z, y, x) array, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ProcessingError(f"{name}: unsupported dtype {arr.dtype}")
    return arr


def bool_mask(mask: np.ndarray, name: str = "mask", shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``mask`` as a bool array of ndim 2 or 3 (nonzero = inside), optionally of a required shape."""
    arr = np.asarray(mask)
    if arr.ndim not in (2, 3):
        raise ProcessingError(f"{name}: expected a (y, x) or (z, y, x) mask, got shape {arr.shape}")
    if shape is not None and arr.shape != tuple(shape):
        raise ProcessingError(f"{name}: shape {arr.shape} does not match the image shape {tuple(shape)}")
    return arr if arr.dtype == bool else arr != 0


def to_scalar(data: np.ndarray) -> np.ndarray:
    """Grayscale view of ``ImageVolume.data``: ``(z, y, x)`` stays, ``(z, y, x, c)`` becomes Rec. 601 luma.

    Alpha is ignored. Luma is float32 so that 16-bit colour keeps its precision.
    """
    data = np.asarray(data)
    if data.ndim == 4:
        rgb = data[..., :3].astype(np.float32)
        return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return data


@overload
def axis_spacing(spacing: Sequence[float], ndim: int, *, required: bool = ...,
                 what: str = ...) -> tuple[float, ...]: ...


@overload
def axis_spacing(spacing: Sequence[float] | None, ndim: int, *, required: Literal[True],
                 what: str = ...) -> tuple[float, ...]: ...


@overload
def axis_spacing(spacing: Sequence[float] | None, ndim: int, *, required: bool = ...,
                 what: str = ...) -> tuple[float, ...] | None: ...


def axis_spacing(spacing: Sequence[float] | None, ndim: int, *, required: bool = False,
                 what: str = "this option") -> tuple[float, ...] | None:
    """The last ``ndim`` entries of a ``(z, y, x)`` spacing, validated; ``None`` when unknown.

    With ``required=True`` an unknown spacing raises :class:`ProcessingError` naming ``what``.
    """
    if spacing is None:
        if required:
            raise ProcessingError(f"{what} is in mm but the pixel spacing of the image is unknown")
        return None
    sp = tuple(float(s) for s in spacing)
    if len(sp) < ndim:
        raise ProcessingError(f"spacing {sp} has fewer than {ndim} entries")
    sp = sp[-ndim:]
    if not all(np.isfinite(s) and s > 0 for s in sp):
        raise ProcessingError(f"spacing {sp} must be positive and finite")
    return sp


def plan_connectivity(ndim: int, connectivity: int | None) -> tuple[str, int]:
    """Resolve a connectivity for an array of ``ndim`` dimensions.

    Returns ``("plane", 4|8)`` (2D arrays, or every slice of a stack on its own) or ``("volume", rank)``
    where ``rank`` is the scipy.ndimage structure rank (1 = 6-, 2 = 18-, 3 = 26-connected). ``None``
    picks 8 for planes and 26 for stacks.
    """
    if connectivity is None:
        connectivity = 8 if ndim == 2 else 26
    connectivity = int(connectivity)
    if connectivity in PLANE_CONNECTIVITY:
        return ("plane", connectivity)
    if connectivity in VOLUME_CONNECTIVITY:
        if ndim != 3:
            raise ProcessingError(f"connectivity {connectivity} needs a (z, y, x) stack; use 4 or 8 on a plane")
        return ("volume", VOLUME_CONNECTIVITY[connectivity])
    raise ProcessingError(f"connectivity must be 4 or 8 (2D) or 6, 18 or 26 (3D), got {connectivity}")


def in_range(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``lo <= image <= hi`` as a uint8 array of 0/1 (NaN is outside), same shape as ``image``.

    cv2.inRange is used where it supports the dtype: one pass instead of numpy's three. Integer bounds are
    rounded inwards first because OpenCV saturates (rounds) fractional bounds to the pixel type.
    """
    import cv2

    lo = float(lo)
    hi = float(hi)
    arr = image
    if arr.size == 0 or np.isnan(lo) or np.isnan(hi) or lo > hi:
        return np.zeros(arr.shape, dtype=np.uint8)
    if arr.dtype == bool:
        arr = arr.view(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        lo_i = max(float(np.ceil(lo)), float(info.min))
        hi_i = min(float(np.floor(hi)), float(info.max))
        if lo_i > hi_i:
            return np.zeros(arr.shape, dtype=np.uint8)
        lo, hi = lo_i, hi_i
    if arr.dtype.type in _CV_RANGE_DTYPES and arr.shape[-1] <= 2**31 - 1:
        flat = np.ascontiguousarray(arr).reshape(-1, arr.shape[-1])  # cv2 reads a 3rd axis as channels
        # float32: OpenCV rounds the bounds to float32 and compares in float32, as numpy does for a
        # float32 array against a Python float, so both paths agree value for value.
        out = cv2.inRange(flat, lo, hi)
        np.bitwise_and(out, 1, out=out)  # 255 -> 1 so the result views cleanly as bool
        return out.reshape(arr.shape)
    out = np.asarray((arr >= lo) & (arr <= hi))
    return out.view(np.uint8)


def as_bool(u8: np.ndarray) -> np.ndarray:
    """View a uint8 0/1 array as bool without a copy."""
    return u8.view(bool)


def bbox_of(mask: np.ndarray) -> Box | None:
    """Tight box of the nonzero pixels of ``mask`` (slices with explicit bounds), ``None`` when empty."""
    if mask.size == 0:
        return None
    out = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other)) if other else np.flatnonzero(mask)
        if hit.size == 0:
            return None
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(out)


def grow_box(box: Box, margin: Sequence[int], shape: Sequence[int]) -> Box:
    """``box`` enlarged by ``margin`` pixels per axis, clipped to ``shape``."""
    return tuple(slice(max(0, s.start - m), min(n, s.stop + m)) for s, m, n in zip(box, margin, shape))


def check_finite_number(value: float, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ProcessingError(f"{name}: {value!r} is not a number") from None
    if not np.isfinite(v):
        raise ProcessingError(f"{name}: {value!r} is not a finite number")
    return v
