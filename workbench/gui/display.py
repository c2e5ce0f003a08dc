"""Display transforms: window/level into uint8, histograms, CT presets. Qt-free, used by the canvas.

The canvas hands pyqtgraph a ready ``uint8`` slice with levels fixed at ``(0, 255)``: pyqtgraph's own
level/LUT path costs ~5-8 ms per 2048² 16-bit frame, OpenCV's saturating conversions ~1-2 ms
(tests/bench/test_bench_viewer.py measures both).
"""
from __future__ import annotations

import cv2
import numpy as np

#: CT window presets ``name -> (center, width)`` in Hounsfield units.
CT_PRESETS: dict[str, tuple[float, float]] = {
    "Lung": (-600.0, 1500.0),
    "Mediastinum": (40.0, 400.0),
    "Bone": (400.0, 1800.0),
    "Brain": (40.0, 80.0),
}

# dtypes OpenCV's arithmetic accepts directly; anything else is converted to float32 first
_CV_DTYPES = {np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.float32, np.float64)}


class WindowRenderer:
    """Applies a ``(center, width)`` window to slices, reusing its scratch buffer between frames.

    One instance per view: the scratch array is reallocated only when the slice shape/dtype changes, so a
    W/L drag or scrolling through a stack allocates nothing but the uint8 output.
    """

    def __init__(self) -> None:
        self._scratch: np.ndarray | None = None

    def render(self, plane: np.ndarray, center: float, width: float, *, invert: bool = False) -> np.ndarray:
        """Window ``plane`` (``(y, x)`` or ``(y, x, c)``) into a new C-contiguous uint8 array.

        Parameters
        ----------
        plane : ndarray
            One slice of any numeric dtype. NaN maps to 0.
        center, width : float
            The window; values ``<= center - width/2`` become 0, values ``>= center + width/2`` become 255.
        invert : bool, keyword-only
            Low values bright (MONOCHROME1 or the user's invert toggle).

        Returns
        -------
        ndarray of uint8 with the shape of ``plane``.
        """
        width = max(float(width), 1e-6)
        low = float(center) - width / 2.0
        alpha = 255.0 / width
        src = plane if plane.dtype in _CV_DTYPES else plane.astype(np.float32)
        if src.ndim == 3 and src.shape[2] > 4:
            raise ValueError(f"cannot display {src.shape[2]} channels")
        if not src.flags.c_contiguous:
            src = np.ascontiguousarray(src)
        if self._scratch is None or self._scratch.shape != src.shape or self._scratch.dtype != src.dtype:
            self._scratch = np.empty_like(src)
        # convertScaleAbs saturates at 255 but takes |x|: values below the window would fold back up to
        # bright. Clamping at the window's floor first (cv2.max, ~0.7 ms for 2048² uint16) keeps them at 0;
        # both passes together stay ~3x faster than pyqtgraph's 16-bit level mapping.
        if src.ndim == 2 and src.size >= 4096:
            clamped = cv2.max(src, low, dst=self._scratch)
        else:
            # colour planes, and tiny ones: OpenCV takes a (1..4, 1) array for a scalar and broadcasts wrongly
            floor = np.asarray(low, dtype=src.dtype) if src.dtype.kind == "f" else _clip_scalar(low, src.dtype)
            clamped = np.maximum(src, floor, out=self._scratch)
        if src.dtype.kind == "f" or src.dtype.itemsize >= 4:
            # far above the window, float/int32 values overflow OpenCV's integer rounding and wrap to 0
            high = low + width
            clamped = np.minimum(clamped, np.asarray(high).astype(src.dtype), out=clamped)
        out = cv2.convertScaleAbs(clamped, alpha=alpha, beta=-low * alpha)
        if src.dtype.kind == "f":
            # cv2.max(NaN, low) keeps NaN, which converts to an undefined value: show it as 0
            nan = np.isnan(src)
            if nan.any():
                out[nan if nan.ndim == out.ndim else nan[..., 0]] = 0
        if invert:
            cv2.bitwise_not(out, dst=out)
        return out


def _clip_scalar(value: float, dtype: np.dtype) -> np.generic:
    info = np.iinfo(dtype)
    return dtype.type(int(min(max(np.floor(value), info.min), info.max)))


def apply_window(plane: np.ndarray, center: float, width: float, *, invert: bool = False) -> np.ndarray:
    """Window ``plane`` into uint8 (see :meth:`WindowRenderer.render`); allocates a scratch buffer."""
    return WindowRenderer().render(plane, center, width, invert=invert)


def slice_histogram(plane: np.ndarray, *, bins: int = 256,
                    value_range: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of one slice (a strided subsample of at most ~1 M pixels; NaN/Inf ignored).

    Returns
    -------
    counts : ndarray of float, shape (bins,)
    edges : ndarray of float, shape (bins + 1,)
    """
    flat = plane.reshape(-1) if plane.flags.c_contiguous else np.ascontiguousarray(plane).reshape(-1)
    if flat.size > 1_000_000:  # enough for a display histogram and keeps a W/L drag smooth
        flat = flat[:: flat.size // 1_000_000]
    if flat.dtype.kind == "f":
        flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return np.zeros(bins), np.linspace(0.0, 1.0, bins + 1)
    lo, hi = value_range if value_range is not None else (float(flat.min()), float(flat.max()))
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(flat, bins=bins, range=(lo, hi))
    return counts.astype(float), edges


def window_from_levels(low: float, high: float) -> tuple[float, float]:
    """``(low, high)`` display range -> ``(center, width)`` with a positive width."""
    low, high = float(min(low, high)), float(max(low, high))
    return ((low + high) / 2.0, max(high - low, 1e-6))


def levels_from_window(center: float, width: float) -> tuple[float, float]:
    """``(center, width)`` -> ``(low, high)``."""
    return (float(center) - float(width) / 2.0, float(center) + float(width) / 2.0)


def line_profile(plane: np.ndarray, p0: tuple[float, float], p1: tuple[float, float],
                 *, samples: int | None = None) -> np.ndarray:
    """Values of ``plane`` (``(y, x)``, grayscale) along the segment ``p0 -> p1`` given as ``(x, y)``.

    Bilinear sampling (OpenCV ``remap``); ``samples`` defaults to the segment length in pixels + 1.
    Colour planes are reduced to their mean over channels.
    """
    if plane.ndim == 3:
        plane = plane.mean(axis=2)
    (x0, y0), (x1, y1) = p0, p1
    n = samples or int(np.ceil(np.hypot(x1 - x0, y1 - y0))) + 1
    n = max(n, 2)
    xs = np.linspace(x0, x1, n, dtype=np.float32).reshape(1, -1)
    ys = np.linspace(y0, y1, n, dtype=np.float32).reshape(1, -1)
    src = plane.astype(np.float32, copy=False)
    return cv2.remap(src, xs, ys, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]


def _rescale(metadata: dict) -> tuple[float, float] | None:
    """``(slope, intercept)`` of the DICOM modality LUT when the reader recorded it."""
    for slope_key, icpt_key in (("RescaleSlope", "RescaleIntercept"), ("rescale_slope", "rescale_intercept")):
        if slope_key in metadata and icpt_key in metadata:
            try:
                slope, intercept = float(metadata[slope_key]), float(metadata[icpt_key])
            except (TypeError, ValueError):
                return None
            return (slope, intercept) if slope != 0 else None
    return None


def cursor_readout(image, z: int, x: float, y: float) -> str | None:
    """The status-bar text for the cursor at image position ``(x, y)`` on slice ``z``.

    Pixel ``(x, y, z)``, the value (HU for CT, with the raw stored value when the modality LUT is known)
    and the position in mm (patient coordinates where the file gave them). ``None`` outside the image.
    """
    col, row = int(np.floor(x)), int(np.floor(y))
    if image is None or not (0 <= col < image.width and 0 <= row < image.height and 0 <= z < image.n_slices):
        return None
    value = image.data[z, row, col]
    parts = [f"x {col}  y {row}  z {z}"]
    if image.is_color:
        parts.append("RGB(" + ", ".join(str(int(v)) for v in np.atleast_1d(value)) + ")")
    else:
        v = float(value)
        shown = f"{v:.4g}" if image.data.dtype.kind == "f" else f"{int(v)}"
        if image.is_ct:
            rescale = _rescale(image.metadata)
            text = f"HU {v:.0f}" if np.isfinite(v) else "HU nan"
            if rescale is not None and np.isfinite(v):
                text += f"  raw {round((v - rescale[1]) / rescale[0])}"
            parts.append(text)
        else:
            parts.append(f"value {shown}")
    if image.spacing_known:
        sz, sy, sx = image.spacing
        oz, oy, ox = image.origin
        parts.append(f"({ox + col * sx:.1f}, {oy + row * sy:.1f}, {oz + z * sz:.1f}) mm")
    return "   ".join(parts)


def slice_position_text(image, z: int) -> str:
    """``"slice 3/40  ·  12.5 mm"`` (position only when the spacing is known)."""
    if image is None:
        return ""
    text = f"slice {z + 1}/{image.n_slices}"
    if image.spacing_known and image.n_slices > 1:
        text += f"  ·  {image.origin[0] + z * image.spacing[0]:.1f} mm"
    return text
