"""Blob synthesis, held-out set, blob_log baseline, decoding and AP50 of the focal-spot detector.

No torch here: the unit test imports it to evaluate the shipped ONNX the way training did.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.special import erfc

from ..common.data import HELD_OUT_SLAB, load_dicom, load_gray, mni_heldout_slice

CLASSES = ["bright spot", "dark spot"]
PERCENTILE = (0.5, 99.5)
MULTIPLE_OF = 32
STRIDE = 4
R_RANGE = (3.0, 18.0)  # mean radius in pixels: spots of 6-36 px across
# the training mix (train.py; the model card describes it): crop side; v3: most validation false positives are
# spot-like texture of photographs and most misses spots under 10 px across (diagnose), hence a larger share of
# natural crops and a share of spots drawn from the small end
CROP = 224
NATURAL_P = 0.6
SMALL_P = 0.2
SMALL_R_RANGE = (3.0, 6.0)  # spots under 12 px across: oversampled in training (v3)


def insert_blobs(img: np.ndarray, rng: np.random.Generator, n_max: int = 6, noise_p: float = 0.3,
                 contrast_range: tuple[float, float] = (0.12, 0.6), meta: list | None = None,
                 small_p: float = 0.0):
    """Insert 1..``n_max`` non-overlapping elliptic spots into ``img`` (float, [0, 1]).

    Spots are round to 2:1 oval, rotated, bright or dark, with an error-function edge whose width varies
    from sharp (0.3 px) to very soft (half the radius), and a contrast of ``contrast_range`` (fractions) of
    the image's robust (1st-99th percentile) range, added to, or blended towards, a target value. With
    ``small_p`` > 0 (training), that fraction of the spots is drawn from the small end (``SMALL_R_RANGE``)
    instead: the spots most often missed.
    Returns (image, boxes xyxy, classes); with ``meta`` (a list), also appends per spot a dict of its radius,
    edge width, axis ratio, contrast (fraction of the range) and whether it was blended (the draws, and so
    the images, are the same with or without it).
    """
    out = img.astype(np.float64).copy()
    h, w = out.shape
    lo, hi = np.percentile(out, [1, 99])
    rng_i = max(hi - lo, 0.05)
    boxes, classes = [], []
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    for _ in range(rng.integers(1, n_max + 1)):
        r_lo, r_hi = SMALL_R_RANGE if small_p > 0 and rng.random() < small_p else R_RANGE
        r = float(np.exp(rng.uniform(np.log(r_lo), np.log(r_hi))))
        ratio = rng.uniform(1.0, 2.0)
        a, b = r * np.sqrt(ratio), r / np.sqrt(ratio)
        th = rng.uniform(0, np.pi)
        ex = np.sqrt((a * np.cos(th)) ** 2 + (b * np.sin(th)) ** 2)
        ey = np.sqrt((a * np.sin(th)) ** 2 + (b * np.cos(th)) ** 2)
        if w <= 2 * ex + 4 or h <= 2 * ey + 4:
            continue
        bright = rng.random() < 0.5
        contrast = rng.uniform(*contrast_range) * rng_i
        for _try in range(30):
            cx, cy = rng.uniform(ex + 1, w - ex - 1), rng.uniform(ey + 1, h - ey - 1)
            box = np.array([cx - ex, cy - ey, cx + ex, cy + ey])
            local = float(np.median(out[int(box[1]):int(box[3]) + 1, int(box[0]):int(box[2]) + 1]))
            # a dark spot on black (or a bright one on white) would be clipped away by the normalisation:
            # only place spots where they stay visible
            visible = local - lo >= 0.6 * contrast if not bright else hi - local >= -0.5 * rng_i
            if visible and all(not _near(box, bb) for bb in boxes):
                break
        else:
            continue
        dx, dy = xx - cx, yy - cy
        u = (dx * np.cos(th) + dy * np.sin(th)) / a
        v = (-dx * np.sin(th) + dy * np.cos(th)) / b
        rho = np.sqrt(u * u + v * v)
        edge = rng.uniform(0.3, max(0.31, 0.5 * r))
        mask = 0.5 * erfc((rho - 1.0) * r / (np.sqrt(2.0) * edge))
        blend = rng.random() >= 0.5
        if not blend:
            out += (1 if bright else -1) * contrast * mask
        else:
            # blend towards a level above/below the local mean: the spot hides what was under it
            target = local + (1 if bright else -1) * contrast
            out = out * (1 - mask) + target * mask
        boxes.append(box)
        classes.append(0 if bright else 1)
        if meta is not None:
            meta.append({"r": r, "edge": edge, "ratio": ratio, "contrast": contrast / rng_i,
                         "blend": blend})
    if rng.random() < noise_p:
        out += rng.normal(0, rng.uniform(0.005, 0.05) * rng_i / 0.5, out.shape)
    return out.astype(np.float32), np.array(boxes, np.float32).reshape(-1, 4), np.array(classes, np.int64)


def _near(a, b, gap: float = 3.0) -> bool:
    return not (a[2] + gap < b[0] or b[2] + gap < a[0] or a[3] + gap < b[1] or b[3] + gap < a[1])


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4), xyxy."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


# v2 backgrounds never trained on besides camera, moon, CT_small and the MNI slab: a third photograph and a
# real 12-bit MR slice (v1 trained on astronaut, so comparisons with v1 on it favour v1)
EXTRA_HELD_OUT_IMAGES = ("astronaut.png",)
EXTRA_HELD_OUT_DICOM = ("examples_overlay.dcm",)
# the operating point: spots with a contrast of at least 20 % of the image's range
HELDOUT_CONTRAST = (0.2, 0.6)


def heldout_bases() -> list[tuple[str, str, np.ndarray]]:
    """Never trained on: (name, kind, image) for camera, moon, astronaut (``natural``), CT_small, the
    examples_overlay MR and axial slices of the MNI held-out slab (``medical``)."""
    out = [(n, "natural", load_gray(f"{n}.png")) for n in ("camera", "moon", "astronaut")]
    out += [("CT_small", "medical", load_dicom("CT_small.dcm")),
            ("MR_overlay", "medical", load_dicom("examples_overlay.dcm"))]
    out += [(f"mni_z{k}", "medical", mni_heldout_slice(k)) for k in range(HELD_OUT_SLAB[0] + 1, HELD_OUT_SLAB[1], 4)]
    return out


def heldout_set(per_base: int = 4, seed: int = 77):
    """``per_base`` insertions (contrast ``HELDOUT_CONTRAST``) into every held-out base: a list of
    (image, boxes, classes); ``heldout_kinds`` gives each item's kind in the same order."""
    rng = np.random.default_rng(seed)
    return [insert_blobs(base, rng, contrast_range=HELDOUT_CONTRAST)
            for _, _, base in heldout_bases() for _ in range(per_base)]


def heldout_kinds(per_base: int = 4) -> list[str]:
    return [kind for _, kind, _ in heldout_bases() for _ in range(per_base)]


def normalize(img: np.ndarray) -> np.ndarray:
    """plugin.yaml ``percentile: [0.5, 99.5]`` with clipping, as the engine's intensity map does."""
    lo, hi = (float(v) for v in np.percentile(img, PERCENTILE))
    if hi <= lo:
        hi = lo + 1.0
    return ((np.clip(img, lo, hi) - lo) / (hi - lo)).astype(np.float32)


def nms(boxes, scores, iou_thr=0.45):
    order = np.argsort(-scores)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        iou = inter / (area[i] + area[rest] - inter + 1e-9)
        order = rest[iou <= iou_thr]
    return np.array(keep, np.int64)


def decode_yolov8(out: np.ndarray, *, score_threshold: float = 0.05, iou_threshold: float = 0.45,
                  max_candidates: int = 3000, max_detections: int = 300):
    """``[1, 4+C, N]`` -> boxes xyxy, scores, classes (class-wise NMS), like the engine's yolov8 decoder."""
    rows = out[0].T
    cls = rows[:, 4:].argmax(1)
    scores = rows[np.arange(len(rows)), 4 + cls]
    sel = np.flatnonzero(scores >= score_threshold)
    sel = sel[np.argsort(-scores[sel])[:max_candidates]]  # bounded NMS cost, like any YOLO post-processing
    rows, cls, scores = rows[sel], cls[sel], scores[sel]
    boxes = np.stack([rows[:, 0] - rows[:, 2] / 2, rows[:, 1] - rows[:, 3] / 2,
                      rows[:, 0] + rows[:, 2] / 2, rows[:, 1] + rows[:, 3] / 2], 1)
    keep = []
    for c in np.unique(cls):
        idx = np.flatnonzero(cls == c)
        keep += list(idx[nms(boxes[idx], scores[idx], iou_threshold)])
    keep = np.array(keep, np.int64)
    keep = keep[np.argsort(-scores[keep])[:max_detections]]
    return boxes[keep].reshape(-1, 4), scores[keep], cls[keep]


def onnx_detect(sess, img: np.ndarray, **kw):
    """The plugin.yaml pipeline: percentile normalisation, pad bottom/right to a multiple of 32 (pad value
    = the image minimum, i.e. model value 0), run, decode; boxes are in the image's pixels."""
    x = normalize(img)
    h, w = x.shape
    x = np.pad(x, ((0, (-h) % MULTIPLE_OF), (0, (-w) % MULTIPLE_OF)))
    out = sess.run(None, {"input": x[None, None]})[0]
    boxes, scores, cls = decode_yolov8(out, **kw)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    return boxes, scores, cls


def blob_log_detect(img: np.ndarray, *, threshold: float, max_sigma: float = 13.0, min_sigma: float = 1.5):
    """scikit-image blob_log on the normalised image (bright spots) and its inverse (dark spots).

    Score = the scale-normalised LoG response at the blob; box = circle of radius sqrt(2) sigma.
    """
    from skimage.feature import blob_log

    x = normalize(img)
    boxes, scores, cls = [], [], []
    for c, im in enumerate((x, 1.0 - x)):
        blobs = blob_log(im, min_sigma=min_sigma, max_sigma=max_sigma, num_sigma=8, threshold=threshold, overlap=0.5)
        for y, xx, s in blobs:
            r = np.sqrt(2.0) * s
            resp = -s * s * ndi.gaussian_laplace(im[max(0, int(y - 3 * s)):int(y + 3 * s) + 1,
                                                    max(0, int(xx - 3 * s)):int(xx + 3 * s) + 1], s)
            yy, xc = min(int(y), int(3 * s)), min(int(xx), int(3 * s))
            scores.append(float(resp[min(yy, resp.shape[0] - 1), min(xc, resp.shape[1] - 1)]))
            boxes.append([xx - r, y - r, xx + r, y + r])
            cls.append(c)
    return np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32), np.array(cls, np.int64)


def dog_detect(img: np.ndarray, *, threshold: float, sigma_ratio: float = 1.6, max_sigma: float = 13.0,
               min_sigma: float = 1.5):
    """scikit-image blob_dog on the normalised image (bright) and its inverse (dark): the tuned
    difference-of-Gaussians baseline. Score = the scale-normalised DoG response at the blob's scale."""
    from skimage.feature import blob_dog

    x = normalize(img)
    boxes, scores, cls = [], [], []
    for c, im in enumerate((x, 1.0 - x)):
        dogs: dict[float, np.ndarray] = {}  # blob_dog reports a few distinct scales: filter once per scale
        for y, xx, s in blob_dog(im, min_sigma=min_sigma, max_sigma=max_sigma, sigma_ratio=sigma_ratio,
                                 threshold=threshold, overlap=0.5):
            r = np.sqrt(2.0) * s
            if s not in dogs:
                dogs[s] = (ndi.gaussian_filter(im, s) - ndi.gaussian_filter(im, sigma_ratio * s)) / (sigma_ratio - 1.0)
            scores.append(float(dogs[s][int(y), int(xx)]))
            boxes.append([xx - r, y - r, xx + r, y + r])
            cls.append(c)
    return np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32), np.array(cls, np.int64)


def _matches(dets, gts, iou_thr: float = 0.5, class_aware: bool = False):
    """Greedy matching of every image's detections (highest score first): a list of (score, is true
    positive) over all images, and the number of ground-truth spots.

    Class-agnostic by default: the target is *spot* recall, so a found spot given the wrong bright/dark
    class is one hit, not a miss plus a false positive (per-class quality is the per-class AP)."""
    recs, n_gt = [], 0
    for (db, ds, dc), (gb, gc) in zip(dets, gts):
        n_gt += len(gc)
        used = np.zeros(len(gc), bool)
        iou_mat = _iou_matrix(db, gb)
        for k in np.argsort(-ds):
            same = (gc == dc[k]) if class_aware else np.ones(len(gc), bool)
            ious = np.where(same & ~used, iou_mat[k], 0.0) if len(gc) else np.zeros(0)
            j = int(np.argmax(ious)) if len(ious) else -1
            tp = j >= 0 and ious[j] >= iou_thr
            if tp:
                used[j] = True
            recs.append((float(ds[k]), bool(tp)))
    return recs, n_gt


# the card's size bands: a spot's size is the geometric mean of its box's width and height (its diameter
# for a round spot); the few ovals whose box exceeds 36 px count in the top band
SIZE_BANDS = {"6-10 px": (0.0, 10.0), "10-20 px": (10.0, 20.0), "20-36 px": (20.0, np.inf)}


def spot_size(boxes: np.ndarray) -> np.ndarray:
    """Size in pixels (geometric mean of box width and height) of each xyxy box."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.sqrt(np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None))


def found_spots(dets, gts, threshold: float, iou_thr: float = 0.5) -> list[np.ndarray]:
    """Per image, which ground-truth spots a detection scoring >= ``threshold`` matches (the greedy,
    class-agnostic matching of ``recall_at_fp``)."""
    out = []
    for (db, ds, _), (gb, gc) in zip(dets, gts):
        used = np.zeros(len(gc), bool)
        iou_mat = _iou_matrix(db, gb)
        for k in np.argsort(-ds):
            if ds[k] < threshold or not len(gc):
                continue
            ious = np.where(~used, iou_mat[k], 0.0)
            j = int(np.argmax(ious))
            if ious[j] >= iou_thr:
                used[j] = True
        out.append(used)
    return out


def recall_by_size(dets, gts, threshold: float) -> dict:
    """Recall per ``SIZE_BANDS`` band of the detections scoring >= ``threshold`` (false positives have no
    size band: read it at a threshold chosen on all sizes, e.g. that of ``recall_at_fp``)."""
    used = np.concatenate([u for u in found_spots(dets, gts, threshold)] or [np.zeros(0, bool)])
    size = np.concatenate([spot_size(gb) for gb, _ in gts] or [np.zeros(0)])
    out = {}
    for name, (lo, hi) in SIZE_BANDS.items():
        sel = (size >= lo) & (size < hi)
        out[name] = {"recall": round(float(used[sel].mean()), 4) if sel.any() else None, "n_spots": int(sel.sum())}
    return out


def recall_at_fp(dets, gts, fp_per_image: float = 1.0, class_aware: bool = False) -> dict:
    """Recall (IoU >= 0.5, class-agnostic unless ``class_aware``) at the lowest score threshold whose false
    positives average at most ``fp_per_image`` per image, and that threshold."""
    recs, n_gt = _matches(dets, gts, class_aware=class_aware)
    recs.sort(key=lambda t: -t[0])
    budget = fp_per_image * len(gts)
    tp = fp = 0
    best = {"recall": 0.0, "threshold": 1.0, "fp_per_image": 0.0}
    for i, (score, is_tp) in enumerate(recs):
        tp, fp = tp + is_tp, fp + (not is_tp)
        if fp > budget:
            break
        # a threshold sits between distinct scores only
        if i + 1 == len(recs) or recs[i + 1][0] < score:
            best = {"recall": round(tp / max(n_gt, 1), 4), "threshold": round(score, 4),
                    "fp_per_image": round(fp / len(gts), 3)}
    return best


def at_threshold(dets, gts, threshold: float, class_aware: bool = False) -> dict:
    """Recall and false positives per image (class-agnostic unless ``class_aware``) of the detections
    scoring >= ``threshold``."""
    recs, n_gt = _matches([(b[s >= threshold], s[s >= threshold], c[s >= threshold]) for b, s, c in dets], gts,
                          class_aware=class_aware)
    tp = sum(t for _, t in recs)
    return {"recall": round(tp / max(n_gt, 1), 4), "fp_per_image": round((len(recs) - tp) / len(gts), 3)}


def average_precision(dets, gts, n_classes: int = len(CLASSES), iou_thr: float = 0.5) -> dict:
    """VOC-style (all-point interpolated) AP at IoU 0.5 per class, their mean, and the class-agnostic AP.

    ``dets``: list per image of (boxes, scores, classes); ``gts``: list per image of (boxes, classes).
    """
    def ap_for(select_cls):
        recs, n_gt = [], 0
        for img_i, ((db, ds, dc), (gb, gc)) in enumerate(zip(dets, gts)):
            gmask = np.ones(len(gc), bool) if select_cls is None else gc == select_cls
            dmask = np.ones(len(dc), bool) if select_cls is None else dc == select_cls
            g = gb[gmask]
            n_gt += len(g)
            used = np.zeros(len(g), bool)
            dbs, dss = db[dmask], ds[dmask]
            iou_mat = _iou_matrix(dbs, g)
            for k in np.argsort(-dss):
                ious = iou_mat[k]
                j = int(np.argmax(ious)) if len(ious) else -1
                tp = j >= 0 and ious[j] >= iou_thr and not used[j]
                if tp:
                    used[j] = True
                recs.append((float(dss[k]), tp))
        if n_gt == 0:
            return float("nan")
        recs.sort(key=lambda t: -t[0])
        tp = np.cumsum([t[1] for t in recs]) if recs else np.zeros(0)
        fp = np.cumsum([not t[1] for t in recs]) if recs else np.zeros(0)
        recall = tp / n_gt
        precision = tp / np.maximum(tp + fp, 1e-9)
        mrec = np.concatenate([[0.0], recall, [1.0]])
        mpre = np.concatenate([[0.0], precision, [0.0]])
        for i in range(len(mpre) - 2, -1, -1):
            mpre[i] = max(mpre[i], mpre[i + 1])
        idx = np.flatnonzero(mrec[1:] != mrec[:-1])
        return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))

    per_class = [ap_for(c) for c in range(n_classes)]
    return {"ap50_per_class": [round(v, 4) for v in per_class], "map50": round(float(np.nanmean(per_class)), 4),
            "ap50_class_agnostic": round(ap_for(None), 4)}
