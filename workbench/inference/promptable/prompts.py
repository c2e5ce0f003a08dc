"""Prompts (clicks and boxes), the letterbox transform between image pixels and a model's square input, click
maps and the crop around the clicks.

Conventions (docs/PLUGINS.md, "Promptable segmentation"): a click ``(x, y)`` names a pixel by its column and
row index; coordinates are mapped through pixel *centres*, so pixel ``i`` of a source of ``n`` pixels resized
to ``m`` lands at ``(i + 0.5) * m / n - 0.5`` -- the same convention as OpenCV's and torch's
``align_corners=False`` resizing, which is what keeps a click and the mask resized back on the same pixel.
Qt-free and torch-free: the bundled click model's training (models/click/) uses this very module.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import cv2
import numpy as np

from ...core.errors import WorkbenchError


class PromptError(WorkbenchError):
    """A malformed click or box (command line) or a prompt the model cannot take."""


@dataclass(frozen=True)
class Click:
    """One click: column ``x``, row ``y`` (pixels), slice ``z`` (None: the current slice), include or not."""

    x: float
    y: float
    include: bool = True
    z: int | None = None


@dataclass
class Prompt:
    """The clicks in the order given, an optional box ``(x0, y0, x1, y1)`` (inclusive pixels)."""

    clicks: list[Click] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None

    def is_empty(self) -> bool:
        return not self.clicks and self.box is None


_CLICK = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*(?:,\s*(\d+)\s*)?(?::\s*([+-]))?\s*$")


def parse_click(text: str) -> Click:
    """``X,Y[,Z][:+|:-]`` -> :class:`Click` (``:+`` include, the default; ``:-`` exclude).

    Raises
    ------
    PromptError
        Naming the bad value.
    """
    m = _CLICK.match(text)
    if not m:
        raise PromptError(f"--click {text!r}: expected X,Y[,Z][:+|:-] (pixels; :- excludes)")
    z = int(m.group(3)) if m.group(3) is not None else None
    return Click(float(m.group(1)), float(m.group(2)), m.group(4) != "-", z)


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``X0,Y0,X1,Y1`` -> a box with ``x0 <= x1`` and ``y0 <= y1``."""
    parts = text.split(",")
    try:
        x0, y0, x1, y1 = (float(p) for p in parts)
    except ValueError:
        raise PromptError(f"--box {text!r}: expected X0,Y0,X1,Y1 (pixels)") from None
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def check_prompt(prompt: Prompt, hw: tuple[int, int]) -> None:
    """Refuse clicks or a box outside an image of ``hw`` = (rows, columns)."""
    h, w = hw
    for c in prompt.clicks:
        if not (0 <= c.x < w and 0 <= c.y < h):
            raise PromptError(f"click {c.x:g},{c.y:g} lies outside the {w}x{h} image")
    if prompt.box is not None:
        x0, y0, x1, y1 = prompt.box
        if x1 < 0 or y1 < 0 or x0 >= w or y0 >= h:
            raise PromptError(f"box {x0:g},{y0:g},{x1:g},{y1:g} lies outside the {w}x{h} image")


# -- letterbox ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Letterbox:
    """Longest-side resize of a ``src_hw`` region into a ``size`` x ``size`` model input, plus padding.

    ``scale`` is (model pixels per source row, per source column): equal for square pixels, different when
    ``spacing`` made the resize physically isotropic. ``offset`` is where the resized region starts in the
    model grid (0, 0 for SAM's bottom-right padding).
    """

    src_hw: tuple[int, int]
    size: int
    new_hw: tuple[int, int]
    offset: tuple[int, int]

    @classmethod
    def fit(cls, src_hw: tuple[int, int], size: int, *, pad: str = "bottom_right",
            spacing: tuple[float, float] = (1.0, 1.0)) -> "Letterbox":
        h, w = int(src_hw[0]), int(src_hw[1])
        ph, pw = h * float(spacing[0]), w * float(spacing[1])
        longest = max(ph, pw)
        nh = max(1, min(size, int(round(size * ph / longest))))
        nw = max(1, min(size, int(round(size * pw / longest))))
        off = (0, 0) if pad == "bottom_right" else ((size - nh) // 2, (size - nw) // 2)
        return cls((h, w), int(size), (nh, nw), off)

    @property
    def scale(self) -> tuple[float, float]:
        return (self.new_hw[0] / self.src_hw[0], self.new_hw[1] / self.src_hw[1])

    def to_model(self, y: float, x: float) -> tuple[float, float]:
        """Source pixel (row, column) -> model coordinates (row, column), through pixel centres."""
        sy, sx = self.scale
        return ((y + 0.5) * sy - 0.5 + self.offset[0], (x + 0.5) * sx - 0.5 + self.offset[1])

    def image(self, plane: np.ndarray, pad_value: float = 0.0) -> np.ndarray:
        """``(h, w[, C])`` float32 -> ``(size, size[, C])``: resized (area when shrinking) and padded."""
        nh, nw = self.new_hw
        shrink = nh < self.src_hw[0] or nw < self.src_hw[1]
        resized = cv2.resize(np.ascontiguousarray(plane, np.float32), (nw, nh),
                             interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        if plane.ndim == 3 and resized.ndim == 2:
            resized = resized[:, :, None]
        out = np.full((self.size, self.size) + plane.shape[2:], pad_value, np.float32)
        oy, ox = self.offset
        out[oy:oy + nh, ox:ox + nw] = resized
        return out

    def back(self, logits: np.ndarray) -> np.ndarray:
        """Model-grid logits (any resolution covering the padded square) -> ``src_hw`` logits (bilinear)."""
        logits = np.asarray(logits, np.float32)
        if logits.shape != (self.size, self.size):
            logits = cv2.resize(logits, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        oy, ox = self.offset
        nh, nw = self.new_hw
        inner = np.ascontiguousarray(logits[oy:oy + nh, ox:ox + nw])
        h, w = self.src_hw
        return cv2.resize(inner, (w, h), interpolation=cv2.INTER_LINEAR)


# -- crop around the clicks -----------------------------------------------------------------------
def crop_box(hw: tuple[int, int], prompt: Prompt, previous: np.ndarray | None, *, context: float,
             min_size: int, first_size: int | None = None) -> tuple[int, int, int, int]:
    """The region ``(y0, x0, y1, x1)`` (exclusive ends) a prompt-channel model sees.

    With a previous mask or a box: their bounding box joined with the include clicks', widened by
    ``context`` times its size on every side, at least ``min_size`` pixels. A first click alone: the whole
    image, or a ``first_size`` square centred on the click when that is set (very large images).
    """
    h, w = hw
    ys, xs = [], []
    if previous is not None and previous.any():
        rows = np.flatnonzero(previous.any(1))
        cols = np.flatnonzero(previous.any(0))
        ys += [rows[0], rows[-1]]
        xs += [cols[0], cols[-1]]
    if prompt.box is not None:
        x0, y0, x1, y1 = prompt.box
        ys += [y0, y1]
        xs += [x0, x1]
    first = not ys
    if first:
        if first_size is None or (h <= first_size and w <= first_size) or not prompt.clicks:
            return (0, 0, h, w)
        c = prompt.clicks[0]
        ys, xs = [c.y - first_size // 2], [c.x - first_size // 2]
    else:
        for c in prompt.clicks:
            if c.include:
                ys.append(c.y)
                xs.append(c.x)

    first_side = first_size if first_size is not None else 0  # set whenever ``first`` got this far

    def span(lo: float, hi: float, n: int) -> tuple[int, int]:
        if first:  # the first_size square, shifted inside the image
            a, b = int(lo), int(lo) + first_side
        else:
            extent = hi - lo + 1
            grow = max(context * extent, (min_size - extent) / 2)
            a, b = int(np.floor(lo - grow)), int(np.ceil(hi + grow)) + 1
        if b - a > n:
            return 0, n
        if a < 0:  # shift inside the image rather than shrink: the model keeps its context
            a, b = 0, b - a
        if b > n:
            a, b = a - (b - n), n
        return max(a, 0), min(b, n)

    y0, y1 = span(min(ys), max(ys), h)
    x0, x1 = span(min(xs), max(xs), w)
    return (y0, x0, y1, x1)


# -- click maps -----------------------------------------------------------------------------------
def click_maps(points: list[tuple[float, float]], size: int, *, encoding: str, radius: float) -> np.ndarray:
    """One ``(size, size)`` float32 map of clicks given in model (row, column) coordinates.

    ``disk``: 1 within ``radius`` model pixels of a click, else 0. ``distance``: ``max(0, 1 - d / radius)``
    with ``d`` the distance to the nearest click (1 on the click, 0 from ``radius`` on).
    """
    out = np.zeros((size, size), np.float32)
    if not points:
        return out
    r = int(np.ceil(radius)) + 1
    for py, px in points:
        y0, y1 = max(0, int(np.floor(py)) - r), min(size, int(np.ceil(py)) + r + 1)
        x0, x1 = max(0, int(np.floor(px)) - r), min(size, int(np.ceil(px)) + r + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        d = np.sqrt((yy - py) ** 2 + (xx - px) ** 2)
        if encoding == "disk":
            val = (d <= radius).astype(np.float32)
        else:
            val = np.clip(1.0 - d / radius, 0.0, 1.0).astype(np.float32)
        np.maximum(out[y0:y1, x0:x1], val, out=out[y0:y1, x0:x1])
    return out


def channel_input(plane: np.ndarray, prompt: Prompt, previous: np.ndarray | None, *, size: int, context: float,
                  min_size: int, first_size: int | None, encoding: str, radius: float, use_previous: bool,
                  pad: str = "bottom_right", spacing: tuple[float, float] = (1.0, 1.0)
                  ) -> tuple[np.ndarray, tuple[int, int, int, int], Letterbox]:
    """The stacked input of a prompt-channel model: ``(C + 2 [+ 1], size, size)`` float32.

    ``plane`` is the normalised image ``(h, w)`` or ``(h, w, C)`` (model intensity units); channels are
    the image's, then the include map, the exclude map and (``use_previous``) the previous mask, all in
    the letterboxed crop. Returns the tensor (no batch axis), the crop and its letterbox.
    """
    hw = plane.shape[:2]
    box = crop_box(hw, prompt, previous, context=context, min_size=min_size, first_size=first_size)
    y0, x0, y1, x1 = box
    lb = Letterbox.fit((y1 - y0, x1 - x0), size, pad=pad, spacing=spacing)
    img = lb.image(plane[y0:y1, x0:x1])
    if img.ndim == 2:
        img = img[None]
    else:
        img = np.moveaxis(img, -1, 0)
    inc = [lb.to_model(c.y - y0, c.x - x0) for c in prompt.clicks if c.include]
    exc = [lb.to_model(c.y - y0, c.x - x0) for c in prompt.clicks if not c.include]
    chans = [img, click_maps(inc, size, encoding=encoding, radius=radius)[None],
             click_maps(exc, size, encoding=encoding, radius=radius)[None]]
    if use_previous:
        prev = np.zeros((size, size), np.float32) if previous is None else \
            lb.image(previous[y0:y1, x0:x1].astype(np.float32))
        chans.append((prev > 0.5).astype(np.float32)[None])
    return np.concatenate(chans, 0), box, lb
