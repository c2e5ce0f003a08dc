"""A restored image (denoised, super-resolved: :class:`~workbench.core.results.RestorationResult`) as a new,
derived DICOM series of its source: same SOP class and geometry, one instance per restored slice.

Each instance starts from the pixel-free header the reader kept for its source slice (patient, study,
frame of reference, position and orientation stay), then gets a new SOP Instance UID in a new series,
``ImageType`` ``DERIVED\\SECONDARY``, a ``DerivationDescription`` naming the model, and a Source Image
Sequence referencing the source instance with purpose (DCM, 121322) "Source image for image processing
operation" (PS3.3 C.7.6.1.1.3, PS3.16 CID 7202). Pixel values go back through the source's rescale
(stored = (value - intercept) / slope, rounded and clipped to the stored range), so a viewer shows the
restored values in the source's units. Super-resolution (``scale`` > 1) divides the pixel spacing and
shifts the first pixel's centre by the half-pixel difference. Written uncompressed (explicit VR little
endian).

These are identified objects on purpose (the PACS must file them with the source study): they are made
for "Send to PACS" (:mod:`workbench.pacs.outbox`), whose dialog says what leaves the machine.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import __version__
from ..core.errors import ExportError
from ..core.image import ImageVolume
from ..io.atomic import atomic_path

SOURCE_IMAGE_PURPOSE = ("121322", "DCM", "Source image for image processing operation")
# attributes of the source slice that would be false for the new pixels
_DROPPED = ("SmallestImagePixelValue", "LargestImagePixelValue", "PixelPaddingRangeLimit",
            "RedPaletteColorLookupTableData", "GreenPaletteColorLookupTableData",
            "BluePaletteColorLookupTableData", "IconImageSequence", "ReferencedImageSequence",
            "NumberOfFrames", "PlanarConfiguration", "ModalityLUTSequence", "VOILUTSequence")


def _stored_values(values: np.ndarray, ds: Any) -> np.ndarray:
    """``values`` (modality units) back to stored pixel values of ``ds``'s encoding."""
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    bits = int(ds.get("BitsStored", 16) or 16)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    stored = np.rint((np.asarray(values, dtype=np.float64) - intercept) / slope)
    return np.clip(stored, low, high).astype(np.int16 if signed else np.uint16)


def derived_datasets(restored: ImageVolume, source: ImageVolume, *, slices: Sequence[int] | None = None,
                     scale: int = 1, description: str = "Workbench restored image",
                     algorithm: str = "", series_number: int | None = None) -> list[Any]:
    """The instances of the derived series (pydicom Datasets with file meta), in slice order.

    Parameters
    ----------
    restored : ImageVolume
        ``(n, y, x)`` (or ``(n, y, x, 3)`` RGB) restored slices, in the source's value units.
    source : ImageVolume
        The DICOM image they were computed from (its ``metadata["dicom_headers"]``, one per slice).
    slices : sequence of int, optional
        The source slice of each restored slice (``RestorationResult.extra["slices"]``); default: all,
        in order.
    scale : int
        In-plane magnification (super-resolution).
    description : str
        SeriesDescription of the new series.
    algorithm : str
        What made it (model name and version), for DerivationDescription.
    series_number : int, optional
        Default: the source's SeriesNumber + 1000.

    Raises
    ------
    ExportError
        Not a single-frame DICOM series, or the shapes do not match.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from ..io.dicom.volume import header_copy
    from .dicom_seg import is_dicom_source

    if not is_dicom_source(source):
        raise ExportError("a derived DICOM series needs an image read from DICOM")
    headers = list(source.metadata.get("dicom_headers") or [])
    n_source = int(source.shape[0])
    if len(headers) != n_source:
        raise ExportError(f"a derived DICOM series needs one source file per slice ({len(headers)} source "
                          f"header(s) for {n_source} slices: multi-frame sources are not supported)")
    data = np.asarray(restored.data)
    if data.ndim == 2:
        data = data[np.newaxis]
    index = list(range(data.shape[0])) if slices is None or len(slices) != data.shape[0] else [int(s) for s in slices]
    if any(not 0 <= i < n_source for i in index):
        raise ExportError(f"restored slices {index} outside the source's {n_source} slices")
    rgb = data.ndim == 4
    if data.ndim not in (3, 4) or (rgb and data.shape[-1] != 3):
        raise ExportError(f"unsupported restored image layout {data.shape}")
    scale = max(int(scale or 1), 1)
    series_uid = generate_uid()
    now = _dt.datetime.now()
    out = []
    for k, i in enumerate(index):
        src = headers[i]
        ds = header_copy(src)
        for keyword in _DROPPED:
            if keyword in ds:
                delattr(ds, keyword)
        sop_uid = generate_uid()
        ds.SOPInstanceUID = sop_uid
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number if series_number is not None else int(src.get("SeriesNumber", 0) or 0) + 1000
        ds.SeriesDescription = description[:64]
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.DerivationDescription = (f"Restored by {algorithm} (Workbench {__version__})" if algorithm
                                    else f"Restored by Workbench {__version__}")[:1024]
        ref = Dataset()
        ref.ReferencedSOPClassUID = src.SOPClassUID
        ref.ReferencedSOPInstanceUID = src.SOPInstanceUID
        purpose = Dataset()
        purpose.CodeValue, purpose.CodingSchemeDesignator, purpose.CodeMeaning = SOURCE_IMAGE_PURPOSE
        ref.PurposeOfReferenceCodeSequence = [purpose]
        ds.SourceImageSequence = [ref]
        ds.InstanceNumber = k + 1
        ds.InstanceCreationDate = ds.ContentDate = now.strftime("%Y%m%d")
        ds.InstanceCreationTime = ds.ContentTime = now.strftime("%H%M%S")
        ds.Manufacturer = "Workbench"
        ds.SoftwareVersions = __version__
        plane = data[k]
        ds.Rows, ds.Columns = int(plane.shape[0]), int(plane.shape[1])
        if scale > 1:
            _scale_geometry(ds, src, scale)
        if rgb:
            ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
            ds.BitsAllocated = ds.BitsStored = 8
            ds.HighBit, ds.PixelRepresentation = 7, 0
            for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType"):
                if keyword in ds:
                    delattr(ds, keyword)
            pixels = np.clip(np.rint(plane), 0, 255).astype(np.uint8)
        else:
            pixels = _stored_values(plane, src)
            ds.SamplesPerPixel = 1
            if str(ds.get("PhotometricInterpretation", "")) not in ("MONOCHROME1", "MONOCHROME2"):
                ds.PhotometricInterpretation = "MONOCHROME2"
            ds.BitsAllocated = 16
            ds.BitsStored = min(int(src.get("BitsStored", 16) or 16), 16)
            ds.HighBit = ds.BitsStored - 1
            ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
        ds.PixelData = np.ascontiguousarray(pixels).tobytes()
        ds["PixelData"].VR = "OB" if rgb else "OW"
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = src.SOPClassUID
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        ds.set_original_encoding(False, True, ds.get("SpecificCharacterSet"))
        out.append(ds)
    return out


def _scale_geometry(ds: Any, src: Any, scale: int) -> None:
    spacing = [float(v) for v in (src.get("PixelSpacing") or [1.0, 1.0])]
    ds.PixelSpacing = [spacing[0] / scale, spacing[1] / scale]
    ipp, iop = src.get("ImagePositionPatient"), src.get("ImageOrientationPatient")
    if ipp is not None and iop is not None and len(iop) == 6:
        row_dir, col_dir = np.array(iop[:3], float), np.array(iop[3:], float)
        # the first pixel's centre moves by half the difference of the old and new pixel sizes
        # (PixelSpacing is [between rows, between columns]: along the column, then the row direction)
        shift = -(spacing[1] - spacing[1] / scale) / 2 * row_dir - (spacing[0] - spacing[0] / scale) / 2 * col_dir
        ds.ImagePositionPatient = [round(float(v), 6) for v in np.array(ipp, float) + shift]


def write_derived_series(folder: str | Path, restored: ImageVolume, source: ImageVolume, **kwargs: Any
                         ) -> list[Path]:
    """Write :func:`derived_datasets` as ``folder/derived_<n>.dcm`` (each atomically); returns the files.

    Raises
    ------
    ExportError
        See :func:`derived_datasets`; or a file cannot be written.
    """
    folder = Path(folder)
    out = []
    for n, ds in enumerate(derived_datasets(restored, source, **kwargs), start=1):
        path = folder / f"derived_{n:04d}.dcm"
        try:
            with atomic_path(path, suffix=".dcm") as tmp:
                ds.save_as(tmp, enforce_file_format=True)
        except OSError as exc:
            raise ExportError(f"cannot write ({exc.strerror or exc})", path=path) from exc
        out.append(path)
    return out
