"""Train, evaluate and export the focal-spot detector plugin: ``python -m models.focal_spot.train``.

A CenterNet-style, single-scale (stride 4) detector: a small stride-32 backbone with an FPN-style top-down
path back to stride 4, one head per cell predicting a per-class centre heatmap (Gaussian targets,
penalty-reduced focal loss), the centre offset and log width/height. The exported graph (since v3) averages
the maps of the image and its three flips (a test-time ensemble), then decodes itself into the
YOLOv8 layout ``[1, 4+C, N]`` (cx, cy, w, h in input pixels, then per-class scores that are zero except at
3x3 local maxima of the heatmap), so the app's yolov8 decoder (and NMS) reads it like an Ultralytics export.

Training data: random crops (rescaled, flipped, sometimes inverted) of every offline natural image but the
held-out ones, MNI slices outside the held-out slab and pydicom's CT/MR/NM/US test images, with synthetic
spots inserted on the fly (common.insert_blobs) and unlabelled hard negatives (tubes, rings, textured
blobs, dots and discs out of the size range). Evaluation: recall at <= 1 false positive per image and AP50
on spots of >= 20 % contrast inserted into held-out images (camera, moon, astronaut, CT_small, an MR slice,
the MNI slab) against scikit-image blob_log and blob_dog, tuned on training insertions in the same run.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi
from scipy.special import erfc
from torch import nn

from ..common.data import (
    REPO,
    TRAIN_DICOM_SLICES,
    TRAIN_IMAGES,
    load_dicom_gray,
    load_gray,
    mni_orthogonal_slices,
    mni_train_z_ranges,
    mni_volume,
    skimage_data_dir,
)
from ..common.export import onnx_latency_ms, ort_session
from ..common.runner import Recipe
from .card import PLUGIN_ID, VERSION, _shipped_version, write_card, write_plugin
from .common import (
    CLASSES,
    CROP,
    EXTRA_HELD_OUT_IMAGES,
    HELDOUT_CONTRAST,
    NATURAL_P,
    SMALL_P,
    STRIDE,
    _near,
    at_threshold,
    average_precision,
    blob_log_detect,
    dog_detect,
    heldout_kinds,
    heldout_set,
    insert_blobs,
    normalize,
    onnx_detect,
    recall_at_fp,
    recall_by_size,
)

# every offline scikit-image picture that is not held out and not already in TRAIN_IMAGES
EXTRA_TRAIN_IMAGES = ("motorcycle_right.png", "phantom.png", "chessboard_GRAY.png", "color.png", "logo.png")
MIN_BASE = 80  # smaller backgrounds are upsampled to this; bases smaller than a crop are zero-padded like the app pads
# the display threshold is the lowest score with at most this many false positives per image on a
# validation set of insertions into training images (held-out images play no part in choosing it)
VAL_FP_PER_IMAGE = 0.5


def cbr(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class SpotNet(nn.Module):
    """The detector. ``tta`` (the exported graph since v3): ``forward`` runs the net on the image and its
    three flips (one batch) and averages the flipped-back heatmaps and box maps before decoding; ``raw``
    (training) is always a single pass."""

    def __init__(self, n_classes: int = len(CLASSES), tta: bool = True):
        super().__init__()
        self.tta = tta
        self.s4 = nn.Sequential(cbr(1, 16, 2), cbr(16, 32, 2), cbr(32, 32))
        self.s8 = nn.Sequential(cbr(32, 64, 2), cbr(64, 64))
        self.s16 = nn.Sequential(cbr(64, 96, 2), cbr(96, 96))
        self.s32 = nn.Sequential(cbr(96, 128, 2), cbr(128, 128))
        self.l16 = nn.Conv2d(128, 96, 1)
        self.l8 = nn.Conv2d(96, 64, 1)
        self.l4 = nn.Conv2d(64, 32, 1)
        self.head = nn.Sequential(cbr(32, 32), nn.Conv2d(32, 4 + n_classes, 1))
        nn.init.constant_(self.head[1].bias[4:], -2.19)  # CenterNet's prior: heatmap 0.1 at start

    def raw(self, x):
        c4 = self.s4(x)
        c8 = self.s8(c4)
        c16 = self.s16(c8)
        c32 = self.s32(c16)
        p16 = c16 + F.interpolate(self.l16(c32), scale_factor=2.0, mode="nearest")
        p8 = c8 + F.interpolate(self.l8(p16), scale_factor=2.0, mode="nearest")
        p4 = c4 + F.interpolate(self.l4(p8), scale_factor=2.0, mode="nearest")
        return self.head(p4)  # (N, 4 + C, H/4, W/4): dx, dy, log w, log h, class logits

    def averaged(self, x):
        """Heatmaps (sigmoid) and box maps of ``x``, averaged over the identity and the horizontal,
        vertical and both flips: an ensemble for free training, about 4x the compute. A flipped map is
        flipped back and its centre offset along the flipped axis negated."""
        n = x.shape[0]
        r = self.raw(torch.cat([x, x.flip(3), x.flip(2), x.flip(2, 3)], 0))
        parts = []
        for part, axes in zip(torch.split(r, n, 0), ((), (3,), (2,), (2, 3))):
            if axes:
                part = part.flip(axes)
                sign = torch.ones(1, part.shape[1], 1, 1)
                if 3 in axes:
                    sign[0, 0] = -1.0
                if 2 in axes:
                    sign[0, 1] = -1.0
                part = part * sign
            parts.append(part)
        r = torch.stack(parts).mean(0)
        heat = torch.stack([torch.sigmoid(p[:, 4:]) for p in parts]).mean(0)
        return r, heat

    def forward(self, x):
        if self.tta:
            r, heat = self.averaged(x)
        else:
            r = self.raw(x)
            heat = torch.sigmoid(r[:, 4:])
        n, _, h, w = r.shape
        gy = (torch.arange(h, dtype=torch.float32).view(1, h, 1) + 0.5).expand(1, h, w)
        gx = (torch.arange(w, dtype=torch.float32).view(1, 1, w) + 0.5).expand(1, h, w)
        cx = (gx + r[:, 0]) * STRIDE
        cy = (gy + r[:, 1]) * STRIDE
        bw = torch.exp(r[:, 2].clamp(-4, 5)) * STRIDE
        bh = torch.exp(r[:, 3].clamp(-4, 5)) * STRIDE
        # CenterNet decoding, class-agnostic: a cell reports a spot only at a 3x3 local maximum of the
        # strongest class's heatmap, and only as that class (a spot is bright or dark, never both: class-wise
        # peaks gave the same spot twice, one of them a false positive of the other class)
        top = heat.amax(1, keepdim=True)
        peak = F.max_pool2d(top, 3, stride=1, padding=1)
        scores = heat * ((top >= peak) & (heat >= top)).to(heat.dtype)
        out = torch.cat([torch.stack([cx, cy, bw, bh], 1), scores], 1)
        return out.flatten(2)  # (N, 4 + C, H/4 * W/4): the YOLOv8 layout


def training_bases(with_count: bool = False):
    """Every training background: natural images (the held-out photographs excluded), MNI T1 slices of all
    orientations outside the held-out slab and its margin, grey/white-matter map slices from the same
    range, pydicom's training slices (upsampled to MIN_BASE when smaller). With ``with_count``, also the
    number of natural images (they come first)."""
    from skimage.transform import resize

    names = [n for n in TRAIN_IMAGES + EXTRA_TRAIN_IMAGES
             if n not in EXTRA_HELD_OUT_IMAGES and (skimage_data_dir() / n).exists()]
    bases = [im for im in (load_gray(n) for n in names) if min(im.shape) >= MIN_BASE]
    n_natural = len(bases)  # natural first, then medical (model_validation_set relies on the order)
    t1 = mni_volume("t1")
    for zr in mni_train_z_ranges(t1.shape[2]):
        bases += [s for s in mni_orthogonal_slices(t1, zr, step=4) if min(s.shape) >= MIN_BASE]
    # the grey- and white-matter probability maps outside the slab: other contrasts of the same anatomy
    for kind in ("gm", "wm"):
        vol = mni_volume(kind)
        vol = vol / max(float(vol.max()), 1e-6)
        for zr in mni_train_z_ranges(vol.shape[2]):
            bases += [s for s in mni_orthogonal_slices(vol, zr, step=12) if min(s.shape) >= MIN_BASE]
    for name in TRAIN_DICOM_SLICES:
        try:
            im = load_dicom_gray(name)
        except Exception as exc:  # a codec missing in this environment: train without that file
            print(f"skipped {name}: {exc}", flush=True)
            continue
        if min(im.shape) < MIN_BASE:
            f = MIN_BASE / min(im.shape)
            im = resize(im, (int(np.ceil(im.shape[0] * f)), int(np.ceil(im.shape[1] * f))), order=1)
        bases.append(im.astype(np.float32))
    return (bases, n_natural) if with_count else bases


def _blob_mask(h, w, cx, cy, a, b, th, edge):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = xx - cx, yy - cy
    u = (dx * np.cos(th) + dy * np.sin(th)) / a
    v = (-dx * np.sin(th) + dy * np.cos(th)) / b
    rho = np.sqrt(u * u + v * v)
    return rho, 0.5 * erfc((rho - 1.0) * min(a, b) / (np.sqrt(2.0) * edge))


def insert_distractors(img: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, n_max: int = 4):
    """Unlabelled hard negatives: blob-like structures that are not spots of the task (tubes with axis
    ratio 4-12, rings, blobs with a strongly textured inside, dots under 5 px and discs over 44 px across),
    each away from the labelled ``boxes``."""
    out = img.astype(np.float64)
    h, w = out.shape
    lo, hi = np.percentile(out, [1, 99])
    rng_i = max(hi - lo, 0.05)
    placed = [b for b in boxes]
    for _ in range(rng.integers(1, n_max + 1)):
        kind = rng.integers(5)
        th = rng.uniform(0, np.pi)
        if kind == 0:  # tube (a vessel in plane)
            b = rng.uniform(1.5, 5.0)
            a = b * rng.uniform(4.0, 12.0)
        elif kind == 3:  # dot below the size range
            a = b = rng.uniform(0.8, 2.2)
        elif kind == 4:  # disc above the size range
            a = b = rng.uniform(23.0, 40.0)
        else:  # ring or textured blob
            a = rng.uniform(5.0, 18.0)
            b = a / rng.uniform(1.0, 2.0)
        ex, ey = abs(a * np.cos(th)) + abs(b * np.sin(th)), abs(a * np.sin(th)) + abs(b * np.cos(th))
        if w <= 2 * ex + 4 or h <= 2 * ey + 4:
            continue
        cx, cy = rng.uniform(ex + 1, w - ex - 1), rng.uniform(ey + 1, h - ey - 1)
        box = np.array([cx - ex, cy - ey, cx + ex, cy + ey])
        if any(_near(box, bb, gap=4.0) for bb in placed):
            continue
        sign = 1 if rng.random() < 0.5 else -1
        contrast = sign * rng.uniform(0.2, 0.6) * rng_i
        rho, mask = _blob_mask(h, w, cx, cy, a, b, th, rng.uniform(0.3, 1.5))
        if kind == 1:  # ring: the inside keeps the background
            t = rng.uniform(0.15, 0.4)
            _, inner = _blob_mask(h, w, cx, cy, a * (1 - t), b * (1 - t), th, 0.5)
            mask = np.clip(mask - inner, 0, 1)
        elif kind == 2:  # textured: the inside varies as much as the blob stands out
            tex = ndi.gaussian_filter(rng.normal(0, 1, (h, w)), rng.uniform(0.8, 2.5))
            mask = mask * (1.0 + 1.2 * tex / max(tex.std(), 1e-6))
        out += contrast * mask
        placed.append(box)
    return out.astype(np.float32)


def _augment_after(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Acquisition-like changes of the whole image, spots included: blur, speckle, coarse quantisation."""
    lo, hi = np.percentile(img, [1, 99])
    rng_i = max(float(hi - lo), 0.05)
    if rng.random() < 0.25:
        img = ndi.gaussian_filter(img, rng.uniform(0.4, 1.2))
    if rng.random() < 0.15:  # multiplicative (speckle-like) noise, as in ultrasound or low-dose images
        img = img * (1.0 + rng.normal(0, rng.uniform(0.03, 0.12), img.shape))
    if rng.random() < 0.1:  # few grey levels: an 8-bit picture of a narrow range
        levels = rng.uniform(12, 48) / rng_i
        img = np.round(img * levels) / levels
    return img.astype(np.float32)


def make_crop(base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop of ``base`` at most CROP x CROP (rescaled 0.6-1.4x, rotated, flipped, sometimes
    inverted or gamma-changed); smaller than CROP when the base is, or (30 %) cut to an odd size, so that
    training sees the zero padding the app adds to reach a multiple of 32."""
    scale = np.exp(rng.uniform(np.log(0.6), np.log(1.4)))
    want = int(round(CROP / scale))
    hs, ws = min(want, base.shape[0]), min(want, base.shape[1])
    i, j = rng.integers(0, base.shape[0] - hs + 1), rng.integers(0, base.shape[1] - ws + 1)
    crop = base[i:i + hs, j:j + ws]
    th, tw = min(CROP, int(round(hs * scale))), min(CROP, int(round(ws * scale)))
    if (th, tw) != crop.shape:
        crop = ndi.zoom(crop, (th / hs, tw / ws), order=1)[:CROP, :CROP]
    crop = np.rot90(crop, rng.integers(4))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if rng.random() < 0.3:
        h2 = int(rng.integers(min(crop.shape[0], 2 * CROP // 3), crop.shape[0] + 1))
        w2 = int(rng.integers(min(crop.shape[1], 2 * CROP // 3), crop.shape[1] + 1))
        crop = crop[:h2, :w2]
    if rng.random() < 0.2:
        crop = 1.0 - crop
    if rng.random() < 0.3:
        crop = np.clip(crop, 0, 1) ** rng.uniform(0.6, 1.6)
    return np.ascontiguousarray(crop, dtype=np.float32)


def make_batch(bases, n, rng, distractor_p: float = 0.6, n_natural: int | None = None,
               natural_p: float = NATURAL_P, small_p: float = SMALL_P):
    """``n`` training crops with inserted spots (and hard negatives) and their targets. With ``n_natural``
    (the natural bases come first), half the crops are natural and half medical, however many slices of
    each there are."""
    xs, targets = [], []
    for _ in range(n):
        if n_natural is None:
            k = rng.integers(len(bases))
        elif rng.random() < natural_p:
            k = rng.integers(n_natural)
        else:
            k = n_natural + rng.integers(len(bases) - n_natural)
        crop = make_crop(bases[k], rng)
        img, boxes, cls = insert_blobs(crop, rng, contrast_range=(0.12, 0.6), noise_p=0.4, small_p=small_p)
        if rng.random() < distractor_p:
            img = insert_distractors(img, boxes, rng)
        x = normalize(_augment_after(img, rng))
        # pad bottom/right with the model's 0, as onnx_detect and the app's engine do
        xs.append(np.pad(x, ((0, CROP - x.shape[0]), (0, CROP - x.shape[1]))))
        targets.append((boxes, cls))
    return torch.from_numpy(np.stack(xs)[:, None]), targets


def assign(targets, h, w, n_classes):
    """CenterNet targets: per class a Gaussian heatmap peaking at 1 on each spot's centre cell (sigma =
    a sixth of the spot's smaller side in cells, at least 0.5); offset and log size at cells where the
    spot's Gaussian is >= 0.5."""
    n = len(targets)
    heat_t = np.zeros((n, n_classes, h, w), np.float32)
    box_t = np.zeros((n, 4, h, w), np.float32)
    box_w = np.zeros((n, h, w), np.float32)
    gy = np.arange(h, dtype=np.float64)[:, None] + 0.5
    gx = np.arange(w, dtype=np.float64)[None, :] + 0.5
    for b, (boxes, cls) in enumerate(targets):
        for (x1, y1, x2, y2), c in zip(boxes, cls):
            cx, cy, bw, bh = (x1 + x2) / 2 / STRIDE, (y1 + y2) / 2 / STRIDE, (x2 - x1), (y2 - y1)
            ci, cj = int(np.clip(cy, 0, h - 1)), int(np.clip(cx, 0, w - 1))
            sig = max(0.5, min(bw, bh) / STRIDE / 6.0)
            g = np.exp(-((gy - (ci + 0.5)) ** 2 + (gx - (cj + 0.5)) ** 2) / (2 * sig * sig))
            heat_t[b, c] = np.maximum(heat_t[b, c], g)
            m = g >= 0.5
            yy, xx = np.nonzero(m)
            box_t[b, 0, yy, xx] = cx - (xx + 0.5)
            box_t[b, 1, yy, xx] = cy - (yy + 0.5)
            box_t[b, 2, yy, xx] = np.log(bw / STRIDE)
            box_t[b, 3, yy, xx] = np.log(bh / STRIDE)
            box_w[b][m] = g[m]
            heat_t[b, c, ci, cj] = 1.0
    return torch.from_numpy(heat_t), torch.from_numpy(box_t), torch.from_numpy(box_w)


def centernet_focal_loss(logits, target):
    """CenterNet's penalty-reduced pixel-wise focal loss (alpha 2, beta 4), summed (divide by the spots)."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1.0).float()
    pos_loss = -torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = -torch.log(1 - p) * p ** 2 * (1 - target) ** 4 * (1 - pos)
    return (pos_loss + neg_loss).sum(), pos.sum()


def validation_set(bases, rng, n: int = 24):
    """Insertions (held-out contrast) into 192 px crops of training bases: where baselines are tuned and
    the display threshold is chosen."""
    sets = []
    for k in range(n):
        base = bases[(k * 7) % len(bases)]
        i = rng.integers(0, base.shape[0] - min(192, base.shape[0]) + 1)
        j = rng.integers(0, base.shape[1] - min(192, base.shape[1]) + 1)
        sets.append(insert_blobs(base[i:i + 192, j:j + 192], rng, contrast_range=HELDOUT_CONTRAST))
    return sets


def model_validation_set(bases, n_natural: int, rng, n_medical: int = 24, meta: list | None = None):
    """One insertion (held-out contrast) into each of the natural training bases and ``n_medical`` medical
    ones (evenly spaced), whole (at most 512 x 512): images as large as the held-out ones, so that false
    positives per image mean the same. The display threshold is chosen here; held-out images play no part.
    With ``meta`` (a list), also appends per image the background and the per-spot draws (insert_blobs)."""
    medical = bases[n_natural:]
    picks = list(bases[:n_natural]) + [medical[k] for k in np.linspace(0, len(medical) - 1, n_medical).astype(int)]
    kinds = ["natural"] * n_natural + ["medical"] * n_medical
    sets = []
    for b in picks:
        spots: list = []
        sets.append(insert_blobs(b[:512, :512], rng, contrast_range=HELDOUT_CONTRAST, meta=spots))
        if meta is not None:
            meta.append({"base": b[:512, :512], "spots": spots})
    return sets, kinds


def warm_start(onnx_path=None, out=None) -> None:
    """Write ``models/focal_spot/weights.pt`` from a shipped model.onnx (whose export folded each batch norm
    into its convolution), for ``--resume``: the convolutions get the folded weights, and each batch norm is
    set to give back, in training mode, what the folded convolution gave (gamma = the batch standard
    deviation, beta = the batch mean of its output on training crops), so training continues from the shipped
    model instead of from scratch. ``python -c "from models.focal_spot.train import warm_start; warm_start()"``
    """
    import onnx
    from onnx import numpy_helper

    from pathlib import Path

    onnx_path = Path(onnx_path or REPO / "plugins" / PLUGIN_ID / "model.onnx")
    out = Path(out or REPO / "models" / "focal_spot" / "weights.pt")
    out.parent.mkdir(parents=True, exist_ok=True)
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(onnx_path)).graph.initializer}
    net = SpotNet()
    folded = [n for n in inits if n.startswith("onnx::Conv_")]
    folded.sort(key=lambda n: int(n.rsplit("_", 1)[1]))
    convs = [m for m in net.modules() if isinstance(m, nn.Sequential) and len(m) == 3
             and isinstance(m[0], nn.Conv2d) and isinstance(m[1], nn.BatchNorm2d)]
    assert len(folded) == 2 * len(convs), (len(folded), len(convs))
    state = net.state_dict()
    for k in ("l16", "l8", "l4", "head.1"):
        for p in ("weight", "bias"):
            state[f"{k}.{p}"] = torch.from_numpy(inits[f"{k}.{p}"].copy())
    net.load_state_dict(state)
    with torch.no_grad():
        for m, (wn, bn) in zip(convs, zip(folded[::2], folded[1::2])):
            m[0].weight.copy_(torch.from_numpy(inits[wn]))
            m[0].bias.copy_(torch.from_numpy(inits[bn]))
        bases, n_natural = training_bases(with_count=True)
        x, _ = make_batch(bases, 32, np.random.default_rng(3), n_natural=n_natural)
        # calibrate in forward order: each batch norm sees the already calibrated layers before it
        for m in convs:
            hook_out = {}
            h = m[0].register_forward_hook(lambda mod, i, o, d=hook_out: d.setdefault("z", o))
            net.eval()
            net.raw(x)
            h.remove()
            z = hook_out["z"]
            mu, sd = z.mean((0, 2, 3)), z.var((0, 2, 3), unbiased=False).add(m[1].eps).sqrt()
            m[1].weight.copy_(sd)
            m[1].bias.copy_(mu)
            m[1].running_mean.copy_(mu)
            m[1].running_var.copy_(sd * sd - m[1].eps)
    torch.save(net.state_dict(), out)
    print(f"warm start written to {out} from {onnx_path}", flush=True)


def tune_baselines(sets) -> dict:
    """blob_log threshold and blob_dog threshold and sigma ratio maximising mAP50 on ``sets``."""
    gts = [(b, c) for _, b, c in sets]
    out = {}
    # the smallest scale too (v3): sigma 1.0-2.0 covers the 6 px spots the detectors miss most
    grids = {"blob_log": (blob_log_detect, [{"threshold": t, "max_sigma": 13.0, "min_sigma": m}
                                                   for t in (0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3)
                                                   for m in (1.0, 1.5, 2.0)]),
             "dog": (dog_detect, [{"threshold": t, "sigma_ratio": k, "max_sigma": 13.0, "min_sigma": m}
                                  for t in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2) for k in (1.3, 1.6, 2.0)
                                  for m in (1.0, 1.5, 2.0)])}
    for name, (fn, grid) in grids.items():
        best, best_map = None, -1.0
        for params in grid:
            m = average_precision([fn(im, **params) for im, _, _ in sets], gts)["map50"]
            if m > best_map:
                best, best_map = params, m
        out[name] = {"params": best, "train_map50": best_map}
    return out


def _validation(dets, gts, kinds, threshold: float) -> dict:
    """The validation figures: overall, then per kind of background."""
    keys = ("recall_at_1fp", "recall_at_1fp_by_size", "at_display_threshold", "map50", "ap50_per_class")
    out = {k: v for k, v in _report(dets, gts, threshold).items() if k in keys}
    for kind in ("natural", "medical"):
        sel = [i for i, k in enumerate(kinds) if k == kind]
        out[kind] = {k: v for k, v in _report([dets[i] for i in sel], [gts[i] for i in sel], threshold).items()
                     if k in keys}
    return out


def _report(dets, gts, threshold: float) -> dict:
    """AP50, recall at <= 1 FP/image (and per size band at that operating point), and the figures at the
    display ``threshold``."""
    op = recall_at_fp(dets, gts, 1.0)
    return {**average_precision(dets, gts), "recall_at_1fp": op,
            "recall_at_1fp_class_aware": recall_at_fp(dets, gts, 1.0, class_aware=True),
            "recall_at_1fp_by_size": recall_by_size(dets, gts, op["threshold"]),
            "at_display_threshold": at_threshold(dets, gts, threshold)}


def evaluate(onnx_path, baselines: dict, threshold: float, previous: bytes | None = None) -> dict:
    """Held-out AP50, recall at <= 1 FP/image and the figures at the display threshold, for the model, the
    previous shipped model, blob_log and DoG; overall and per kind of background (natural / medical)."""
    import onnxruntime as ort

    data = heldout_set()
    kinds = heldout_kinds()
    gts = [(b, c) for _, b, c in data]
    sess = ort_session(onnx_path)
    runs = {"model": [onnx_detect(sess, im, score_threshold=0.01) for im, _, _ in data]}
    if previous is not None:
        prev = ort.InferenceSession(previous, providers=["CPUExecutionProvider"])
        runs["previous"] = [onnx_detect(prev, im, score_threshold=0.01) for im, _, _ in data]
    runs["blob_log"] = [blob_log_detect(im, **baselines["blob_log"]["params"]) for im, _, _ in data]
    runs["dog"] = [dog_detect(im, **baselines["dog"]["params"]) for im, _, _ in data]
    out = {"n_images": len(data), "n_spots": int(sum(len(b) for b, _ in gts)),
           "contrast_range": list(HELDOUT_CONTRAST)}
    for name, dets in runs.items():
        thr = threshold if name == "model" else 0.0
        out[name] = _report(dets, gts, thr)
        for kind in ("natural", "medical"):
            sel = [i for i, k in enumerate(kinds) if k == kind]
            out[name][kind] = _report([dets[i] for i in sel], [gts[i] for i in sel], thr)
    return out


class FocalSpot(Recipe):
    """The focal-spot detector: inserted spots, focal + smooth-L1 loss, blob_log baseline."""

    plugin_id, name = PLUGIN_ID, "focal_spot"
    minutes, batch, lr = 18.0, 16, 2e-3
    clip_grad = 5.0
    example_shape = (1, 1, 256, 256)
    write_plugin, write_card = staticmethod(write_plugin), staticmethod(write_card)

    def prepare(self):
        self.bases, self.n_natural = training_bases(with_count=True)
        print(f"training bases: {len(self.bases)}", flush=True)
        shipped = REPO / "plugins" / PLUGIN_ID / "model.onnx"
        # the shipped model as it was before this run, evaluated beside the new one (ship only if better)
        self.previous = shipped.read_bytes() if shipped.exists() else None
        self.previous_version = _shipped_version() if shipped.exists() else None

    def build_net(self):
        return SpotNet()

    def loss(self, net):
        x, targets = make_batch(self.bases, self.args.batch, self.rng, n_natural=self.n_natural)
        r = net.raw(x)
        heat_t, box_t, box_w = assign(targets, r.shape[2], r.shape[3], len(CLASSES))
        l_heat, npos = centernet_focal_loss(r[:, 4:], heat_t)
        npos = max(1.0, float(npos))
        wsum = max(1.0, float(box_w.sum()))
        l_box = (F.smooth_l1_loss(r[:, :4], box_t, beta=0.1, reduction="none").sum(1) * box_w).sum() / wsum
        l_cls = l_heat / npos
        loss = l_cls + l_box
        return loss, {"loss": loss.item(), "cls": l_cls.item(), "box": l_box.item()}

    def progress(self, ema, last):
        return f"loss(ema)={ema['loss']:.4f} cls={last['cls']:.3f} box={last['box']:.3f}"

    def finished(self, ema):
        return f"loss(ema)={ema['loss']:.4f}"

    def measure(self, onnx_path):
        val = validation_set(self.bases, np.random.default_rng(1))
        baselines = tune_baselines(val)
        print(f"baselines tuned on training insertions: {baselines}", flush=True)
        sess = ort_session(onnx_path)
        mval, mkinds = model_validation_set(self.bases, self.n_natural, np.random.default_rng(2))
        val_dets = [onnx_detect(sess, im, score_threshold=0.01) for im, _, _ in mval]
        val_gts = [(b, c) for _, b, c in mval]
        chosen = recall_at_fp(val_dets, val_gts, VAL_FP_PER_IMAGE)
        threshold = max(0.05, chosen["threshold"])
        print(f"display threshold {threshold} (validation: {chosen})", flush=True)
        validation = _validation(val_dets, val_gts, mkinds, threshold)
        validation = {"n_images": len(mval), "n_spots": int(sum(len(b) for b, _ in val_gts)),
                      "fp_per_image_target": VAL_FP_PER_IMAGE, **chosen, **validation}
        print(f"validation: {validation}", flush=True)
        if self.previous is not None:  # the model this one would replace, on the same validation images
            import onnxruntime as ort

            prev = ort.InferenceSession(self.previous, providers=["CPUExecutionProvider"])
            prev_dets = [onnx_detect(prev, im, score_threshold=0.01) for im, _, _ in mval]
            prev_thr = max(0.05, recall_at_fp(prev_dets, val_gts, VAL_FP_PER_IMAGE)["threshold"])
            validation["previous"] = _validation(prev_dets, val_gts, mkinds, prev_thr)
            print(f"validation of the previous model: {validation['previous']}", flush=True)
        metrics = evaluate(onnx_path, baselines, threshold, self.previous)
        metrics["score_threshold"] = threshold
        metrics["validation"] = validation
        metrics["baseline_params"] = {k: v["params"] for k, v in baselines.items()}
        x512 = np.zeros((1, 1, 512, 512), np.float32)
        metrics["latency_ms_512x512_1thread"] = onnx_latency_ms(onnx_path, x512)
        metrics["version"] = VERSION
        if self.previous is not None:
            import tempfile
            from pathlib import Path

            metrics["previous_version"] = self.previous_version
            with tempfile.TemporaryDirectory() as tmp:  # same run, same load: the latencies compare
                prev_path = Path(tmp) / "previous.onnx"
                prev_path.write_bytes(self.previous)
                metrics["previous_latency_ms_512x512_1thread"] = onnx_latency_ms(prev_path, x512)
        return metrics

    def train_summary(self, ema):
        return {"final_loss_ema": round(ema["loss"], 4), "batch": self.args.batch, "crop": CROP}


def evaluate_export(out_dir, log_path=None) -> dict:
    """Evaluate an ``--export-only`` run's ``out_dir/model.onnx`` as a full run would (validation, held-out,
    baselines, latency, against the shipped model) and write ``out_dir/metrics.json``, with the training
    figures read from the run's ``log_path`` (its ``finished:`` line) and the earlier runs from the
    metrics.json the run resumed from. Lets one decide on validation before publishing:
    ``python -c "from models.focal_spot.train import evaluate_export; evaluate_export('DIR', 'DIR/log.txt')"``
    """
    import argparse
    import json
    import re
    from pathlib import Path

    out_dir = Path(out_dir)
    recipe = FocalSpot()
    recipe.args = argparse.Namespace(batch=recipe.batch)
    recipe.prepare()
    metrics = recipe.measure(out_dir / "model.onnx")
    if log_path is not None:
        log = Path(log_path).read_text()
        done = re.search(r"^finished: (\d+) steps in (\d+)s, loss\(ema\)=([\d.]+)", log, re.M)
        if done:
            metrics["train"] = {"steps": int(done[1]), "seconds": int(done[2]), "final_loss_ema": float(done[3]),
                                "batch": recipe.batch, "crop": CROP}
            metrics_path = out_dir / "metrics.json"
            earlier = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
            metrics["train_runs"] = earlier.get("train_runs", [earlier["train"]] if "train" in earlier else []) + \
                [metrics["train"]]
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics


def main(argv=None):
    """``python -m models.focal_spot.train [options]`` (see ``--help``)."""
    FocalSpot().main(argv)


if __name__ == "__main__":
    main()
