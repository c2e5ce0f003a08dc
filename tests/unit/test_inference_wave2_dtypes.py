"""Plugin engine v2, 2-D side: per-image normalisation (standardize, clip), graph dtypes (fp16 in/out,
QDQ int8, uint8/int64 inputs, input.dtype read from the graph), dynamic shapes padded to multiple_of,
extra graph inputs fed from input.constants. Every number is checked against a numpy reference."""
from __future__ import annotations

import numpy as np
import onnx_factory as F
import onnx_factory_v2 as F2
import pytest
from onnx import TensorProto, helper

from workbench.core.errors import InferenceError, PluginError
from workbench.core.image import ImageVolume
from workbench.core.settings import Settings
from workbench.inference import session as S
from workbench.inference.preprocess import prepare_plane
from workbench.inference.run import predict
from workbench.inference.spec import load_plugin


def _spec(tmp_path, inp, *, proto=None, task="segmentation", output=None, name="p"):
    manifest = {"id": name, "task": task, "input": inp, "output": output or {}}
    return load_plugin(F.write_plugin(tmp_path / name, proto or F.identity(["N", 1, "H", "W"]), manifest))


def _tensor(spec, data, channels_first=True):
    plane = prepare_plane(spec, ImageVolume(data), 0, graph_hw=(None, None), dtype=np.dtype(np.float32))
    return plane.tensor[0]


# -- 1. standardize / clip -------------------------------------------------------------------------
def test_standardize_gray_matches_numpy(tmp_path):
    rng = np.random.default_rng(1)
    raw = (rng.standard_normal((40, 50)) * 300 + 40).astype(np.int16)
    spec = _spec(tmp_path, {"color": "gray", "resize": "none", "intensity": {"standardize": True}})
    x = raw.astype(np.float64)
    expected = (x - x.mean()) / (x.std() + 1e-6)
    np.testing.assert_allclose(_tensor(spec, raw)[0], expected, rtol=1e-5, atol=1e-5)


def test_clip_then_standardize_then_mean_std_order(tmp_path):
    rng = np.random.default_rng(2)
    raw = (rng.standard_normal((30, 30)) * 800).astype(np.float32)
    inp = {"color": "gray", "resize": "none",
           "intensity": {"clip": [-500, 700], "scale": 2.0, "offset": 3.0, "standardize": True, "eps": 0.5,
                         "mean": 1.0, "std": 4.0}}
    spec = _spec(tmp_path, inp)
    y = np.clip(raw.astype(np.float64), -500, 700) * 2.0 + 3.0
    expected = ((y - y.mean()) / (y.std() + 0.5) - 1.0) / 4.0
    np.testing.assert_allclose(_tensor(spec, raw)[0], expected, rtol=1e-5, atol=1e-5)


def test_clip_narrows_a_window(tmp_path):
    raw = np.array([[-2000, -1000, 0, 200, 400, 3000]], np.float32)
    spec = _spec(tmp_path, {"color": "gray", "resize": "none",
                            "intensity": {"clip": [-100, 1000], "window": [-1000, 400]}})
    expected = (np.clip(np.clip(raw, -100, 1000), -1000, 400) + 1000) / 1400
    np.testing.assert_allclose(_tensor(spec, raw)[0], expected, rtol=1e-6)


def test_standardize_per_colour_channel(tmp_path):
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    raw[..., 2] //= 4  # a channel with other statistics
    spec = _spec(tmp_path, {"color": "rgb", "resize": "none", "intensity": {"standardize": True}},
                 proto=F.identity(["N", 3, "H", "W"]))
    got = _tensor(spec, raw[None])
    for c in range(3):
        x = raw[..., c].astype(np.float64)
        np.testing.assert_allclose(got[c], (x - x.mean()) / (x.std() + 1e-6), rtol=1e-5, atol=1e-5)


def test_standardize_constant_image_and_nan(tmp_path):
    spec = _spec(tmp_path, {"color": "gray", "resize": "none", "intensity": {"standardize": True}})
    assert np.all(_tensor(spec, np.full((8, 8), 7.0, np.float32)) == 0)
    data = np.arange(16, dtype=np.float32).reshape(4, 4)
    data[0, 0] = np.nan
    finite = data[np.isfinite(data)].astype(np.float64)
    got = _tensor(spec, data)[0]
    np.testing.assert_allclose(got[1:], (data[1:] - finite.mean()) / (finite.std() + 1e-6), rtol=1e-5)


def test_standardized_restoration_maps_back_to_raw(tmp_path):
    """An identity restoration model with standardize gives the input back (the fold is inverted)."""
    manifest = {"id": "res", "task": "restoration",
                "input": {"color": "gray", "resize": "none", "intensity": {"standardize": True}}}
    folder = F.write_plugin(tmp_path / "res", F.identity(["N", 1, "H", "W"]), manifest)
    raw = np.random.default_rng(4).integers(0, 4000, (1, 16, 20)).astype(np.uint16)
    result = predict(folder, ImageVolume(raw), settings=Settings())
    np.testing.assert_array_equal(result.image.data, raw)


def test_bad_normalisation_fields(tmp_path):
    with pytest.raises(PluginError, match=r"plugin.yaml: input.intensity.clip: must be \[low, high\]"):
        _spec(tmp_path, {"intensity": {"clip": [5, 1]}})
    with pytest.raises(PluginError, match=r"input.intensity.eps: Input should be greater than 0"):
        _spec(tmp_path, {"intensity": {"standardize": True, "eps": 0}})


# -- 2. dtypes -------------------------------------------------------------------------------------
SEG = {"color": "gray", "resize": "none"}


def test_fp16_graph_input_and_output_without_dtype_field(tmp_path):
    proto = F2.with_io_types(F.threshold_segmenter(1), elem_in=TensorProto.FLOAT16, elem_out=TensorProto.FLOAT16)
    folder = F.write_plugin(tmp_path / "h", proto, {"id": "h", "task": "segmentation",
                                                    "input": {**SEG, "intensity": {"scale": 1 / 255}}})
    spec = load_plugin(folder)
    assert spec.input.dtype is None
    model = S.get_session(spec, settings=Settings())
    assert model.input.dtype == np.float16
    raw = np.random.default_rng(5).integers(0, 256, (33, 41), dtype=np.uint8)
    result = predict(folder, ImageVolume(raw), settings=Settings())
    x16 = (raw.astype(np.float32) / 255).astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(result.mask[0], (x16 > 0.5).astype(np.uint16))
    # a dtype that disagrees with the graph is still refused, naming the field
    bad = F.write_plugin(tmp_path / "bad", proto, {"id": "bad", "task": "segmentation",
                                                   "input": {**SEG, "dtype": "float32"}})
    with pytest.raises(PluginError, match="input.dtype: graph expects float16, the manifest says float32"):
        S.get_session(load_plugin(bad), settings=Settings())


@pytest.mark.parametrize("elem, dtype", [(TensorProto.UINT8, np.uint8), (TensorProto.INT64, np.int64)])
def test_integer_graph_inputs(tmp_path, elem, dtype):
    """uint8 / int64 inputs get rounded, clipped raw values; logits = mean(x) @ W checked against numpy."""
    W = np.array([[0.01, -0.02, 0.003]], np.float32)
    proto = F2.with_io_types(F.classifier(1, 3, weights=W), elem_in=elem)
    folder = F.write_plugin(tmp_path / "c", proto, {"id": "c", "task": "classification",
                                                    "input": {"color": "gray", "resize": "none"},
                                                    "output": {"activation": "none"}})
    raw = np.random.default_rng(6).integers(0, 200, (12, 14)).astype(np.uint16)
    result = predict(folder, ImageVolume(raw), settings=Settings())
    np.testing.assert_allclose(result.scores, raw.astype(np.float64).mean() * W[0], rtol=1e-5)
    assert S.get_session(load_plugin(folder), settings=Settings()).input.dtype == dtype


def test_qdq_quantised_graph_matches_float_model(tmp_path):
    """A conv net quantised to int8 QDQ with onnxruntime.quantization gives nearly the float masks."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    proto = F.conv_net(1, [8], 2, size=[32, 32], seed=3)
    fp = tmp_path / "fp.onnx"
    fp.write_bytes(proto.SerializeToString())
    rng = np.random.default_rng(7)
    images = [rng.random((32, 32)).astype(np.float32) for _ in range(4)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input": im[None, None]} for im in images])

        def get_next(self):
            return next(self.it, None)

    q = tmp_path / "q.onnx"
    quantize_static(str(fp), str(q), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8)
    qbytes = q.read_bytes()
    assert b"QuantizeLinear" in qbytes and b"DequantizeLinear" in qbytes
    common = {"task": "segmentation", "input": {"color": "gray", "resize": "none"}}
    f_folder = F.write_plugin(tmp_path / "f", proto, {"id": "f", **common})
    q_folder = F.write_plugin(tmp_path / "qq", qbytes, {"id": "qq", **common})
    vol = ImageVolume(np.stack(images))
    ref = predict(f_folder, vol, settings=Settings()).mask
    got = predict(q_folder, vol, settings=Settings()).mask
    agree = float((ref == got).mean())
    assert agree >= 0.9, agree


# -- dynamic shapes --------------------------------------------------------------------------------
def test_dynamic_hw_padded_to_multiple_and_cropped_back(tmp_path):
    proto = F2.pool_unpool(levels=2)
    raw = np.random.default_rng(8).random((37, 50)).astype(np.float32) * 0.6
    plain = F.write_plugin(tmp_path / "plain", proto, {"id": "plain", "task": "segmentation", "input": SEG})
    with pytest.raises(InferenceError, match=r"model failed at run time on input \[1, 1, 37, 50\]"):
        predict(plain, ImageVolume(raw), settings=Settings())
    padded = F.write_plugin(tmp_path / "pad", proto, {"id": "pad", "task": "segmentation",
                                                      "input": {**SEG, "multiple_of": 4}})
    result = predict(padded, ImageVolume(raw), settings=Settings())
    assert result.mask.shape == (1, 37, 50)
    big = np.zeros((40, 52), np.float32)  # pad_value 0, bottom/right
    big[:37, :50] = raw
    expected = (F2.pool_unpool_reference(big)[:37, :50] > 0).astype(np.uint16)
    np.testing.assert_array_equal(result.mask[0], expected)


# -- constants -------------------------------------------------------------------------------------
def _gain_graph():
    nodes = [helper.make_node("Mul", ["input", "gain"], ["x"])]
    inner = F.threshold_segmenter(1, name_in="x")
    nodes += list(inner.graph.node)
    return F.model(nodes, [F.vi("input", ["N", 1, "H", "W"]), F.vi("gain", [1])],
                   list(inner.graph.output), list(inner.graph.initializer))


def test_extra_inputs_need_constants(tmp_path):
    proto = _gain_graph()
    none = F.write_plugin(tmp_path / "n", proto, {"id": "n", "task": "segmentation", "input": SEG})
    with pytest.raises(PluginError, match=r"n/plugin.yaml: input.name: graph has 2 inputs \('input', 'gain'\); "
                                          r"name the image input .*input.constants"):
        S.get_session(load_plugin(none), settings=Settings())
    typo = F.write_plugin(tmp_path / "t", proto, {"id": "t", "task": "segmentation",
                                                  "input": {**SEG, "constants": {"gian": 2}}})
    with pytest.raises(PluginError, match=r"input.constants.gian: graph has no input 'gian'"):
        S.get_session(load_plugin(typo), settings=Settings())
    named = F.write_plugin(tmp_path / "m", proto, {"id": "m", "task": "segmentation",
                                                   "input": {**SEG, "name": "input"}})
    with pytest.raises(PluginError, match=r"input.constants: graph input\(s\) 'gain' are not the image"):
        S.get_session(load_plugin(named), settings=Settings())
    ok = F.write_plugin(tmp_path / "ok", proto, {"id": "ok", "task": "segmentation",
                                                 "input": {**SEG, "constants": {"gain": 2.0}}})
    raw = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    mask = predict(ok, ImageVolume(raw), settings=Settings()).mask[0]
    np.testing.assert_array_equal(mask, (raw * 2.0 > 0.5).astype(np.uint16))


# -- dynamic batch: several slices per session.run -------------------------------------------------
def test_dynamic_batch_runs_several_slices_per_run(tmp_path, monkeypatch):
    import workbench.inference.run as R

    folder = F.write_plugin(tmp_path / "b", F.conv_net(1, [4], 3, seed=5),
                            {"id": "b", "task": "segmentation", "input": {"color": "gray", "resize": "none"}})
    stack = ImageVolume(np.random.default_rng(9).random((11, 24, 20)).astype(np.float32))
    engine = R.Engine(folder, settings=Settings())
    assert engine.slice_batch(stack, 11) == 1  # off on the CPU provider (measured slower), on for GPUs
    monkeypatch.setattr(R, "SLICE_BATCH_CPU", 8)
    runs = []
    real = engine.model.run
    monkeypatch.setattr(engine.model, "run", lambda t, names=None: runs.append(t.shape[0]) or real(t, names))
    steps = []
    batched = predict(engine, stack, progress=lambda d, t, m: steps.append(d)).mask
    assert runs == [8, 3] and steps == list(range(1, 12))
    runs.clear()
    monkeypatch.setattr(R, "SLICE_BATCH_CPU", 1)
    single = predict(engine, stack).mask
    assert runs == [1] * 11
    np.testing.assert_array_equal(batched, single)
    # a fixed batch of 1 is never batched
    fixed = F.write_plugin(tmp_path / "f", F.identity([1, 1, 24, 20]),
                           {"id": "f", "task": "segmentation", "input": {"color": "gray", "resize": "none"}})
    monkeypatch.setattr(R, "SLICE_BATCH_CPU", 8)
    assert R.Engine(fixed, settings=Settings()).slice_batch(stack, 11) == 1
    assert R.Engine(folder, settings=Settings()).slice_batch(stack, 11) == 8
