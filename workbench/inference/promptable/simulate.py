"""The standard interactive-segmentation protocol (simulated user): where the next click goes, IoU after
k clicks and NoC@threshold. Shared by the click model's training and evaluation (models/click/) and the
test that re-checks its model card, so that every number comes from one definition.

First click: the object's interior pixel farthest from its border. Each next click: the pixel farthest from
the border of the largest error region (false negatives -> include, false positives -> exclude), "largest"
meaning the one reaching deepest (its distance-transform maximum), as in the RITM/f-BRS protocol.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from .prompts import Click, Prompt


def _depth(mask: np.ndarray) -> np.ndarray:
    """Distance to the nearest pixel outside ``mask`` (the image border counts as outside)."""
    padded = np.pad(mask.astype(np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]


def first_click(gt: np.ndarray) -> Click:
    """The interior point of ``gt`` farthest from its border (ties: the first in row-major order)."""
    d = _depth(gt)
    y, x = np.unravel_index(int(np.argmax(d)), d.shape)
    return Click(float(x), float(y), True)


def next_click(gt: np.ndarray, pred: np.ndarray) -> Click | None:
    """The correction click for ``pred`` against ``gt``: None when they agree everywhere."""
    fn = gt & ~pred
    fp = pred & ~gt
    dfn, dfp = _depth(fn), _depth(fp)
    mfn, mfp = float(dfn.max()), float(dfp.max())
    if mfn == 0 and mfp == 0:
        return None
    include = mfn >= mfp
    d = dfn if include else dfp
    y, x = np.unravel_index(int(np.argmax(d)), d.shape)
    return Click(float(x), float(y), include)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


Predictor = Callable[[Prompt, "np.ndarray | None"], np.ndarray]


def run_protocol(predict: Predictor, gt: np.ndarray, max_clicks: int = 20, *,
                 stop_after: int | None = None, stop_iou: float = 0.9) -> list[float]:
    """IoU after 1..``max_clicks`` simulated clicks. ``predict(prompt, previous_mask)`` returns a bool mask.

    With ``stop_after``, the run ends once at least that many clicks are made and ``stop_iou`` was reached
    (NoC@``stop_iou`` and the IoU at up to ``stop_after`` clicks are then known); the curve is padded with
    its last value, which leaves those figures unchanged."""
    gt = gt.astype(bool)
    prompt = Prompt([first_click(gt)])
    prev = None
    ious = []
    for _ in range(max_clicks):
        pred = predict(prompt, prev).astype(bool)
        ious.append(iou(pred, gt))
        if stop_after is not None and len(ious) >= stop_after and max(ious) >= stop_iou:
            ious += [ious[-1]] * (max_clicks - len(ious))
            break
        click = next_click(gt, pred)
        if click is None:
            ious += [ious[-1]] * (max_clicks - len(ious))
            break
        prompt = Prompt(prompt.clicks + [click], prompt.box)
        prev = pred
    return ious


def noc(ious: list[float], threshold: float) -> int:
    """Number of clicks to reach ``threshold`` IoU; ``len(ious)`` (the cap) when never reached."""
    for k, v in enumerate(ious, 1):
        if v >= threshold:
            return k
    return len(ious)


def summarize(curves: list[list[float]]) -> dict:
    """Mean IoU at 1/3/5 clicks and mean NoC@85/90 over the objects' IoU curves."""
    arr = np.asarray(curves, np.float64)
    return {
        "iou@1": round(float(arr[:, 0].mean()), 4),
        "iou@3": round(float(arr[:, 2].mean()), 4),
        "iou@5": round(float(arr[:, 4].mean()), 4),
        "noc@85": round(float(np.mean([noc(c, 0.85) for c in curves])), 2),
        "noc@90": round(float(np.mean([noc(c, 0.90) for c in curves])), 2),
        "objects": len(curves),
        "max_clicks": arr.shape[1],
    }
