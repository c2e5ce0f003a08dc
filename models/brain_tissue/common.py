"""Labels, preprocessing, baseline and metrics of the brain-tissue model, shared by training and the test.

Kept free of torch so that the unit test (which runs the shipped ONNX) uses exactly the same code.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

CLASSES = ["background", "CSF / other brain", "grey matter", "white matter"]
COLORS = [None, "#1f77b4", "#ff7f0e", "#2ca02c"]
MULTIPLE_OF = 8
PERCENTILE = (1.0, 99.0)


def tissue_labels(t1: np.ndarray, gm: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """Hard labels from the template: 0 outside the (skull-stripped) brain, else the most probable of
    CSF/other (1 - gm - wm), grey matter and white matter."""
    brain = ndi.binary_fill_holes(t1 > 0)
    other = np.clip(1.0 - gm - wm, 0.0, 1.0)
    lab = np.argmax(np.stack([other, gm, wm]), axis=0).astype(np.uint8) + 1
    lab[~brain] = 0
    return lab


def normalize(img: np.ndarray) -> np.ndarray:
    """plugin.yaml ``intensity: {percentile: [1, 99]}``: the slice's 1st/99th percentiles mapped to [0, 1]
    with clipping, exactly as workbench.inference.preprocess.intensity_map does it."""
    lo, hi = (float(v) for v in np.percentile(img, PERCENTILE))
    if hi <= lo:
        hi = lo + 1.0
    return ((np.clip(img, lo, hi) - lo) / (hi - lo)).astype(np.float32)


def pad_to_multiple(img: np.ndarray, m: int = MULTIPLE_OF) -> np.ndarray:
    h, w = img.shape
    return np.pad(img, ((0, (-h) % m), (0, (-w) % m)))


def multi_otsu_baseline(img: np.ndarray) -> np.ndarray:
    """The classical pipeline a user would reach for: Otsu brain mask (largest component, holes filled),
    then a 3-class multi-Otsu inside it, ordered dark -> bright as CSF, grey matter, white matter."""
    from skimage.filters import threshold_multiotsu, threshold_otsu, gaussian

    smooth = gaussian(img, sigma=1.0, preserve_range=True)
    mask = smooth > threshold_otsu(smooth) * 0.5
    lab, n = ndi.label(mask)
    if n > 1:
        sizes = ndi.sum(mask, lab, range(1, n + 1))
        mask = lab == (1 + int(np.argmax(sizes)))
    mask = ndi.binary_fill_holes(mask)
    out = np.zeros(img.shape, np.uint8)
    vals = img[mask]
    if vals.size < 16 or np.ptp(vals) == 0:
        return out
    th = threshold_multiotsu(vals, classes=3)
    out[mask] = (np.digitize(img[mask], th) + 1).astype(np.uint8)
    return out


def dice_per_class(pred: np.ndarray, truth: np.ndarray, n_classes: int = 4) -> np.ndarray:
    """Dice of each class, pooled over all given pixels (so slices without a class do not count as 1)."""
    out = np.zeros(n_classes)
    for c in range(n_classes):
        p, t = pred == c, truth == c
        denom = p.sum() + t.sum()
        out[c] = 2.0 * np.logical_and(p, t).sum() / denom if denom else 1.0
    return out


def degrade(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Held-out test condition: Gaussian noise of ``sigma`` (on the [0, 1] scale of the template)."""
    if sigma <= 0:
        return img.astype(np.float32)
    rng = np.random.default_rng(seed)
    # clipped like an 8-bit image (and like the first-run sample)
    return np.clip(img + rng.normal(0.0, sigma, img.shape), 0.0, 1.0).astype(np.float32)
