"""Occlusion sensitivity (Zeiler & Fergus 2014): slide a window over the model input, replace what it
covers with a baseline (the blurred input or its mean) and record how much the class score drops.

Model-agnostic: only the model's outputs are read, no gradients, no change to the graph. The map value
of a pixel is the mean score drop over every window that covered it, in units of the class score
(probability for softmax/sigmoid plugins): positive = hiding the pixel lowers the score, i.e. the model
relies on it; negative = hiding it raises the score.
"""
from __future__ import annotations

from typing import Any, Generator

import numpy as np

from ..preprocess import PreparedPlane
from ._common import (
    BatchRunner,
    Cancel,
    Explanation,
    Progress,
    baseline_tensor,
    batch_scores,
    content_box,
    resolve_class,
    spatial_mask,
    tensor_hw,
    to_image,
    whole_tensor,
    window_px,
)


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Window start offsets along one axis covering ``length`` (the last one flush with the end)."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def occlusion(engine: Any, plane: PreparedPlane, *, target: str | int | None = None, window: float = 0.25,
              stride: float = 0.125, baseline: str = "blur", blur_sigma: float | None = None,
              batch_size: int = 16, cancel: Cancel = None) -> Generator[Progress, None, Explanation]:
    """Occlusion map of one preprocessed slice of a classification plugin.

    Parameters
    ----------
    engine : Engine
        A classification plugin bound to its session (:class:`workbench.inference.run.Engine`).
    plane : PreparedPlane
        The slice as the plugin's preprocessing made it (``engine.prepare_plane``).
    target : str or int, optional
        Class label or index to explain (default: the top class of the unperturbed input).
    window, stride : float
        Window side and step: pixels of the model input (>= 1) or a fraction of its side (< 1).
    baseline : {"blur", "mean"}
        What the window shows instead of the input.
    blur_sigma : float, optional
        Gaussian sigma (model pixels) of the blur baseline; default a quarter of the window.
    batch_size : int
        Perturbed inputs per ``session.run`` when the graph's batch dim is dynamic.
    cancel : threading.Event or callable, optional

    Yields
    ------
    (done, total, message)

    Returns
    -------
    Explanation
        ``cost.model_runs`` = 1 + the number of window positions.
    """
    spec = engine.spec
    layout = spec.input.layout
    tensor = whole_tensor(plane, spec.id)
    t, left, ch, cw = content_box(plane.geometry)
    win_y, win_x = window_px(window, ch, "window"), window_px(window, cw, "window")
    st_y, st_x = window_px(stride, ch, "stride"), window_px(stride, cw, "stride")
    sigma = float(blur_sigma) if blur_sigma is not None else max(1.0, min(win_y, win_x) / 4.0)
    base = baseline_tensor(tensor, plane, layout, baseline, sigma)
    runner = BatchRunner(engine.model, tensor, batch_size=batch_size, cancel=cancel)
    scores0 = batch_scores(runner.run_one(tensor), spec)[0]
    index, label = resolve_class(spec, scores0, target)
    top = int(np.argmax(scores0))
    positions = [(t + y, left + x) for y in window_starts(ch, win_y, st_y) for x in window_starts(cw, win_x, st_x)]
    total = len(positions)
    h, w = tensor_hw(tensor, layout)
    acc = np.zeros((h, w), np.float64)
    count = np.zeros((h, w), np.float64)
    done = 0
    yield (0, total, "occlusion")
    for start, stop in runner.batches(total):
        chunk = positions[start:stop]
        keep = np.ones((len(chunk), h, w), np.float32)
        for k, (y, x) in enumerate(chunk):
            keep[k, y:y + win_y, x:x + win_x] = 0.0
        m = spatial_mask(keep, layout)
        batch = (tensor.astype(np.float32) * m + base.astype(np.float32) * (1.0 - m)).astype(tensor.dtype)
        drops = scores0[index] - batch_scores(runner.run(batch), spec)[:, index]
        for k, (y, x) in enumerate(chunk):
            acc[y:y + win_y, x:x + win_x] += drops[k]
            count[y:y + win_y, x:x + win_x] += 1.0
        done = stop
        yield (done, total, f"occlusion {done}/{total}")
    model_map = np.where(count > 0, acc / np.maximum(count, 1.0), 0.0)
    labels = list(spec.labels or [])
    return Explanation(
        method="occlusion", plugin_id=spec.id, task=spec.task, map=to_image(model_map, plane),
        units=f"drop in p({label}) when the window is hidden", slice_index=plane.index,
        parameters={"window_px": [win_y, win_x], "stride_px": [st_y, st_x], "window": window, "stride": stride,
                    "baseline": baseline, "blur_sigma_px": sigma if baseline == "blur" else None,
                    "positions": total, "model_input_hw": [h, w]},
        cost=runner.finish(), target={"index": index, "label": label, "score": float(scores0[index])},
        top={"index": top, "label": labels[top] if top < len(labels) else f"class {top}",
             "score": float(scores0[top])})
