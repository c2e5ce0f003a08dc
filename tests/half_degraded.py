"""Images of which exactly one half is degraded (blur or noise), for the saliency pointing game with the
bundled quality classifier (tests/unit/test_explain_quality.py, docs/EXPLAIN figures).

Built from scikit-image's bundled sample files and the bundled MRI samples, fixed seed, nothing
downloaded. Two disjoint image lists: ``DEV_SOURCES`` (the window / stride / N were chosen on these) and
``EVAL_SOURCES`` (only ever measured, never tuned on).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import skimage

ROOT = Path(__file__).resolve().parents[1]
_SK = Path(skimage.__file__).parent / "data"

DEV_SOURCES = ["cell.png", "coffee.png", "retina.jpg", "rocket.jpg", "chessboard_GRAY.png", "ihc.png"]
EVAL_SOURCES = ["camera.png", "moon.png", "coins.png", "page.png", "brick.png", "grass.png", "gravel.png",
                "chelsea.png", "astronaut.png", "text.png", "brain-tissue/sample_t1_slab_z78_clean.png",
                "focal-spot/sample.png"]

CROP = 128
NOISE_SIGMA = 20.0  # of 255: inside the quality model's "noisy" range (5-30)
BLUR_SIGMA = 2.0  # px: inside its "blurred" range (1-3)


def _load(name: str) -> np.ndarray:
    path = ROOT / "plugins" / name if "/" in name else _SK / name
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise FileNotFoundError(path)
    return img


def half_degraded(sources: list[str], *, per_image: int = 2, seed: int = 17) -> list[dict]:
    """``per_image`` random 128x128 crops of every source (stretched to the full 8-bit range), alternately
    noisy and blurred in the left or right half (random side). Each item: ``image`` (uint8), ``kind``
    (``"noisy"`` / ``"blurred"``), ``side`` (``"left"`` / ``"right"``), ``source``."""
    rng = np.random.default_rng(seed)
    items = []
    n = 0
    for name in sources:
        src = _load(name)
        if min(src.shape) < CROP:
            scale = CROP / min(src.shape)
            src = cv2.resize(src, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        for _ in range(per_image):
            y = int(rng.integers(0, src.shape[0] - CROP + 1))
            x = int(rng.integers(0, src.shape[1] - CROP + 1))
            crop = src[y:y + CROP, x:x + CROP].astype(np.float32)
            lo, hi = np.percentile(crop, (1, 99))
            crop = np.clip((crop - lo) / max(hi - lo, 1.0) * 255.0, 0, 255)
            kind = "noisy" if n % 2 == 0 else "blurred"
            side = "left" if rng.random() < 0.5 else "right"
            if kind == "noisy":
                bad = crop + rng.normal(0.0, NOISE_SIGMA, crop.shape)
            else:
                bad = cv2.GaussianBlur(crop, (0, 0), BLUR_SIGMA)
            half = slice(0, CROP // 2) if side == "left" else slice(CROP // 2, CROP)
            out = crop.copy()
            out[:, half] = bad[:, half]
            items.append({"image": np.clip(np.rint(out), 0, 255).astype(np.uint8), "kind": kind, "side": side,
                          "source": name})
            n += 1
    return items


def in_degraded_half(peak_x: int, side: str, width: int = CROP) -> bool:
    return peak_x < width // 2 if side == "left" else peak_x >= width // 2
