"""Where a focal-spot model's errors come from, on validation insertions into *training* images only:
``python -m models.focal_spot.diagnose [MODEL.onnx]``.

Runs the model on the same validation set ``train.py`` chooses the display threshold on (one insertion of
held-out contrast into each natural training image and 24 medical training slices), sets the threshold at
<= 1 false positive per image (class-agnostic), and sorts

- false positives into: a second detection of an already found spot (duplicate), a badly boxed spot (its
  centre inside a spot's box but IoU < 0.5), a right box with the wrong bright/dark class (only counted
  class-aware), at the image border (centre within 8 px), or background structure (natural / medical);
- misses by radius, contrast (the spot's peak difference to the image it was inserted into, as a fraction of
  the image's 1st-99th percentile range), class, and how dark the background under a dark spot is.

The held-out images play no part: this is what one may look at while changing the recipe.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ..common.data import REPO
from ..common.export import ort_session
from .common import _iou_matrix, onnx_detect, recall_at_fp
from .train import PLUGIN_ID, model_validation_set, training_bases


def _spot_stats(img: np.ndarray, base: np.ndarray, box) -> tuple[float, float]:
    """(contrast as a fraction of the base's robust range, the background level under the spot in [0, 1])."""
    lo, hi = np.percentile(base, [1, 99])
    rng_i = max(float(hi - lo), 0.05)
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    diff = ndi.median_filter(img - base, 3)[y1:y2 + 1, x1:x2 + 1]
    local = float(np.median(base[y1:y2 + 1, x1:x2 + 1]))
    return float(np.abs(diff).max()) / rng_i, (local - lo) / rng_i


def diagnose(onnx_path: Path) -> dict:
    bases, n_natural = training_bases(with_count=True)
    sets, kinds = model_validation_set(bases, n_natural, np.random.default_rng(2))
    medical = bases[n_natural:]
    picks = list(bases[:n_natural]) + [medical[k] for k in np.linspace(0, len(medical) - 1, 24).astype(int)]
    sess = ort_session(onnx_path)
    dets = [onnx_detect(sess, im, score_threshold=0.01) for im, _, _ in sets]
    gts = [(b, c) for _, b, c in sets]
    op = recall_at_fp(dets, gts, 1.0)
    aware = recall_at_fp(dets, gts, 1.0, class_aware=True)
    thr = op["threshold"]
    fps: Counter = Counter()
    misses, found = [], []
    for (img, gb, gc), base, kind, (db, ds, dc) in zip(sets, picks, kinds, dets):
        keep = ds >= thr
        db, ds, dc = db[keep], ds[keep], dc[keep]
        iou = _iou_matrix(db, gb)
        used = np.zeros(len(gc), bool)
        h, w = img.shape
        for k in np.argsort(-ds):
            j = int(np.argmax(iou[k])) if len(gc) else -1
            if j >= 0 and iou[k, j] >= 0.5 and not used[j]:
                used[j] = True
                if dc[k] != gc[j]:
                    fps["wrong class (a hit class-agnostic)"] += 1
                continue
            cx, cy = (db[k, 0] + db[k, 2]) / 2, (db[k, 1] + db[k, 3]) / 2
            inside = [i for i in range(len(gc)) if gb[i, 0] <= cx <= gb[i, 2] and gb[i, 1] <= cy <= gb[i, 3]]
            if any(used[i] for i in inside):
                fps["duplicate of a found spot"] += 1
            elif inside:
                fps["badly boxed spot (IoU < 0.5)"] += 1
            elif min(cx, cy, w - cx, h - cy) < 8:
                fps[f"border ({kind})"] += 1
            else:
                fps[f"background structure ({kind})"] += 1
        for i in range(len(gc)):
            contrast, level = _spot_stats(img, base[:512, :512], gb[i])
            r = float(np.sqrt((gb[i, 2] - gb[i, 0]) * (gb[i, 3] - gb[i, 1]))) / 2
            (found if used[i] else misses).append((kind, int(gc[i]), r, contrast, level))

    def rate(rows, pred):
        a = sum(1 for x in misses if pred(x))
        b = sum(1 for x in found if pred(x))
        return f"{a}/{a + b} missed" if a + b else "-"

    bins = {
        "radius < 5 px": lambda x: x[2] < 5, "radius 5-10 px": lambda x: 5 <= x[2] < 10,
        "radius >= 10 px": lambda x: x[2] >= 10,
        "contrast < 0.3": lambda x: x[3] < 0.3, "contrast 0.3-0.45": lambda x: 0.3 <= x[3] < 0.45,
        "contrast >= 0.45": lambda x: x[3] >= 0.45,
        "bright": lambda x: x[1] == 0, "dark": lambda x: x[1] == 1,
        "dark on dark (background < 0.3)": lambda x: x[1] == 1 and x[4] < 0.3,
        "natural": lambda x: x[0] == "natural", "medical": lambda x: x[0] == "medical",
    }
    return {"operating_point": op, "class_aware": aware, "n_images": len(sets),
            "false_positives": dict(fps.most_common()),
            "misses": {name: rate(misses, p) for name, p in bins.items()}}


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else REPO / "plugins" / PLUGIN_ID / "model.onnx"
    out = diagnose(path)
    print(f"{path}: {out['n_images']} validation images (training backgrounds)")
    print(f"recall at <= 1 FP/image: {out['operating_point']} (class-aware: {out['class_aware']})")
    print("false positives at that threshold:")
    for k, v in out["false_positives"].items():
        print(f"  {v:4d}  {k}")
    print("misses:")
    for k, v in out["misses"].items():
        print(f"  {k:34s} {v}")


if __name__ == "__main__":
    main()
