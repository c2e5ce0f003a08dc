"""Regenerate the first-run sample ``assets/samples/mri_t1_noisy.png`` (``python -m models.make_samples``).

An axial slice of the MNI152 2009 T1 template from the middle of the slab no bundled model trains on, shown as a
radiology view (anterior at the top, patient's right on the left), with Gaussian noise of sigma 15 on 0-255.
Also writes ``models/common/heldout_mni_slab.npz``: the held-out slab (T1 + tissue labels) that the models'
evaluations and tests/unit/test_bundled_models.py read, so that they need neither nilearn nor the template.
"""
from __future__ import annotations

import numpy as np
from skimage import io

from .common.data import REPO, SAMPLE_SLICE, mni_volume, radiological_axial, write_heldout_slab

NOISE_SIGMA = 15.0
SEED = 6


def make_noisy_mri(k: int = SAMPLE_SLICE, sigma: float = NOISE_SIGMA, seed: int = SEED) -> np.ndarray:
    """The noisy 8-bit axial slice ``k``."""
    clean = radiological_axial(mni_volume("t1"), k) * 255.0
    rng = np.random.default_rng(seed)
    return np.clip(np.round(clean + rng.normal(0.0, sigma, clean.shape)), 0, 255).astype(np.uint8)


def main() -> None:
    out = REPO / "assets" / "samples" / "mri_t1_noisy.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    io.imsave(str(out), make_noisy_mri(), check_contrast=False)
    print(f"wrote {out}")
    print(f"wrote {write_heldout_slab()}")


if __name__ == "__main__":
    main()
