"""NIfTI reader (orientation, spacing, scaling, 4D) and the NIfTI writer."""
from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from workbench.core.errors import ExportError, ImageReadError
from workbench.core.image import ImageVolume
from workbench.io import read_image, write_nifti

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from io_fixtures import write_dicom_series

SHAPE = (6, 5, 4)  # i (x), j (y), k (z) in RAS
ZOOMS = (0.5, 0.75, 2.0)


def _ras_volume() -> np.ndarray:
    """Canonical RAS data with every voxel unique: value = 100*i + 10*j + k."""
    i, j, k = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    return (100 * i + 10 * j + k).astype(np.int16)


def _expected_display() -> np.ndarray:
    """Display convention: z = k (inferior->superior), rows anterior->posterior, columns right->left."""
    ras = _ras_volume()
    return np.transpose(ras[::-1, ::-1, :], (2, 1, 0))


def _save(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    img = nib.Nifti1Image(data, affine)
    nib.save(img, str(path))
    return path


def test_ras_nifti_display_orientation(tmp_path):
    affine = np.diag(ZOOMS + (1.0,))
    vol = read_image(_save(tmp_path / "ras.nii", _ras_volume(), affine))
    assert vol.shape == (4, 5, 6)
    np.testing.assert_array_equal(vol.data, _expected_display())
    assert vol.spacing == pytest.approx((2.0, 0.75, 0.5)) and vol.spacing_known
    # RAS+: i grows toward the patient's right, j toward anterior. Radiological view: the top-left pixel
    # is the most anterior row (largest j) and the patient's right (largest i, shown on the viewer's left).
    assert vol.data[0, 0, 0] == 100 * (SHAPE[0] - 1) + 10 * (SHAPE[1] - 1)
    assert vol.metadata["source_orientation"] == "RAS"


@pytest.mark.parametrize("flips", [(True, False, False), (True, True, False), (False, False, True),
                                   (True, True, True)])
def test_other_orientations_display_the_same(tmp_path, flips):
    """The same anatomy stored LAS / LPS / RAI...: identical display data and spacing."""
    data = _ras_volume()
    affine = np.diag(ZOOMS + (1.0,))
    for axis, flip in enumerate(flips):
        if flip:
            data = np.flip(data, axis)
            affine[axis, axis] *= -1
            affine[axis, 3] = ZOOMS[axis] * (SHAPE[axis] - 1)
    vol = read_image(_save(tmp_path / "x.nii.gz", np.ascontiguousarray(data), affine))
    np.testing.assert_array_equal(vol.data, _expected_display())
    assert vol.spacing == pytest.approx((2.0, 0.75, 0.5))


def test_permuted_axes_nifti(tmp_path):
    """Stored as (k, i, j) - e.g. a sagittal acquisition - still displays axially."""
    data = np.transpose(_ras_volume(), (2, 0, 1))
    affine = np.zeros((4, 4))
    affine[2, 0], affine[0, 1], affine[1, 2], affine[3, 3] = ZOOMS[2], ZOOMS[0], ZOOMS[1], 1.0
    vol = read_image(_save(tmp_path / "p.nii", np.ascontiguousarray(data), affine))
    np.testing.assert_array_equal(vol.data, _expected_display())
    assert vol.spacing == pytest.approx((2.0, 0.75, 0.5))


def test_scaled_nifti_is_float32(tmp_path):
    img = nib.Nifti1Image(_ras_volume(), np.eye(4))
    img.header.set_slope_inter(0.5, 10.0)
    nib.save(img, str(tmp_path / "s.nii"))
    vol = read_image(tmp_path / "s.nii")
    assert vol.data.dtype == np.float32
    np.testing.assert_allclose(vol.data, _expected_display() * 0.5 + 10.0)


def test_4d_reads_first_volume(tmp_path):
    data = np.stack([_ras_volume(), _ras_volume() + 1000], axis=-1)
    vol = read_image(_save(tmp_path / "t.nii", data, np.diag(ZOOMS + (1.0,))))
    np.testing.assert_array_equal(vol.data, _expected_display())
    assert vol.metadata["n_volumes"] == 2


def test_2d_nifti(tmp_path):
    vol = read_image(_save(tmp_path / "2d.nii", np.arange(12, dtype=np.uint8).reshape(3, 4), np.eye(4)))
    assert vol.shape == (1, 4, 3)


def test_write_nifti_roundtrip_array_and_volume(tmp_path):
    data = np.random.default_rng(0).integers(0, 5, (3, 7, 9)).astype(np.uint8)
    write_nifti(tmp_path / "m.nii.gz", data, spacing=(3.0, 0.5, 0.25))
    vol = read_image(tmp_path / "m.nii.gz")
    np.testing.assert_array_equal(vol.data, data)
    assert vol.spacing == pytest.approx((3.0, 0.5, 0.25))
    again = write_nifti(tmp_path / "again.nii", vol)
    np.testing.assert_array_equal(read_image(again).data, data)


def test_dicom_series_and_its_nifti_match(tmp_path):
    """A mask written with the geometry of a DICOM series overlays it: same display array and spacing."""
    _, values = write_dicom_series(tmp_path / "ct", n=5, modality="MR", rescale=False, spacing_z=3.0)
    dicom_vol = read_image(tmp_path / "ct")
    mask = (dicom_vol.data > dicom_vol.data.mean()).astype(np.uint8)
    write_nifti(tmp_path / "mask.nii.gz", mask, like=dicom_vol)
    back = read_image(tmp_path / "mask.nii.gz")
    np.testing.assert_array_equal(back.data, mask)
    assert back.spacing == pytest.approx(dicom_vol.spacing)
    # world position of voxel (0, 0, 0) agrees (origin is LPS (z, y, x) for both readers)
    assert back.origin == pytest.approx(dicom_vol.origin)


def test_write_nifti_rejects_bad_input(tmp_path):
    with pytest.raises(ExportError, match="shape"):
        write_nifti(tmp_path / "x.nii", np.zeros(5))
    vol = ImageVolume(np.zeros((2, 3, 4)))
    with pytest.raises(ExportError, match="differs"):
        write_nifti(tmp_path / "y.nii", np.zeros((2, 3, 5)), like=vol)


def test_truncated_nifti(tmp_path):
    path = _save(tmp_path / "c.nii.gz", _ras_volume(), np.eye(4))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ImageReadError, match="c.nii.gz"):
        read_image(path)
    plain = _save(tmp_path / "p.nii", _ras_volume(), np.eye(4))
    plain.write_bytes(plain.read_bytes()[:400])
    with pytest.raises(ImageReadError, match="p.nii"):
        read_image(plain)
