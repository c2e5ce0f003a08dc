"""Polygon and lasso rasterisation to ``(box, mask)``.

The pixel rule is scikit-image's (:func:`skimage.draw.polygon`): a pixel is inside when its centre is
inside the polygon by the even-odd crossing test, edges counted half-open (``y_i <= y < y_j``) and a
centre exactly on a left edge inside, on a right edge outside. ``cv2.fillPoly`` is not used because it
also paints every pixel the outline touches (about 3% more pixels on typical shapes, measured), which
makes a lasso grow with each redraw. scikit-image itself tests every pixel of the box against every
vertex (O(box x vertices): seconds for a long lasso), so this module does a vectorised scanline fill
with the same rule: O(rows x vertices + pixels), about a millisecond for a 1000-vertex lasso.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.errors import ProcessingError
from ._common import Box


def polygon(vertices: Sequence[Sequence[float]] | np.ndarray, *, shape: Sequence[int],
            z: int | None = None) -> tuple[Box, np.ndarray]:
    """Rasterise a closed polygon (or a freehand lasso path) given as ``(y, x)`` vertices.

    Parameters
    ----------
    vertices : (N, 2) array_like
        Vertices in pixel-index coordinates ``(y, x)``, pixel centres at integers; the polygon is closed
        implicitly. Self-intersecting paths are filled by the even-odd rule.
    shape : sequence of int
        ``(y, x)`` or ``(z, y, x)`` shape of the target; the mask is clipped to it.
    z : int, optional
        Slice to draw on when ``shape`` is a stack (required then).

    Returns
    -------
    box : tuple of slice
        Box of the mask (``(y, x)`` or ``(z, y, x)`` like ``shape``); zero-sized when nothing is inside.
    mask : ndarray of bool
        Pixels of the box whose centre lies inside the polygon.
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) not in (2, 3):
        raise ProcessingError(f"polygon: shape must be (y, x) or (z, y, x), got {shape}")
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 2:
        raise ProcessingError(f"polygon: vertices must be an (N, 2) array of (y, x), got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ProcessingError("polygon: vertices must be finite numbers")
    plane = (shape[-2], shape[-1])
    if len(shape) == 3:
        if z is None:
            raise ProcessingError("polygon: a stack needs the slice index z")
        if not 0 <= int(z) < shape[0]:
            raise ProcessingError(f"polygon: slice {z} outside 0..{shape[0] - 1}")
    box2, mask2 = _fill(v, plane)
    if len(shape) == 2:
        return box2, mask2
    if mask2.size == 0:
        return (slice(0, 0),) + box2, mask2[np.newaxis]
    assert z is not None  # checked above for stacks
    return (slice(int(z), int(z) + 1),) + box2, mask2[np.newaxis]


def _edge_rows(lo: np.ndarray, hi: np.ndarray, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
    """Expand per-edge integer row ranges ``[lo, hi)`` (clipped to ``[r0, r1]``) to (edge, row) pairs."""
    lo = np.maximum(lo, r0)
    hi = np.minimum(hi, r1 + 1)
    counts = np.maximum(hi - lo, 0)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    edge = np.repeat(np.arange(len(lo)), counts)
    first = np.cumsum(counts) - counts
    row = lo[edge] + (np.arange(total) - first[edge])
    return edge, row


def _fill(v: np.ndarray, plane: tuple[int, int]) -> tuple[Box, np.ndarray]:
    h, w = plane
    empty = ((slice(0, 0), slice(0, 0)), np.zeros((0, 0), dtype=bool))
    if len(v) < 3 or h == 0 or w == 0:
        return empty
    ys, xs = v[:, 0], v[:, 1]
    # The box skimage scans: rows/cols from the (clipped) min to ceil(max).
    r0 = max(0, int(np.floor(ys.min())))
    r1 = min(h - 1, int(np.ceil(ys.max())))
    c0 = max(0, int(np.floor(xs.min())))
    c1 = min(w - 1, int(np.ceil(xs.max())))
    if r1 < r0 or c1 < c0:
        return empty
    width = c1 - c0 + 1
    yi, xi = ys, xs
    yj, xj = np.roll(ys, 1), np.roll(xs, 1)  # edge i joins vertex i - 1 to vertex i, as in skimage
    ymin, ymax = np.minimum(yi, yj), np.maximum(yi, yj)

    # Interior by the even-odd rule with half-open edges (ymin <= y < ymax): every row crosses an even
    # number of edges, so after sorting the crossings by (row, x) they pair up globally; the centres x
    # with c_2k <= x < c_2k+1 are inside.
    edge, row = _edge_rows(np.ceil(ymin).astype(np.int64), np.ceil(ymax).astype(np.int64), r0, r1)
    marks = np.zeros((r1 - r0 + 1, width + 1), dtype=np.int8)
    if edge.size:
        e_yi, e_xi, e_yj, e_xj = yi[edge], xi[edge], yj[edge], xj[edge]
        xc = (e_xj - e_xi) * (row - e_yi) / (e_yj - e_yi) + e_xi
        order = np.lexsort((xc, row))
        row, xc = row[order], xc[order]
        a_row, a, b = row[0::2], xc[0::2], xc[1::2]
        start = np.clip(np.ceil(a) - c0, 0, width).astype(np.int64)
        stop = np.clip(np.ceil(b) - c0, 0, width).astype(np.int64)
        keep = stop > start
        # Non-empty spans of a row are disjoint and ordered, so starts (and stops) never repeat and
        # plain fancy-index updates are exact; the running sum stays in 0..1 and fits int8.
        a_row = a_row[keep] - r0
        marks[a_row, start[keep]] += 1
        marks[a_row, stop[keep]] -= 1
    mask = np.cumsum(marks[:, :width], axis=1, dtype=np.int8).view(bool)

    # Closed polygon, like skimage: centres exactly on an edge or vertex are inside too. The on-edge test
    # is the exact cross product, so integer and half-integer clicks are decided without rounding noise.
    flat = ymax == ymin
    edge, row = _edge_rows(np.ceil(ymin).astype(np.int64), np.floor(ymax).astype(np.int64) + 1, r0, r1)
    sel = ~flat[edge]
    edge, row = edge[sel], row[sel]
    if edge.size:
        e_yi, e_xi, e_yj, e_xj = yi[edge], xi[edge], yj[edge], xj[edge]
        x = np.round((e_xj - e_xi) * (row - e_yi) / (e_yj - e_yi) + e_xi)
        on = ((x - e_xi) * (e_yj - e_yi) == (row - e_yi) * (e_xj - e_xi)) & (x >= c0) & (x <= c1)
        mask[row[on] - r0, x[on].astype(np.int64) - c0] = True
    for k in np.flatnonzero(flat & (ymin == np.round(ymin)) & (ymin >= r0) & (ymin <= r1)):
        lo = max(int(np.ceil(min(xi[k], xj[k]))), c0)
        hi = min(int(np.floor(max(xi[k], xj[k]))), c1)
        if hi >= lo:
            mask[int(ymin[k]) - r0, lo - c0:hi - c0 + 1] = True
    return (slice(r0, r1 + 1), slice(c0, c1 + 1)), mask
