"""DICOM reader: single file, multi-frame file, or a folder holding one or more series.

How a folder is read (one pass over the headers, then one read of the pixels):

1. Every file is parsed once with ``pydicom.dcmread(defer_size=...)``: the header is parsed, the pixel
   data is *skipped* (pydicom records its file offset instead of reading it). Files without the DICOM
   preamble are ignored; a file that has it but does not parse fails the whole read (never a series with
   a silently missing slice).
2. Image files are grouped by SeriesInstanceUID; the largest series is chosen unless ``series_uid`` is
   given. Slices are sorted by ImagePositionPatient projected on the slice normal (cross product of the
   ImageOrientationPatient cosines), falling back to InstanceNumber; the z spacing comes from the sorted
   positions.
3. One output array is allocated for the whole series and each slice's pixel bytes are read straight into
   it (``readinto`` at the recorded offset) - at most one copy of the volume is ever in memory, and the
   header pass + pixel read together cost about the same as a bare ``dcmread`` + ``np.frombuffer`` loop
   (see tests/bench/test_bench_io.py). Compressed, colour, palette and other unusual slices go through
   pydicom's own decoders (``pixel_array``, with the pylibjpeg codecs) one slice at a time into the same
   array.

Values: the modality LUT is applied (RescaleSlope/Intercept, or a Modality LUT Sequence via pydicom's
``apply_modality_lut``); CT is always float32 Hounsfield units, other modalities keep their stored dtype
unless a non-identity rescale forces float32. The VOI window (first value when multi-valued) becomes
``ImageVolume.window``; MONOCHROME1 sets ``invert_display``.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ImageReadError
from ..core.image import ImageVolume
from ._common import (CancelFn, ProgressFn, as_volume_dtype, check_cancel, check_pixels, decoding,
                      first_line, report)

DICM_OFFSET = 128
# Elements larger than this are not read during the header pass (pixel data, big private blobs).
_DEFER_SIZE = 4096

_TAG_PIXEL_DATA = 0x7FE00010
_TAG_FLOAT_PIXEL_DATA = 0x7FE00008
_TAG_DOUBLE_PIXEL_DATA = 0x7FE00009

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

_NATIVE_LE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
_DEFLATED = "1.2.840.10008.1.2.1.99"
_NATIVE_BE = {"1.2.840.10008.1.2.2"}


@dataclass(frozen=True)
class SeriesInfo:
    """One image series found in a folder (see :func:`list_dicom_series`)."""

    uid: str
    description: str
    modality: str
    n_files: int
    n_frames: int
    rows: int
    columns: int
    series_number: int | None = None
    study_uid: str = ""


@dataclass
class _Slice:
    """What the header pass learns about one image file."""

    path: Path
    ds: Any  # pydicom Dataset, pixel data deferred
    series_uid: str
    rows: int
    cols: int
    frames: int
    spp: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str
    syntax: str
    slope: float
    intercept: float
    has_modality_lut: bool
    instance: int | None
    ipp: tuple[float, float, float] | None
    iop: tuple[float, ...] | None
    sop_uid: str
    modality: str = ""
    pixel_tell: int | None = None  # file offset of the pixel bytes (deferred element)
    pixel_length: int | None = None
    pixel_bytes: bytes | None = None  # small elements are read inline
    position: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def native_fast(self) -> bool:
        """Plain little/big-endian monochrome integer pixels: read straight into the output array."""
        return (
            (self.syntax in _NATIVE_LE or self.syntax in _NATIVE_BE)
            and self.spp == 1
            and self.bits_allocated in (8, 16, 32)
            and self.photometric in ("MONOCHROME1", "MONOCHROME2")
            and not self.has_modality_lut
            and self.frames == 1
            and self.pixel_length is not None
        )

    @property
    def raw_dtype(self) -> np.dtype:
        """The stored integer dtype (bit-packed 1-bit data unpacks to uint8)."""
        if self.bits_allocated not in (8, 16, 32, 64):
            return np.dtype(np.uint8)
        return np.dtype(f"{'i' if self.signed else 'u'}{self.bits_allocated // 8}")


# -- small header helpers (raw values: fast, and tolerant of malformed strings) -----------------------
def _text(ds, keyword: str, default: str = "") -> str:
    value = ds.get(keyword, None)
    if value is None:
        return default
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = value[0] if len(value) else default
    return str(value).strip()


def _first_float(ds, keyword: str) -> float | None:
    """First value of a (possibly multi-valued) numeric element, or None when absent or unparsable."""
    try:
        value = ds.get(keyword, None)
    except (ValueError, TypeError, OverflowError):
        return None
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        if not len(value):
            return None
        value = value[0]
    try:
        out = float(value)
    except (ValueError, TypeError, OverflowError):
        return None
    return out if np.isfinite(out) else None


def _floats(ds, keyword: str, n: int) -> tuple[float, ...] | None:
    try:
        value = ds.get(keyword, None)
        if value is None:
            return None
        values = tuple(float(v) for v in value)
    except (ValueError, TypeError, OverflowError):
        return None
    if len(values) != n or not all(np.isfinite(values)):
        return None
    return values


def _int(ds, keyword: str, default: int | None = None) -> int | None:
    try:
        value = ds.get(keyword, None)
        if value is None or value == "":
            return default
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            value = value[0]
        return int(value)
    except (ValueError, TypeError, OverflowError):
        return default


# Hot-path header access. pydicom converts a raw element into a DataElement on first attribute access
# (keyword lookup, VR inference, DS/IS object construction): ~20 us per field, which for a 300-slice series
# is a third of a bare dcmread loop. The per-slice fields below are parsed straight from the raw bytes
# (measured: tests/bench/test_bench_io.py); everything read once per series uses the normal API.
_T_ROWS, _T_COLS, _T_SPP = 0x00280010, 0x00280011, 0x00280002
_T_BITS_ALLOC, _T_BITS_STORED, _T_PIXREP = 0x00280100, 0x00280101, 0x00280103
_T_PHOTOMETRIC, _T_FRAMES = 0x00280004, 0x00280008
_T_SLOPE, _T_INTERCEPT = 0x00281053, 0x00281052
_T_IOP, _T_IPP, _T_INSTANCE = 0x00200037, 0x00200032, 0x00200013
_T_SOP_UID, _T_SERIES_UID, _T_MODALITY = 0x00080018, 0x0020000E, 0x00080060
_T_MODALITY_LUT, _T_DOSE_SCALING = 0x00283000, 0x3004000E


def _raw_parts(ds, tag: int) -> list[str] | None:
    """The backslash-separated text values of an element, without pydicom's conversion."""
    from pydicom.dataelem import RawDataElement

    elem = ds.get_item(tag, keep_deferred=True)
    if elem is None:
        return None
    if isinstance(elem, RawDataElement):
        if elem.value is None:
            return None
        text = bytes(elem.value).decode("latin-1").strip(" \x00")
        return [p.strip(" \x00") for p in text.split("\\")] if text else []
    value = elem.value
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [str(v).strip() for v in value]
    text = str(value).strip()
    return [text] if text else []


def _raw_us(ds, tag: int, little: bool) -> int | None:
    """An unsigned short (Rows, BitsAllocated...) from the raw element bytes."""
    from pydicom.dataelem import RawDataElement

    elem = ds.get_item(tag, keep_deferred=True)
    if elem is None:
        return None
    if isinstance(elem, RawDataElement):
        raw = elem.value
        if raw is None or len(raw) < 2:
            return None
        return int.from_bytes(bytes(raw[:2]), "little" if little else "big")
    try:
        value = elem.value
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            value = value[0]
        return int(value)
    except (ValueError, TypeError, IndexError):
        return None


def _parts_floats(parts: list[str] | None, n: int) -> tuple[float, ...] | None:
    if not parts or len(parts) != n:
        return None
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        return None
    return values if all(np.isfinite(values)) else None


def _parts_first_float(parts: list[str] | None) -> float | None:
    if not parts:
        return None
    try:
        value = float(parts[0])
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def _parts_first_int(parts: list[str] | None) -> int | None:
    if not parts:
        return None
    try:
        return int(float(parts[0]))
    except (ValueError, OverflowError):
        return None


def _functional(ds, sequence: str, keyword: str):
    """An attribute of an enhanced multi-frame image: Shared, else first Per-frame functional group."""
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        seq = ds.get(groups, None)
        if not seq:
            continue
        inner = seq[0].get(sequence, None)
        if inner and keyword in inner[0]:
            return inner[0]
    return None


# -- reading one header ------------------------------------------------------------------------------
def has_dicom_preamble(head: bytes) -> bool:
    return len(head) >= DICM_OFFSET + 4 and head[DICM_OFFSET:DICM_OFFSET + 4] == b"DICM"


def _dcmread(path: Path, *, force: bool):
    import pydicom

    with decoding(path, "DICOM header"):
        ds = pydicom.dcmread(path, defer_size=_DEFER_SIZE, force=force)
        _ensure_transfer_syntax(ds)
        if str(ds.file_meta.get("TransferSyntaxUID", "")) == _DEFLATED:
            # Deferred offsets point into the inflated stream, not the file: read it whole.
            ds = pydicom.dcmread(path, force=force)
    return ds


def _ensure_transfer_syntax(ds) -> None:
    """Files without File Meta Information: record the encoding pydicom detected so the decoders work."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = ds.original_encoding
    if implicit is None:
        return
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    meta.TransferSyntaxUID = (
        ImplicitVRLittleEndian if implicit else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    )


def _describe(path: Path, ds) -> _Slice | None:
    """Header facts of an image file; ``None`` when the dataset holds no image (SR, RT plan, DICOMDIR)."""
    from pydicom.dataelem import RawDataElement

    pixel_tag = next((t for t in (_TAG_PIXEL_DATA, _TAG_FLOAT_PIXEL_DATA, _TAG_DOUBLE_PIXEL_DATA) if t in ds),
                     None)
    if pixel_tag is None:
        return None
    little_endian = ds.original_encoding[1] is not False
    rows, cols = _raw_us(ds, _T_ROWS, little_endian), _raw_us(ds, _T_COLS, little_endian)
    if not rows or not cols or rows <= 0 or cols <= 0:
        raise ImageReadError(f"pixel data but invalid Rows/Columns ({rows}x{cols})", path=path)
    syntax = str(ds.file_meta.get("TransferSyntaxUID", "")) if getattr(ds, "file_meta", None) else ""
    elem = ds.get_item(pixel_tag, keep_deferred=True)
    tell = length = None
    inline = None
    if pixel_tag == _TAG_PIXEL_DATA and isinstance(elem, RawDataElement):
        length = None if elem.length == 0xFFFFFFFF else int(elem.length)
        if elem.value is None:
            tell = int(elem.value_tell)
        else:
            inline = bytes(elem.value)
    little = little_endian
    photometric = ((_raw_parts(ds, _T_PHOTOMETRIC) or ["MONOCHROME2"])[0] or "MONOCHROME2").upper()
    bits_allocated = _raw_us(ds, _T_BITS_ALLOC, little) or 0
    frames = _parts_first_int(_raw_parts(ds, _T_FRAMES)) or 1
    slope = _parts_first_float(_raw_parts(ds, _T_SLOPE))
    intercept = _parts_first_float(_raw_parts(ds, _T_INTERCEPT))
    for tag, name, value in ((_T_SLOPE, "RescaleSlope", slope), (_T_INTERCEPT, "RescaleIntercept", intercept)):
        parts = _raw_parts(ds, tag)
        if value is None and parts and str(parts[0]).strip():
            # NaN / Inf / garbage: dropping it would shift every value (HU off by 1024); refuse instead
            raise ImageReadError(f"{name} is {str(parts[0]).strip()!r}, not a finite number", path=path)
    if slope is None and intercept is None:
        rescale = _functional(ds, "PixelValueTransformationSequence", "RescaleSlope")
        if rescale is not None:  # enhanced multi-frame
            slope, intercept = _first_float(rescale, "RescaleSlope"), _first_float(rescale, "RescaleIntercept")
    if slope is None and _T_DOSE_SCALING in ds:  # RT dose: stored integers x scaling = Gy
        slope = _first_float(ds, "DoseGridScaling")
    iop = _parts_floats(_raw_parts(ds, _T_IOP), 6)
    if iop is None:
        group = _functional(ds, "PlaneOrientationSequence", "ImageOrientationPatient")
        iop = _floats(group, "ImageOrientationPatient", 6) if group is not None else None
    ipp = _parts_floats(_raw_parts(ds, _T_IPP), 3)
    series_uid = (_raw_parts(ds, _T_SERIES_UID) or [""])[0]
    spp = _raw_us(ds, _T_SPP, little) or 1
    bits_stored = _raw_us(ds, _T_BITS_STORED, little) or bits_allocated
    pixrep = _raw_us(ds, _T_PIXREP, little) or 0
    return _Slice(
        path=path,
        ds=ds,
        series_uid=series_uid or f"(no SeriesInstanceUID) {path.parent}",
        rows=int(rows),
        cols=int(cols),
        frames=max(int(frames), 1),
        spp=spp,
        bits_allocated=int(bits_allocated),
        bits_stored=bits_stored,
        signed=pixrep == 1,
        photometric=photometric,
        syntax=syntax,
        slope=1.0 if slope is None or slope == 0 else slope,
        intercept=0.0 if intercept is None else intercept,
        has_modality_lut=_T_MODALITY_LUT in ds,
        instance=_parts_first_int(_raw_parts(ds, _T_INSTANCE)),
        ipp=ipp,
        iop=iop,
        sop_uid=(_raw_parts(ds, _T_SOP_UID) or [""])[0],
        modality=((_raw_parts(ds, _T_MODALITY) or [""])[0] or "").upper(),
        pixel_tell=tell,
        pixel_length=length if pixel_tag == _TAG_PIXEL_DATA else None,
        pixel_bytes=inline,
    )


def _sop_class(ds) -> str:
    meta = getattr(ds, "file_meta", None)
    uid = _text(ds, "SOPClassUID") or (_text(meta, "MediaStorageSOPClassUID") if meta is not None else "")
    return uid


def _refuse_imageless_image(path: Path, ds) -> None:
    """An image SOP class without pixel data is a truncated/incomplete file, not a non-image object.

    pydicom stops quietly at the end of a cut-off file, so this is how a series with a damaged slice is
    refused instead of loading with a silent gap.
    """
    from pydicom.uid import UID

    uid = _sop_class(ds)
    name = UID(uid).name if uid else ""
    if "Image Storage" in name:
        raise ImageReadError(f"{name} without pixel data (truncated or incomplete file)", path=path)


def _validate_native(s: _Slice) -> None:
    """Pixel byte count and location checks for uncompressed pixel data (pydicom does not check)."""
    if s.bits_allocated not in (1, 8, 16, 32, 64):
        raise ImageReadError(f"invalid BitsAllocated {s.bits_allocated}", path=s.path)
    if s.spp not in (1, 3, 4):
        raise ImageReadError(f"invalid SamplesPerPixel {s.spp}", path=s.path)
    if s.pixel_length is None:
        return
    bits = s.rows * s.cols * s.frames * s.spp * s.bits_allocated
    expected = (bits + 7) // 8
    if s.photometric == "YBR_FULL_422":
        expected = expected * 2 // 3
    if s.pixel_length < expected:
        raise ImageReadError(
            f"pixel data has {s.pixel_length} bytes, {s.rows}x{s.cols}x{s.frames} frames need {expected} "
            "(truncated or inconsistent header)", path=s.path)
    if s.pixel_tell is not None and s.syntax != _DEFLATED:
        size = s.path.stat().st_size
        if s.pixel_tell + expected > size:
            raise ImageReadError(
                f"truncated file: pixel data ends at byte {s.pixel_tell + expected}, file has {size}",
                path=s.path)


# -- folder scan ---------------------------------------------------------------------------------------
def _iter_files(folder: Path) -> list[Path]:
    # regular files only (a FIFO or a device inside the folder would hang the open); dangling links and
    # symlink loops are skipped with a note in the log
    from .folders import log_note, scan_folder

    return [p for p in scan_folder(folder, recursive=True, note=log_note) if p.name.upper() != "DICOMDIR"]


def _scan_folder(folder: Path, progress: ProgressFn | None, cancel: CancelFn | None,
                 total_steps: int | None = None) -> tuple[list[_Slice], int, int]:
    """Parse every DICOM file's header once. Returns (image slices, n_files, n_ignored)."""
    files = _iter_files(folder)
    if not files:
        raise ImageReadError("folder holds no files", path=folder)
    total = total_steps if total_steps is not None else len(files)
    slices: list[_Slice] = []
    ignored = 0
    for i, path in enumerate(files):
        check_cancel(cancel, folder)
        with open(path, "rb") as fh:
            head = fh.read(DICM_OFFSET + 4)
        if not has_dicom_preamble(head):
            ignored += 1  # not DICOM (or preamble-less legacy files, which we only open one by one)
            continue
        ds = _dcmread(path, force=False)
        with decoding(path, "DICOM header"):  # pydicom converts elements lazily, on first access
            s = _describe(path, ds)
            if s is None:
                _refuse_imageless_image(path, ds)
        if s is None:
            ignored += 1  # SR, RT plan, presentation state...
        else:
            slices.append(s)
        report(progress, i + 1, total)
    return slices, len(files), ignored


def _group(slices: list[_Slice]) -> dict[str, list[_Slice]]:
    groups: dict[str, list[_Slice]] = {}
    for s in slices:
        groups.setdefault(s.series_uid, []).append(s)
    return groups


def _series_info(uid: str, members: list[_Slice]) -> SeriesInfo:
    ds = members[0].ds
    with decoding(members[0].path, "DICOM header"):
        return _series_info_of(uid, members, ds)


def _series_info_of(uid: str, members: list[_Slice], ds) -> SeriesInfo:
    return SeriesInfo(
        uid=uid,
        description=_text(ds, "SeriesDescription"),
        modality=_text(ds, "Modality"),
        n_files=len(members),
        n_frames=sum(m.frames for m in members),
        rows=members[0].rows,
        columns=members[0].cols,
        series_number=_int(ds, "SeriesNumber"),
        study_uid=_text(ds, "StudyInstanceUID"),
    )


def list_dicom_series(folder: str | Path, *, progress: ProgressFn | None = None,
                      cancel: CancelFn | None = None) -> list[SeriesInfo]:
    """The image series in a folder (recursively), largest first.

    Parameters
    ----------
    folder : str or Path
        A folder of DICOM files (any depth; files without the DICOM preamble are ignored).
    progress : callable(done, total), optional
    cancel : callable() -> bool, optional
        Returning True raises :class:`~workbench.core.errors.CancelledError`.

    Returns
    -------
    list of SeriesInfo
        ``uid``, ``description``, ``modality``, ``n_files``... so the caller can choose one and pass its
        ``uid`` to :func:`workbench.io.read_image` as ``series_uid``.

    Raises
    ------
    ImageReadError
        The folder does not exist, holds no DICOM image, or a DICOM file in it is corrupt.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageReadError("not a folder", path=folder)
    slices, _, _ = _scan_folder(folder, progress, cancel)
    groups = _group(slices)
    infos = [_series_info(uid, members) for uid, members in groups.items()]
    infos.sort(key=lambda s: (-s.n_frames, s.series_number if s.series_number is not None else 1 << 30, s.uid))
    return infos


# -- ordering and geometry -------------------------------------------------------------------------------
def _normal(iop: tuple[float, ...]) -> np.ndarray:
    row, col = np.asarray(iop[:3]), np.asarray(iop[3:])
    n = np.cross(row, col)
    norm = np.linalg.norm(n)
    return n / norm if norm > 0 else np.array([0.0, 0.0, 1.0])


def _order(folder: Path, members: list[_Slice], warnings: list[str]) -> tuple[list[_Slice], float | None]:
    """Sort slices; return them with the z spacing from positions (None when positions are unusable)."""
    positioned = all(m.ipp is not None and m.iop is not None for m in members)
    same_orientation = positioned and all(
        np.allclose(m.iop, members[0].iop, atol=1e-3) for m in members  # type: ignore[arg-type]
    )
    if len(members) == 1:
        return members, None
    if positioned and same_orientation:
        normal = _normal(members[0].iop)  # type: ignore[arg-type]
        for m in members:
            m.position = float(np.dot(normal, m.ipp))  # type: ignore[arg-type]
        members = sorted(members, key=lambda m: (m.position, m.instance if m.instance is not None else 0))
        steps = np.diff([m.position for m in members])
        if np.any(np.abs(steps) < 1e-4):
            dup = int(np.sum(np.abs(steps) < 1e-4))
            warnings.append(f"{dup} slices share a position with another (several acquisitions in one series?)")
            unique = steps[np.abs(steps) >= 1e-4]
            return members, (float(np.median(unique)) if unique.size else None)
        spacing = float(np.median(steps))
        if np.max(steps) - np.min(steps) > max(0.01, 0.1 * spacing):
            warnings.append(f"irregular slice spacing: {np.min(steps):.3g} to {np.max(steps):.3g} mm "
                            "(a missing slice, or a variable-pitch acquisition)")
        return members, spacing
    why = "slices have different orientations" if positioned else "slices have no ImagePositionPatient"
    warnings.append(f"{why}: ordered by InstanceNumber")
    return sorted(members, key=lambda m: (m.instance if m.instance is not None else 0, str(m.path))), None


# -- pixel reading -----------------------------------------------------------------------------------
def _shift_correct(arr: np.ndarray, s: _Slice) -> None:
    """Like pydicom: ignore bits above BitsStored (sign-extends signed data, masks unsigned)."""
    if 0 < s.bits_stored < s.bits_allocated and arr.dtype.kind in "iu":
        shift = s.bits_allocated - s.bits_stored
        np.left_shift(arr, shift, out=arr)
        np.right_shift(arr, shift, out=arr)


def _read_native_into(s: _Slice, dest: np.ndarray, scratch: np.ndarray | None) -> None:
    """Read one uncompressed monochrome slice into ``dest`` (applying the rescale if dtypes differ)."""
    target = dest if scratch is None else scratch
    nbytes = target.nbytes
    if s.pixel_bytes is not None:
        if len(s.pixel_bytes) < nbytes:
            raise ImageReadError(f"pixel data has {len(s.pixel_bytes)} bytes, need {nbytes}", path=s.path)
        target[...] = np.frombuffer(s.pixel_bytes, dtype=target.dtype, count=target.size).reshape(target.shape)
    else:
        # readinto the output array itself: no intermediate bytes object (and no extra copy of the volume)
        try:
            with open(s.path, "rb", buffering=0) as fh:
                fh.seek(s.pixel_tell)  # type: ignore[arg-type]
                got = fh.readinto(memoryview(target).cast("B"))
        except OSError as exc:
            raise ImageReadError(f"cannot read pixel data ({first_line(exc)})", path=s.path) from exc
        if got != nbytes:
            raise ImageReadError(f"truncated file: pixel data has {got} of {nbytes} bytes", path=s.path)
    if s.syntax in _NATIVE_BE and target.dtype.itemsize > 1:
        target.byteswap(inplace=True)
    _shift_correct(target, s)
    if scratch is not None:
        if s.slope != 1.0:
            np.multiply(scratch, np.float32(s.slope), out=dest, casting="unsafe")
            if s.intercept != 0.0:
                dest += np.float32(s.intercept)
        else:
            np.add(scratch, np.float32(s.intercept), out=dest, casting="unsafe")


def _decode_generic(s: _Slice) -> np.ndarray:
    """Any other slice/file: pydicom's decoders (compressed, colour, palette, float pixel data...)."""
    from pydicom.pixels import apply_color_lut, apply_modality_lut

    ds = s.ds
    with decoding(s.path, "DICOM pixel data"):
        arr = ds.pixel_array  # YBR is converted to RGB by default in pydicom 3
        if s.photometric == "PALETTE COLOR":
            arr = apply_color_lut(arr, ds)
        elif s.spp == 1:
            if s.has_modality_lut:
                arr = apply_modality_lut(arr, ds).astype(np.float32, copy=False)
            elif s.slope != 1.0 or s.intercept != 0.0 or _is_ct(s):
                arr = arr.astype(np.float32)
                if s.slope != 1.0:
                    arr *= np.float32(s.slope)
                if s.intercept != 0.0:
                    arr += np.float32(s.intercept)
        arr = as_volume_dtype(arr)
    expected = (s.rows, s.cols) if s.frames == 1 else (s.frames, s.rows, s.cols)
    if tuple(arr.shape[: len(expected)]) != expected:
        raise ImageReadError(f"decoded pixel data has shape {arr.shape}, header says {expected}", path=s.path)
    return arr


def _is_ct(s: _Slice) -> bool:
    return s.modality == "CT"


def _output_dtype(members: list[_Slice]) -> np.dtype:
    first = members[0]
    if _is_ct(first) or any(m.slope != 1.0 or m.intercept != 0.0 for m in members):
        return np.dtype(np.float32)
    dtypes = {m.raw_dtype for m in members}
    if len(dtypes) == 1:
        return dtypes.pop()
    return np.dtype(np.float32)


def _assemble(folder_or_file: Path, members: list[_Slice], max_pixels: int, progress: ProgressFn | None,
              cancel: CancelFn | None, done0: int, total: int) -> np.ndarray:
    """Read the sorted single-frame slices into one preallocated array."""
    first = members[0]
    sizes: dict[tuple[int, int], int] = {}
    for m in members:
        sizes[(m.rows, m.cols)] = sizes.get((m.rows, m.cols), 0) + 1
    if len(sizes) > 1:
        listing = ", ".join(f"{r}x{c} ({n} files)" for (r, c), n in sorted(sizes.items(), key=lambda kv: -kv[1]))
        raise ImageReadError(f"series {first.series_uid} mixes image sizes: {listing}; cannot stack them",
                             path=folder_or_file)
    check_pixels(folder_or_file, (len(members), first.rows, first.cols), max_pixels, "DICOM series")
    fast = all(m.native_fast for m in members)
    for m in members:
        _validate_native(m)
    if fast:
        dtype = _output_dtype(members)
        out = np.empty((len(members), first.rows, first.cols), dtype=dtype)
        scratch_cache: dict[np.dtype, np.ndarray] = {}
        for i, m in enumerate(members):
            check_cancel(cancel, m.path)
            scratch = None
            if m.raw_dtype != dtype:
                scratch = scratch_cache.get(m.raw_dtype)
                if scratch is None:
                    scratch = scratch_cache[m.raw_dtype] = np.empty((first.rows, first.cols), m.raw_dtype)
            _read_native_into(m, out[i], scratch)
            report(progress, done0 + i + 1, total)
        return out
    # Generic path: decode slice by slice into the array allocated from the first decoded slice.
    out = None
    for i, m in enumerate(members):
        check_cancel(cancel, m.path)
        arr = _decode_generic(m)
        if out is None:
            dtype = np.float32 if _output_dtype(members) == np.float32 and arr.ndim == 2 else arr.dtype
            out = np.empty((len(members),) + arr.shape, dtype=dtype)
        if arr.shape != out.shape[1:]:
            raise ImageReadError(f"slice decodes to shape {arr.shape}, the series has {out.shape[1:]}",
                                 path=m.path)
        out[i] = arr
        report(progress, done0 + i + 1, total)
        m.ds = _drop_pixels(m.ds)
    assert out is not None
    return out


def _drop_pixels(ds):
    """Free a decoded slice's pixel bytes and pydicom's cached array (the volume holds the pixels now)."""
    for tag in (_TAG_PIXEL_DATA, _TAG_FLOAT_PIXEL_DATA, _TAG_DOUBLE_PIXEL_DATA):
        if tag in ds:
            del ds[tag]
    # pydicom 3 caches the last decoded array on the dataset (Dataset.__init__ creates both attributes)
    ds._pixel_array = None
    ds._pixel_id = {}
    return ds


# -- building the volume ---------------------------------------------------------------------------------
def _window(ds) -> tuple[float, float] | None:
    source = ds if "WindowCenter" in ds else _functional(ds, "FrameVOILUTSequence", "WindowCenter")
    if source is None:
        return None
    center, width = _first_float(source, "WindowCenter"), _first_float(source, "WindowWidth")
    if center is None or width is None or width <= 0:
        return None
    return (center, width)


def _pixel_spacing(ds) -> tuple[float, float] | None:
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


def _header_copy(ds):
    """A pixel-free copy of the first header, for exports that build DICOM SEG / SC from it.

    ``Dataset.copy()`` is shallow (it shares the element dict), so a new dataset is filled with the
    elements themselves. Elements still deferred (pixel data, private blobs over the defer size) are
    left out: they would need the source file to stay readable.
    """
    from pydicom.dataelem import RawDataElement
    from pydicom.dataset import Dataset

    copy = Dataset()
    for tag in ds.keys():
        if tag in (_TAG_PIXEL_DATA, _TAG_FLOAT_PIXEL_DATA, _TAG_DOUBLE_PIXEL_DATA):
            continue
        elem = ds.get_item(tag, keep_deferred=True)
        if isinstance(elem, RawDataElement) and elem.value is None:
            continue
        copy[tag] = elem
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
        "dicom_header": _header_copy(ds),
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


def _affine(first: _Slice, spacing: tuple[float, float, float], members: list[_Slice]) -> np.ndarray:
    """(x, y, z) index of ``data[z, y, x]`` -> RAS+ mm (DICOM is LPS: x and y flip sign)."""
    dz, dy, dx = spacing
    aff = np.eye(4)
    if first.iop is None or first.ipp is None:
        aff[:3, :3] = np.diag([-dx, -dy, dz])
        return aff
    row, col = np.asarray(first.iop[:3]), np.asarray(first.iop[3:])
    normal = _normal(first.iop)
    if len(members) > 1 and members[-1].ipp is not None:
        step = (np.asarray(members[-1].ipp) - np.asarray(first.ipp)) / (len(members) - 1)
    else:
        step = normal * dz
    lps = np.column_stack([row * dx, col * dy, step, np.asarray(first.ipp)])
    aff[:3, :] = lps * np.array([[-1.0], [-1.0], [1.0]])
    return aff


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
    positions: list[tuple[float, float, float] | None] = []
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

