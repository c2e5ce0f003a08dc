"""Data, augmentations, held-out retrieval set, classical baseline and metrics of the similar-case encoder.

No torch here: the unit test imports it to rebuild the held-out set and the baseline and to score the
shipped ONNX through the app's engine exactly as the training run did.

Held out from this encoder's training (never seen as an image):
- MNI152 positions in all three orientations: the shared axial slab z = 72..95 (models/common/data.py), a
  coronal band y = 100..123 and a sagittal band x = 56..79 (voxel indices), each with a 4-voxel margin
  also excluded. A held-out plane's voxels do appear as one line of training slices of the other
  orientations; the plane itself, as a picture, is never trained on. The held-out slices are stored in
  ``heldout_slices.npz`` (uint8, exact) so that evaluation and tests need neither nilearn nor the volume.
- scikit-image's camera, moon (held out by every bundled model), phantom, coins and text, and pydicom's
  CT_small.dcm (16-bit, Hounsfield units) and examples_overlay.dcm (16-bit MR).

The held-out retrieval set has two kinds of groups (what "similar" is meant to mean for this encoder):
- MNI position groups: three planes ``p-1, p, p+1`` around each of 3 positions per band (9 groups), each
  plane in 2 random degraded variants (6 images per group);
- source groups: 8 degraded variants (crop, flip, small rotation, gamma, contrast, noise, blur) of each
  held-out source image (7 groups), kept in its own dtype and units (uint8, uint16, HU float32) so that the
  plugin's declared preprocessing (percentile window) handles 8-bit, 16-bit and HU input as in the app.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage as ndi

from ..common.data import (HELD_OUT_SLAB, MARGIN, load_gray, mni_volume, pydicom_test_dir, radiological_axial,
                           skimage_data_dir)

SIZE = 96  # the plugin's input size (resize: stretch); training views are made at this size
PERCENTILE = (1.0, 99.0)  # the plugin's intensity: percentile window (raw units -> [0, 1], clipped)
DIM = 256  # the exported vector's length

# held-out bands (voxel index ranges, start inclusive, stop exclusive) along each MNI axis
BANDS = {"axial": HELD_OUT_SLAB, "coronal": (100, 124), "sagittal": (56, 80)}
POSITION_OFFSETS = (4, 12, 20)  # the 3 positions of each band (from its start)
HELDOUT_NPZ = Path(__file__).with_name("heldout_slices.npz")

HELD_OUT_GRAY = ("camera.png", "moon.png", "phantom.png", "coins.png", "text.png")
HELD_OUT_DCM = ("CT_small.dcm", "examples_overlay.dcm")
TRAIN_GRAY = (
    "astronaut.png", "brick.png", "cell.png", "chelsea.png", "coffee.png", "grass.png", "gravel.png",
    "horse.png", "hubble_deep_field.jpg", "ihc.png", "microaneurysms.png", "motorcycle_left.png",
    "page.png", "retina.jpg", "rocket.jpg", "clock_motion.png", "logo.png", "color.png",
    "chessboard_GRAY.png", "motorcycle_right.png",
)
TRAIN_DCM = ("MR_small.dcm", "image_dfl.dcm")
VARIANTS_PER_SOURCE = 8
VARIANTS_PER_PLANE = 2
EVAL_SEED = 18


# -- MNI planes ------------------------------------------------------------------------------------
def mni_plane(volume_xyz: np.ndarray, orientation: str, k: int) -> np.ndarray:
    """One plane of the template as it is displayed (radiology axial; superior at the top otherwise)."""
    if orientation == "axial":
        return radiological_axial(volume_xyz, k)
    if orientation == "coronal":
        return np.ascontiguousarray(volume_xyz[:, k, :].T[::-1])
    return np.ascontiguousarray(volume_xyz[k, :, :].T[::-1])


def mni_train_planes(step: int = 2) -> dict[str, list[list[np.ndarray]]]:
    """Training planes per orientation, as runs of consecutive positions (``step`` voxels apart) so that
    neighbouring planes can serve as positives. T1 and the grey/white-matter maps give three contrasts."""
    axis = {"sagittal": 0, "coronal": 1, "axial": 2}
    runs: dict[str, list[list[np.ndarray]]] = {o: [] for o in axis}
    for kind in ("t1", "gm", "wm"):
        vol = mni_volume(kind)
        for orientation, ax in axis.items():
            lo, hi = BANDS[orientation]
            for start, stop in ((0, lo - MARGIN), (hi + MARGIN, vol.shape[ax])):
                run = [mni_plane(vol, orientation, k) for k in range(start, stop, step)]
                # drop the empty planes outside the head: they would all be "the same image"
                run = [p for p in run if (p > 0.05).mean() > 0.03]
                if run:
                    runs[orientation].append(run)
    return runs


def write_heldout_slices() -> Path:
    """Store the held-out planes (uint8 T1, exact) that the evaluation uses."""
    t1 = mni_volume("t1")
    arrays = {}
    for orientation, (lo, _) in BANDS.items():
        for off in POSITION_OFFSETS:
            for d in (-1, 0, 1):
                k = lo + off + d
                arrays[f"{orientation}_{k}"] = np.round(mni_plane(t1, orientation, k) * 255).astype(np.uint8)
    np.savez_compressed(HELDOUT_NPZ, **arrays)
    return HELDOUT_NPZ


# -- sources ---------------------------------------------------------------------------------------
def read_dicom_raw(name: str) -> tuple[np.ndarray, str | None]:
    """A pydicom test file's first frame in stored units as the app reads it: Hounsfield units (float32)
    for CT, the raw integers otherwise; and its modality."""
    import pydicom
    from pydicom.pixels import apply_rescale

    ds = pydicom.dcmread(str(pydicom_test_dir() / name))
    arr = ds.pixel_array
    if arr.ndim == 3:
        arr = arr[0]
    modality = ds.get("Modality")
    if modality == "CT":
        arr = apply_rescale(arr, ds).astype(np.float32)
    return arr, modality


def read_gray_raw(name: str) -> np.ndarray:
    """A scikit-image sample as the app reads it for a gray model: uint8 (RGB via luma)."""
    return np.round(load_gray(name) * 255).astype(np.uint8)


def percentile_window(raw: np.ndarray) -> tuple[float, float]:
    """The plugin's intensity window: the 1st and 99th percentile of the full-resolution plane."""
    lo, hi = (float(v) for v in np.percentile(raw.astype(np.float32), PERCENTILE))
    return lo, (hi if hi > lo else lo + 1.0)


def preprocess(raw: np.ndarray) -> np.ndarray:
    """The plugin's declared preprocessing in the engine's order: the percentile window of the plane, a
    stretch to SIZE x SIZE in raw units, then the window mapped to [0, 1] with clipping. float32
    ``(SIZE, SIZE)``; used for training views, the baseline and the training run's ONNX evaluation."""
    lo, hi = percentile_window(raw)
    x = raw.astype(np.float32)
    interp = cv2.INTER_AREA if min(x.shape) > SIZE else cv2.INTER_LINEAR
    x = cv2.resize(x, (SIZE, SIZE), interpolation=interp)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


# -- augmentation / degradation --------------------------------------------------------------------
def degrade(x: np.ndarray, rng: np.random.Generator, *, strength: float = 1.0,
            min_area: float = 0.55) -> np.ndarray:
    """A random view of ``x`` (float in [0, 1], any size) at its own resolution: crop (``min_area``..1 of the
    area, aspect 3/4..4/3), horizontal flip, rotation (+-10 deg * strength), gamma, contrast, blur, noise."""
    h, w = x.shape
    area = rng.uniform(min_area, 1.0) * h * w
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    ch = int(min(h, max(8, round(np.sqrt(area / aspect)))))
    cw = int(min(w, max(8, round(np.sqrt(area * aspect)))))
    i, j = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    y = x[i:i + ch, j:j + cw].astype(np.float32)
    if rng.random() < 0.5:
        y = y[:, ::-1]
    angle = rng.uniform(-10, 10) * strength
    if abs(angle) > 0.5:
        y = ndi.rotate(y, angle, reshape=False, order=1, mode="reflect")
    y = np.clip(y, 0.0, 1.0) ** np.exp(rng.uniform(-0.4, 0.4) * strength)
    y = y * rng.uniform(1 - 0.3 * strength, 1.0) + rng.uniform(0.0, 0.1 * strength)
    if rng.random() < 0.5:
        y = ndi.gaussian_filter(y, rng.uniform(0.3, 1.5 * strength))
    if rng.random() < 0.6:
        y = y + rng.normal(0.0, rng.uniform(0.005, 0.05 * strength), y.shape)
    return np.clip(y, 0.0, 1.0).astype(np.float32)


def _back_to_raw(unit: np.ndarray, lo: float, hi: float, dtype: np.dtype) -> np.ndarray:
    raw = lo + unit.astype(np.float64) * (hi - lo)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.round(raw), info.min, info.max).astype(dtype)
    return raw.astype(dtype)


def degrade_raw(raw: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A degraded variant of a raw image in its own dtype and units (uint8, uint16, HU float32): degraded
    in [0, 1] between its 0.5/99.5 percentiles, then mapped back."""
    lo, hi = (float(v) for v in np.percentile(raw.astype(np.float64), [0.5, 99.5]))
    unit = np.clip((raw.astype(np.float64) - lo) / max(hi - lo, 1e-6), 0, 1).astype(np.float32)
    return _back_to_raw(degrade(unit, rng, min_area=0.6), lo, hi, raw.dtype)


# -- the held-out retrieval set --------------------------------------------------------------------
def heldout_set() -> tuple[list[np.ndarray], list[str | None], np.ndarray, list[str]]:
    """``(raw images, modalities, group ids, group names)`` of the held-out retrieval set (deterministic)."""
    rng = np.random.default_rng(EVAL_SEED)
    images: list[np.ndarray] = []
    modalities: list[str | None] = []
    groups: list[int] = []
    names: list[str] = []
    with np.load(HELDOUT_NPZ) as f:
        planes = {k: f[k] for k in f.files}
    for orientation, (lo, _) in BANDS.items():
        for off in POSITION_OFFSETS:
            gid = len(names)
            names.append(f"MNI {orientation} {lo + off}")
            for d in (-1, 0, 1):
                plane = planes[f"{orientation}_{lo + off + d}"]
                for _ in range(VARIANTS_PER_PLANE):
                    images.append(degrade_raw(plane, rng))
                    modalities.append("MR")
                    groups.append(gid)
    sources: list[tuple[str, np.ndarray, str | None]] = [(n, read_gray_raw(n), None) for n in HELD_OUT_GRAY]
    sources += [(n, *read_dicom_raw(n)) for n in HELD_OUT_DCM]
    for name, raw, modality in sources:
        gid = len(names)
        names.append(name)
        for _ in range(VARIANTS_PER_SOURCE):
            images.append(degrade_raw(raw, rng))
            modalities.append(modality)
            groups.append(gid)
    return images, modalities, np.array(groups), names


# -- classical baseline ----------------------------------------------------------------------------
def baseline_descriptor(raw: np.ndarray) -> np.ndarray:
    """Intensity histogram (32 bins) + HOG (scikit-image: 9 orientations, 12 px cells, 2x2 blocks) of the
    preprocessed image, each L2-normalised, concatenated with equal weight."""
    from skimage.feature import hog

    x = preprocess(raw)
    hist = np.histogram(x, bins=32, range=(0.0, 1.0))[0].astype(np.float64)
    hog_v = hog(x, orientations=9, pixels_per_cell=(12, 12), cells_per_block=(2, 2), feature_vector=True)
    parts = [v / max(np.linalg.norm(v), 1e-12) for v in (np.sqrt(hist), hog_v.astype(np.float64))]
    return np.concatenate(parts).astype(np.float32)


# -- metrics ---------------------------------------------------------------------------------------
def retrieval_metrics(vectors: np.ndarray, groups: np.ndarray, mask: np.ndarray | None = None
                      ) -> dict[str, float]:
    """Leave-one-out retrieval by cosine similarity: every image (or every image of ``mask``) queries all the
    others; relevant = the same group. recall@k: the share of queries with a relevant image among the first
    k; mAP: mean average precision over the full ranking."""
    v = vectors.astype(np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    sim = v @ v.T
    np.fill_diagonal(sim, -np.inf)
    queries = np.arange(len(groups)) if mask is None else np.flatnonzero(mask)
    r1 = r5 = 0
    aps = []
    for q in queries:
        order = np.argsort(-sim[q], kind="stable")[:-1]  # the query itself (-inf) ranks last
        rel = groups[order] == groups[q]
        r1 += bool(rel[:1].any())
        r5 += bool(rel[:5].any())
        hits = np.flatnonzero(rel)
        aps.append(float(np.mean((np.arange(len(hits)) + 1) / (hits + 1))) if len(hits) else 0.0)
    n = len(queries)
    return {"recall_at_1": round(r1 / n, 4), "recall_at_5": round(r5 / n, 4), "mAP": round(float(np.mean(aps)), 4)}


def split_metrics(vectors: np.ndarray, groups: np.ndarray, names: list[str]) -> dict[str, dict[str, float]]:
    """``retrieval_metrics`` over the whole set, and per kind of group (queries of that kind, ranked
    against the whole set)."""
    out = {"all": retrieval_metrics(vectors, groups)}
    mni = np.array([names[g].startswith("MNI") for g in groups])
    for kind, mask in (("mni_positions", mni), ("sources", ~mni)):
        out[kind] = retrieval_metrics(vectors, groups, mask)
    return out


def source_files() -> dict[str, Path]:
    """Where the held-out sources live (for the model card)."""
    return {**{n: skimage_data_dir() / n for n in HELD_OUT_GRAY}, **{n: pydicom_test_dir() / n for n in HELD_OUT_DCM}}
