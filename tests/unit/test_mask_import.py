"""Importing an existing mask (issue 15 item 3): each format, alignment by the affines, refusals, one undo step."""
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from workbench.core import Document
from workbench.core.edits import import_mask
from workbench.core.errors import ImageReadError, ProcessingError
from workbench.core.image import ImageVolume
from workbench.core.labels import Label
from workbench.io import read_image, write_png, write_tiff
from workbench.io.mask_import import read_mask

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
import io_fixtures as fixtures


def _plain(shape=(1, 20, 30)):
    return ImageVolume(np.zeros(shape, np.uint8))


def _nifti(path, data_ijk, affine):
    nib.save(nib.Nifti1Image(np.asarray(data_ijk), np.asarray(affine, float)), str(path))
    return path


# -- label images ------------------------------------------------------------------------------------------
def test_png_label_image_of_the_image_size_is_taken_as_is(tmp_path):
    mask = np.zeros((20, 30), np.uint8)
    mask[2:5, 3:9] = 2
    mask[10:12, 20:25] = 5
    got = read_mask(write_png(tmp_path / "m.png", mask), _plain())
    assert got.format == "PNG" and got.data.dtype == np.uint16
    assert np.array_equal(got.data[0], mask)
    assert [(lab.value, lab.name) for lab in got.labels] == [(2, "label 2"), (5, "label 5")]


def test_sixteen_bit_tiff_stack_keeps_its_values(tmp_path):
    mask = np.zeros((3, 20, 30), np.uint16)
    mask[0, 1:4, 1:4] = 300
    mask[2, 5:9, 5:9] = 40000
    got = read_mask(write_tiff(tmp_path / "m.tif", mask), _plain((3, 20, 30)))
    assert np.array_equal(got.data, mask)
    assert [lab.value for lab in got.labels] == [300, 40000]


@pytest.mark.parametrize("shape, words", [((21, 30), "mask size 30x21 does not match the image 30x20"),
                                          ((20, 30, 3), "one channel")])
def test_label_image_of_another_size_or_colour_is_refused_in_one_line(tmp_path, shape, words):
    path = write_png(tmp_path / "m.png", np.ones(shape, np.uint8))
    with pytest.raises(ImageReadError) as info:
        read_mask(path, _plain())
    assert words in str(info.value) and "m.png" in str(info.value) and "\n" not in str(info.value)


def test_fractional_values_are_refused(tmp_path):
    np.save(tmp_path / "p.npy", np.full((20, 30), 0.5, np.float32))
    with pytest.raises(ImageReadError, match="fractional"):
        read_mask(tmp_path / "p.npy", _plain())


# -- NIfTI ------------------------------------------------------------------------------------------------
def test_nifti_with_another_affine_lands_on_the_right_voxels(tmp_path):
    # image: 1 mm voxels at the RAS origin; mask: 3 mm voxels, shifted. Mask voxel (3, 3, 3) has its centre at
    # (2 + 9, -4 + 9, -1 + 9) = (11, 5, 8) mm, so it covers the image voxels 10..12, 4..6, 7..9 (27 voxels).
    image = read_image(_nifti(tmp_path / "img.nii.gz", np.zeros((30, 30, 12), np.int16), np.eye(4)))
    data = np.zeros((8, 8, 6), np.uint8)
    data[3, 3, 3] = 7
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = (2, -4, -1)
    got = read_mask(_nifti(tmp_path / "mask.nii.gz", data, affine), image)
    assert got.format == "NIfTI" and "resampled" in got.notes[0]
    assert got.data.shape == image.shape
    # the reader shows RAS file voxel (i, j, k) at display index [k, ny-1-j, nx-1-i]
    expected = np.zeros(image.shape, np.uint16)
    expected[7:10, 29 - 6:29 - 3, 29 - 12:29 - 9] = 7
    assert np.array_equal(got.data, expected)
    assert got.data[8, 29 - 5, 29 - 11] == 7


def test_nifti_on_the_same_grid_is_not_resampled(tmp_path):
    affine = np.diag([0.8, 0.8, 2.0, 1.0])
    image = read_image(_nifti(tmp_path / "img.nii", np.zeros((16, 12, 4), np.int16), affine))
    data = np.zeros((16, 12, 4), np.uint16)
    data[1:3, 2:5, 1] = 1200
    got = read_mask(_nifti(tmp_path / "mask.nii", data, affine), image)
    assert got.notes == [] and int(got.data.max()) == 1200
    assert np.count_nonzero(got.data) == 6


def test_nifti_that_does_not_overlap_is_refused(tmp_path):
    image = read_image(_nifti(tmp_path / "img.nii", np.zeros((10, 10, 4), np.int16), np.eye(4)))
    far = np.eye(4)
    far[:3, 3] = (500, 0, 0)
    with pytest.raises(ImageReadError, match="does not overlap"):
        read_mask(_nifti(tmp_path / "mask.nii", np.ones((10, 10, 4), np.uint8), far), image)


def test_nifti_of_another_shape_on_an_image_without_geometry_is_refused(tmp_path):
    with pytest.raises(ImageReadError, match="no geometry"):
        read_mask(_nifti(tmp_path / "mask.nii", np.ones((31, 20, 1), np.uint8), np.eye(4)), _plain())


# -- DICOM SEG --------------------------------------------------------------------------------------------
@pytest.fixture
def ct_with_seg(tmp_path):
    pytest.importorskip("highdicom")
    from workbench.export.dicom_seg import write_dicom_seg

    fixtures.write_dicom_series(tmp_path / "ct", n=4, rows=16, cols=12)
    image = read_image(tmp_path / "ct")
    labels = np.zeros(image.shape, np.uint16)
    labels[1, 2:6, 3:7] = 4
    labels[2:4, 8:12, 1:5] = 9
    # a SEG as a PACS or a colleague has it: identified, referencing the series' own UIDs (a de-identified
    # SEG references remapped UIDs: test_seg_geometry_import.py)
    seg = write_dicom_seg(tmp_path / "seg.dcm", labels, image, names={4: "liver", 9: "lesion"},
                          colors={4: "#ff0000", 9: "#00c000"}, keep_identity=True)
    return image, labels, seg


def test_dicom_seg_matched_by_referenced_instances_carries_names_and_colours(ct_with_seg):
    image, labels, seg = ct_with_seg
    got = read_mask(seg, image)
    assert got.format == "DICOM SEG"
    # segments are numbered 1..N in ascending label value by the writer
    assert np.array_equal(got.data, np.where(labels == 4, 1, np.where(labels == 9, 2, 0)))
    assert [lab.name for lab in got.labels] == ["liver", "lesion"]
    red = [int(got.labels[0].color[i:i + 2], 16) for i in (1, 3, 5)]
    assert red[0] > 240 and red[1] < 16 and red[2] < 16


def test_dicom_seg_matched_by_frame_of_reference_and_positions(ct_with_seg, tmp_path):
    import pydicom

    image, labels, seg = ct_with_seg
    ds = pydicom.dcmread(seg)
    for group in ds.PerFrameFunctionalGroupsSequence:  # a SEG of a re-sent copy: other instance UIDs
        group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "moved.dcm")
    got = read_mask(tmp_path / "moved.dcm", image)
    assert np.array_equal(got.data > 0, labels > 0)


def test_dicom_seg_of_another_series_is_refused(ct_with_seg, tmp_path):
    _image, _labels, seg = ct_with_seg
    # same size, other positions: neither the UIDs nor the geometry tie the SEG to it
    fixtures.write_dicom_series(tmp_path / "other", n=4, rows=16, cols=12, z0=0.0)
    with pytest.raises(ImageReadError, match="belongs to another series"):
        read_mask(seg, read_image(tmp_path / "other"))


# -- into the document ------------------------------------------------------------------------------------
def test_import_keeps_manual_labels_and_is_one_undo_step():
    doc = Document(ImageVolume(np.zeros((2, 8, 8), np.uint8)))
    labels = doc.labels
    labels.put_labels([Label(1, "liver", "#aa0000")], "manual")
    with labels.edit("brush") as e:
        e.paint((slice(0, 1), slice(0, 4), slice(0, 4)), np.ones((1, 4, 4), bool), 1)
    before, steps = labels.data.copy(), len(doc.undo)
    mask = np.zeros((2, 8, 8), np.uint16)
    mask[0, 2:6, 2:6] = 1
    mapping = import_mask(labels, mask, [Label(1, "tumour", "#00ff00")])
    assert mapping == {1: 2} and len(doc.undo) == steps + 1
    assert labels.labels[1].name == "liver" and labels.labels[2].name == "tumour"
    assert np.array_equal(labels.data[0, :4, :4], before[0, :4, :4])  # manual label kept
    assert labels.data[0, 5, 5] == 2 and labels.data[0, 3, 3] == 1
    doc.undo.undo()
    assert np.array_equal(labels.data, before) and set(labels.labels) == {1}
    import_mask(labels, mask, [Label(1, "tumour", "#00ff00")], overwrite=True)
    assert labels.data[0, 3, 3] == 2  # asked to overwrite


def test_import_keeps_file_values_on_an_empty_label_map_and_checks_the_shape():
    doc = Document(ImageVolume(np.zeros((1, 8, 8), np.uint8)))
    doc.labels.ensure_label(1)  # the default entry a fresh label map shows
    mask = np.zeros((1, 8, 8), np.uint16)
    mask[0, 1, 1], mask[0, 2, 2] = 1, 40000
    assert import_mask(doc.labels, mask, [Label(1, "a", "#010203")]) == {1: 1, 40000: 40000}
    assert doc.labels.labels[1].name == "a" and doc.labels.data[0, 2, 2] == 40000
    with pytest.raises(ProcessingError, match="does not match"):
        import_mask(doc.labels, np.zeros((1, 4, 4), np.uint16), [])


def test_nifti_cut_from_a_dicom_series_lands_back_on_its_voxels(tmp_path):
    """The DICOM reader's affine and the NIfTI reader's agree: a NIfTI holding a crop of the label map (another
    grid: shape and origin differ) is resampled back onto exactly the voxels it came from."""
    fixtures.write_dicom_series(tmp_path / "ct", n=5, rows=16, cols=12)
    image = read_image(tmp_path / "ct")
    labels = np.zeros(image.shape, np.uint16)
    labels[1:4, 3:9, 2:7] = 2
    labels[4, 10:14, 5:11] = 513
    affine = np.asarray(image.metadata["affine"], float)
    shift = np.eye(4)
    shift[:3, 3] = (2, 1, 0)  # the crop starts at display voxel x 2, y 1
    crop = np.transpose(labels, (2, 1, 0))[2:, 1:, :]
    got = read_mask(_nifti(tmp_path / "crop.nii.gz", crop, affine @ shift), image)
    assert got.notes and "resampled" in got.notes[0]
    expected = labels.copy()
    expected[:, :1, :] = 0
    expected[:, :, :2] = 0
    assert np.array_equal(got.data, expected)
