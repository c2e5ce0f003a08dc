"""PNG, JPEG, BMP (OpenCV) and TIFF (tifffile) readers.

Every reader validates the container before decoding: the header's pixel count against ``max_pixels``
and the structure (PNG chunks up to IEND, JPEG end-of-image marker, BMP pixel-array size, TIFF strip
offsets inside the file). OpenCV itself reports corrupt input only as ``None`` plus a stderr line and
some builds return a partially decoded JPEG, so these checks are what makes "never a partial image" hold.
"""
from __future__ import annotations

import logging
import struct
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from ..core.errors import ImageReadError
from ..core.image import ImageVolume
from ._common import as_volume_dtype, check_pixels, decoding, first_line

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _cv2():
    import cv2

    return cv2


def _decode_cv2(path: Path, raw: bytes, flags: int, what: str) -> np.ndarray:
    cv2 = _cv2()
    # OpenCV logs corrupt-input details to stderr; we raise our own one-line error instead.
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        with decoding(path, what):
            arr = cv2.imdecode(np.frombuffer(raw, np.uint8), flags)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if arr is None:
        raise ImageReadError(f"corrupt or unsupported {what} (OpenCV could not decode it)", path=path)
    return arr


def _bgr_to_rgb(arr: np.ndarray) -> np.ndarray:
    """OpenCV's BGR(A) channel order -> RGB(A); gray stays (y, x)."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        return arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] == 3:
        return np.ascontiguousarray(arr[:, :, ::-1])
    if arr.ndim == 3 and arr.shape[2] == 4:
        return np.ascontiguousarray(arr[:, :, [2, 1, 0, 3]])
    return arr


# -- PNG ---------------------------------------------------------------------------------------------
def _check_png(path: Path, raw: bytes, max_pixels: int) -> None:
    """Walk the chunk list: IHDR first (size checked before decoding), every chunk inside the file,
    IEND present. A truncated PNG fails here with a clear reason instead of libpng noise."""
    if len(raw) < 33 or raw[12:16] != b"IHDR":
        raise ImageReadError("truncated PNG: no IHDR header", path=path)
    width, height, bit_depth, color_type = struct.unpack(">IIBB", raw[16:26])
    check_pixels(path, (height, width), max_pixels, "PNG")
    if bit_depth not in (1, 2, 4, 8, 16) or color_type not in (0, 2, 3, 4, 6):
        raise ImageReadError(f"invalid PNG header (bit depth {bit_depth}, colour type {color_type})", path=path)
    pos, n = 8, len(raw)
    has_idat = False
    while pos + 8 <= n:
        length, ctype = struct.unpack(">I4s", raw[pos:pos + 8])
        end = pos + 12 + length
        if end > n:
            raise ImageReadError(
                f"truncated PNG: chunk {ctype.decode('latin-1')!r} needs {end} bytes, file has {n}", path=path
            )
        if ctype == b"IDAT":
            has_idat = True
        if ctype == b"IEND":
            break
        pos = end
    else:
        raise ImageReadError("truncated PNG: no IEND chunk", path=path)
    if not has_idat:
        raise ImageReadError("PNG without image data (no IDAT chunk)", path=path)


def read_png(path: Path, raw: bytes, max_pixels: int) -> ImageVolume:
    _check_png(path, raw, max_pixels)
    cv2 = _cv2()
    # IMREAD_UNCHANGED keeps 16-bit and alpha.
    arr = _bgr_to_rgb(_decode_cv2(path, raw, cv2.IMREAD_UNCHANGED, "PNG"))
    return _raster_volume(path, arr, "PNG")


# -- JPEG --------------------------------------------------------------------------------------------
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _check_jpeg(path: Path, raw: bytes, max_pixels: int) -> int:
    """Walk the marker segments up to the first scan; return the number of components.

    The frame size is checked before decoding, and the data after the first SOS must contain an EOI
    marker: libjpeg fills a truncated scan with grey and only warns, so without this a cut-off JPEG would
    load as a partial image. (Searching after SOS skips EXIF thumbnails, which carry their own EOI inside
    APP1.) Inside entropy-coded data 0xFF is always stuffed as FF00, so FFD9 there is a real EOI.
    """
    n = len(raw)
    pos = 2
    components = None
    while True:
        while pos < n and raw[pos] == 0xFF:  # fill bytes before a marker are legal
            pos += 1
        if pos >= n:
            raise ImageReadError("truncated JPEG: no image scan", path=path)
        marker = raw[pos]
        pos += 1
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # standalone markers
            continue
        if marker == 0xD9:
            raise ImageReadError("JPEG ends before its image scan", path=path)
        if pos + 2 > n:
            raise ImageReadError("truncated JPEG header", path=path)
        (seglen,) = struct.unpack(">H", raw[pos:pos + 2])
        if seglen < 2 or pos + seglen > n:
            raise ImageReadError("truncated JPEG header", path=path)
        if marker in _SOF_MARKERS:
            if seglen < 8:
                raise ImageReadError("invalid JPEG frame header", path=path)
            height, width, components = struct.unpack(">HHB", raw[pos + 3:pos + 8])
            check_pixels(path, (height, width), max_pixels, "JPEG")
        if marker == 0xDA:
            if components is None:
                raise ImageReadError("JPEG scan before its frame header", path=path)
            if raw.find(b"\xff\xd9", pos + seglen) < 0:
                raise ImageReadError("truncated JPEG: no end-of-image marker", path=path)
            return int(components)
        pos += seglen


def read_jpeg(path: Path, raw: bytes, max_pixels: int) -> ImageVolume:
    components = _check_jpeg(path, raw, max_pixels)
    cv2 = _cv2()
    # IMREAD_ANYCOLOR keeps gray as gray; unlike IMREAD_UNCHANGED it applies the EXIF orientation,
    # which is what every photo viewer shows.
    flags = cv2.IMREAD_GRAYSCALE if components == 1 else cv2.IMREAD_COLOR
    arr = _bgr_to_rgb(_decode_cv2(path, raw, flags, "JPEG"))
    return _raster_volume(path, arr, "JPEG")


# -- BMP ---------------------------------------------------------------------------------------------
def _check_bmp(path: Path, raw: bytes, max_pixels: int) -> None:
    if len(raw) < 30:
        raise ImageReadError("truncated BMP header", path=path)
    (offset,) = struct.unpack("<I", raw[10:14])
    (header_size,) = struct.unpack("<I", raw[14:18])
    if header_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height, _planes, bpp = struct.unpack("<HhHH", raw[18:26])
        compression = 0
    else:
        if len(raw) < 34:
            raise ImageReadError("truncated BMP header", path=path)
        width, height, _planes, bpp, compression = struct.unpack("<iiHHI", raw[18:34])
    check_pixels(path, (abs(height), abs(width)), max_pixels, "BMP")
    if compression in (0, 3, 6):  # uncompressed (BI_RGB, BI_BITFIELDS): the pixel array size is known
        stride = ((abs(width) * bpp + 31) // 32) * 4
        need = offset + stride * abs(height)
        if len(raw) < need:
            raise ImageReadError(f"truncated BMP: pixel data needs {need} bytes, file has {len(raw)}", path=path)


def read_bmp(path: Path, raw: bytes, max_pixels: int) -> ImageVolume:
    _check_bmp(path, raw, max_pixels)
    cv2 = _cv2()
    arr = _bgr_to_rgb(_decode_cv2(path, raw, cv2.IMREAD_UNCHANGED, "BMP"))
    return _raster_volume(path, arr, "BMP")


def _raster_volume(path: Path, arr: np.ndarray, fmt: str) -> ImageVolume:
    if arr.ndim == 3 and arr.shape[2] == 2:  # gray + alpha -> RGBA
        arr = np.dstack([arr[..., 0], arr[..., 0], arr[..., 0], arr[..., 1]])
    return ImageVolume(
        data=as_volume_dtype(arr)[np.newaxis],
        path=path,
        metadata={"format": fmt},
    )


# -- TIFF --------------------------------------------------------------------------------------------
#: IFDs (pages) walked before tifffile sees the file; more is refused (a 1-pixel page per IFD would still
#: exceed any sane stack long before this)
MAX_TIFF_PAGES = 200_000


def check_ifd_chain(path: Path) -> None:
    """Walk the IFD chain (entry counts and next-IFD offsets only) and refuse a loop, an offset outside the
    file, more than :data:`MAX_TIFF_PAGES` pages, or a BitsPerSample outside 1..64.

    Why: a forged chain (IFD 1 -> IFD 2 -> IFD 1) with an absurd BitsPerSample sent tifffile into minutes
    of work and gigabytes of memory before any of our checks could run (found by the reader fuzz)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
            if len(head) < 8 or head[:2] not in (b"II", b"MM"):
                return  # not ours to judge: tifffile reports it
            bo = "<" if head[:2] == b"II" else ">"
            magic = struct.unpack(bo + "H", head[2:4])[0]
            big = magic == 43
            if magic not in (42, 43) or (big and len(head) < 16):
                return
            size = path.stat().st_size
            offset = struct.unpack(bo + "Q", head[8:16])[0] if big else struct.unpack(bo + "I", head[4:8])[0]
            count_fmt, count_size = (bo + "Q", 8) if big else (bo + "H", 2)
            entry_size, next_fmt, next_size = (20, bo + "Q", 8) if big else (12, bo + "I", 4)
            seen: set[int] = set()
            while offset:
                if offset in seen:
                    raise ImageReadError(f"TIFF IFD chain loops back to offset {offset}", path=path)
                if offset + count_size > size:
                    raise ImageReadError(f"TIFF IFD offset {offset} lies outside the file ({size} bytes)", path=path)
                seen.add(offset)
                if len(seen) > MAX_TIFF_PAGES:
                    raise ImageReadError(f"TIFF with more than {MAX_TIFF_PAGES:,} pages", path=path)
                fh.seek(offset)
                (n,) = struct.unpack(count_fmt, fh.read(count_size))
                entries = fh.read(min(n, 4096) * entry_size)
                for k in range(len(entries) // entry_size):
                    entry = entries[k * entry_size:(k + 1) * entry_size]
                    tag, typ = struct.unpack(bo + "HH", entry[:4])
                    (values,) = struct.unpack(bo + ("Q" if big else "I"), entry[4:12] if big else entry[4:8])
                    if tag == 258 and typ == 3 and values == 1:  # BitsPerSample, one SHORT: inline
                        bits = struct.unpack(bo + "H", entries[k * entry_size + (12 if big else 8):][:2])[0]
                        if not 1 <= bits <= 64:
                            raise ImageReadError(f"TIFF BitsPerSample {bits} is not 1..64", path=path)
                fh.seek(offset + count_size + n * entry_size)
                raw = fh.read(next_size)
                if len(raw) < next_size:
                    return  # truncated: tifffile reports it
                (offset,) = struct.unpack(next_fmt, raw)
    except OSError as exc:
        raise ImageReadError(f"cannot read ({first_line(exc)})", path=path) from exc
def read_tiff(path: Path, max_pixels: int) -> ImageVolume:
    """Multi-page / multi-sample TIFF -> ``(z, y, x)`` or ``(z, y, x, c)``.

    tifffile exposes every series' shape and axes from the IFDs before reading pixels, so the size
    check happens without allocating; strip/tile offsets are checked against the file size because a
    truncated file otherwise decodes to zeros in some tifffile paths.
    """
    import tifffile

    size = path.stat().st_size
    check_ifd_chain(path)
    with decoding(path, "TIFF"), _captured_log("tifffile") as log:
        with tifffile.TiffFile(path) as tif:
            if not tif.series:
                detail = f" ({log[0]})" if log else ""
                raise ImageReadError(f"TIFF without image data{detail}", path=path)
            series = tif.series[0]
            shape, axes = tuple(series.shape), series.axes
            pix_dims = tuple(d for d, a in zip(shape, axes) if a != "S")
            check_pixels(path, pix_dims, max_pixels, "TIFF")
            for page in series.pages:
                if page is None:
                    continue
                offsets = getattr(page, "dataoffsets", ()) or ()
                counts = getattr(page, "databytecounts", ()) or ()
                for off, cnt in zip(offsets, counts):
                    if off + cnt > size:
                        raise ImageReadError(
                            f"truncated TIFF: pixel data up to byte {off + cnt}, file has {size}", path=path
                        )
            resolution = _tiff_spacing(tif)
            dz = _tiff_slice_spacing(tif)
            compression = {str(getattr(p, "compression", "")) for p in series.pages if p is not None}
            try:
                data = series.asarray()
            except ValueError as exc:
                # tifffile needs the optional 'imagecodecs' package for LZW/JPEG/WebP... strips; OpenCV's
                # bundled libtiff decodes the common ones, so fall back to it rather than refuse the file.
                if "imagecodecs" not in str(exc):
                    raise
                data = None
    if data is None:
        data = _tiff_via_opencv(path, shape, axes, compression)
    with decoding(path, "TIFF file"):  # a forged header can declare axes the decoded array lacks
        data = _tiff_to_zyx(path, np.asarray(data), axes)
    spacing_known = resolution is not None
    dy, dx = resolution if resolution is not None else (1.0, 1.0)
    return ImageVolume(
        data=as_volume_dtype(data),
        spacing=(dz if dz is not None else 1.0, dy, dx),
        spacing_known=spacing_known,
        path=path,
        metadata={"format": "TIFF", "tiff_axes": axes, "tiff_shape": list(shape)},
    )


@contextmanager
def _captured_log(name: str) -> Iterator[list[str]]:
    """Collect a library logger's messages instead of letting them reach stderr.

    tifffile logs structural problems ("invalid offset to first page") as warnings; we report them in
    our one-line error instead, so the CLI prints exactly one line for a bad file.
    """
    logger = logging.getLogger(name)
    messages: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(" ".join(record.getMessage().split()))

    handler = _Collect(level=logging.WARNING)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _tiff_via_opencv(path: Path, shape: tuple[int, ...], axes: str, compression: set[str]) -> np.ndarray:
    cv2 = _cv2()
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        with decoding(path, "TIFF"):
            ok, pages = cv2.imreadmulti(str(path), flags=cv2.IMREAD_UNCHANGED)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not ok or not pages:
        raise ImageReadError(f"TIFF compression {', '.join(sorted(compression))} is not supported", path=path)
    stack = np.stack([_bgr_to_rgb(p) for p in pages])
    if int(np.prod(stack.shape)) != int(np.prod(shape)):
        raise ImageReadError(f"TIFF decodes to {stack.shape}, its header says {shape}", path=path)
    return stack.reshape(shape) if "S" not in axes or axes.endswith("YXS") else stack


def _tiff_to_zyx(path: Path, data: np.ndarray, axes: str) -> np.ndarray:
    """Move Y, X (and samples S) last and flatten every other axis (pages, Z, T, C, Q...) into z."""
    if "Y" not in axes or "X" not in axes:
        raise ImageReadError(f"TIFF series without Y/X axes (axes {axes!r})", path=path)
    tail = ["Y", "X"] + (["S"] if "S" in axes else [])
    order = [i for i, a in enumerate(axes) if a not in tail] + [axes.index(a) for a in tail]
    data = np.transpose(data, order)
    ny, nx = data.shape[len(order) - len(tail)], data.shape[len(order) - len(tail) + 1]
    if "S" in axes:
        samples = data.shape[-1]
        data = data.reshape(-1, ny, nx, samples)
        if samples == 1:
            data = data[..., 0]
        elif samples == 2:  # gray + alpha
            data = np.concatenate([data[..., :1]] * 3 + [data[..., 1:]], axis=-1)
        elif samples > 4:
            raise ImageReadError(f"TIFF with {samples} samples per pixel is not supported", path=path)
    else:
        data = data.reshape(-1, ny, nx)
    return np.ascontiguousarray(data)


def _tiff_slice_spacing(tif) -> float | None:
    """dz from the ``spacing_mm`` our writer stores in tifffile's JSON description."""
    shaped = tif.shaped_metadata if tif.is_shaped else None
    if not shaped or not isinstance(shaped[0], dict):
        return None
    values = shaped[0].get("spacing_mm")
    if not isinstance(values, (list, tuple)) or len(values) != 3:
        return None
    try:
        dz = float(values[0])
    except (TypeError, ValueError):
        return None
    return dz if np.isfinite(dz) and dz > 0 else None


def _tiff_spacing(tif) -> tuple[float, float] | None:
    """Pixel size (dy, dx) in mm from XResolution/YResolution when the unit is centimetre.

    Inch resolutions are ignored on purpose: cameras and paint programs write a nominal 72/96/300 dpi
    that says nothing about the object, and treating it as physical would give photos mm² areas.
    """
    page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
    tags = page.tags
    unit_tag, xres_tag, yres_tag = tags.get("ResolutionUnit"), tags.get("XResolution"), tags.get("YResolution")
    if unit_tag is None or xres_tag is None or yres_tag is None:
        return None
    mm_per_unit = {3: 10.0}.get(int(unit_tag.value))
    if mm_per_unit is None:
        return None

    def per_unit(value) -> float:
        num, den = value if isinstance(value, tuple) else (value, 1)
        return float(num) / float(den) if den else 0.0

    xres, yres = per_unit(xres_tag.value), per_unit(yres_tag.value)
    if xres <= 0 or yres <= 0:
        return None
    return (mm_per_unit / yres, mm_per_unit / xres)
