"""bioimage.io packages as plugins: formats 0.5 (folder) and 0.4 (.zip), the preprocessing folded exactly
(against a step-by-step numpy implementation), test tensors reproduced by `models check`, metadata, and
one-line refusals naming the file and the field."""
from __future__ import annotations

import hashlib
import zipfile

import numpy as np
import onnx_factory as F
import pytest
import yaml

from workbench.cli import main
from workbench.core.errors import PluginError
from workbench.core.image import ImageVolume
from workbench.core.settings import Settings
from workbench.inference import session as S
from workbench.inference.bioimageio import fold_preprocessing
from workbench.inference.registry import discover_plugins
from workbench.inference.run import Engine, predict
from workbench.inference.spec import load_plugin


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    S.clear_session_cache()
    yield
    S.clear_session_cache()


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _zmuv(x, eps=1e-6):
    return (x - x.mean()) / (x.std() + eps)


def _write(folder, rdf, model_bytes, files=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "weights.onnx").write_bytes(model_bytes)
    for name, arr in (files or {}).items():
        np.save(folder / name, arr)
    (folder / ("rdf.yaml" if rdf["format_version"].startswith("0.4") else "bioimageio.yaml")).write_text(
        yaml.safe_dump(rdf, sort_keys=False), encoding="utf-8")
    return folder


def _package_05(folder, *, pre=None, weights=None, post=None, test=True):
    """A 0.5 package: logits = 3 x - 0.5 after zero-mean-unit-variance, sigmoid in the postprocessing."""
    proto = F.affine(["N", 1, "H", "W"], 3.0, -0.5, name_in="raw", name_out="mask")
    data = proto.SerializeToString()
    x = (np.random.default_rng(0).random((1, 1, 32, 40)) * 500).astype(np.float32)
    y = _sigmoid(3.0 * _zmuv(x.astype(np.float64)) - 0.5).astype(np.float32)
    rdf = {"format_version": "0.5.3", "type": "model", "id": "affable-nuclei", "name": "Nuclei (test)",
           "description": "A tiny test model.", "authors": [{"name": "Ada"}], "license": "MIT",
           "cite": [{"text": "Someone et al.", "doi": "10.1000/xyz"}], "covers": ["cover.png"], "version": "0.2",
           "inputs": [{"id": "raw", "axes": [{"type": "batch"}, {"type": "channel", "channel_names": ["raw"]},
                                              {"type": "space", "id": "y", "size": {"min": 16, "step": 8}},
                                              {"type": "space", "id": "x", "size": {"min": 16, "step": 8}}],
                       "test_tensor": {"source": "test_input.npy", "sha256": "0" * 64},
                       "data": {"type": "float32"},
                       "preprocessing": pre if pre is not None else [
                           {"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"]}},
                           {"id": "ensure_dtype", "kwargs": {"dtype": "float32"}}]}],
           "outputs": [{"id": "mask", "axes": [{"type": "batch"}, {"type": "channel", "channel_names": ["nuclei"]},
                                               {"type": "space", "id": "y", "halo": 4,
                                                "size": {"tensor_id": "raw", "axis_id": "y"}},
                                               {"type": "space", "id": "x", "halo": 4,
                                                "size": {"tensor_id": "raw", "axis_id": "x"}}],
                        "test_tensor": {"source": "test_output.npy", "sha256": "0" * 64},
                        "postprocessing": post if post is not None else [{"id": "sigmoid"}]}],
           "weights": weights if weights is not None else {
               "onnx": {"source": "weights.onnx", "sha256": hashlib.sha256(data).hexdigest(), "opset_version": 18}}}
    files = {"test_input.npy": x, "test_output.npy": y} if test else {}
    if not test:
        for t in rdf["inputs"] + rdf["outputs"]:
            t.pop("test_tensor")
    return _write(folder, rdf, data, files), x, y


def test_package_05_folder_is_a_plugin_with_metadata(tmp_path):
    folder, x, _ = _package_05(tmp_path / "pkg")
    spec = load_plugin(folder)
    assert spec.id == "affable-nuclei" and spec.name == "Nuclei (test)" and spec.version == "0.2"
    assert spec.task == "segmentation" and spec.output.activation == "sigmoid" and spec.input.multiple_of == 8
    assert spec.meta["license"] == "MIT" and spec.meta["authors"] == ["Ada"]
    assert spec.meta["cite"] == [{"text": "Someone et al.", "doi": "10.1000/xyz"}]
    assert spec.meta["covers"] == ["cover.png"] and spec.meta["bioimageio"]["format_version"] == "0.5.3"
    image = ImageVolume(x[0, 0][None])
    result = predict(folder, image, settings=Settings())
    expected = (_sigmoid(3.0 * _zmuv(x[0, 0].astype(np.float64)) - 0.5) > 0.5).astype(np.uint16)
    np.testing.assert_array_equal(result.mask[0], expected)
    assert [c.name for c in result.classes] == ["nuclei"]


def test_models_check_reproduces_the_test_tensor(tmp_path, capsys):
    folder, _, _ = _package_05(tmp_path / "pkg")
    assert main(["models", "check", str(folder)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("test tensor"))
    assert line.startswith("test tensor ok  output [1, 1, 32, 40] reproduced within max |diff|")
    max_abs = float(line.split("max |diff| ")[1].split()[0])
    assert max_abs < 1e-5
    # a wrong test output is reported with the size of the difference, exit 1
    y = np.load(folder / "test_output.npy")
    np.save(folder / "test_output.npy", y + 0.01)
    S.clear_session_cache()
    assert main(["models", "check", str(folder)]) == 1
    assert "test tensor FAILED" in capsys.readouterr().out


def _package_04_zip(tmp_path):
    """A 0.4 .zip: fixed 64x64 input, scale_range (percentiles) + clip + scale_linear, binarize after."""
    proto = F.identity([1, 1, 64, 64], name_in="input0", name_out="output0")
    data = proto.SerializeToString()
    rdf = {"format_version": "0.4.10", "type": "model", "name": "Ranger", "description": "zip test",
           "authors": [{"name": "Bo"}], "license": "CC-BY-4.0", "cite": [{"text": "x", "url": "https://x.org"}],
           "test_inputs": ["in.npy"], "test_outputs": ["out.npy"],
           "inputs": [{"name": "input0", "axes": "bcyx", "data_type": "float32", "shape": [1, 1, 64, 64],
                       "preprocessing": [{"name": "scale_range", "kwargs": {"mode": "per_sample", "axes": "xy",
                                                                              "min_percentile": 1,
                                                                              "max_percentile": 99}},
                                         {"name": "clip", "kwargs": {"min": 0.0, "max": 1.0}},
                                         {"name": "scale_linear", "kwargs": {"gain": 2.0, "offset": -0.5}}]}],
           "outputs": [{"name": "output0", "axes": "bcyx", "data_type": "float32",
                        "shape": {"reference_tensor": "input0", "scale": [1, 1, 1, 1], "offset": [0, 0, 0, 0]},
                        "halo": [0, 0, 8, 8], "postprocessing": [{"name": "binarize", "kwargs": {"threshold": 0.9}}]}],
           "weights": {"onnx": {"source": "weights.onnx", "sha256": hashlib.sha256(data).hexdigest()},
                       "torchscript": {"source": "missing.pt"}}}
    x = (np.random.default_rng(1).random((1, 1, 64, 64)) * 1000).astype(np.float32)
    folder = _write(tmp_path / "src04", rdf, data, {"in.npy": x, "out.npy": (_ref04(x) > 0.9).astype(np.float32)})
    zpath = tmp_path / "ranger.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in folder.iterdir():
            zf.write(p, p.name)
    return zpath


def _ref04(x):
    x = x.astype(np.float64)
    lo, hi = np.percentile(x, [1, 99])
    return np.clip((x - lo) / (hi - lo + 1e-6), 0, 1) * 2.0 - 0.5


def test_package_04_zip_tiles_a_large_image(tmp_path, capsys):
    zpath = _package_04_zip(tmp_path)
    spec = load_plugin(zpath)
    assert spec.input.resize == "tile" and spec.input.tile.hw == (64, 64) and spec.input.tile.overlap == 16
    assert spec.output.threshold == 0.9 and spec.output.activation == "none"
    raw = (np.random.default_rng(2).random((150, 130)) * 1000).astype(np.float32)
    mask = predict(zpath, ImageVolume(raw[None]), settings=Settings()).mask[0]
    expected = (_ref04(raw) > 0.9).astype(np.uint16)
    assert float((mask == expected).mean()) > 0.999  # identity tiles: equal up to float rounding at 0.9
    assert main(["models", "check", str(zpath)]) == 0
    assert "test tensor ok" in capsys.readouterr().out


def test_fold_equals_the_chain_step_by_step(tmp_path):
    pre = [{"id": "scale_linear", "kwargs": {"gain": -2.0, "offset": 100.0}},
           {"id": "clip", "kwargs": {"min": -500.0, "max": 80.0}},
           {"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"], "eps": 1e-3}},
           {"id": "scale_range", "kwargs": {"min_percentile": 5, "max_percentile": 90, "axes": ["y", "x"]}},
           {"id": "clip", "kwargs": {"min": 0.1, "max": 0.8}},
           {"id": "fixed_zero_mean_unit_variance", "kwargs": {"mean": 0.3, "std": 0.2}}]
    folder, _, _ = _package_05(tmp_path / "chain", pre=pre, test=False)
    spec = load_plugin(folder)
    x = (np.random.default_rng(3).random((20, 30)) * 400).astype(np.float32)
    imap = fold_preprocessing(spec, x, colour=False)
    got = np.clip(x.astype(np.float64), *imap.clip) * imap.a[0] + imap.b[0]
    v = x.astype(np.float64) * -2.0 + 100.0
    v = np.clip(v, -500, 80)
    v = (v - v.mean()) / (v.std() + 1e-3)
    lo, hi = np.percentile(v, [5, 90])
    v = (v - lo) / (hi - lo + 1e-6)
    v = np.clip(v, 0.1, 0.8)
    v = (v - 0.3) / (0.2 + 1e-6)
    np.testing.assert_allclose(got, v, rtol=1e-5, atol=1e-5)


def test_refusals_name_the_file_and_field(tmp_path, capsys):
    folder, _, _ = _package_05(tmp_path / "u", pre=[{"id": "fancy_norm", "kwargs": {}}])
    with pytest.raises(PluginError, match=r"u/bioimageio.yaml: inputs\[0\].preprocessing\[0\].id: unknown or "
                                          r"unsupported operation 'fancy_norm'"):
        load_plugin(folder)
    assert main(["models", "check", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "inputs[0].preprocessing[0].id" in err[0]
    folder, _, _ = _package_05(tmp_path / "t", weights={"torchscript": {"source": "w.pt"},
                                                        "pytorch_state_dict": {"source": "w.pth"}})
    with pytest.raises(PluginError, match=r"t/bioimageio.yaml: weights: no onnx weights \(this package has: "
                                          r"torchscript, pytorch_state_dict\)"):
        load_plugin(folder)
    folder, _, _ = _package_05(tmp_path / "d", pre=[{"id": "zero_mean_unit_variance",
                                                     "kwargs": {"mode": "per_dataset"}}])
    with pytest.raises(PluginError, match=r"preprocessing\[0\].kwargs.mode: per_dataset"):
        load_plugin(folder)
    folder, _, _ = _package_05(tmp_path / "s")
    (folder / "weights.onnx").write_bytes((folder / "weights.onnx").read_bytes() + b"\0")
    with pytest.raises(PluginError, match=r"s/bioimageio.yaml: model.sha256: weights.onnx has sha256"):
        Engine(folder, settings=Settings())


def test_discovered_in_a_plugin_folder(tmp_path, monkeypatch):
    root = tmp_path / "plugins"
    _package_05(root / "nuclei")
    zpath = _package_04_zip(tmp_path)
    zpath.rename(root / "ranger.zip")
    monkeypatch.setenv("WORKBENCH_PLUGINS_DIR", str(root))
    found = discover_plugins(Settings(), entry_points=False).by_id()
    assert {"affable-nuclei", "ranger"} <= set(found)


def test_volumetric_package_and_models_check_of_a_3d_plugin(tmp_path, capsys):
    """A bczyx 0.4 package (fixed 8x16x16 input, tiles), sigmoid output: a 3-D label map."""
    proto = F.affine([1, 1, 8, 16, 16], 4.0, -1.0, name_in="input0", name_out="output0")
    data = proto.SerializeToString()
    rdf = {"format_version": "0.4.9", "type": "model", "name": "Cells 3D", "authors": [{"name": "Cy"}],
           "inputs": [{"name": "input0", "axes": "bczyx", "data_type": "float32", "shape": [1, 1, 8, 16, 16],
                       "preprocessing": [{"name": "scale_linear", "kwargs": {"gain": 0.01, "offset": 0.0}}]}],
           "outputs": [{"name": "output0", "axes": "bczyx", "data_type": "float32",
                        "shape": {"reference_tensor": "input0", "scale": [1] * 5, "offset": [0] * 5},
                        "postprocessing": [{"name": "sigmoid"}]}],
           "weights": {"onnx": {"source": "weights.onnx", "sha256": hashlib.sha256(data).hexdigest()}}}
    folder = _write(tmp_path / "c3", rdf, data)
    spec = load_plugin(folder)
    assert spec.input.layout == "NCDHW" and spec.input.tile.dhw == (8, 16, 16)
    vol = (np.random.default_rng(4).random((20, 30, 25)) * 50).astype(np.float32)
    mask = predict(folder, ImageVolume(vol), settings=Settings()).mask
    np.testing.assert_array_equal(mask, (4.0 * vol * 0.01 - 1.0 > 0).astype(np.uint16))
    assert main(["models", "check", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "synthetic 8x16x16 volume" in out and "test tensor" not in out  # no test tensors in this package
