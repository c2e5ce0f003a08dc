"""Thresholds: a value range, automatic methods, and the histogram behind the live preview.

Automatic thresholds follow scikit-image's convention: the foreground is ``image > t``. Otsu on 8- and
16-bit images (and int16, shifted losslessly to uint16) uses OpenCV's ``THRESH_OTSU`` on the exact
full-resolution histogram (OpenCV 5 accepts 16-bit input; reducing to 8-bit first moves the threshold by
up to one 8-bit bin, about 1% of the range). Everything else uses scikit-image; multi-Otsu on integer
data gets its histogram from here, because scikit-image bins integers one value per bin whatever
``nbins`` says and its search is quadratic (3 classes) in the bins: minutes on a 16-bit image. NaN pixels are ignored
when a threshold is computed and are never foreground.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..core.errors import ProcessingError
from ._common import as_bool, bool_mask, check_finite_number, in_range, scalar_array

#: Automatic methods, by the name the GUI and the CLI use.
METHODS = ("otsu", "multiotsu", "li", "yen", "triangle", "mean", "isodata")


def _values(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The pixel values a threshold is computed from: inside ``mask``, finite only."""
    values = image if mask is None else image[mask]
    if np.issubdtype(values.dtype, np.floating):
        finite = np.isfinite(values)
        if not finite.all():
            values = values[finite]
    return values


def otsu_cv2(values: np.ndarray) -> float:
    """Otsu's threshold by OpenCV on uint8, uint16 or int16 values (any shape), exact histogram.

    Returns ``t`` with the foreground ``values > t``.
    """
    import cv2

    arr = np.asarray(values)
    if arr.dtype == np.int16:
        # int16 (e.g. CT in HU) -> uint16 by an exact shift; OpenCV's Otsu refuses signed input.
        arr = (arr.astype(np.int32) + 32768).astype(np.uint16)
        return otsu_cv2(arr) - 32768.0
    if arr.dtype not in (np.uint8, np.uint16):
        raise ProcessingError(f"OpenCV's Otsu needs uint8, uint16 or int16 values, got {arr.dtype}")
    if arr.size == 0:
        raise ProcessingError("threshold: no pixel values to compute it from")
    if arr.ndim != 2:
        arr = arr.reshape(-1, arr.shape[-1]) if arr.ndim > 2 else arr.reshape(1, -1)
    lo, hi = cv2.minMaxLoc(arr)[:2]
    if lo == hi:
        return float(lo)  # constant: OpenCV's answer is arbitrary; every pixel is background
    t, _ = cv2.threshold(arr, 0, 1, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return float(t)


def threshold_value(image: np.ndarray, *, method: str = "otsu", mask: np.ndarray | None = None,
                    nbins: int = 256) -> float:
    """One automatic threshold of ``image`` (inside ``mask`` if given).

    Parameters
    ----------
    image : ndarray
        ``(y, x)`` or ``(z, y, x)`` scalar image; a stack gives one threshold for the whole stack.
    method : str
        One of :data:`METHODS` except ``"multiotsu"`` (see :func:`multiotsu_values`).
    mask : ndarray of bool, optional
        ROI: only these pixels count.
    nbins : int
        Histogram bins of the scikit-image methods on float data (integer data is binned exactly
        where scikit-image does so).

    Returns
    -------
    float
        ``t`` such that the foreground is ``image > t``. A constant image returns its value (empty
        foreground).

    Raises
    ------
    ProcessingError
        Unknown method, or no finite pixel values (empty image, all NaN, empty ROI).
    """
    from skimage import filters

    image = scalar_array(image)
    method = method.lower()
    if method not in METHODS or method == "multiotsu":
        raise ProcessingError(f"threshold method must be one of {', '.join(m for m in METHODS if m != 'multiotsu')}, "
                              f"got {method!r}")
    roi = None if mask is None else bool_mask(mask, "ROI mask", image.shape)
    if method == "otsu" and image.dtype in (np.uint8, np.uint16, np.int16):
        values = image if roi is None else image[roi]
        if values.size == 0:
            raise ProcessingError("threshold: no pixel values to compute it from (empty image or ROI)")
        return otsu_cv2(values)
    values = _values(image, roi)
    if values.size == 0:
        raise ProcessingError("threshold: no finite pixel values to compute it from")
    if image.dtype == bool:
        values = values.astype(np.uint8)
    vmin, vmax = values.min(), values.max()
    if vmin == vmax:
        return float(vmin)
    if method == "otsu":
        return float(filters.threshold_otsu(values, nbins=nbins))
    if method == "li":
        return float(filters.threshold_li(values))
    if method == "yen":
        return float(filters.threshold_yen(values, nbins=nbins))
    if method == "triangle":
        return float(filters.threshold_triangle(values, nbins=nbins))
    if method == "mean":
        return float(filters.threshold_mean(values))
    return float(filters.threshold_isodata(values, nbins=nbins))


#: Largest histogram for multi-Otsu by number of classes. scikit-image's search costs about
#: classes * bins^(classes-1) / (classes-1)! steps and its lookup table bins² / 2 floats (measured here:
#: 5 classes on 256 bins took 7 s, 6 classes would take minutes); these caps keep every class count
#: near 0.1 s or less and leave the default 256 bins untouched for 2..4 classes.
_MULTIOTSU_MAX_BINS = {2: 1024, 3: 1024, 4: 256, 5: 96, 6: 48, 7: 32, 8: 24}


def _integer_multiotsu_histogram(values: np.ndarray, classes: int,
                                 nbins: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``(counts, bin_values)`` histogram multi-Otsu runs on, for integer (or bool) data.

    scikit-image ignores ``nbins`` for integer images: it bins them one value per bin, and its search is
    O(bins^(classes-1)) -- minutes for a 0..60000 image. Here a value range of at most ``nbins``
    values keeps that exact histogram (the result is then scikit-image's, bit for bit, e.g. on every
    uint8 image); a wider range is cut into equal bins a whole number ``w`` of values wide, at most
    ``nbins`` of them. The bins must stay equally spaced, empty ones included: scikit-image's search
    uses the bin index, not the bin value, as the intensity. Each bin is represented by the largest
    value it can hold, so a threshold ``t`` separates the pixels exactly where the bins were split
    (``image > t``); on smooth histograms it lands within a bin width of the exact optimum.
    """
    flat = np.ravel(values)
    if flat.dtype == bool:
        flat = flat.view(np.uint8)
    if flat.dtype.itemsize <= 2:
        # 8/16-bit: exact per-value counts in one bincount over at most 65536 slots; signed data via a
        # sign-bit flip, which maps -32768..32767 onto 0..65535 in order without a wider copy.
        offset = 0
        if flat.dtype.kind == "i":
            unsigned = np.dtype(f"u{flat.dtype.itemsize}")
            offset = 1 << (8 * flat.dtype.itemsize - 1)
            flat = flat.view(unsigned) ^ unsigned.type(offset)
        per_value = np.bincount(flat)
        nonzero = np.flatnonzero(per_value)
        if nonzero.size < classes:
            raise ProcessingError(f"multi-Otsu: the image has fewer than {classes} distinct values")
        lo, hi = int(nonzero[0]), int(nonzero[-1])
        per_value = per_value[lo:hi + 1]
        vmin, span = lo - offset, hi - lo + 1
        width = -(-span // nbins)  # ceil: at most nbins bins
        if width == 1:
            return per_value, np.arange(vmin, vmin + span, dtype=np.float64)
        padded = np.zeros(-(-span // width) * width, dtype=np.int64)
        padded[:span] = per_value
        counts = padded.reshape(-1, width).sum(axis=1)
    else:
        # wider integers: offsets from the minimum in uint64 (modular subtraction is exact for every
        # signed or unsigned dtype), then one bincount of the bin indices.
        vmin, vmax = int(flat.min()), int(flat.max())
        span = vmax - vmin + 1
        width = -(-span // nbins)
        offsets = flat.astype(np.uint64) - np.uint64(vmin % (1 << 64))
        if width > 1:
            offsets //= np.uint64(width)
        counts = np.bincount(offsets.astype(np.intp), minlength=-(-span // width))
        if np.count_nonzero(counts) < classes and np.unique(flat).size < classes:
            raise ProcessingError(f"multi-Otsu: the image has fewer than {classes} distinct values")
        if width == 1:
            return counts, np.arange(vmin, vmin + span, dtype=np.float64)
    if np.count_nonzero(counts) < classes:
        raise ProcessingError(f"multi-Otsu: the values fall into fewer than {classes} of {counts.size} "
                              f"histogram bins (range {vmin}..{vmin + span - 1}); raise nbins")
    tops = np.minimum(vmin + width * np.arange(1, counts.size + 1, dtype=np.float64) - 1, vmin + span - 1)
    return counts, tops


def multiotsu_values(image: np.ndarray, *, classes: int = 3, mask: np.ndarray | None = None,
                     nbins: int = 256) -> tuple[float, ...]:
    """Multi-Otsu thresholds (``classes - 1`` values, ascending) by scikit-image.

    Parameters
    ----------
    image : ndarray
        ``(y, x)`` or ``(z, y, x)`` scalar image; NaN pixels are ignored.
    classes : int
        Number of classes, 2..8.
    mask : ndarray of bool, optional
        ROI: only these pixels count.
    nbins : int
        Histogram bins. Float data: scikit-image's ``nbins`` equal bins over the finite range (the
        thresholds are bin centres). Integer data whose value range is wider than ``nbins`` (16-bit,
        CT): at most ``nbins`` equal bins a whole number of values wide, each threshold the largest
        value of its bin (see :func:`_integer_multiotsu_histogram`); a narrower range keeps the exact
        histogram, i.e. scikit-image's result. Capped at 1024 bins, and for 5 or more classes at
        24..96 bins, because the search grows as bins^(classes-1).

    Returns
    -------
    tuple of float
        The thresholds; class ``k`` is ``t[k-1] < image <= t[k]``.

    Raises
    ------
    ProcessingError
        ``classes`` out of range, no finite pixel values, fewer distinct values than ``classes``, or
        fewer non-empty histogram bins than ``classes`` (values in a few tight clusters: raise
        ``nbins``).
    """
    from skimage.filters import threshold_multiotsu

    image = scalar_array(image)
    if not 2 <= int(classes) <= 8:
        raise ProcessingError(f"multi-Otsu classes must be 2..8, got {classes}")
    classes = int(classes)
    nbins = int(nbins)
    if nbins < classes:
        raise ProcessingError(f"multi-Otsu: nbins must be at least the number of classes ({classes}), got {nbins}")
    roi = None if mask is None else bool_mask(mask, "ROI mask", image.shape)
    values = _values(image, roi)
    if values.size == 0:
        raise ProcessingError("threshold: no finite pixel values to compute it from")
    nbins = min(nbins, _MULTIOTSU_MAX_BINS[classes])
    if np.issubdtype(values.dtype, np.integer) or values.dtype == bool:
        hist = _integer_multiotsu_histogram(values, classes, nbins)
        try:
            t = threshold_multiotsu(classes=classes, hist=hist)
        except ValueError as exc:  # unreachable with >= classes non-empty bins; kept as a user error
            raise ProcessingError(f"multi-Otsu: {exc}") from None
        return tuple(float(v) for v in t)
    # Float data: scikit-image bins it into nbins itself (np.histogram, fast). The distinct-value check
    # looks at a subsample first so that the full sort only runs on nearly constant images.
    if np.unique(values[:: max(1, values.size // 100_000)]).size < classes and np.unique(values).size < classes:
        raise ProcessingError(f"multi-Otsu: the image has fewer than {classes} distinct values")
    try:
        t = threshold_multiotsu(values, classes=classes, nbins=nbins)
    except ValueError as exc:  # skimage refuses degenerate histograms
        raise ProcessingError(f"multi-Otsu: {exc}") from None
    return tuple(float(v) for v in t)


def classify(image: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Class index per pixel (uint8): 0 below the first threshold, ``len(thresholds)`` above the last.

    A pixel equal to a threshold belongs to the lower class (``image > t`` is the upper one). NaN -> 0.
    """
    image = scalar_array(image)
    t = np.asarray(sorted(float(v) for v in thresholds))
    out = np.digitize(image, t, right=True).astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        out[np.isnan(image)] = 0
    return out


def threshold_range(image: np.ndarray, lo: float | None = None, hi: float | None = None, *,
                    mask: np.ndarray | None = None) -> np.ndarray:
    """``lo <= image <= hi`` as a new bool array (inclusive; an omitted bound is open; NaN is outside).

    ``mask`` restricts the result to an ROI.
    """
    image = scalar_array(image)
    lo_v = -np.inf if lo is None else check_finite_number(lo, "threshold low bound")
    hi_v = np.inf if hi is None else check_finite_number(hi, "threshold high bound")
    if lo_v > hi_v:
        raise ProcessingError(f"threshold: low bound {lo_v:g} is above the high bound {hi_v:g}")
    out = as_bool(in_range(image, lo_v, hi_v))
    if mask is not None:
        out &= bool_mask(mask, "ROI mask", image.shape)
    return out


def apply_threshold(image: np.ndarray, *, method: str | None = None, lo: float | None = None,
                    hi: float | None = None, mask: np.ndarray | None = None, per_slice: bool = False,
                    classes: int = 3) -> np.ndarray:
    """Threshold a slice, a stack or an ROI to a new bool mask.

    Parameters
    ----------
    image : ndarray
        ``(y, x)`` slice or ``(z, y, x)`` stack.
    method : str, optional
        Automatic method (:data:`METHODS`); foreground ``image > t``. For ``"multiotsu"`` the foreground
        is the brightest of ``classes`` classes. Without a method, the range ``[lo, hi]`` is used.
    lo, hi : float, optional
        Inclusive range (when ``method`` is None).
    mask : ndarray of bool, optional
        ROI: the automatic threshold is computed from these pixels only and the result is limited to it.
    per_slice : bool
        On a stack, compute the automatic threshold of every slice on its own.
    classes : int
        Classes of multi-Otsu.
    """
    image = scalar_array(image)
    roi = None if mask is None else bool_mask(mask, "ROI mask", image.shape)
    if method is None:
        if lo is None and hi is None:
            raise ProcessingError("threshold: give a method or a range lo..hi")
        return threshold_range(image, lo, hi, mask=roi)
    if per_slice and image.ndim == 3:
        out = np.zeros(image.shape, dtype=bool)
        for z in range(image.shape[0]):
            sub_roi = None if roi is None else roi[z]
            if sub_roi is not None and not sub_roi.any():
                continue
            values = _values(image[z], sub_roi)
            if values.size == 0:
                continue  # an all-NaN slice has no foreground
            out[z] = apply_threshold(image[z], method=method, mask=sub_roi, classes=classes)
        return out
    if method.lower() == "multiotsu":
        t = multiotsu_values(image, classes=classes, mask=roi)[-1]
    else:
        t = threshold_value(image, method=method, mask=roi)
    out = image > t  # NaN > t is False
    if roi is not None:
        out &= roi
    return out


@dataclass(frozen=True)
class Histogram:
    """Counts per bin and the ``bins + 1`` bin edges (for the threshold preview and the ROI histogram)."""

    counts: np.ndarray
    edges: np.ndarray

    @property
    def centers(self) -> np.ndarray:
        return (self.edges[:-1] + self.edges[1:]) / 2


def histogram(image: np.ndarray, *, bins: int = 256, value_range: tuple[float, float] | None = None,
              mask: np.ndarray | None = None, max_samples: int | None = 4_000_000) -> Histogram:
    """Histogram of the finite values of ``image`` (inside ``mask``), fast enough for a live preview.

    Parameters
    ----------
    bins : int
        Number of equal bins over ``value_range``.
    value_range : (float, float), optional
        Defaults to the finite min..max of the data.
    mask : ndarray of bool, optional
        ROI.
    max_samples : int or None
        Above this many pixels a regular stride subsample is counted (counts are scaled back), which
        keeps the preview interactive on big stacks. ``None`` counts every pixel.
    """
    import cv2

    image = scalar_array(image)
    bins = int(bins)
    if bins < 1:
        raise ProcessingError(f"histogram: bins must be >= 1, got {bins}")
    roi = None if mask is None else bool_mask(mask, "ROI mask", image.shape)
    values = image.reshape(-1) if roi is None else image[roi]
    scale = 1.0
    if max_samples is not None and values.size > max_samples:
        step = int(np.ceil(values.size / max_samples))
        scale = values.size / len(range(0, values.size, step))
        values = values[::step]
    if values.dtype == bool:
        values = values.view(np.uint8)
    if np.issubdtype(values.dtype, np.floating):
        finite = np.isfinite(values)
        if not finite.all():
            values = values[finite]
    if value_range is None:
        if values.size == 0:
            value_range = (0.0, 1.0)
        else:
            value_range = (float(values.min()), float(values.max()))
    lo, hi = float(value_range[0]), float(value_range[1])
    if not hi > lo:
        hi = lo + 1.0  # a constant image: one bin holds everything
    edges = np.linspace(lo, hi, bins + 1)
    if values.size and values.dtype in (np.uint8, np.uint16):
        # Exact per-value counts with calcHist (~5x faster than np.histogram), then equal-width bins by
        # numpy's rule (last bin closed).
        v0, v1 = int(np.ceil(lo)), int(np.floor(hi))
        counts: np.ndarray = np.zeros(bins, dtype=np.float64)
        if v1 >= v0:
            src = np.ascontiguousarray(values).reshape(-1, 1)
            per_value = cv2.calcHist([src], [0], None, [v1 - v0 + 1], [v0, v1 + 1]).reshape(-1)
            idx = np.floor((np.arange(v0, v1 + 1) - lo) * (bins / (hi - lo))).astype(np.int64)
            np.clip(idx, 0, bins - 1, out=idx)
            counts = np.bincount(idx, weights=per_value, minlength=bins)
    elif values.size and values.dtype == np.float32:
        # calcHist's upper edge is exclusive: nudge it up one float32 step so hi itself is counted.
        src = np.ascontiguousarray(values).reshape(-1, 1)
        top = float(np.nextafter(np.float32(hi), np.float32(np.inf)))
        counts = cv2.calcHist([src], [0], None, [bins], [lo, top]).reshape(-1)
    else:
        counts, _ = np.histogram(values, bins=edges)
    counts = np.asarray(counts, dtype=np.float64) * scale
    return Histogram(counts=np.rint(counts).astype(np.int64), edges=edges)
