"""``read_image``: one entry point for every supported format, chosen by content first, suffix second."""
from __future__ import annotations

from pathlib import Path

from ..core.errors import ImageReadError
from ..core.image import ImageVolume
from . import raster, volume
from ._common import CancelFn, ProgressFn, check_cancel, first_line, report, resolve_max_pixels
from .dicom.header import has_dicom_preamble
from .dicom.volume import read_dicom_file, read_dicom_folder
from .folders import require_regular

# Suffixes tried as DICOM without the 128-byte preamble + "DICM" (legacy / stripped files).
_DICOM_SUFFIXES = {".dcm", ".dicom", ".dic", ".ima"}
_HEAD_BYTES = 540  # enough for the DICOM preamble (132) and a NIfTI-2 header (540)


def sniff_format(path: str | Path) -> str:
    """The format of a file from its first bytes, else its suffix.

    Returns one of ``"folder"``, ``"png"``, ``"jpeg"``, ``"bmp"``, ``"tiff"``, ``"npy"``, ``"nifti"``,
    ``"dicom"`` (with preamble), ``"dicom-nopreamble"`` (suffix only) or ``"unknown"``.
    """
    path = Path(path)
    if path.is_dir():
        return "folder"
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except OSError as exc:
        raise ImageReadError(f"cannot open ({first_line(exc)})", path=path) from exc
    # DICOM first: its 128-byte preamble is free-form and may itself look like a TIFF header
    # (dual-personality files), so "DICM" at offset 128 wins over any magic at offset 0.
    if has_dicom_preamble(head):
        return "dicom"
    if head.startswith(raster.PNG_MAGIC):
        return "png"
    if head.startswith(raster.JPEG_MAGIC):
        return "jpeg"
    if head[:4] in raster.TIFF_MAGICS:
        return "tiff"
    if head.startswith(volume.NPY_MAGIC):
        return "npy"
    if volume.is_nifti_header(head):
        return "nifti"
    name = path.name.lower()
    if head.startswith(b"\x1f\x8b") and (name.endswith(".nii.gz") or name.endswith(".nii")):
        return "nifti"
    if head.startswith(b"BM") and name.endswith((".bmp", ".dib")):
        return "bmp"
    if head.startswith(b"BM") and len(head) >= 18 and head[14] in (12, 40, 52, 56, 108, 124):
        return "bmp"  # BITMAPINFOHEADER sizes: a real BMP even without its suffix
    if path.suffix.lower() in _DICOM_SUFFIXES:
        return "dicom-nopreamble"
    return "unknown"


def read_image(path: str | Path, *, max_pixels: int | None = None, series_uid: str | None = None,
               progress: ProgressFn | None = None, cancel: CancelFn | None = None) -> ImageVolume:
    """Read an image file, a volume or a DICOM series into an :class:`ImageVolume`.

    Parameters
    ----------
    path : str or Path
        PNG, JPEG, BMP, TIFF (8/16-bit, gray/RGB/RGBA, multi-page as a stack), ``.npy``, NIfTI
        (``.nii``, ``.nii.gz``), a DICOM file (single or multi-frame) or a folder of DICOM files.
    max_pixels : int, optional
        Refuse images whose header declares more pixels (all slices together) than this, *before*
        decoding. Default: ``Settings().max_pixels`` (250 Mpx).
    series_uid : str, optional
        For a DICOM folder: the SeriesInstanceUID to read (see :func:`list_dicom_series`); default the
        series with the most images.
    progress : callable(done, total), optional
        Called as the read advances (per file for DICOM folders).
    cancel : callable() -> bool, optional
        Polled between files/slices; returning True raises :class:`~workbench.core.errors.CancelledError`.

    Returns
    -------
    ImageVolume
        ``data`` is ``(z, y, x)`` or ``(z, y, x, c)`` with c in RGB(A) order.

    Raises
    ------
    ImageReadError
        Missing, unreadable, truncated, corrupt, oversized or unsupported input; the message names the
        file and the reason. No other exception type escapes for bad input.
    CancelledError
        ``cancel()`` returned True.
    """
    path = Path(path)
    if not path.is_dir():
        # before anything opens it: a FIFO would block the open, /dev/urandom would never end
        require_regular(path, what="image")
    limit = resolve_max_pixels(max_pixels)
    check_cancel(cancel, path)
    fmt = sniff_format(path)
    if fmt == "folder":
        return read_dicom_folder(path, max_pixels=limit, series_uid=series_uid, progress=progress,
                                       cancel=cancel)
    if fmt == "dicom":
        return read_dicom_file(path, max_pixels=limit, progress=progress, cancel=cancel)
    if fmt == "dicom-nopreamble":
        return read_dicom_file(path, max_pixels=limit, force=True, progress=progress, cancel=cancel)
    if fmt == "tiff":
        vol = raster.read_tiff(path, limit)
    elif fmt == "npy":
        vol = volume.read_npy(path, limit)
    elif fmt == "nifti":
        vol = volume.read_nifti(path, limit)
    elif fmt in ("png", "jpeg", "bmp"):
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ImageReadError(f"cannot read ({first_line(exc)})", path=path) from exc
        reader = {"png": raster.read_png, "jpeg": raster.read_jpeg, "bmp": raster.read_bmp}[fmt]
        vol = reader(path, raw, limit)
    else:
        if path.stat().st_size == 0:
            raise ImageReadError("empty file", path=path)
        raise ImageReadError(
            "unknown image format (supported: PNG, JPEG, BMP, TIFF, DICOM, NIfTI .nii/.nii.gz, .npy)",
            path=path)
    report(progress, 1, 1)
    return vol
