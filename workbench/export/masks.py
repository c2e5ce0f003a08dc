"""Label-mask exports: PNG (8/16-bit class values), multi-page TIFF, NIfTI — atomic, geometry kept."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..core.errors import ExportError
from ..core.image import ImageVolume
from ..io.writers import write_nifti, write_png_encoded, write_tiff

MASK_SUFFIXES = (".png", ".tif", ".tiff", ".nii", ".nii.gz")


def mask_suffix(image: ImageVolume) -> str:
    """The natural mask format for an image: PNG for one slice, NIfTI for volumes read from NIfTI/DICOM
    (so the mask overlays in other viewers), multi-page TIFF for other stacks."""
    if image.n_slices == 1:
        return ".png"
    fmt = str(image.metadata.get("format", "")).lower()
    name = image.path.name.lower() if image.path is not None else ""
    if fmt in ("nifti", "dicom") or name.endswith((".nii", ".nii.gz", ".dcm")) or image.modality:
        return ".nii.gz"
    return ".tif"


def compact_mask(mask: np.ndarray) -> np.ndarray:
    """uint8 when every class value fits (viewers handle 8-bit PNGs best), else uint16."""
    mask = np.asarray(mask)
    if mask.size and int(mask.max()) > 255:
        return mask.astype(np.uint16, copy=False)
    return mask.astype(np.uint8)


# Class values have no gradients for PNG's row filters to exploit: with no filter (zlib level 3, OpenCV's
# default) a 256x256 mask encodes in 0.11 ms instead of 0.53 ms and comes out smaller (681 vs 837 bytes),
# measured on a batch mask -- the pixels are the same. (OpenCV < 4.11 lacks the filter flag.)
_MASK_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3]
if hasattr(cv2, "IMWRITE_PNG_FILTER"):
    _MASK_PNG_PARAMS += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]


def _write_mask_png(path: Path, plane: np.ndarray) -> Path:
    """One (y, x) uint8/uint16 mask plane as a gray PNG, atomically."""
    return write_png_encoded(path, plane, _MASK_PNG_PARAMS)


def write_mask(path: str | Path, mask: np.ndarray, *, like: ImageVolume | None = None) -> Path:
    """Write a ``(z, y, x)`` (or ``(y, x)``) label mask; the format follows the suffix.

    PNG holds one slice (8-bit when the values fit, else 16-bit); TIFF one page per slice with the
    pixel spacing of ``like``; NIfTI the geometry (affine) of ``like``.

    Raises
    ------
    ExportError
        Unknown suffix, a stack written as PNG, a shape that differs from ``like``.
    """
    path = Path(path)
    name = path.name.lower()
    mask = np.asarray(mask)
    if mask.ndim == 2:
        mask = mask[np.newaxis]
    if mask.ndim != 3:
        raise ExportError(f"a mask is (z, y, x), got shape {mask.shape}", path=path)
    if like is not None and like.data.shape[:3] != mask.shape:
        raise ExportError(f"mask shape {mask.shape} differs from the image {like.data.shape[:3]}", path=path)
    data = compact_mask(mask)
    if name.endswith(".png"):
        if data.shape[0] != 1:
            raise ExportError(f"PNG holds one slice, the mask has {data.shape[0]}; use .tif or .nii.gz", path=path)
        return _write_mask_png(path, data[0])
    if name.endswith((".tif", ".tiff")):
        spacing = like.spacing if like is not None and like.spacing_known else None
        return write_tiff(path, data if data.shape[0] > 1 else data[0], spacing=spacing)
    if name.endswith((".nii", ".nii.gz")):
        return write_nifti(path, data, like=like) if like is not None else write_nifti(path, data)
    raise ExportError(f"unknown mask format {path.suffix!r} (use {', '.join(MASK_SUFFIXES)})", path=path)
