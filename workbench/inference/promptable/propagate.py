"""Propagate an accepted mask through the neighbouring slices with a promptable model.

Each next slice is prompted from the previous slice's mask: an include click at its deepest interior point
(its "centre" that stays inside non-convex shapes, unlike the centroid), its bounding box (encoder/decoder
models take it as the box prompt) and the mask itself as the previous mask (prompt-channel models crop
around it). It stops when the object vanishes (an empty mask, or one under ``min_fraction`` of the previous
slice's area), at the end of the stack, or when cancelled.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...core.errors import CancelledError
from .prompts import Prompt
from .run import PromptResult, PromptSession
from .simulate import first_click


def propagate(session: PromptSession, image, seed: np.ndarray, z: int, *, directions=(1, -1),
              min_fraction: float = 0.2, progress: Callable[[int, int], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> dict[int, np.ndarray]:
    """Masks of the slices next to ``z`` (both directions by default), seeded from ``seed`` on slice ``z``.

    Returns
    -------
    dict
        ``{slice index: bool mask}`` of every slice reached (``z`` itself not included).

    Raises
    ------
    CancelledError
        ``cancelled()`` became true; nothing is returned.
    """
    seed = np.asarray(seed, bool)
    if not seed.any():
        return {}
    n = image.n_slices
    total = sum((n - 1 - z) if d > 0 else z for d in directions)
    done = 0
    out: dict[int, np.ndarray] = {}
    use_box = session.prompt.kind == "encoder_decoder"
    for d in directions:
        prev, k = seed, z + d
        while 0 <= k < n:
            if cancelled is not None and cancelled():
                raise CancelledError("propagation cancelled")
            c = first_click(prev)
            box = None
            if use_box:
                rows, cols = np.flatnonzero(prev.any(1)), np.flatnonzero(prev.any(0))
                box = (float(cols[0]), float(rows[0]), float(cols[-1]), float(rows[-1]))
            prompt = Prompt([type(c)(c.x, c.y, True, k)], box)
            res = session.predict(image, prompt, index=k, previous=PromptResult(prev, prev.astype(np.float32), k))
            mask = res.mask
            done += 1
            if progress is not None:
                progress(done, total)
            area = int(np.count_nonzero(mask))
            if area == 0 or area < min_fraction * int(np.count_nonzero(prev)):
                break
            out[k] = mask
            prev, k = mask, k + d
    return out
