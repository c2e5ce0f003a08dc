"""Offline training data: scikit-image's sample images, pydicom's test files and nilearn's MNI152 template.

Nothing is downloaded: every source is a file inside an installed package. Every loader returns float32
arrays in [0, 1] (images) or the template's own values, so the training scripts share one convention.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

# The held-out axial slab of the MNI152 template (voxel indices along z, inclusive-exclusive). No model
# trains on a voxel of it; MARGIN keeps a further band out of training so that the template's smoothness
# does not leak the slab into neighbouring training slices.
HELD_OUT_SLAB = (72, 96)
MARGIN = 4
# The first-run sample and the plugins' sample images are taken from the middle of the held-out slab.
SAMPLE_SLICE = 84


def _package_dir(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"{name} is required for training: pip install -e .[train]")
    return Path(os.path.dirname(spec.origin))


def skimage_data_dir() -> Path:
    return _package_dir("skimage") / "data"


def pydicom_test_dir() -> Path:
    return _package_dir("pydicom") / "data" / "test_files"


def mni_path(kind: str) -> Path:
    """Path of nilearn's bundled MNI152 2009 (sym, 1 mm) file: ``kind`` is ``t1``, ``gm`` or ``wm``."""
    return _package_dir("nilearn") / "datasets" / "data" / f"mni_icbm152_{kind}_tal_nlin_sym_09a_converted.nii.gz"


@lru_cache(maxsize=None)
def mni_volume(kind: str) -> np.ndarray:
    """The MNI volume in RAS voxel order ``(x, y, z)``, float32 scaled to [0, 1]."""
    import nibabel as nib

    data = np.asarray(nib.load(str(mni_path(kind))).dataobj, dtype=np.float32)
    return data / 255.0


HELDOUT_NPZ = Path(__file__).with_name("heldout_mni_slab.npz")


def write_heldout_slab() -> Path:
    """Store the held-out slab's axial slices (uint8 T1 + tissue labels) so that evaluation, and the unit
    test, need neither nilearn nor the 3-D template (``python -m models.make_samples`` calls this)."""
    from ..brain_tissue.common import tissue_labels

    t1 = mni_volume("t1")
    lab = tissue_labels(t1, mni_volume("gm"), mni_volume("wm"))
    ks = np.arange(*HELD_OUT_SLAB)
    np.savez_compressed(
        HELDOUT_NPZ, z=ks,
        t1=np.stack([np.round(radiological_axial(t1, k) * 255).astype(np.uint8) for k in ks]),
        labels=np.stack([radiological_axial(lab, k) for k in ks]),
    )
    return HELDOUT_NPZ


@lru_cache(maxsize=None)
def mni_heldout_slab() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(z indices, T1 slices float32 in [0, 1], label slices uint8)`` of the held-out axial slab, radiology
    view. The template is 8-bit, so the stored uint8 slices are exact."""
    with np.load(HELDOUT_NPZ) as f:
        return f["z"], f["t1"].astype(np.float32) / 255.0, f["labels"]


def mni_heldout_slice(k: int) -> np.ndarray:
    z, t1, _ = mni_heldout_slab()
    return t1[int(np.flatnonzero(z == k)[0])]


def radiological_axial(volume_xyz: np.ndarray, k: int) -> np.ndarray:
    """Axial slice ``k`` as a radiology view: anterior at the top, the patient's right on the image's left."""
    return np.ascontiguousarray(volume_xyz[:, :, k].T[::-1, ::-1])


def mni_train_z_ranges(depth: int) -> list[tuple[int, int]]:
    """The z ranges (start, stop) the models may train on: everything but the held-out slab and its margin."""
    lo, hi = HELD_OUT_SLAB
    return [(0, lo - MARGIN), (hi + MARGIN, depth)]


def mni_orthogonal_slices(volume_xyz: np.ndarray, z_range: tuple[int, int], step: int = 1) -> list[np.ndarray]:
    """Axial, coronal and sagittal slices of the sub-volume ``z_range`` (2-D arrays, superior at the top)."""
    sub = volume_xyz[:, :, z_range[0]:z_range[1]]
    out = [radiological_axial(sub, k) for k in range(0, sub.shape[2], step)]
    # coronal (x, z) and sagittal (y, z): show superior at the top
    out += [np.ascontiguousarray(sub[:, j, :].T[::-1]) for j in range(0, sub.shape[1], step)]
    out += [np.ascontiguousarray(sub[i, :, :].T[::-1]) for i in range(0, sub.shape[0], step)]
    return out


def load_gray(name: str) -> np.ndarray:
    """A scikit-image sample as grayscale float32 in [0, 1] (RGB converted to luma)."""
    from skimage import io
    from skimage.color import rgb2gray, rgba2rgb

    img = io.imread(str(skimage_data_dir() / name))
    if img.ndim == 3:
        if img.shape[2] == 4:
            img = rgba2rgb(img)
        img = rgb2gray(img)
        return img.astype(np.float32)
    info_max = 255.0 if img.dtype == np.uint8 else (65535.0 if img.dtype == np.uint16 else float(img.max() or 1))
    if img.dtype == bool:
        info_max = 1.0
    return (img.astype(np.float32) / info_max).clip(0, 1)


def load_dicom(name: str) -> np.ndarray:
    """A pydicom test file's first frame, rescaled to [0, 1] by its 0.5 / 99.5 percentiles."""
    import pydicom

    ds = pydicom.dcmread(str(pydicom_test_dir() / name))
    arr = ds.pixel_array.astype(np.float32)
    if arr.ndim == 3:
        arr = arr[0]
    lo, hi = np.percentile(arr, [0.5, 99.5])
    return ((arr - lo) / max(hi - lo, 1e-6)).clip(0, 1).astype(np.float32)


def load_dicom_gray(name: str) -> np.ndarray:
    """A pydicom test file's first frame as grayscale [0, 1] (colour as luma), by the 0.5/99.5 percentiles
    (pydicom 3 returns YCbCr data as RGB already)."""
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file(name))
    arr = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[0]
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
    arr = arr.astype(np.float32)
    if arr.ndim == 3:
        arr = arr @ np.array([0.2125, 0.7154, 0.0721], np.float32)
    lo, hi = np.percentile(arr, [0.5, 99.5])
    return ((arr - lo) / max(hi - lo, 1e-6)).clip(0, 1).astype(np.float32)


# Natural/photographic grayscale images of scikit-image. camera and moon are never trained on by any model:
# they are held-out test images, like CT_small.dcm and the MNI slab.
HELD_OUT_IMAGES = ("camera.png", "moon.png")
TRAIN_IMAGES = (
    "astronaut.png", "brick.png", "cell.png", "chelsea.png", "coffee.png", "coins.png", "grass.png",
    "gravel.png", "horse.png", "hubble_deep_field.jpg", "ihc.png", "microaneurysms.png", "motorcycle_left.png",
    "page.png", "retina.jpg", "rocket.jpg", "text.png", "clock_motion.png", "immunohistochemistry.png",
)
HELD_OUT_DICOM = ("CT_small.dcm",)
TRAIN_DICOM = ("MR_small.dcm",)


def train_images() -> list[np.ndarray]:
    """Every training image that exists in this scikit-image install (grayscale float32 in [0, 1])."""
    out = []
    for name in TRAIN_IMAGES:
        if (skimage_data_dir() / name).exists():
            out.append(load_gray(name))
    return out


# pydicom test images with pixel data worth training on (MR, CT, NM, US, secondary capture), for the v2
# denoiser and focal-spot recipes; CT_small and examples_overlay (MR) stay held out
TRAIN_DICOM_SLICES = ("MR_small.dcm", "693_J2KI.dcm", "J2K_pixelrep_mismatch.dcm", "JPEG2000.dcm",
                      "JPGExtended.dcm", "image_dfl.dcm", "examples_jpeg2k.dcm", "examples_rgb_color.dcm",
                      "examples_ybr_color.dcm", "examples_palette.dcm")
