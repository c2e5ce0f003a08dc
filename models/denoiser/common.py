"""Held-out set, plugin preprocessing, baselines and metrics of the denoiser (no torch: shared with the test)."""
from __future__ import annotations

import numpy as np

from ..common.data import SAMPLE_SLICE, load_dicom, load_gray, mni_heldout_slice

# Held out from the denoiser's training besides the shared HELD_OUT_IMAGES / HELD_OUT_DICOM (camera, moon,
# CT_small): a third photograph and a real 12-bit MR slice, so that each kind has an image no version of
# the model trained on except astronaut, which v1 saw (comparisons with v1 on it favour v1).
EXTRA_HELD_OUT_IMAGES = ("astronaut.png",)
EXTRA_HELD_OUT_DICOM = ("examples_overlay.dcm",)
# image name -> kind, for the per-kind table of the model card
KINDS = {"camera": "natural", "moon": "natural", "astronaut": "natural",
         "CT_small": "medical", f"mni_z{SAMPLE_SLICE}": "medical", "MR_overlay": "medical"}

SIGMAS = (15, 25, 50)  # on the 0-255 scale
MULTIPLE_OF = 2


def heldout_images() -> dict[str, np.ndarray]:
    """Images no model trains on, float32 in [0, 1]."""
    return {
        "camera": load_gray("camera.png"),
        "moon": load_gray("moon.png"),
        "astronaut": load_gray("astronaut.png"),
        "CT_small": load_dicom("CT_small.dcm"),
        f"mni_z{SAMPLE_SLICE}": mni_heldout_slice(SAMPLE_SLICE),
        "MR_overlay": load_dicom("examples_overlay.dcm"),
    }


def add_noise(clean: np.ndarray, sigma255: float, seed: int) -> np.ndarray:
    """Additive white Gaussian noise of ``sigma255 / 255``, not clipped (the standard AWGN benchmark)."""
    rng = np.random.default_rng(seed)
    return (clean + rng.normal(0.0, sigma255 / 255.0, clean.shape)).astype(np.float32)


def psnr(clean: np.ndarray, est: np.ndarray) -> float:
    """PSNR in dB for a peak of 1 (images in [0, 1])."""
    mse = float(np.mean((clean.astype(np.float64) - est.astype(np.float64)) ** 2))
    return 10.0 * np.log10(1.0 / max(mse, 1e-12))


def onnx_denoise(sess, noisy: np.ndarray) -> np.ndarray:
    """The plugin.yaml pipeline: min-max (``percentile: [0, 100]``) to [0, 1], pad to even size, run, crop,
    map the output back to the input's scale."""
    lo, hi = float(noisy.min()), float(noisy.max())
    if hi <= lo:
        hi = lo + 1.0
    x = (noisy - lo) / (hi - lo)
    h, w = x.shape
    xp = np.pad(x, ((0, (-h) % MULTIPLE_OF), (0, (-w) % MULTIPLE_OF)), mode="edge")
    y = sess.run(None, {"input": xp[None, None].astype(np.float32)})[0][0, 0, :h, :w]
    return y * (hi - lo) + lo


def nlm_baseline(noisy: np.ndarray, *, h_factor: float = 0.8) -> np.ndarray:
    """scikit-image non-local means with its own noise estimate (the documented recipe: h = 0.8 sigma)."""
    from skimage.restoration import denoise_nl_means, estimate_sigma

    s = float(estimate_sigma(noisy))
    return denoise_nl_means(noisy, h=h_factor * s, sigma=s, patch_size=5, patch_distance=6, fast_mode=True)


def tv_baseline(noisy: np.ndarray, *, weight_per_sigma: float) -> np.ndarray:
    """Chambolle total variation with weight = ``weight_per_sigma`` x the estimated noise sigma."""
    from skimage.restoration import denoise_tv_chambolle, estimate_sigma

    s = float(estimate_sigma(noisy))
    return denoise_tv_chambolle(noisy, weight=weight_per_sigma * s)
