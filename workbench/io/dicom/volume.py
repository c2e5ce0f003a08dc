"""The reader's entry points: a DICOM folder (one series) or file (single or multi-frame) -> `ImageVolume`
with window, spacing, affine and the kept header fields in ``metadata``.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ...core.errors import ImageReadError
from ...core.image import ImageVolume
from .._common import CancelFn, ProgressFn, check_cancel, check_pixels, decoding, report
from .geometry import _affine, _normal, _order
from .header import (
    _TAG_DOUBLE_PIXEL_DATA,
    _TAG_FLOAT_PIXEL_DATA,
    _TAG_PIXEL_DATA,
    _dcmread,
    _describe,
    _first_float,
    _floats,
    _functional,
    _refuse_imageless_image,
    _Slice,
    _text,
    _validate_native,
)
from .pixels import _assemble, _decode_generic
from .scan import _group, _iter_files, _scan_folder, _series_info

# Header fields kept for export / de-identification (metadata["dicom"]).
_KEEP = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "PatientWeight",
    "OtherPatientIDs", "EthnicGroup", "StudyInstanceUID", "StudyID", "StudyDate", "StudyTime",
    "StudyDescription", "AccessionNumber", "ReferringPhysicianName", "InstitutionName",
    "InstitutionAddress", "StationName", "OperatorsName", "PerformingPhysicianName", "SeriesInstanceUID",
    "SeriesNumber", "SeriesDescription", "SeriesDate", "SeriesTime", "ContentDate", "ContentTime",
    "AcquisitionDate", "AcquisitionTime", "FrameOfReferenceUID", "Modality", "SOPClassUID", "Manufacturer",
    "ManufacturerModelName", "DeviceSerialNumber", "SoftwareVersions", "BodyPartExamined", "ProtocolName",
    "PatientPosition", "SliceThickness", "SpacingBetweenSlices", "KVP", "ConvolutionKernel",
    "PhotometricInterpretation", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
    "SamplesPerPixel", "RescaleSlope", "RescaleIntercept", "RescaleType", "ImageType",
    "SpecificCharacterSet", "Laterality", "ImageLaterality", "ViewPosition",
)


# -- building the volume ---------------------------------------------------------------------------------
def _window(ds) -> tuple[float, float] | None:
    source = ds if "WindowCenter" in ds else _functional(ds, "FrameVOILUTSequence", "WindowCenter")
    if source is None:
        return None
    center, width = _first_float(source, "WindowCenter"), _first_float(source, "WindowWidth")
    if center is None or width is None or width <= 0:
        return None
    return (center, width)


def _pixel_spacing(ds) -> tuple[float, ...] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        values = _floats(ds, keyword, 2)
        if values and values[0] > 0 and values[1] > 0:
            return values  # (row spacing = dy, column spacing = dx)
    group = _functional(ds, "PixelMeasuresSequence", "PixelSpacing")
    if group is not None:
        values = _floats(group, "PixelSpacing", 2)
        if values and values[0] > 0 and values[1] > 0:
            return values
    return None


def _slice_spacing(ds) -> float | None:
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = _first_float(ds, keyword)
        if value is not None and value > 0:
            return value
    group = _functional(ds, "PixelMeasuresSequence", "SliceThickness")
    if group is not None:
        value = _first_float(group, "SpacingBetweenSlices") or _first_float(group, "SliceThickness")
        if value is not None and value > 0:
            return value
    return None


def _header_fields(ds) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for keyword in _KEEP:
        if keyword not in ds:
            continue
        try:
            value = ds.get(keyword)
        except (ValueError, TypeError, OverflowError):
            continue  # a malformed optional field must not block the image
        if value is None:
            continue
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            out[keyword] = [_plain(v) for v in value]
        else:
            out[keyword] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, (int, float, str)) and type(value) in (int, float, str):
        return value
    if isinstance(value, bytes):
        return value.decode("latin-1", errors="replace")
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return int(value)
    return str(value)


def header_copy(ds):
    """A pixel-free copy of the first header, for exports that build DICOM SEG / SC from it.

    ``Dataset.copy()`` is shallow (it shares the element dict), so a new dataset is filled with copies of
    the elements: pydicom's ``ds.X = v`` on an existing element sets ``elem.value`` in place, so a shared
    element would carry an export's new UIDs back into the document's source headers (a derived series
    sent twice then referenced the first send's instances). Raw (still undecoded) elements are immutable
    tuples and are shared as they are. Elements still deferred (pixel data, private blobs over the defer
    size) are left out: they would need the source file to stay readable.
    """
    import copy as _copy

    from pydicom.dataelem import RawDataElement
    from pydicom.dataset import Dataset

    copy = Dataset()
    for tag in ds.keys():
        if tag in (_TAG_PIXEL_DATA, _TAG_FLOAT_PIXEL_DATA, _TAG_DOUBLE_PIXEL_DATA):
            continue
        elem = ds.get_item(tag, keep_deferred=True)
        if isinstance(elem, RawDataElement) and elem.value is None:
            continue
        copy[tag] = elem if isinstance(elem, RawDataElement) else _copy.deepcopy(elem)
    if getattr(ds, "file_meta", None) is not None:
        copy.file_meta = ds.file_meta
    implicit, little = ds.original_encoding
    if implicit is not None:
        copy.set_original_encoding(implicit, little, ds.original_character_set)
    return copy


def _make_volume(path: Path, members: list[_Slice], data: np.ndarray, z_spacing: float | None,
                 warnings: list[str], extra: dict[str, Any]) -> ImageVolume:
    first = members[0]
    ds = first.ds
    pixel_spacing = _pixel_spacing(ds)
    dz = z_spacing if z_spacing is not None and z_spacing > 0 else _slice_spacing(ds)
    spacing_known = pixel_spacing is not None
    dy, dx = pixel_spacing if pixel_spacing is not None else (1.0, 1.0)
    if dz is None:
        dz = 1.0
    ipp = first.ipp
    origin = (ipp[2], ipp[1], ipp[0]) if ipp is not None else (0.0, 0.0, 0.0)
    if data.ndim == 4 and data.shape[-1] not in (3, 4):
        raise ImageReadError(f"unsupported pixel layout {data.shape}", path=path)
    metadata: dict[str, Any] = {
        "format": "DICOM",
        "dicom": _header_fields(ds),
        "dicom_header": header_copy(ds),
        # every instance's parsed header (pixel data deferred, never read): exports that reference the
        # source instances (DICOM SEG) build from these instead of parsing the files again
        "dicom_headers": [m.ds for m in members],
        "transfer_syntax": first.syntax,
        "photometric": first.photometric,
        "files": [str(m.path) for m in members],
        "sop_instance_uids": [m.sop_uid for m in members],
        "image_positions": [list(m.ipp) if m.ipp is not None else None for m in members],
        "image_orientation": list(first.iop) if first.iop is not None else None,
        "warnings": warnings,
    }
    metadata.update(extra)
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "Modality", "SOPClassUID"):
        metadata[key] = metadata["dicom"].get(key)
    metadata["affine"] = _affine(first, (dz, dy, dx), members).tolist()
    modality = _text(ds, "Modality") or None
    return ImageVolume(
        data=data,
        spacing=(dz, dy, dx),
        origin=origin,
        window=_window(ds),
        modality=modality,
        invert_display=first.photometric == "MONOCHROME1",
        spacing_known=spacing_known,
        path=path,
        metadata=metadata,
    )


# -- entry points ----------------------------------------------------------------------------------------
def read_dicom_folder(folder: Path, *, max_pixels: int, series_uid: str | None = None,
                      progress: ProgressFn | None = None, cancel: CancelFn | None = None) -> ImageVolume:
    """A series from a folder (the largest, or ``series_uid``)."""
    n_files = len(_iter_files(folder))
    slices, _, ignored = _scan_folder(folder, progress, cancel, total_steps=2 * max(n_files, 1))
    if not slices:
        raise ImageReadError("no DICOM images in this folder", path=folder)
    groups = _group(slices)
    infos = sorted((_series_info(uid, m) for uid, m in groups.items()),
                   key=lambda s: (-s.n_frames, s.series_number if s.series_number is not None else 1 << 30))
    if series_uid is not None:
        if series_uid not in groups:
            known = ", ".join(i.uid for i in infos[:5])
            raise ImageReadError(f"no series {series_uid!r} here (series found: {known})", path=folder)
        uid = series_uid
    else:
        uid = infos[0].uid
    members = groups[uid]
    if len(members) > 1 and any(m.frames > 1 for m in members):
        raise ImageReadError(f"series {uid} has {len(members)} multi-frame files; open one file at a time",
                             path=folder)
    if len(members) == 1 and members[0].frames > 1:
        vol = _read_multiframe(members[0], max_pixels, folder, progress, cancel)
        vol.metadata["series_count"] = len(groups)
        vol.metadata["series"] = [asdict(i) for i in infos]
        return vol
    warnings: list[str] = []
    members, z_spacing = _order(folder, members, warnings)
    total = n_files + len(members)
    data = _assemble(folder, members, max_pixels, progress, cancel, n_files, total)
    extra = {"series_count": len(groups), "series": [asdict(i) for i in infos], "ignored_files": ignored}
    with decoding(members[0].path, "DICOM header"):
        return _make_volume(folder, members, data, z_spacing, warnings, extra)


def read_dicom_file(path: Path, *, max_pixels: int, force: bool = False, progress: ProgressFn | None = None,
                    cancel: CancelFn | None = None) -> ImageVolume:
    """A single DICOM file (single- or multi-frame)."""
    ds = _dcmread(path, force=force)
    with decoding(path, "DICOM header"):  # pydicom converts elements lazily, on first access
        s = _describe(path, ds)
        if s is None:
            _refuse_imageless_image(path, ds)
            what = _text(ds, "Modality") or _text(ds, "SOPClassUID")
            if not len(ds) or not what:
                raise ImageReadError("not a DICOM image (no recognisable DICOM header)", path=path)
            raise ImageReadError(f"DICOM file without pixel data (modality {what})", path=path)
    if s.frames > 1:
        return _read_multiframe(s, max_pixels, path, progress, cancel)
    data = _assemble(path, [s], max_pixels, progress, cancel, 0, 1)
    with decoding(path, "DICOM header"):
        return _make_volume(path, [s], data, None, [], {})


def _read_multiframe(s: _Slice, max_pixels: int, path: Path, progress: ProgressFn | None,
                     cancel: CancelFn | None) -> ImageVolume:
    check_pixels(path, (s.frames, s.rows, s.cols), max_pixels, "DICOM multi-frame image")
    _validate_native(s)
    check_cancel(cancel, path)
    arr = _decode_generic(s)
    report(progress, 1, 1)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    with decoding(path, "DICOM header"):
        return _multiframe_volume(s, arr, path)


def _multiframe_volume(s: _Slice, arr: np.ndarray, path: Path) -> ImageVolume:
    # Enhanced multi-frame: positions per frame (kept in frame order, as stored).
    positions: list[tuple[float, ...] | None] = []
    per_frame = s.ds.get("PerFrameFunctionalGroupsSequence", None) or []
    for item in per_frame:
        plane = item.get("PlanePositionSequence", None)
        positions.append(_floats(plane[0], "ImagePositionPatient", 3) if plane else None)
    warnings: list[str] = []
    z_spacing = None
    if s.iop is not None and len(positions) == s.frames and all(p is not None for p in positions):
        normal = _normal(s.iop)
        proj = np.array([np.dot(normal, p) for p in positions])  # type: ignore[arg-type]
        steps = np.diff(proj)
        if steps.size and np.all(np.abs(steps) > 1e-4):
            z_spacing = float(np.median(np.abs(steps)))
        if s.ipp is None:
            s.ipp = positions[0]
    elif "GridFrameOffsetVector" in s.ds:  # RT dose
        offsets = _floats(s.ds, "GridFrameOffsetVector", s.frames)
        if offsets is not None and s.frames > 1:
            z_spacing = float(np.median(np.abs(np.diff(offsets)))) or None
    extra = {"n_frames": s.frames, "frame_positions": [list(p) if p else None for p in positions]}
    vol = _make_volume(path, [s], arr, z_spacing, warnings, extra)
    return vol
