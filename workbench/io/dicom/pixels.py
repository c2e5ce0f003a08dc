"""Pixel reading: native slices straight into one output array (`readinto`), others through pydicom's
decoders one slice at a time; the modality LUT; the output dtype.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.errors import ImageReadError
from .._common import CancelFn, ProgressFn, as_volume_dtype, check_cancel, check_pixels, decoding, first_line, report
from .header import _NATIVE_BE, _TAG_DOUBLE_PIXEL_DATA, _TAG_FLOAT_PIXEL_DATA, _TAG_PIXEL_DATA, _Slice, _validate_native


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
                got = fh.readinto(memoryview(target).cast("B"))  # type: ignore[arg-type]  # ndarray is a buffer
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
    stack: np.ndarray | None = None
    for i, m in enumerate(members):
        check_cancel(cancel, m.path)
        arr = _decode_generic(m)
        if stack is None:
            dtype = np.dtype(np.float32) if _output_dtype(members) == np.float32 and arr.ndim == 2 else arr.dtype
            stack = np.empty((len(members),) + arr.shape, dtype=dtype)
        if arr.shape != stack.shape[1:]:
            raise ImageReadError(f"slice decodes to shape {arr.shape}, the series has {stack.shape[1:]}",
                                 path=m.path)
        stack[i] = arr
        report(progress, done0 + i + 1, total)
        m.ds = _drop_pixels(m.ds)
    assert stack is not None
    return stack


def _drop_pixels(ds):
    """Free a decoded slice's pixel bytes and pydicom's cached array (the volume holds the pixels now)."""
    for tag in (_TAG_PIXEL_DATA, _TAG_FLOAT_PIXEL_DATA, _TAG_DOUBLE_PIXEL_DATA):
        if tag in ds:
            del ds[tag]
    # pydicom 3 caches the last decoded array on the dataset (Dataset.__init__ creates both attributes)
    ds._pixel_array = None
    ds._pixel_id = {}
    return ds
