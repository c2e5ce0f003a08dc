"""Degradations, held-out set, heuristic baseline and plugin preprocessing of the quality classifier.

No torch here: the unit test imports it to evaluate the shipped ONNX exactly like training did.

Classes (each a defect a user wants to know about before measuring or feeding a model; the ranges are
chosen with a gap to "good" so that a label is unambiguous):
- good: the source image, at most barely perceptible noise (sigma <= 2/255) or softening (blur sigma <= 0.5);
- noisy: additive Gaussian (sigma 5-30 / 255) or Poisson-like noise of similar strength;
- blurred: Gaussian blur, sigma 1-3 px (defocus-like), or linear motion blur 4-12 px long at any angle;
- low contrast: the intensities squeezed into 10-35 % of the 8-bit range (under-exposure, bad window),
  quantised to 8 bits like a real low-contrast file.
All images are 8-bit: the model reads raw 0-255 values (``scale: 1/255``), because a per-image contrast
stretch would erase the very defect "low contrast" describes.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..common.data import HELD_OUT_SLAB, load_dicom, load_gray, mni_heldout_slice

CLASSES = ["good", "noisy", "blurred", "low contrast"]


def degrade(clean: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray:
    """A degraded 8-bit version (uint8) of ``clean`` (float in [0, 1]) for class ``label``."""
    x = clean.astype(np.float64)
    # the source is first stretched to its full range (a crop of sky is not "low contrast" by itself), then
    # exposed at random so that brightness alone tells nothing
    p_lo, p_hi = np.percentile(x, [0.5, 99.5])
    x = np.clip((x - p_lo) / max(p_hi - p_lo, 1e-3), 0.0, 1.0)
    lo = rng.uniform(0.0, 0.1)
    x = lo + x * rng.uniform(0.75, 1.0 - lo)
    if label == 0:
        if rng.random() < 0.5:
            x = ndi.gaussian_filter(x, rng.uniform(0.0, 0.5))
        x = x + rng.normal(0, rng.uniform(0, 2) / 255, x.shape)
    elif label == 1:
        if rng.random() < 0.7:
            x = x + rng.normal(0, rng.uniform(5, 30) / 255, x.shape)
        else:
            peak = rng.uniform(12, 120)
            x = rng.poisson(np.clip(x, 0, 1) * peak) / peak
    elif label == 2:
        if rng.random() < 0.6:
            x = ndi.gaussian_filter(x, rng.uniform(1.0, 3.0))
        else:
            x = ndi.convolve(x, motion_kernel(rng.uniform(4, 12), rng.uniform(0, np.pi)), mode="reflect")
        x = x + rng.normal(0, rng.uniform(0, 1.5) / 255, x.shape)
    elif label == 3:
        span = rng.uniform(0.1, 0.35)
        x = rng.uniform(0.05, 0.95 - span) + (x - x.min()) / max(np.ptp(x), 1e-6) * span
        x = x + rng.normal(0, rng.uniform(0, 1.5) / 255, x.shape)
    else:
        raise ValueError(f"label {label} out of range")
    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8)


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised line kernel ``length`` px long at ``angle`` (radians), anti-aliased by supersampling."""
    size = int(np.ceil(length)) | 1
    k = np.zeros((size * 4, size * 4))
    c = (size * 4 - 1) / 2.0
    for t in np.linspace(-length * 2, length * 2, 8 * size):
        k[int(round(c + t * np.sin(angle))), int(round(c + t * np.cos(angle)))] = 1.0
    k = k.reshape(size, 4, size, 4).sum((1, 3))
    return k / k.sum()


def heldout_bases() -> list[np.ndarray]:
    """Sources never trained on: camera, moon, CT_small and axial slices of the MNI held-out slab."""
    out = [load_gray("camera.png"), load_gray("moon.png"), load_dicom("CT_small.dcm")]
    out += [mni_heldout_slice(k) for k in range(HELD_OUT_SLAB[0] + 2, HELD_OUT_SLAB[1], 5)]
    return out


def heldout_set(draws: int = 6, seed: int = 2024) -> tuple[list[np.ndarray], np.ndarray]:
    """Every held-out base x class x ``draws`` random degradations (random crops of >= 96 px)."""
    rng = np.random.default_rng(seed)
    imgs, labels = [], []
    for base in heldout_bases():
        for label in range(len(CLASSES)):
            for _ in range(draws):
                h, w = base.shape
                ch, cw = rng.integers(min(96, h), h + 1), rng.integers(min(96, w), w + 1)
                i, j = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
                imgs.append(degrade(base[i:i + ch, j:j + cw], label, rng))
                labels.append(label)
    return imgs, np.array(labels)


def onnx_classify(sess, img8: np.ndarray) -> np.ndarray:
    """The plugin.yaml pipeline: x / 255 at native size (``resize: none``, any size), run; returns logits."""
    x = img8.astype(np.float32) / 255.0
    return sess.run(None, {"input": x[None, None]})[0][0]


def heuristic_features(img8: np.ndarray) -> np.ndarray:
    """Laplacian variance (sharpness), estimate_sigma (noise), p99 - p1 and std (contrast), on 0-255."""
    from skimage.restoration import estimate_sigma

    x = img8.astype(np.float64)
    lap = ndi.laplace(x)
    p1, p99 = np.percentile(x, [1, 99])
    return np.array([np.log1p(lap.var()), float(estimate_sigma(x)), p99 - p1, x.std()])


def fit_heuristic(imgs, labels, seed: int = 0):
    """Thresholds on the heuristic features tuned on training images: a depth-3 decision tree (at most 7
    thresholds), the automated version of hand-tuning "if sigma > t1 ... elif laplacian var < t2 ..."."""
    from sklearn.tree import DecisionTreeClassifier

    feats = np.stack([heuristic_features(im) for im in imgs])
    return DecisionTreeClassifier(max_depth=3, random_state=seed).fit(feats, labels)
