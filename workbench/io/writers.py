"""Atomic image writers used by the exports: PNG (OpenCV), TIFF (tifffile), NIfTI (nibabel).

Every writer encodes to a temporary file beside the target and renames it into place
(:mod:`workbench.io.atomic`), so a failed write never leaves a truncated file. Bad arguments and write
failures raise :class:`~workbench.core.errors.ExportError` naming the target file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ExportError
from ..core.image import ImageVolume
from ._common import first_line
from .atomic import atomic_path, atomic_write_bytes


def _plane(path: Path, array: np.ndarray, *, what: str) -> np.ndarray:
    """Accept ``(y, x)``, ``(y, x, 3|4)`` or a single-slice ``(1, y, x[, c])``."""
    arr = np.asarray(array)
    if arr.ndim in (3, 4) and arr.shape[0] == 1 and (arr.ndim == 4 or arr.shape[-1] not in (3, 4)):
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ExportError(f"{what} needs a (y, x), (y, x, 3) or (y, x, 4) array, got shape {arr.shape}",
                          path=path)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ExportError(f"cannot write an empty {arr.shape} image", path=path)
    return arr


def output_dir(path: str | Path) -> Path:
    """Create the output folder ``path`` (and its parents) if needed; returns it.

    Raises
    ------
    ExportError
        It cannot be created (a file of that name, no permission...).
    """
    out_dir = Path(path)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the output folder ({exc.strerror or exc})", path=out_dir) from exc
    return out_dir


def write_png(path: str | Path, array: np.ndarray, *, compression: int = 3) -> Path:
    """Write an 8- or 16-bit gray, RGB or RGBA PNG atomically.

    Parameters
    ----------
    path : str or Path
        Target file (``.png``).
    array : ndarray
        ``(y, x)`` gray, ``(y, x, 3)`` RGB or ``(y, x, 4)`` RGBA (RGB order, *not* OpenCV's BGR), or the
        same with a leading axis of length 1. dtype uint8 or uint16; bool is written as 0/1 uint8 (class
        values, not a picture); other integer dtypes only if their values fit 0..65535.
    compression : int
        zlib level 0-9 (OpenCV's default 3 is a good speed/size trade-off for masks).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ExportError
        Unsupported shape/dtype or values, or the file cannot be written.
    """
    import cv2

    path = Path(path)
    arr = _plane(path, array, what="PNG")
    arr = _to_png_dtype(path, arr)
    if arr.ndim == 3:
        arr = arr[:, :, [2, 1, 0]] if arr.shape[2] == 3 else arr[:, :, [2, 1, 0, 3]]
    return write_png_encoded(path, arr, [cv2.IMWRITE_PNG_COMPRESSION, int(compression)])


def write_png_encoded(path: Path, arr: np.ndarray, params: list[int]) -> Path:
    """Encode ``arr`` (OpenCV channel order: gray, BGR or BGRA) as PNG with ``params``, write it atomically.

    The one PNG writer of the package: masks, overlays and images all go through it.

    Raises
    ------
    ExportError
        OpenCV could not encode the array, or the file cannot be written.
    """
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr), params)
    if not ok:
        raise ExportError("OpenCV could not encode the PNG", path=path)
    try:
        atomic_write_bytes(path, buf.tobytes())
    except OSError as exc:
        raise ExportError(f"cannot write ({exc.strerror or first_line(exc)})", path=path) from exc
    return path


def _to_png_dtype(path: Path, arr: np.ndarray) -> np.ndarray:
    if arr.dtype in (np.uint8, np.uint16):
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise ExportError(f"PNG holds 0..65535; the {arr.dtype} values span {lo}..{hi}", path=path)
        return arr.astype(np.uint8 if hi <= 255 else np.uint16)
    raise ExportError(f"PNG needs uint8 or uint16 pixels, got {arr.dtype} (scale it or write a TIFF)", path=path)


def write_tiff(path: str | Path, array: np.ndarray, *, spacing: tuple[float, ...] | None = None,
               compression: str | None = "zlib", metadata: dict[str, Any] | None = None) -> Path:
    """Write a TIFF atomically: one page per slice for ``(z, y, x[, c])``.

    Parameters
    ----------
    path : str or Path
    array : ndarray
        ``(y, x)``, ``(y, x, 3|4)``, ``(z, y, x)`` or ``(z, y, x, 3|4)`` of any dtype tifffile supports
        (uint8/16/32, int8/16/32, float32/64).
    spacing : tuple, optional
        ``(dy, dx)`` or ``(dz, dy, dx)`` in mm; written as XResolution/YResolution in pixels per cm
        (which :func:`workbench.io.read_image` reads back as ``spacing_known``) and, with dz, in the JSON
        image description (``spacing_mm``).
    compression : str or None
        ``"zlib"`` (lossless, no extra package needed) or None.
    metadata : dict, optional
        Stored as tifffile's JSON description (e.g. source file, plugin id).

    Returns
    -------
    Path

    Raises
    ------
    ExportError
    """
    import tifffile

    path = Path(path)
    arr = np.asarray(array)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if arr.ndim not in (2, 3, 4) or arr.size == 0:
        raise ExportError(f"TIFF needs a 2D-4D image array, got shape {arr.shape}", path=path)
    photometric = "rgb" if arr.ndim >= 3 and arr.shape[-1] in (3, 4) and (arr.ndim == 4 or arr.shape[0] > 4) \
        else "minisblack"
    kwargs: dict[str, Any] = {"photometric": photometric, "compression": compression}
    if photometric == "rgb" and arr.shape[-1] == 4:
        kwargs["extrasamples"] = ("unassalpha",)
    description: dict[str, Any] = dict(metadata or {})
    if spacing is not None:
        values = [float(s) for s in tuple(spacing)]
        if len(values) not in (2, 3) or any(v <= 0 for v in values):
            raise ExportError(f"spacing must be 2 or 3 positive values, got {spacing}", path=path)
        dy, dx = values[-2:]
        kwargs["resolution"] = (10.0 / dx, 10.0 / dy)  # pixels per cm
        kwargs["resolutionunit"] = "CENTIMETER"
        # TIFF has no slice spacing tag: keep (dz, dy, dx) in tifffile's JSON description, read back by us
        description["spacing_mm"] = ([1.0] if len(values) == 2 else []) + values
    if description:
        kwargs["metadata"] = description
    try:
        with atomic_path(path) as tmp:
            tifffile.imwrite(tmp, arr, **kwargs)
    except (OSError, ValueError, TypeError) as exc:
        raise ExportError(f"cannot write TIFF ({first_line(exc)})", path=path) from exc
    return path


def volume_affine(volume: ImageVolume) -> np.ndarray:
    """4x4 affine from ``(x, y, z)`` indices of ``volume.data[z, y, x]`` to RAS+ mm.

    The readers store it as ``metadata["affine"]`` (NIfTI: its own; DICOM: from the positions and
    orientation). Plain images get the display convention of the readers - columns toward the
    patient's left, rows toward posterior - so a NIfTI written from a PNG looks the same in any viewer.
    """
    stored = volume.metadata.get("affine")
    if stored is not None:
        return np.asarray(stored, dtype=float)
    dz, dy, dx = volume.spacing
    return np.diag([-dx, -dy, dz, 1.0])


def write_nifti(path: str | Path, volume_or_array: ImageVolume | np.ndarray, *,
                spacing: tuple[float, float, float] | None = None, affine: np.ndarray | None = None,
                like: ImageVolume | None = None) -> Path:
    """Write a ``(z, y, x)`` volume (or mask) as NIfTI-1 (``.nii`` or ``.nii.gz``) atomically.

    Parameters
    ----------
    path : str or Path
        Target; ``.nii.gz`` is gzip-compressed.
    volume_or_array : ImageVolume or ndarray
        An ImageVolume (its data and geometry) or a ``(z, y, x)`` / ``(y, x)`` array.
    spacing : (dz, dy, dx), optional
        For a bare array without ``affine``/``like``: voxel size in mm.
    affine : (4, 4) array, optional
        ``(x, y, z)`` index -> RAS+ mm. Overrides everything else.
    like : ImageVolume, optional
        Take the geometry of this volume (e.g. write a mask that overlays the image it was drawn on).

    Returns
    -------
    Path

    Raises
    ------
    ExportError
    """
    import nibabel as nib

    path = Path(path)
    if isinstance(volume_or_array, ImageVolume):
        data = volume_or_array.data
        geometry: ImageVolume | None = like if like is not None else volume_or_array
    else:
        data = np.asarray(volume_or_array)
        if data.ndim == 2:
            data = data[np.newaxis]
        geometry = like
    if data.ndim not in (3, 4) or data.size == 0:
        raise ExportError(f"NIfTI needs a (z, y, x) array, got shape {data.shape}", path=path)
    if data.dtype == np.bool_:
        data = data.astype(np.uint8)
    if affine is not None:
        aff = np.asarray(affine, dtype=float)
        if aff.shape != (4, 4):
            raise ExportError(f"affine must be 4x4, got {aff.shape}", path=path)
    elif geometry is not None:
        if geometry.data.shape[:3] != data.shape[:3]:
            raise ExportError(f"array shape {data.shape[:3]} differs from the reference volume "
                              f"{geometry.data.shape[:3]}", path=path)
        aff = volume_affine(geometry)
    else:
        dz, dy, dx = spacing if spacing is not None else (1.0, 1.0, 1.0)
        aff = np.diag([-float(dx), -float(dy), float(dz), 1.0])
    if not np.all(np.isfinite(aff)) or abs(float(np.linalg.det(aff[:3, :3]))) < 1e-12:
        # e.g. a DICOM series whose slices all share one position: zero slice spacing, no 3-D geometry
        raise ExportError("the image geometry is degenerate (the affine is not invertible: slices share one "
                          "position?); write the mask as .tif instead", path=path)
    # (z, y, x[, c]) -> NIfTI's (i, j, k[, c]) = (x, y, z)
    order = (2, 1, 0) + ((3,) if data.ndim == 4 else ())
    try:
        img = nib.Nifti1Image(np.transpose(data, order), aff)
        img.header.set_xyzt_units("mm")
        img.set_qform(aff, code=1)
        img.set_sform(aff, code=1)
        with atomic_path(path) as tmp:
            nib.save(img, str(tmp))
    except (OSError, ValueError, TypeError, nib.spatialimages.HeaderDataError) as exc:
        raise ExportError(f"cannot write NIfTI ({first_line(exc)})", path=path) from exc
    return path
