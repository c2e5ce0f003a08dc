"""Where a focal-spot model's errors come from, on validation insertions into *training* images only:
``python -m models.focal_spot.diagnose [MODEL.onnx]``.

Runs the model on the same validation set ``train.py`` chooses the display threshold on (one insertion of
held-out contrast into each natural training image and 24 medical training slices), sets the threshold at
<= 1 false positive per image (class-agnostic), and sorts

- false positives into: a second detection of an already found spot (duplicate), a badly boxed spot (its
  centre inside a spot's box but IoU < 0.5), a right box with the wrong bright/dark class (only counted
  class-aware), at the image border (centre within 8 px), or background structure (natural / medical);
- misses by size band, contrast (the spot's peak difference to the image it was inserted into, as a
  fraction of the image's 1st-99th percentile range), edge softness (erf edge width over the radius),
  added or blended, class, how dark the background under a dark spot is, and kind of background;
- misses by cause: the best-scoring detection centred on the spot boxes it well (IoU >= 0.5) but scores
  below the threshold (a ranking problem: training), boxes it badly (a box-regression or matching problem),
  or there is none (the peak decoding or the features);
- recall at <= 1 FP/image when matching at IoU 0.3 / 0.4 instead of 0.5: whether the 0.5 criterion is
  what costs small spots.

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
from .common import SIZE_BANDS, _iou_matrix, _matches, found_spots, onnx_detect, recall_at_fp, spot_size
from .train import PLUGIN_ID, model_validation_set, training_bases


def _spot_stats(img: np.ndarray, base: np.ndarray, box) -> tuple[float, float]:
    """(contrast as a fraction of the base's robust range, the background level under the spot in [0, 1])."""
    lo, hi = np.percentile(base, [1, 99])
    rng_i = max(float(hi - lo), 0.05)
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    diff = ndi.median_filter(img - base, 3)[y1:y2 + 1, x1:x2 + 1]
    local = float(np.median(base[y1:y2 + 1, x1:x2 + 1]))
    return float(np.abs(diff).max()) / rng_i, (local - lo) / rng_i


def _recall_at_iou(dets, gts, iou_thr: float) -> float:
    """Recall at <= 1 FP/image with the matching at ``iou_thr`` (the same walk as ``recall_at_fp``)."""
    recs, n_gt = _matches(dets, gts, iou_thr=iou_thr)
    recs.sort(key=lambda t: -t[0])
    tp = fp = 0
    best = 0.0
    for i, (score, is_tp) in enumerate(recs):
        tp, fp = tp + is_tp, fp + (not is_tp)
        if fp > len(gts):
            break
        if i + 1 == len(recs) or recs[i + 1][0] < score:
            best = tp / max(n_gt, 1)
    return round(best, 4)


def _miss_cause(db, ds, gt_box, threshold: float) -> str:
    """Why a spot was missed, from the best-scoring detection whose centre lies within a quarter of the
    spot's size (at least 3 px) of the spot's centre."""
    if not len(db):
        return "no detection centred on it"
    gcx, gcy = (gt_box[0] + gt_box[2]) / 2, (gt_box[1] + gt_box[3]) / 2
    d = np.hypot((db[:, 0] + db[:, 2]) / 2 - gcx, (db[:, 1] + db[:, 3]) / 2 - gcy)
    near = np.flatnonzero(d <= max(3.0, float(spot_size(gt_box)[0]) / 4))
    if not len(near):
        return "no detection centred on it"
    k = near[np.argmax(ds[near])]
    iou = float(_iou_matrix(db[k:k + 1], gt_box[None])[0, 0])
    if iou >= 0.5:
        return "well boxed, score below threshold"
    return "badly boxed (IoU < 0.5), " + ("score above threshold" if ds[k] >= threshold else "score below threshold")


def diagnose(onnx_path: Path) -> dict:
    bases, n_natural = training_bases(with_count=True)
    meta: list = []
    sets, kinds = model_validation_set(bases, n_natural, np.random.default_rng(2), meta=meta)
    sess = ort_session(onnx_path)
    dets = [onnx_detect(sess, im, score_threshold=0.01) for im, _, _ in sets]
    gts = [(b, c) for _, b, c in sets]
    op = recall_at_fp(dets, gts, 1.0)
    aware = recall_at_fp(dets, gts, 1.0, class_aware=True)
    thr = op["threshold"]
    fps: Counter = Counter()
    causes: dict[str, Counter] = {name: Counter() for name in SIZE_BANDS}
    rows = []  # per spot: (found, kind, class, size, contrast, level, edge / radius, blended)
    for (img, gb, gc), m, kind, (db, ds, dc), used in zip(sets, meta, kinds, dets, found_spots(dets, gts, thr)):
        keep = ds >= thr
        kb, ks, kc = db[keep], ds[keep], dc[keep]
        iou = _iou_matrix(kb, gb)
        taken = np.zeros(len(gc), bool)
        h, w = img.shape
        for k in np.argsort(-ks):
            j = int(np.argmax(iou[k])) if len(gc) else -1
            if j >= 0 and iou[k, j] >= 0.5 and not taken[j]:
                taken[j] = True
                if kc[k] != gc[j]:
                    fps["wrong class (a hit class-agnostic)"] += 1
                continue
            cx, cy = (kb[k, 0] + kb[k, 2]) / 2, (kb[k, 1] + kb[k, 3]) / 2
            inside = [i for i in range(len(gc)) if gb[i, 0] <= cx <= gb[i, 2] and gb[i, 1] <= cy <= gb[i, 3]]
            if any(taken[i] for i in inside):
                fps["duplicate of a found spot"] += 1
            elif inside:
                fps["badly boxed spot (IoU < 0.5)"] += 1
            elif min(cx, cy, w - cx, h - cy) < 8:
                fps[f"border ({kind})"] += 1
            else:
                fps[f"background structure ({kind})"] += 1
        sizes = spot_size(gb)
        for i in range(len(gc)):
            contrast, level = _spot_stats(img, m["base"], gb[i])
            spot = m["spots"][i]
            rows.append((bool(used[i]), kind, int(gc[i]), float(sizes[i]), contrast, level,
                         spot["edge"] / spot["r"], bool(spot["blend"])))
            if not used[i]:
                band = next(n for n, (lo, hi) in SIZE_BANDS.items() if lo <= sizes[i] < hi)
                causes[band][_miss_cause(db, ds, gb[i], thr)] += 1

    def rate(pred) -> str:
        sel = [r[0] for r in rows if pred(r)]
        return f"{len(sel) - sum(sel)}/{len(sel)} missed" if sel else "-"

    bins = {**{f"size {name}": (lambda r, lo=lo, hi=hi: lo <= r[3] < hi) for name, (lo, hi) in SIZE_BANDS.items()},
            "contrast < 0.3": lambda r: r[4] < 0.3, "contrast 0.3-0.45": lambda r: 0.3 <= r[4] < 0.45,
            "contrast >= 0.45": lambda r: r[4] >= 0.45,
            "sharp edge (edge < 0.15 r)": lambda r: r[6] < 0.15,
            "medium edge (0.15-0.35 r)": lambda r: 0.15 <= r[6] < 0.35,
            "soft edge (>= 0.35 r)": lambda r: r[6] >= 0.35,
            "added": lambda r: not r[7], "blended": lambda r: r[7],
            "bright": lambda r: r[2] == 0, "dark": lambda r: r[2] == 1,
            "dark on dark (background < 0.3)": lambda r: r[2] == 1 and r[5] < 0.3,
            "natural": lambda r: r[1] == "natural", "medical": lambda r: r[1] == "medical"}
    return {"operating_point": op, "class_aware": aware, "n_images": len(sets),
            "false_positives": dict(fps.most_common()),
            "misses": {name: rate(p) for name, p in bins.items()},
            "miss_causes": {band: dict(c.most_common()) for band, c in causes.items()},
            "recall_at_1fp_by_iou": {t: _recall_at_iou(dets, gts, t) for t in (0.3, 0.4, 0.5)}}


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
    print("misses by cause:")
    for band, c in out["miss_causes"].items():
        print(f"  {band:9s} " + ", ".join(f"{v} {k}" for k, v in c.items()))
    print("recall at <= 1 FP/image by matching IoU: " +
          ", ".join(f"{t}: {v}" for t, v in out["recall_at_1fp_by_iou"].items()))


if __name__ == "__main__":
    main()
