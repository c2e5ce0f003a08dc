"""End to end: a 3-D plugin through `workbench predict` on a NIfTI volume and a DICOM series; the label map
of every slice written as NIfTI and as DICOM SEG; bad input as one line on stderr with exit 2."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import onnx_factory as F
import onnx_factory_v2 as F2
import pytest

from workbench.cli import main
from workbench.core.settings import Settings
from workbench.inference.run import predict
from workbench.io.reader import read_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from io_fixtures import write_dicom_series

MANIFEST = {"id": "vol", "task": "segmentation",
            "input": {"color": "gray", "layout": "NCDHW", "resize": "tile",
                      "tile": {"size": [8, 16, 16], "overlap": [2, 4, 4]},
                      "intensity": {"standardize": True}},
            "output": {"classes": [{"name": "background"}, {"name": "organ", "color": "#ff0000"}]}}


pytestmark = pytest.mark.usefixtures("fresh_session_cache")


@pytest.fixture
def plugin(tmp_path):
    proto, _ = F2.conv3d_net(1, 2, kernel=3, hidden=4, seed=1)
    return F.write_plugin(tmp_path / "vol", proto, MANIFEST)


def test_predict_nifti_writes_every_slice(tmp_path, plugin, capsys):
    data = (np.random.default_rng(0).random((30, 24, 18)) * 1000).astype(np.int16)
    nib.save(nib.Nifti1Image(data, np.diag([0.8, 0.9, 2.0, 1.0])), str(tmp_path / "ct.nii.gz"))
    assert main(["predict", "-m", str(plugin), str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out")]) == 0
    line = capsys.readouterr().out
    assert "organ:" in line and "voxels" in line and "mm\u00b3" in line
    doc = json.loads((tmp_path / "out" / "ct.json").read_text())
    organ = doc["segmentation"]["classes"][0]
    image = read_image(tmp_path / "ct.nii.gz")
    expected = predict(plugin, image, settings=Settings()).mask
    assert organ["pixels"] == int((expected == 1).sum())
    assert organ["volume_mm3"] == pytest.approx(organ["pixels"] * 0.8 * 0.9 * 2.0, rel=1e-6)
    written = read_image(tmp_path / "out" / doc["segmentation"]["mask"])
    assert written.shape == image.shape == (18, 24, 30)
    np.testing.assert_array_equal(written.data, expected)
    assert 0 < organ["pixels"] < expected.size and all(expected[z].any() for z in range(18))


def test_dicom_series_to_dicom_seg_of_all_slices(tmp_path, plugin):
    import pydicom

    from workbench.export.dicom_seg import write_dicom_seg

    write_dicom_series(tmp_path / "series", n=10, rows=32, cols=24)
    image = read_image(tmp_path / "series")
    result = predict(plugin, image, settings=Settings())
    assert result.mask.shape == image.shape and all(result.mask[z].any() for z in range(10))
    out = write_dicom_seg(tmp_path / "seg.dcm", result.mask, image, names={1: "organ"})
    seg = pydicom.dcmread(out)
    assert seg.Modality == "SEG" and int(seg.NumberOfFrames) == 10  # one frame per slice holding the organ
    frames = seg.pixel_array.astype(bool)
    np.testing.assert_array_equal(frames.sum(), (result.mask == 1).sum())


def test_bad_input_exit_2_one_line(tmp_path, plugin, capsys):
    import cv2

    cv2.imwrite(str(tmp_path / "flat.png"), np.zeros((20, 20), np.uint8))
    assert main(["predict", "-m", str(plugin), str(tmp_path / "flat.png"), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vol/plugin.yaml: input.layout: NCDHW is a 3-D model" in err[0]
    assert "flat.png is a 2-D image" in err[0]
    spacing = dict(MANIFEST, input={**MANIFEST["input"], "spacing": [1.0, 1.0, 1.0]})
    proto, _ = F2.conv3d_net(1, 2, kernel=1)
    sp = F.write_plugin(tmp_path / "sp", proto, {**spacing, "id": "sp"})
    np.save(tmp_path / "v.npy", np.zeros((12, 20, 20), np.float32))
    assert main(["predict", "-m", str(sp), str(tmp_path / "v.npy"), "-o", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sp/plugin.yaml: input.spacing: the model needs the voxel size" in err[0]
