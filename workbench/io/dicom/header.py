"""One DICOM file's header: parse it once (pixel data deferred) and describe its image (`_Slice`).

Per-slice fields are parsed from the raw element bytes (the hot path of a folder scan); everything read
once per series uses pydicom's normal API.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...core.errors import ImageReadError
from .._common import decoding

DICM_OFFSET = 128

# Elements larger than this are not read during the header pass (pixel data, big private blobs).
_DEFER_SIZE = 4096

_TAG_PIXEL_DATA = 0x7FE00010

_TAG_FLOAT_PIXEL_DATA = 0x7FE00008

_TAG_DOUBLE_PIXEL_DATA = 0x7FE00009

_NATIVE_LE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}

_DEFLATED = "1.2.840.10008.1.2.1.99"

_NATIVE_BE = {"1.2.840.10008.1.2.2"}


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
    ipp: tuple[float, ...] | None  # 3 values
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
