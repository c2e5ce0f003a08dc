"""File > Import mask… (issue 15 item 3): read in a worker, shown on the canvas, one undo step, errors in the banner."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from workbench.gui.qt import QtWidgets


def _nifti(path, data, affine):
    nib.save(nib.Nifti1Image(np.asarray(data), np.asarray(affine, float)), str(path))
    return path


def _import(window, qtbot, path, expect=True):
    with qtbot.waitSignal(window.import_mask.settled, timeout=20_000) as blocker:
        assert window.import_mask.import_mask(path)
    assert blocker.args == [expect], window.last_error


@pytest.fixture
def ct_nifti(tmp_path):
    """A 1 mm (x 40, y 40, z 6) volume with a bright square, and a 2 mm mask NIfTI shifted by 0.5 mm."""
    img = np.zeros((40, 40, 6), np.int16)
    img[10:30, 10:30, :] = 500
    image = _nifti(tmp_path / "ct.nii.gz", img, np.eye(4))
    mask = np.zeros((20, 20, 3), np.uint8)
    mask[5:10, 5:10, 1] = 3  # 2 mm voxels i 5..9 -> centres at 0.5 + 2 i: image voxels x 10..19, z 2..3
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = (0.5, 0.5, 0.5)
    return image, _nifti(tmp_path / "mask.nii.gz", mask, affine)


def test_imported_nifti_lands_on_the_right_voxels_and_undo_restores(window, qtbot, load, ct_nifti):
    image, mask = ct_nifti
    load(window, qtbot, image)
    assert window.import_mask.action.isEnabled()
    assert window.import_mask.action in window.file_menu.actions()
    _import(window, qtbot, mask)
    labels = window.document.labels
    # RAS file voxel (i, j, k) is shown at [k, 39 - j, 39 - i]; the mask covers i, j in 10..19, k in 2..3
    expected = np.zeros(labels.shape, np.uint16)
    expected[2:4, 39 - 19:39 - 9, 39 - 19:39 - 9] = 3
    assert np.array_equal(labels.data, expected)
    assert "resampled" in window.statusBar().currentMessage()
    window.view_state.set_slice(2)
    qtbot.waitUntil(lambda: window.canvas.label_overlay.buffer[25, 25] != 0, timeout=5000)
    assert window.canvas.label_overlay.buffer[5, 5] == 0
    window.canvas.grab().save(str(image.parent / "import_mask.png"))
    window.undo()
    assert not labels.data.any() and 3 not in labels.labels
    window.view_state.set_slice(3)
    qtbot.waitUntil(lambda: window.canvas.label_overlay.buffer[25, 25] == 0, timeout=5000)


def test_import_over_manual_labels_asks_and_keeps_them_on_no(window, qtbot, load, ct_nifti, monkeypatch):
    image, mask = ct_nifti
    load(window, qtbot, image)
    labels = window.document.labels
    with labels.edit("brush") as e:
        e.paint((slice(2, 3), slice(20, 30), slice(20, 30)), np.ones((1, 10, 10), bool), 3)
    asked = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "question",
                        staticmethod(lambda *a, **k: asked.append(a[2]) or QtWidgets.QMessageBox.StandardButton.No))
    _import(window, qtbot, mask)
    assert asked and "100 labelled pixels" in asked[0]
    assert (labels.data[2, 20:30, 20:30] == 3).all()  # the manual label 3 kept its pixels
    new = [v for v in labels.labels if v != 3]
    assert len(new) == 1 and labels.data[3, 25, 25] == new[0]  # the file's 3 became a new label


def test_a_mask_that_does_not_fit_is_refused_in_the_banner(window, qtbot, load, ct_nifti, tmp_path):
    from workbench.io import write_png

    image, _ = ct_nifti
    load(window, qtbot, image)
    small = write_png(tmp_path / "small.png", np.ones((10, 10), np.uint8))
    _import(window, qtbot, small, expect=False)
    assert "small.png" in window.last_error and "does not match the image" in window.last_error
    assert window.banner.isVisible() and not window.document.labels.data.any()
    assert not window.document.undo.can_undo


def test_a_deidentified_seg_lands_on_the_identified_series_by_geometry(window, qtbot, load, tmp_path):
    """File > Import mask… of a SEG exported with the default de-identification (remapped UIDs): matched by
    geometry, the same label map as the identified SEG gives, and the status line says how it was matched."""
    import sys
    from pathlib import Path

    pytest.importorskip("highdicom")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
    import io_fixtures as fixtures

    from workbench.export.dicom_seg import write_dicom_seg
    from workbench.io import read_image

    fixtures.write_dicom_series(tmp_path / "ct", n=4, rows=16, cols=12)
    fixtures.write_dicom_series(tmp_path / "other", n=4, rows=16, cols=12, z0=0.0)
    image = read_image(tmp_path / "ct")
    labels = np.zeros(image.shape, np.uint16)
    labels[1, 2:6, 3:7] = 4
    labels[2:4, 8:12, 1:5] = 9
    deid = write_dicom_seg(tmp_path / "deid.dcm", labels, image, names={4: "liver", 9: "lesion"})
    kept = write_dicom_seg(tmp_path / "kept.dcm", labels, image, names={4: "liver", 9: "lesion"},
                           keep_identity=True)
    load(window, qtbot, tmp_path / "ct")
    _import(window, qtbot, kept)
    by_uid = window.document.labels.data.copy()
    assert "geometry" not in window.statusBar().currentMessage()
    window.undo()
    assert not window.document.labels.data.any()
    _import(window, qtbot, deid)
    assert np.array_equal(window.document.labels.data, by_uid) and by_uid.any()
    assert "matched by geometry" in window.statusBar().currentMessage()
    assert {lab.name for v, lab in window.document.labels.labels.items() if v} >= {"liver", "lesion"}
    window.undo()
    assert not window.document.labels.data.any()

    load(window, qtbot, tmp_path / "other")
    _import(window, qtbot, deid, expect=False)
    assert "deid.dcm" in window.last_error and "belongs to another series" in window.last_error
    assert "\n" not in window.last_error and not window.document.labels.data.any()
