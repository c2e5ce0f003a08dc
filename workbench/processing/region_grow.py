"""Region growing from seed clicks or from an existing mask.

The fast path of every variant is the same: threshold the intensity range (one ``cv2.inRange`` pass),
then keep the connected pieces that touch a seed -- ``cv2.floodFill`` on the binary plane in 2D (it only
visits the region), ``scipy.ndimage.label`` in 3D. That is the cost of the baseline itself, so growing
is as fast as thresholding plus labelling.

Seeds are pixel-index coordinates ``(y, x)`` on a plane or ``(z, y, x)`` on a stack (integers, or
floats rounded to the nearest pixel), or a mask of the image's shape ("grow the AI mask").

``connectivity`` 4 or 8 on a stack grows each seed within its own slice; 6, 18 or 26 grows through
the stack.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.errors import ProcessingError
from ._common import as_bool, bool_mask, check_finite_number, in_range, plan_connectivity, scalar_array

Seeds = Sequence[Sequence[float]] | np.ndarray


def _seed_points(seeds: Seeds, shape: tuple[int, ...]) -> np.ndarray:
    """Seeds as an ``(N, ndim)`` int array, checked to lie inside ``shape``."""
    pts = np.asarray(seeds, dtype=np.float64)
    if pts.ndim == 1:
        pts = pts[np.newaxis]
    if pts.ndim != 2 or pts.shape[1] != len(shape):
        raise ProcessingError(f"seed points need {len(shape)} coordinates each "
                              f"({'(z, y, x)' if len(shape) == 3 else '(y, x)'}), got shape {pts.shape}")
    if pts.shape[0] == 0:
        raise ProcessingError("region grow needs at least one seed")
    if not np.all(np.isfinite(pts)):
        raise ProcessingError("seed coordinates must be finite numbers")
    idx = np.floor(pts + 0.5).astype(np.int64)
    for p in idx:
        if np.any(p < 0) or np.any(p >= shape):
            raise ProcessingError(f"seed {tuple(int(v) for v in p)} is outside the image of shape {shape}")
    return idx


def _flood_plane(binary: np.ndarray, points: np.ndarray, connectivity: int) -> np.ndarray:
    """Pixels of the 0/1 uint8 ``binary`` plane connected to any of the ``(y, x)`` ``points``."""
    import cv2

    h, w = binary.shape
    ff = np.zeros((h + 2, w + 2), dtype=np.uint8)
    flags = connectivity | cv2.FLOODFILL_MASK_ONLY | (1 << 8)
    for y, x in points:
        if binary[y, x] and not ff[y + 1, x + 1]:
            cv2.floodFill(binary, ff, (int(x), int(y)), 0, 0, 0, flags)
    return ff[1:-1, 1:-1].view(bool)


def _components_touching(binary: np.ndarray, seed_mask: np.ndarray, connectivity: int | str,
                         rank: int = 1) -> np.ndarray:
    """Connected pieces of ``binary`` (0/1 uint8 or bool) that overlap ``seed_mask``."""
    import cv2
    from scipy import ndimage as ndi

    if binary.ndim == 2:
        n, labels = cv2.connectedComponents(binary.view(np.uint8), connectivity=int(connectivity), ltype=cv2.CV_32S)
    else:
        labels, n = ndi.label(binary, structure=ndi.generate_binary_structure(3, rank))
    hit = np.unique(labels[seed_mask & as_bool(binary.view(np.uint8))])
    hit = hit[hit != 0]
    if hit.size == 0:
        return np.zeros(binary.shape, dtype=bool)
    if hit.size == 1:
        return labels == hit[0]
    keep = np.zeros(int(labels.max()) + 1, dtype=bool)
    keep[hit] = True
    return keep[labels]


def _grow_binary(binary: np.ndarray, seeds, connectivity: int | None) -> np.ndarray:
    """Keep the parts of the 0/1 uint8 ``binary`` connected to the seeds (points or mask)."""
    from scipy import ndimage as ndi

    mode, conn = plan_connectivity(binary.ndim, connectivity)
    if isinstance(seeds, np.ndarray) and seeds.dtype == bool:
        if mode == "volume":
            return _components_touching(binary, seeds, "3d", rank=conn)
        if binary.ndim == 2:
            return _components_touching(binary, seeds, conn)
        out = np.zeros(binary.shape, dtype=bool)
        for z in np.flatnonzero(seeds.reshape(seeds.shape[0], -1).any(axis=1)):
            out[z] = _components_touching(binary[z], seeds[z], conn)
        return out
    points = seeds
    if binary.ndim == 2:
        return _flood_plane(binary, points, conn)
    if mode == "plane":
        out = np.zeros(binary.shape, dtype=bool)
        for z in np.unique(points[:, 0]):
            out[z] = _flood_plane(np.ascontiguousarray(binary[z]), points[points[:, 0] == z][:, 1:], conn)
        return out
    labels, _ = ndi.label(binary, structure=ndi.generate_binary_structure(3, conn))
    ids = np.unique(labels[tuple(points.T)])
    ids = ids[ids != 0]
    if ids.size == 0:
        return np.zeros(binary.shape, dtype=bool)
    out = labels == ids[0]
    for i in ids[1:]:
        out |= labels == i
    return out


def region_grow(image: np.ndarray, seeds: Seeds, *, tolerance: float | None = None,
                lo: float | None = None, hi: float | None = None, connectivity: int | None = None,
                within: np.ndarray | None = None) -> np.ndarray:
    """Pixels connected to the seeds through pixels within an intensity range.

    Parameters
    ----------
    image : ndarray
        ``(y, x)`` or ``(z, y, x)`` scalar image.
    seeds : (N, ndim) array_like or ndarray of bool
        Seed pixels, or a seed mask of the image's shape (an existing label to grow). Seeds of a mask
        are always part of the result.
    tolerance : float, optional
        Seed-relative range: ``value(seed) +- tolerance`` per seed point (for a seed mask: the mean of
        its values +- tolerance).
    lo, hi : float, optional
        Absolute range ``[lo, hi]`` (inclusive; one may be omitted). Exclusive with ``tolerance``. A
        seed outside the range grows nothing.
    connectivity : {4, 8, 6, 18, 26}, optional
        4/8: in-plane (on a stack, per slice of each seed); 6/18/26: through the stack. Defaults to 8 on
        a plane and 26 on a stack.
    within : ndarray of bool, optional
        Never grow outside this mask (e.g. the current selection).

    Returns
    -------
    ndarray of bool
        The grown region, the image's shape.
    """
    image = scalar_array(image)
    if image.dtype == bool:
        image = image.view(np.uint8)
    plan_connectivity(image.ndim, connectivity)  # validate early
    roi = None if within is None else bool_mask(within, "within mask", image.shape)
    if (tolerance is None) == (lo is None and hi is None):
        raise ProcessingError("region grow needs either a tolerance or a range lo..hi")
    if isinstance(seeds, np.ndarray) and seeds.dtype == bool:
        seed_mask = bool_mask(seeds, "seed mask", image.shape)
        if not seed_mask.any():
            raise ProcessingError("region grow: the seed mask is empty")
        if tolerance is not None:
            tol = _tolerance(tolerance)
            vals = image[seed_mask]
            if np.issubdtype(vals.dtype, np.floating):
                vals = vals[np.isfinite(vals)]
            if vals.size == 0:
                return seed_mask.copy()
            centre = float(vals.mean())
            lo_v, hi_v = centre - tol, centre + tol
        else:
            lo_v, hi_v = _bounds(lo, hi)
        binary = in_range(image, lo_v, hi_v)
        if roi is not None:
            binary &= roi.view(np.uint8)
        binary |= seed_mask.view(np.uint8)  # the mask's own pixels always stay
        return _grow_binary(binary, seed_mask, connectivity)

    points = _seed_points(seeds, image.shape)
    if tolerance is None:
        lo_v, hi_v = _bounds(lo, hi)
        binary = in_range(image, lo_v, hi_v)
        if roi is not None:
            binary &= roi.view(np.uint8)
        return _grow_binary(binary, points, connectivity)
    tol = _tolerance(tolerance)
    # Seed-relative: every distinct seed value defines its own range; seeds sharing a value share a pass.
    values = image[tuple(points.T)]
    out = None
    for v in np.unique(values):
        if np.issubdtype(image.dtype, np.floating) and not np.isfinite(v):
            continue  # a NaN seed grows nothing
        group = points[values == v]
        binary = in_range(image, float(v) - tol, float(v) + tol)
        if roi is not None:
            binary &= roi.view(np.uint8)
        part = _grow_binary(binary, group, connectivity)
        out = part if out is None else (out | part)
    return out if out is not None else np.zeros(image.shape, dtype=bool)


def confidence_connected(image: np.ndarray, seeds: Seeds, *, multiplier: float = 2.5,
                         iterations: int = 4, initial_radius: int = 1, connectivity: int | None = None,
                         within: np.ndarray | None = None) -> np.ndarray:
    """Confidence-connected growing (ITK's algorithm): range ``mean +- multiplier * std``, iterated.

    The first statistics come from a ``(2 r + 1)`` neighbourhood of every seed point (or from the seed
    mask); each iteration grows with the current range and re-estimates mean and std over the region.
    Stops early when the region no longer changes.

    Parameters
    ----------
    image, seeds, connectivity, within
        As in :func:`region_grow`.
    multiplier : float
        ``k`` of ``mean +- k * std``.
    iterations : int
        Re-estimations after the first growth (0 = grow once).
    initial_radius : int
        Neighbourhood radius around seed points for the first statistics.
    """
    image = scalar_array(image)
    if image.dtype == bool:
        image = image.view(np.uint8)
    k = check_finite_number(multiplier, "confidence multiplier")
    if k < 0:
        raise ProcessingError(f"confidence multiplier must be >= 0, got {k}")
    if int(iterations) < 0:
        raise ProcessingError(f"iterations must be >= 0, got {iterations}")
    if isinstance(seeds, np.ndarray) and seeds.dtype == bool:
        start = bool_mask(seeds, "seed mask", image.shape)
        if not start.any():
            raise ProcessingError("region grow: the seed mask is empty")
        seed_arg: Seeds | np.ndarray = start
    else:
        points = _seed_points(seeds, image.shape)
        start = np.zeros(image.shape, dtype=bool)
        r = max(0, int(initial_radius))
        mode, _ = plan_connectivity(image.ndim, connectivity)
        for p in points:
            box = []
            for axis, c in enumerate(p):
                rad = 0 if (image.ndim == 3 and axis == 0 and mode == "plane") else r
                box.append(slice(max(0, c - rad), c + rad + 1))
            start[tuple(box)] = True
        seed_arg = points
    region = start
    for _ in range(int(iterations) + 1):
        vals = image[region]
        if np.issubdtype(vals.dtype, np.floating):
            vals = vals[np.isfinite(vals)]
        if vals.size == 0:
            break
        mean, std = float(vals.mean()), float(vals.std())
        new = region_grow(image, seed_arg, lo=mean - k * std, hi=mean + k * std,
                          connectivity=connectivity, within=within)
        if np.array_equal(new, region):
            break
        region = new
    return region


class RegionGrowPreview:
    """Region growing on one plane for a tolerance slider: each :meth:`update` is one threshold pass
    plus one flood fill of the region (a few ms on 2048²), with the result of the last tolerances cached.

    Precomputed once: the distance ``|image - value(seed)|`` in the image's own precision, so an update
    thresholds a single array against ``[0, tolerance]``.

    Parameters
    ----------
    image : ndarray
        ``(y, x)`` plane.
    seed : (y, x)
        Seed pixel.
    connectivity : {4, 8}
    within : ndarray of bool, optional
        Never grow outside this mask.
    """

    def __init__(self, image: np.ndarray, seed: Sequence[float], *, connectivity: int = 8,
                 within: np.ndarray | None = None, cache_size: int = 8) -> None:
        import cv2

        image = scalar_array(image)
        if image.ndim != 2:
            raise ProcessingError(f"region-grow preview works on one (y, x) plane, got shape {image.shape}")
        mode, conn = plan_connectivity(2, connectivity)
        self.connectivity = conn
        (self.seed,) = _seed_points([seed], image.shape)
        y, x = (int(v) for v in self.seed)
        value = image[y, x]
        if np.issubdtype(image.dtype, np.floating) and not np.isfinite(value):
            raise ProcessingError(f"seed ({y}, {x}) has no finite value")
        self.seed_value = float(value)
        if image.dtype in (np.uint8, np.uint16):
            # |a - v| exactly in the image's own type (saturating absdiff), half the bytes of float32.
            self._distance = cv2.absdiff(image, np.full_like(image, image[y, x]))
        else:
            self._distance = np.abs(image.astype(np.float32) - np.float32(value))
            if np.issubdtype(image.dtype, np.floating):
                self._distance[~np.isfinite(image)] = np.inf
        self._within = None if within is None else \
            bool_mask(within, "within mask", image.shape).astype(np.uint8) * np.uint8(255)
        self._cache: dict[float, np.ndarray] = {}
        self._order: list[float] = []
        self._cache_size = max(1, int(cache_size))
        self.last_area = 0
        self.last_bbox: tuple[slice, slice] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self._distance.shape[0]), int(self._distance.shape[1]))

    def update(self, tolerance: float) -> np.ndarray:
        """The region for ``tolerance`` (bool mask of the plane; do not modify it, it may be cached).

        Also sets :attr:`last_area` (pixels) and :attr:`last_bbox` (``(y, x)`` slices of the region, for a
        partial repaint).
        """
        import cv2

        tol = _tolerance(tolerance)
        if tol in self._cache:
            mask = self._cache[tol]
            self._set_stats(mask)
            return mask
        # cv2.inRange's 0/255 is fine for the flood (it fills equal values); skipping the 0/1
        # normalisation of in_range saves a pass per slider step.
        hi = float(np.floor(tol)) if self._distance.dtype != np.float32 else tol
        binary = cv2.inRange(self._distance, 0.0, hi)
        if self._within is not None:
            np.bitwise_and(binary, self._within, out=binary)
        h, w = binary.shape
        ff = np.zeros((h + 2, w + 2), dtype=np.uint8)
        y, x = (int(v) for v in self.seed)
        if binary[y, x]:
            area, _, _, rect = cv2.floodFill(binary, ff, (x, y), 0, 0, 0,
                                             self.connectivity | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
            rx, ry, rw, rh = rect
            self.last_area = int(area)
            self.last_bbox = (slice(ry, ry + rh), slice(rx, rx + rw))
        else:
            self.last_area, self.last_bbox = 0, None
        mask = ff[1:-1, 1:-1].view(bool)
        self._cache[tol] = mask
        self._order.append(tol)
        if len(self._order) > self._cache_size:
            self._cache.pop(self._order.pop(0), None)
        return mask

    def _set_stats(self, mask: np.ndarray) -> None:
        from ._common import bbox_of

        self.last_area = int(np.count_nonzero(mask))
        self.last_bbox = bbox_of(mask)  # type: ignore[assignment]


def _tolerance(tolerance: float) -> float:
    tol = check_finite_number(tolerance, "tolerance")
    if tol < 0:
        raise ProcessingError(f"tolerance must be >= 0, got {tol:g}")
    return tol


def _bounds(lo: float | None, hi: float | None) -> tuple[float, float]:
    lo_v = -np.inf if lo is None else check_finite_number(lo, "region grow low bound")
    hi_v = np.inf if hi is None else check_finite_number(hi, "region grow high bound")
    if lo_v > hi_v:
        raise ProcessingError(f"region grow: low bound {lo_v:g} is above the high bound {hi_v:g}")
    return lo_v, hi_v
