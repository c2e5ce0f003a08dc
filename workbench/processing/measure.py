"""Per-label measurements in physical units, CSV export and the ROI histogram.

All labels are measured together: the labelled pixels are grouped by label with one stable argsort,
then ``np.bincount`` sums and per-run min/max/median (never a Python loop over pixels, nor
``regionprops`` or ``scipy.ndimage``'s indexed reductions, which sort the whole image per statistic).
Intensities are the image's stored values: Hounsfield units for CT (the readers apply the modality LUT).
NaN pixels count towards the size but not the intensity statistics.

A ``(y, x)`` label image, or a stack of one slice, is measured in 2D (area in mm², perimeter); a deeper
stack in 3D (volume in mm³; perimeter is not defined and left ``None``).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Mapping, Sequence

import numpy as np

from ..core.errors import ProcessingError
from ._common import axis_spacing, scalar_array
from .threshold import Histogram, histogram


@dataclass
class LabelStats:
    """The measurements of one label. Physical fields are ``None`` when the spacing is unknown.

    ``bbox`` is ``(z0, y0, x0, z1, y1, x1)`` with exclusive ends (``(y0, x0, y1, x1)`` style boxes are
    the same without z). Intensity fields are ``None`` without an image or when the label has no finite
    pixel value.
    """

    label: int
    name: str
    pixels: int
    area_mm2: float | None
    volume_mm3: float | None
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    median: float | None
    perimeter_px: float | None
    perimeter_mm: float | None
    equivalent_diameter_px: float
    equivalent_diameter_mm: float | None
    bbox: tuple[int, int, int, int, int, int]

    def as_dict(self) -> dict:
        d = asdict(self)
        d["bbox"] = list(self.bbox)
        return d


COLUMNS = [f.name for f in fields(LabelStats)]

#: Above this many labels the medians come from one lexsort instead of a partition per label.
_PARTITION_MAX_LABELS = 256


def _perimeter(crop: np.ndarray, spacing_yx: tuple[float, float]) -> float:
    """Length of every boundary (outer and holes) of a 2D crop, through boundary pixel centres.

    OpenCV's contours are scaled by the pixel size before ``cv2.arcLength`` so that anisotropic pixels
    are measured correctly (skimage's perimeter counts in pixel units only).
    """
    import cv2

    padded = np.pad(crop.view(np.uint8), 1)
    contours, _ = cv2.findContours(padded, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    sy, sx = spacing_yx
    total = 0.0
    for c in contours:
        pts = c.reshape(-1, 2).astype(np.float64)
        if len(pts) < 2:
            continue
        pts[:, 0] *= sx
        pts[:, 1] *= sy
        total += cv2.arcLength(pts.astype(np.float32).reshape(-1, 1, 2), True)
    return float(total)


def measure_labels(labels: np.ndarray, image: np.ndarray | None = None, *,
                   spacing: Sequence[float] | None = None, names: Mapping[int, str] | None = None,
                   values: Sequence[int] | None = None, perimeter: bool = True) -> list[LabelStats]:
    """Measure every nonzero label of ``labels``.

    Parameters
    ----------
    labels : ndarray of int
        ``(y, x)`` or ``(z, y, x)`` label image (0 = background), e.g. ``LabelMap.data``.
    image : ndarray, optional
        Scalar intensities of the same shape (convert colour with :func:`~workbench.processing.to_scalar`).
    spacing : sequence of float, optional
        Voxel size in mm ``(z, y, x)`` when known (``ImageVolume.spacing`` if ``spacing_known``), else
        ``None``: physical fields are then ``None``.
    names : mapping, optional
        Label value -> name (the label table); default ``"label N"``.
    values : sequence of int, optional
        Measure only these label values (absent ones are skipped).
    perimeter : bool
        Compute the 2D perimeter (one contour trace per label's box; skip for speed on huge label counts).

    Returns
    -------
    list of LabelStats
        Ascending label value.
    """
    from scipy import ndimage as ndi

    lab = np.asarray(labels)
    if lab.ndim == 2:
        lab = lab[np.newaxis]
    if lab.ndim != 3 or not np.issubdtype(lab.dtype, np.integer) and lab.dtype != bool:
        raise ProcessingError("labels: expected an integer (y, x) or (z, y, x) array, "
                              f"got {lab.dtype} {np.shape(labels)}")
    if lab.dtype == bool:
        lab = lab.view(np.uint8)
    if lab.size and lab.min() < 0:
        raise ProcessingError("labels: negative label values")
    img = None
    if image is not None:
        img = scalar_array(image)
        if img.ndim == 2:
            img = img[np.newaxis]
        if img.shape != lab.shape:
            raise ProcessingError(f"image shape {img.shape} does not match the labels {lab.shape}")
    sp = axis_spacing(spacing, 3) if spacing is not None and len(tuple(spacing)) == 3 else (
        (1.0,) + axis_spacing(spacing, 2) if spacing is not None else None)
    is_2d = lab.shape[0] == 1

    flat = lab.reshape(-1)
    n_max = int(flat.max()) if flat.size else 0
    counts = np.bincount(flat, minlength=n_max + 1) if flat.size else np.zeros(1, dtype=np.int64)
    present = np.flatnonzero(counts)
    present = present[present != 0]
    if values is not None:
        present = np.intersect1d(present, np.asarray(list(values), dtype=np.int64))
    if present.size == 0:
        return []

    stats_int: dict[str, np.ndarray | None] = {k: None for k in ("mean", "std", "min", "max", "median", "n")}
    if img is not None:
        vals = img.reshape(-1)
        if vals.dtype == bool:
            vals = vals.view(np.uint8)
        valid_lab = flat
        if np.issubdtype(vals.dtype, np.floating):
            finite = np.isfinite(vals)
            if not finite.all():
                # NaN pixels leave the statistics: give them label 0 for the intensity reductions only.
                valid_lab = np.where(finite, flat, 0)
        # Group the requested, labelled, finite pixels by label once: a stable argsort of the label
        # values (radix sort for 8/16-bit labels, O(n)) keeps each label's pixels in image order, so the
        # bincount sums below are bit-identical to sums over the whole image, and min/max/median read
        # contiguous runs. scipy.ndimage.minimum/maximum/median sort every pixel of the image by
        # value for each call (2.4 s on 2048² with two labels, against ~0.2 s here).
        if values is None:
            sel = np.flatnonzero(valid_lab)  # every nonzero label is measured
        else:
            want = np.zeros(n_max + 1, dtype=bool)
            want[present] = True
            sel = np.flatnonzero(want[valid_lab])
        grp_lab = valid_lab[sel]
        order = np.argsort(grp_lab, kind="stable")
        grp_lab = grp_lab[order]
        grp_vals = vals[sel][order]
        del sel, order
        v64 = grp_vals.astype(np.float64)
        n = np.bincount(grp_lab, minlength=n_max + 1)
        s1 = np.bincount(grp_lab, weights=v64, minlength=n_max + 1)
        mean_all = np.divide(s1, n, out=np.full(n.shape, np.nan), where=n > 0)
        # Two-pass variance (sum of squared deviations from the label mean) avoids the cancellation of
        # E[x²] - E[x]² on large HU or 16-bit values.
        dev = v64 - mean_all[grp_lab]
        s2 = np.bincount(grp_lab, weights=dev * dev, minlength=n_max + 1)
        del v64, dev
        stats_int["n"] = n[present]
        stats_int["mean"] = mean_all[present]
        stats_int["std"] = np.sqrt(np.divide(s2, n, out=np.full(n.shape, np.nan), where=n > 0))[present]
        starts = np.searchsorted(grp_lab, present, side="left")
        ends = np.searchsorted(grp_lab, present, side="right")
        mins = np.full(present.size, np.nan)
        maxs = np.full(present.size, np.nan)
        medians = np.full(present.size, np.nan)
        nonempty = ends > starts
        if nonempty.any():
            # reduceat over the starts of the non-empty runs: each run ends where the next one starts
            # (runs of labels that are not requested were never selected).
            mins[nonempty] = np.minimum.reduceat(grp_vals, starts[nonempty])
            maxs[nonempty] = np.maximum.reduceat(grp_vals, starts[nonempty])
        # The median is the mean of the two middle values of each run, with the same arithmetic as
        # scipy.ndimage.median (in the image's dtype; float64 for integers) so the figures do not
        # depend on the method. Few labels: partition each run, O(n). Many labels: one lexsort of
        # all the grouped values beats a Python call per label (537k labels on 2048²: seconds saved).
        lo_pos = starts + (ends - starts - 1) // 2
        hi_pos = starts + (ends - starts) // 2
        lo_v = np.empty(present.size, dtype=grp_vals.dtype)
        hi_v = np.empty(present.size, dtype=grp_vals.dtype)
        runs = np.flatnonzero(nonempty)
        if runs.size > _PARTITION_MAX_LABELS:
            in_order = grp_vals[np.lexsort((grp_vals, grp_lab))]
            lo_v[runs], hi_v[runs] = in_order[lo_pos[runs]], in_order[hi_pos[runs]]
        else:
            for i in runs.tolist():
                k_lo, k_hi = int(lo_pos[i] - starts[i]), int(hi_pos[i] - starts[i])
                part = np.partition(grp_vals[starts[i]:ends[i]], (k_lo, k_hi))
                lo_v[i], hi_v[i] = part[k_lo], part[k_hi]
        if np.issubdtype(grp_vals.dtype, np.integer) or grp_vals.dtype == bool:
            mid = (lo_v[runs].astype("d") + hi_v[runs].astype("d")) / 2.0
        else:
            mid = (lo_v[runs] + hi_v[runs]) / 2.0
        medians[runs] = mid
        stats_int["min"] = mins
        stats_int["max"] = maxs
        stats_int["median"] = medians

    # Python floats (None where a label has no finite pixel or there is no image), converted once.
    columns: dict[str, list] = {}
    for key in ("mean", "std", "min", "max", "median"):
        arr = stats_int[key]
        if arr is None:
            columns[key] = [None] * present.size
        else:
            columns[key] = [float(v) if n_i else None
                            for v, n_i in zip(arr.tolist(), stats_int["n"].tolist())]  # type: ignore[union-attr]
    objects = ndi.find_objects(lab, max_label=n_max)
    out: list[LabelStats] = []
    for i, value in enumerate(present.tolist()):
        sl = objects[value - 1]
        bbox = (sl[0].start, sl[1].start, sl[2].start, sl[0].stop, sl[1].stop, sl[2].stop)
        pixels = int(counts[value])
        area = volume = None
        per_px = per_mm = None
        if is_2d:
            if sp is not None:
                area = pixels * sp[1] * sp[2]
            if perimeter:
                crop = lab[0][sl[1], sl[2]] == value
                per_px = _perimeter(crop, (1.0, 1.0))
                if sp is not None:
                    per_mm = per_px if sp[1] == sp[2] == 1.0 else _perimeter(crop, (sp[1], sp[2]))
            eq_px = 2.0 * math.sqrt(pixels / math.pi)
            eq_mm = 2.0 * math.sqrt(area / math.pi) if area is not None else None
        else:
            if sp is not None:
                volume = pixels * sp[0] * sp[1] * sp[2]
            eq_px = (6.0 * pixels / math.pi) ** (1.0 / 3.0)
            eq_mm = (6.0 * volume / math.pi) ** (1.0 / 3.0) if volume is not None else None

        out.append(LabelStats(
            label=int(value), name=(names or {}).get(int(value), f"label {value}"), pixels=pixels,
            area_mm2=area, volume_mm3=volume, mean=columns["mean"][i], std=columns["std"][i],
            min=columns["min"][i], max=columns["max"][i], median=columns["median"][i],
            perimeter_px=per_px, perimeter_mm=per_mm, equivalent_diameter_px=eq_px, equivalent_diameter_mm=eq_mm,
            bbox=bbox))
    return out


def format_value(v) -> str:
    """A measurement as table/CSV text: empty for missing, 6 significant digits, tuples space-separated."""
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (tuple, list)):
        return " ".join(str(x) for x in v)
    return str(v)


def to_json(stats: Sequence[LabelStats]) -> str:
    """The measurements as a JSON array of objects (``null`` for missing values)."""
    return json.dumps([s.as_dict() for s in stats], indent=2)


def format_table(stats: Sequence[LabelStats]) -> str:
    """A plain-text table for the terminal (the CLI's default output)."""
    if not stats:
        return "no labels"
    three_d = any(s.volume_mm3 is not None for s in stats) or any(s.bbox[3] - s.bbox[0] > 1 for s in stats)
    cols = ["label", "name", "pixels", "volume_mm3" if three_d else "area_mm2", "mean", "std", "min", "max",
            "median"]
    if not three_d:
        cols.append("perimeter_mm" if any(s.perimeter_mm is not None for s in stats) else "perimeter_px")
    cols.append("equivalent_diameter_mm" if any(s.equivalent_diameter_mm is not None for s in stats)
                else "equivalent_diameter_px")
    rows = [[format_value(getattr(s, c)) or "-" for c in cols] for s in stats]
    header = [c.replace("equivalent_diameter", "eq_diam") for c in cols]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def roi_histogram(image: np.ndarray, mask: np.ndarray, *, bins: int = 128,
                  value_range: tuple[float, float] | None = None) -> Histogram:
    """Histogram of the intensities inside ``mask`` (e.g. ``labels == value``); every pixel counted."""
    return histogram(image, mask=mask, bins=bins, value_range=value_range, max_samples=None)
