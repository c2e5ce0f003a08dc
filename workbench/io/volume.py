"""NumPy ``.npy`` and NIfTI (``.nii``, ``.nii.gz``) readers.

Display orientation of NIfTI volumes: the image is brought to the closest canonical orientation (RAS+)
with nibabel, then the in-plane axes are flipped so that ``data[z, y, x]`` has rows running anterior ->
posterior and columns running from the patient's right to left, slices inferior -> superior. That is
the radiological convention a DICOM axial series has natively (LPS), so a NIfTI and the DICOM series it
was converted from look the same. ``metadata["affine"]`` maps ``(x, y, z)`` indices of the displayed
array to RAS+ millimetres, which is what :func:`workbench.io.writers.write_nifti` writes back.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ImageReadError
from ..core.image import ImageVolume
from ._common import as_volume_dtype, check_pixels, decoding

NPY_MAGIC = b"\x93NUMPY"


# -- .npy --------------------------------------------------------------------------------------------
def read_npy(path: Path, max_pixels: int) -> ImageVolume:
    """A ``.npy`` array: 2D ``(y, x)``, ``(y, x, c)`` with c in 3/4, 3D ``(z, y, x)``, 4D ``(z, y, x, c)``.

    The header (shape, dtype) is read first so the size is checked before the data; pickled object
    arrays are refused (``allow_pickle=False``: loading a pickle runs code).
    """
    with decoding(path, "NumPy file"):
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            data_offset = fh.tell()
    if dtype.hasobject:
        raise ImageReadError("NumPy file holds Python objects, not pixels (refused: loading runs code)",
                             path=path)
    if dtype.names is not None or dtype.subdtype is not None or dtype.kind not in "biuf":
        raise ImageReadError(f"NumPy file holds {dtype} values (structured, string or complex), not pixels",
                             path=path)
    pix = _npy_pixel_shape(path, tuple(shape))
    check_pixels(path, pix, max_pixels, "array")
    need = data_offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = path.stat().st_size
    if size < need:
        raise ImageReadError(f"truncated NumPy file: data needs {need} bytes, file has {size}", path=path)
    with decoding(path, "NumPy file"):
        data = np.load(path, allow_pickle=False)
        data = as_volume_dtype(np.ascontiguousarray(data))
    colour = int(np.prod(pix, dtype=np.int64)) != data.size
    data = data.reshape(pix + (data.shape[-1],) if colour else pix)
    return ImageVolume(data=data, path=path, metadata={"format": "NPY"})


def _npy_pixel_shape(path: Path, shape: tuple[int, ...]) -> tuple[int, ...]:
    """``(z, y, x)`` pixel dims of an array shape; a trailing 3/4 axis of a small array is colour."""
    if len(shape) == 2:
        return (1,) + shape
    if len(shape) == 3:
        # (y, x, 3|4) is a colour image unless it is clearly a stack of slices: a 3/4-wide axis
        # after two large ones is colour; (3, 256, 256) is three slices.
        if shape[2] in (3, 4) and shape[0] > 4 and shape[1] > 4:
            return (1, shape[0], shape[1])
        return shape
    if len(shape) == 4 and shape[3] in (3, 4):
        return shape[:3]
    raise ImageReadError(f"NumPy array of shape {shape} is not an image (need 2D, 3D or (z, y, x, 3|4))",
                         path=path)


# -- NIfTI -------------------------------------------------------------------------------------------
def is_nifti_header(head: bytes) -> bool:
    """NIfTI-1 (sizeof_hdr 348, magic at 344) or NIfTI-2 (540, magic at 4), either byte order."""
    if len(head) >= 348 and head[344:348] in (b"n+1\x00", b"ni1\x00"):
        return True
    return len(head) >= 12 and head[4:8] in (b"n+2\x00", b"ni2\x00")


def _check_gzip_size(path: Path, img) -> None:
    """Refuse a ``.nii.gz`` whose gzip trailer is missing or whose stream is damaged.

    nibabel decompresses only the bytes the image needs and never reaches the gzip trailer (CRC32 +
    ISIZE), so a file cut inside the trailer loads silently and a corrupted stream is never checksummed.
    Fast path: ISIZE (uncompressed size mod 2**32, the last 4 bytes) equals the header's offset plus the
    voxel data, as every writer we know produces. Otherwise the whole stream is verified.
    """
    with open(path, "rb") as fh:
        if fh.read(2) != b"\x1f\x8b":
            return
        fh.seek(-4, 2)
        isize = int.from_bytes(fh.read(4), "little")
    header = img.header
    try:
        offset = int(header.get("vox_offset", 0))
        need = offset + int(np.prod(img.shape, dtype=np.int64)) * int(header.get_data_dtype().itemsize)
    except (TypeError, ValueError):
        return
    if isize == need % 2**32:
        return
    # The trailer disagrees: either trailing bytes after the image (legal, rare) or a damaged file.
    # Decide by decompressing to the end, which verifies the gzip CRC32 and length.
    import gzip

    with decoding(path, "gzip stream"):
        with gzip.open(path, "rb") as stream:
            total = 0
            while chunk := stream.read(1 << 22):
                total += len(chunk)
    if total < need:
        raise ImageReadError(f"truncated NIfTI: {total} bytes uncompressed, the image needs {need}", path=path)


def read_nifti(path: Path, max_pixels: int) -> ImageVolume:
    import nibabel as nib

    from ..core.log import adopt_library_loggers

    adopt_library_loggers()  # nibabel's own stderr handler: its header notes go to our log instead

    with decoding(path, "NIfTI file"):
        img: Any = nib.load(str(path))  # a Nifti1Image or Nifti2Image (nibabel types it as FileBasedImage)
        shape = tuple(int(s) for s in img.shape)
    if len(shape) < 2:
        raise ImageReadError(f"NIfTI of shape {shape} is not an image", path=path)
    _check_gzip_size(path, img)
    shape3 = (shape + (1,) * 3)[:3]
    n_volumes = int(np.prod(shape[3:], dtype=np.int64)) if len(shape) > 3 else 1
    check_pixels(path, (shape3[2], shape3[1], shape3[0]), max_pixels, "NIfTI volume")
    with decoding(path, "NIfTI file"):
        if len(shape) == 3:
            data = np.asanyarray(img.dataobj)
        else:
            # 2D images are promoted to one slice; 4D+ (time series, vectors) show the first volume -
            # slicing the proxy reads only that volume from disk.
            index = (slice(None),) * min(len(shape), 3) + (0,) * max(len(shape) - 3, 0)
            data = np.asanyarray(img.dataobj[index]).reshape(shape3)
        affine = np.asarray(img.affine, dtype=np.float64)
        zooms = [float(z) for z in img.header.get_zooms()]
        # Scaled integer data (scl_slope/inter) comes back as float64; float32 is plenty and halves memory.
        if data.dtype == np.float64:
            data = data.astype(np.float32)
        data = as_volume_dtype(np.asarray(data))
        ornt = nib.orientations.io_orientation(affine)
        transform = nib.orientations.ornt_transform(ornt, nib.orientations.axcodes2ornt(("R", "A", "S")))
        data = nib.orientations.apply_orientation(data, transform)
        canonical_affine = affine @ nib.orientations.inv_ornt_aff(transform, shape3)
        code = "".join(str(c) for c in nib.orientations.aff2axcodes(affine))
    # Canonical (i: L->R, j: P->A, k: I->S) -> display (x: R->L, y: A->P, z: I->S).
    nx, ny, nz = data.shape[:3]
    flip = np.array([[-1, 0, 0, nx - 1], [0, -1, 0, ny - 1], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
    display_affine = canonical_affine @ flip
    data = np.ascontiguousarray(np.transpose(data[::-1, ::-1, :], (2, 1, 0)))
    # Spacing along the display axes: column norms of the affine (robust to obliquity and permutations).
    vx, vy, vz = (float(np.linalg.norm(display_affine[:3, i])) for i in range(3))
    origin_ras = display_affine[:3, 3]
    return ImageVolume(
        data=data,
        spacing=(vz, vy, vx),
        # DICOM-like LPS origin in (z, y, x) order, like the DICOM reader's.
        origin=(float(origin_ras[2]), float(-origin_ras[1]), float(-origin_ras[0])),
        spacing_known=True,
        path=path,
        metadata={
            "format": "NIfTI",
            "affine": display_affine.tolist(),
            "source_affine": np.asarray(affine).tolist(),
            "source_orientation": code,
            "source_shape": list(shape),
            "zooms": list(zooms),
            "n_volumes": n_volumes,
        },
    )
