"""Helpers shared by the readers: limits, progress/cancel plumbing, error wrapping."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from ..core.errors import CancelledError, ImageReadError, WorkbenchError

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


def resolve_max_pixels(max_pixels: int | None) -> int:
    """The pixel limit to apply: the argument, else the user's setting (default 250 Mpx)."""
    if max_pixels is not None:
        return int(max_pixels)
    from ..core.settings import load_settings

    return int(load_settings().max_pixels)


def check_pixels(path: Path, shape: tuple[int, ...], max_pixels: int, what: str = "image") -> None:
    """Refuse a header-declared size before anything is allocated or decoded.

    ``shape`` holds the pixel dimensions only (no colour samples): a flipped TIFF header or a forged
    PNG IHDR must fail here with a message, not in a 768 GiB ``np.empty``.
    """
    dims = [int(d) for d in shape]
    if any(d <= 0 for d in dims):
        raise ImageReadError(f"{what} header declares an empty size {'x'.join(map(str, dims))}", path=path)
    count = 1
    for d in dims:
        count *= d
    if count > max_pixels:
        raise ImageReadError(
            f"{what} of {'x'.join(map(str, dims))} = {count:,} pixels exceeds the limit of {max_pixels:,} "
            "(settings: max_pixels)",
            path=path,
        )


def check_cancel(cancel: CancelFn | None, path: Path) -> None:
    if cancel is not None and cancel():
        raise CancelledError("reading cancelled by the user", path=path)


def report(progress: ProgressFn | None, done: int, total: int) -> None:
    if progress is not None:
        progress(int(done), int(total))


def first_line(exc: BaseException) -> str:
    """A short, one-line description of a library exception."""
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def decoding(path: Path, what: str) -> Iterator[None]:
    """Turn any exception a third-party decoder raises into one :class:`ImageReadError`.

    Why so broad: the decoders (pydicom + pylibjpeg, tifffile, nibabel, gzip, zlib, OpenCV) raise a zoo
    of types on corrupt input (struct.error, BytesLengthException, EOFError, zlib.error, cv2.error,
    KeyError, IndexError, TypeError, AttributeError, RuntimeError, NotImplementedError for an unknown
    VR met during pydicom's lazy element conversion ...) and the Rust-based codecs (pylibjpeg-rle) even
    raise ``pyo3_runtime.PanicException``, which derives from BaseException, not Exception. The contract
    of :func:`workbench.io.read_image` is that bad input raises ImageReadError and nothing else. The
    wrapper is used around library calls and around reading fields of lazily parsed DICOM datasets; it
    chains the original exception (``from exc``) so nothing is lost for debugging. Our own errors, and
    interpreter exits / Ctrl-C, pass through.
    """
    try:
        yield
    except WorkbenchError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except MemoryError as exc:
        raise ImageReadError(f"not enough memory to decode the {what}", path=path) from exc
    except BaseException as exc:
        raise ImageReadError(f"cannot decode the {what} ({first_line(exc)})", path=path) from exc


def as_volume_dtype(data: np.ndarray) -> np.ndarray:
    """Normalise dtypes: bool -> uint8, float16/float64 -> float32, non-native byte order -> native.

    float64 is narrowed because every consumer (display, tools, models) works in float32 and a float64
    volume doubles the memory for no visible difference.
    """
    if data.dtype == np.bool_:
        return data.astype(np.uint8)
    if data.dtype in (np.float16, np.float64):
        return data.astype(np.float32)
    if np.issubdtype(data.dtype, np.complexfloating):
        raise TypeError(f"complex data ({data.dtype}) is not an image")
    if data.dtype.byteorder not in ("=", "|") and not data.dtype.isnative:
        return data.astype(data.dtype.newbyteorder("="))
    return data
