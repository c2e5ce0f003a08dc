"""Image input/output: ``read_image`` for every supported format, atomic writers.

Readers (:func:`read_image`): PNG, JPEG, BMP, TIFF (8/16-bit, gray/RGB/RGBA, multi-page), ``.npy``,
NIfTI (``.nii``/``.nii.gz``), DICOM file / multi-frame / series folder. Bad input raises
:class:`~workbench.core.errors.ImageReadError`; see docs/IO.md for formats, limits and traps.

Writers (:mod:`workbench.io.writers`): atomic :func:`write_png`, :func:`write_tiff`, :func:`write_nifti`.
"""
from .atomic import atomic_open, atomic_path, atomic_write_bytes, atomic_write_text
from .dicom.scan import SeriesInfo, list_dicom_series
from .reader import read_image, sniff_format
from .writers import volume_affine, write_nifti, write_png, write_tiff

__all__ = [
    "read_image", "sniff_format", "list_dicom_series", "SeriesInfo",
    "write_png", "write_tiff", "write_nifti", "volume_affine",
    "atomic_open", "atomic_path", "atomic_write_bytes", "atomic_write_text",
]
