"""`workbench models import` of volumetric (5-D input) graphs built here: layout, tiles from fixed dims or
the default with the probed multiple_of, the volume normalisations ranked on a NIfTI / DICOM series sample,
the written plugin run on a volume and checked against a numpy reference, and the refusals."""
from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import onnx_factory as F
import onnx_factory_v2 as F2
import pytest
import yaml
from importer_cases import ct_volume as _ct, pooled3d, threshold3d
from onnx import helper

from workbench.cli import main
from workbench.core.settings import Settings
from workbench.inference.importer import ImportRefused, propose, write_plugin_folder
from workbench.inference.run import Engine, predict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from io_fixtures import write_dicom_series

pytestmark = pytest.mark.usefixtures("fresh_session_cache")


def _save(tmp_path, proto, name="model.onnx"):
    path = tmp_path / name
    path.write_bytes(proto.SerializeToString())
    return path


def _nifti(path, vol, zooms=(0.8, 0.8, 2.5)):
    nib.save(nib.Nifti1Image(vol.transpose(2, 1, 0), np.diag([*zooms, 1.0])), path)  # (x, y, z) on disk
    return path


def _d(proposal, field):
    return next(d for d in proposal.decisions if d.field == field)


def test_zscore_model_ranked_on_a_nifti_written_and_run_on_the_volume(tmp_path):
    """A model trained on z-scored volumes: the z-score candidate wins on the sample, the plugin is
    written and run on the whole NIfTI, and the label map equals the numpy reference."""
    vol = _ct()
    sample = _nifti(tmp_path / "ct.nii.gz", vol)
    model = _save(tmp_path, threshold3d(0.0, 10.0))
    p = propose(model, sample=sample)
    inp = p.manifest["input"]
    assert inp["layout"] == "NCDHW" and inp["resize"] == "tile" and inp["color"] == "gray"
    assert inp["tile"] == {"size": [96, 96, 96], "overlap": [24, 24, 24]} and _d(p, "input.tile.size").weak
    assert p.ranking.chosen.key == "zscore" and inp["intensity"] == {"standardize": True}
    assert "one class everywhere" in next(c for c in p.ranking.candidates if c.key == "raw").note \
        or "saturated" in next(c for c in p.ranking.candidates if c.key == "raw").note
    assert p.manifest["output"]["layout"] == "NCDHW" and p.manifest["output"]["activation"] == "softmax"
    assert _d(p, "input.spacing").weak and "2.5 x 0.8 x 0.8 mm" in _d(p, "input.spacing").why
    folder = write_plugin_folder(p, tmp_path / "plugin")
    assert (folder / "sample.nii.gz").is_file()
    result = predict(Engine(folder, settings=Settings()), p.image)
    data = p.image.data.astype(np.float64)
    expected = ((data - data.mean()) / (data.std() + 1e-6) > 0).astype(np.uint16)
    np.testing.assert_array_equal(result.mask, expected)
    assert 0 < expected.mean() < 1


def test_fixed_ndhwc_graph_tiles_at_its_size_and_raw_wins_on_a_dicom_series(tmp_path):
    """[1, 16, 32, 32, 1]: NDHWC, tiles of the graph's size with a quarter overlap; an HU-threshold model
    ranks raw values first on a DICOM series; run on a larger volume than one tile."""
    hu = _ct((12, 40, 44), seed=1)
    write_dicom_series(tmp_path / "series", n=12, rows=40, cols=44, values=(hu + 1024).astype(np.int16))
    model = _save(tmp_path, threshold3d(-500.0, 0.01, layout="NDHWC", dims=(8, 32, 32)))
    p = propose(model, sample=tmp_path / "series")
    inp = p.manifest["input"]
    assert inp["layout"] == "NDHWC" and inp["tile"] == {"size": [8, 32, 32], "overlap": [2, 8, 8]}
    assert not _d(p, "input.tile.size").weak and "multiple_of" not in inp
    assert p.ranking.chosen.key == "raw" and inp["intensity"] == {}
    assert p.ranking.candidates[0].key == "raw"  # every window/z-score maps all of it above -500: one class
    assert p.probe_image.data.shape == (8, 32, 32)  # the centred crop (one tile) the candidates ran on
    folder = tmp_path / "out"
    assert main(["models", "import", str(model), "-o", str(folder), "--sample", str(tmp_path / "series")]) == 0
    written = yaml.safe_load((folder / "plugin.yaml").read_text())
    assert written["input"]["layout"] == "NDHWC" and written["output"]["layout"] == "NDHWC"
    result = predict(Engine(folder, settings=Settings()), p.image)
    np.testing.assert_array_equal(result.mask, (p.image.data > -500).astype(np.uint16))


def test_dynamic_graph_probes_multiple_of_and_runs_without_a_sample(tmp_path):
    model = _save(tmp_path, pooled3d())
    p = propose(model)
    inp = p.manifest["input"]
    assert inp["multiple_of"] == 2 and "fails at sizes not a multiple of 2" in _d(p, "input.multiple_of").why
    assert inp["tile"]["size"] == [96, 96, 96]
    assert _d(p, "input.intensity").weak and p.ranking is None  # no sample: the convention, said weak
    folder = write_plugin_folder(p, tmp_path / "plugin")  # the smoke run ran the phantom through the engine
    vol = np.random.default_rng(3).random((9, 21, 30)).astype(np.float32)
    from workbench.core.image import ImageVolume

    mask = predict(Engine(folder, settings=Settings()), ImageVolume(vol)).mask
    assert mask.shape == vol.shape  # padded to even sizes by the engine, cropped back


def test_volume_without_a_sample_and_a_2d_open_image(tmp_path):
    from workbench.core.image import ImageVolume

    model = _save(tmp_path, threshold3d(0.5, 10.0))
    p = propose(model, sample=ImageVolume(np.zeros((30, 40), np.uint8)))
    assert _d(p, "sample").weak and p.image.n_slices > 1  # a synthetic phantom replaces the 2-D image


@pytest.mark.parametrize("proto, message", [
    (lambda: F.identity(["N", 4, "D", "H", "W"]), "4 channels"),
    (lambda: F.model([helper.make_node("ReduceMean", ["x"], ["y"], axes=[2, 3, 4], keepdims=0)],
                     [F.vi("x", ["N", 1, "D", "H", "W"])], [F.vi("y", ["N", 1])], opset=13),
     "no output is a per-voxel map"),
])
def test_refusals_write_nothing(tmp_path, capsys, proto, message):
    model = _save(tmp_path, proto())
    with pytest.raises(ImportRefused, match=message):
        propose(model)
    assert main(["models", "import", str(model), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not (tmp_path / "out").exists()


def test_forced_task_other_than_segmentation_refused(tmp_path):
    model = _save(tmp_path, F2.conv3d_net(1, 2, kernel=1)[0])
    with pytest.raises(ImportRefused, match="segmentation only"):
        propose(model, task="classification")
