"""Volumetric (3-D) models: whole volume and 3-D tiles in both layouts, batched tiles, anisotropic spacing
with resampling, orientation stored|display, bad input. Label maps are checked against scipy/numpy
references computed here."""
from __future__ import annotations

import numpy as np
import onnx_factory as F
import onnx_factory_v2 as F2
import pytest

from workbench.core.errors import CancelledError, InferenceError, PluginError
from workbench.core.image import ImageVolume
from workbench.core.settings import Settings
from workbench.inference.preprocess import tile_origins
from workbench.inference.run import Engine, predict, run_plugin
from workbench.inference.spec import load_plugin
from workbench.inference.volume import oriented, resample_nearest

CLASSES = [{"name": "background"}, {"name": "a"}, {"name": "b"}]


def _plugin(tmp_path, proto, inp, *, name="v3", output=None):
    manifest = {"id": name, "task": "segmentation",
                "input": {"color": "gray", "layout": "NCDHW", **inp},
                "output": {"classes": CLASSES, **(output or {})}}
    return F.write_plugin(tmp_path / name, proto, manifest)


def _volume(shape=(12, 20, 24), seed=0, spacing=(2.0, 0.5, 0.5)):
    data = np.random.default_rng(seed).random(shape).astype(np.float32)
    return ImageVolume(data, spacing=spacing, spacing_known=True)


def _reference(vol: np.ndarray, params) -> np.ndarray:
    logits = F2.conv3d_reference(vol[np.newaxis], params)
    return np.argmax(logits, axis=0).astype(np.uint16)


@pytest.mark.parametrize("layout", ["NCDHW", "NDHWC"])
def test_whole_volume_both_layouts_match_scipy(tmp_path, layout):
    proto, params = F2.conv3d_net(1, 3, kernel=3, layout=layout, hidden=4)
    folder = _plugin(tmp_path, proto, {"layout": layout, "resize": "none", "multiple_of": 8},
                     output={"layout": layout})
    image = _volume()
    result = predict(folder, image, settings=Settings())
    # the engine pads 12x20x24 to 16x24x24 with pad_value 0 (multiple_of 8) and crops the labels back
    padded = np.zeros((16, 24, 24), np.float32)
    padded[:12, :20, :24] = image.data
    expected = _reference(padded, params)[:12, :20, :24]
    assert result.mask.shape == image.shape
    np.testing.assert_array_equal(result.mask, expected)
    voxels = {c.name: c.pixels for c in result.classes}
    assert voxels["a"] == int((expected == 1).sum()) and voxels["b"] == int((expected == 2).sum())
    vol_a = next(c.volume_mm3 for c in result.classes if c.name == "a")
    assert vol_a == pytest.approx(voxels["a"] * 2.0 * 0.5 * 0.5)
    assert result.info.slice_indices == list(range(12))


@pytest.mark.parametrize("layout, batch", [("NCDHW", "N"), ("NDHWC", 1)])
def test_tiles_blend_exactly_and_batch(tmp_path, layout, batch):
    """A 1x1x1 conv net: every tile's output equals the whole volume's, so the blended map (weights sum to
    one, the slab slides along z) must equal the untiled reference exactly."""
    proto, params = F2.conv3d_net(1, 3, kernel=1, layout=layout, batch=batch, seed=2)
    inp = {"layout": layout, "resize": "tile", "tile": {"size": [8, 16, 16], "overlap": [2, 4, 6]}}
    folder = _plugin(tmp_path, proto, inp, output={"layout": layout})
    image = _volume((21, 40, 37), seed=3)
    engine = Engine(folder, settings=Settings())
    gen = run_plugin(engine, image)
    steps = []
    while True:
        try:
            steps.append(next(gen))
        except StopIteration as stop:
            result = stop.value
            break
    n_tiles = len(tile_origins(21, 8, 2)) * len(tile_origins(40, 16, 4)) * len(tile_origins(37, 16, 6))
    assert n_tiles == 4 * 3 * 4
    assert [s[0] for s in steps] == list(range(1, n_tiles + 1)) and steps[-1][1] == n_tiles
    np.testing.assert_array_equal(result.mask, _reference(image.data, params))


def test_tiles_with_context_agree_with_whole_volume(tmp_path):
    """3x3x3 convolutions: tiles see less context at their borders; with overlap the blend still agrees."""
    proto, params = F2.conv3d_net(1, 3, kernel=3, hidden=4, seed=4)
    folder = _plugin(tmp_path, proto, {"resize": "tile", "tile": {"size": 16, "overlap": 6}})
    image = _volume((24, 30, 30), seed=5)
    mask = predict(folder, image, settings=Settings()).mask
    agree = float((mask == _reference(image.data, params)).mean())
    assert agree > 0.99, agree


def test_anisotropic_spacing_resamples_and_maps_back(tmp_path):
    """Model voxels of 1.5 mm in z, image 3 mm: z is upsampled 2x (linear, voxel centres aligned), the
    model thresholds each voxel, the labels come back with nearest neighbour."""
    proto, _ = F2.conv3d_net(1, 1, kernel=1)
    proto = F.model(  # fg = (x - 0.5) * 10: sigmoid output of one channel, threshold 0.5 <=> x > 0.5
        [F.helper.make_node("Sub", ["input", "t"], ["d"]), F.helper.make_node("Mul", ["d", "k"], ["output"])],
        [F.vi("input", ["N", 1, "D", "H", "W"])], [F.vi("output", ["N", 1, "D", "H", "W"])],
        [F.const("t", np.float32(0.5)), F.const("k", np.float32(10.0))])
    folder = _plugin(tmp_path, proto, {"resize": "none", "spacing": [1.5, 1.0, 1.0]},
                     output={"activation": "sigmoid", "classes": [{"name": "fg"}]})
    image = _volume((10, 12, 14), seed=6, spacing=(3.0, 1.0, 1.0))
    mask = predict(folder, image, settings=Settings()).mask
    x = image.data.astype(np.float64)
    # new slice 2i+1 sits at old z = i + 0.25: 0.75 x[i] + 0.25 x[i+1] (edge: nearest), nearest picks it back
    nxt = np.concatenate([x[1:], x[-1:]])
    expected = ((0.75 * x + 0.25 * nxt) > 0.5).astype(np.uint16)
    np.testing.assert_array_equal(mask, expected)
    assert not np.array_equal(mask, (x > 0.5).astype(np.uint16))  # the resampling really happened
    # spacing needed but unknown: one line naming the file and the field
    unknown = ImageVolume(image.data, spacing_known=False)
    with pytest.raises(PluginError, match=r"v3/plugin.yaml: input.spacing: the model needs the voxel size"):
        predict(folder, unknown, settings=Settings())


def test_resample_nearest_is_an_exact_inverse_for_integer_factors():
    labels = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    up = resample_nearest(labels, (6, 8, 10))
    np.testing.assert_array_equal(resample_nearest(up, (3, 4, 5)), labels)


def test_orientation_stored_is_the_file_voxel_order(tmp_path):
    import nibabel as nib

    from workbench.io.reader import read_image

    data = np.random.default_rng(7).random((6, 7, 5)).astype(np.float32)  # (i, j, k) as nibabel stores it
    affine = np.diag([-0.8, 0.9, 2.5, 1.0])  # an LAS file: i runs right -> left
    nib.save(nib.Nifti1Image(data, affine), str(tmp_path / "v.nii.gz"))
    image = read_image(tmp_path / "v.nii.gz")
    view = oriented(image, "stored")
    np.testing.assert_array_equal(view.data, data.transpose(2, 1, 0))  # (k, j, i)
    assert view.spacing == pytest.approx((2.5, 0.9, 0.8))
    np.testing.assert_array_equal(view.to_display(view.data), image.data)
    assert oriented(image, "display").data is image.data


def test_orientation_stored_end_to_end(tmp_path):
    """A model that is not mirror symmetric (it marks voxels brighter than their +x neighbour) gives the
    same label map through either orientation only when the engine maps it back correctly."""
    import nibabel as nib

    from workbench.io.reader import read_image

    w = np.zeros((1, 1, 1, 1, 2), np.float32)
    w[0, 0, 0, 0] = [1.0, -1.0]  # out[x] = in[x] - in[x+1]
    proto = F.model([F.helper.make_node("Conv", ["input", "w"], ["output"], pads=[0, 0, 0, 0, 0, 1])],
                    [F.vi("input", ["N", 1, "D", "H", "W"])], [F.vi("output", ["N", 1, "D", "H", "W"])],
                    [F.const("w", w)])
    data = np.random.default_rng(8).random((6, 7, 5)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp_path / "v.nii.gz"))  # RAS: display flips x and y
    image = read_image(tmp_path / "v.nii.gz")
    out = {"activation": "none", "threshold": 0.0, "classes": [{"name": "edge"}]}
    stored = predict(_plugin(tmp_path, proto, {"resize": "none", "orientation": "stored"}, name="s", output=out),
                     image, settings=Settings()).mask
    stored_view = data.transpose(2, 1, 0)  # (k, j, i): the model's x is the file's i
    nxt = np.concatenate([stored_view[..., 1:], np.zeros_like(stored_view[..., :1])], axis=-1)
    expected_stored = ((stored_view - nxt) > 0).astype(np.uint16)
    np.testing.assert_array_equal(oriented(image, "stored").data, stored_view)
    np.testing.assert_array_equal(stored, oriented(image, "stored").to_display(expected_stored))
    display = predict(_plugin(tmp_path, proto, {"resize": "none"}, name="d", output=out), image,
                      settings=Settings()).mask
    assert not np.array_equal(stored, display)  # display order differs from the file's: so do the labels


def test_cancel_between_tiles(tmp_path):
    proto, _ = F2.conv3d_net(1, 3, kernel=1)
    folder = _plugin(tmp_path, proto, {"resize": "tile", "tile": {"size": 8, "overlap": 2}})
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(CancelledError):
        predict(folder, _volume((16, 16, 16)), settings=Settings(), cancel=cancel)


def test_small_volume_shrinks_dynamic_tiles_refuses_fixed(tmp_path):
    proto, params = F2.conv3d_net(1, 3, kernel=1, seed=9)
    folder = _plugin(tmp_path, proto, {"resize": "tile", "tile": {"size": [32, 16, 16], "overlap": 4}})
    image = _volume((10, 40, 40), seed=10)  # 10 slices < 32: the dynamic depth shrinks to 10
    np.testing.assert_array_equal(predict(folder, image, settings=Settings()).mask, _reference(image.data, params))
    fixed, _ = F2.conv3d_net(1, 3, kernel=1, dims=[32, 16, 16], batch=1)
    folder = _plugin(tmp_path, fixed, {"resize": "tile"}, name="fixed")
    with pytest.raises(PluginError, match=r"fixed/plugin.yaml: input.tile.size: \[32, 16, 16\] is larger than the "
                                          r"volume 10x40x40 \(z y x, model voxels\) along z"):
        predict(folder, image, settings=Settings())


def test_3d_plugin_on_2d_image_and_2d_fields(tmp_path):
    proto, _ = F2.conv3d_net(1, 3)
    folder = _plugin(tmp_path, proto, {"resize": "none"})
    with pytest.raises(PluginError, match=r"v3/plugin.yaml: input.layout: NCDHW is a 3-D model; .* is a 2-D image"):
        predict(folder, ImageVolume(np.zeros((32, 32), np.float32)), settings=Settings())
    with pytest.raises(InferenceError, match="3-D model .* slices cannot be chosen"):
        predict(folder, _volume(), slices=[3], settings=Settings())
    # 3-D fields on a 2-D model, 2-D fields on a 3-D model: refused at load time naming the field
    flat = F.write_plugin(tmp_path / "flat", F.identity(["N", 1, "H", "W"]),
                          {"id": "flat", "task": "segmentation", "input": {"spacing": [1, 1, 1]}})
    with pytest.raises(PluginError, match="flat/plugin.yaml: input.spacing: is for 3-D layouts"):
        load_plugin(flat)
    bad = _plugin(tmp_path, proto, {"resize": "letterbox"}, name="lb")
    with pytest.raises(PluginError, match="lb/plugin.yaml: input.resize: letterbox is not available for 3-D"):
        load_plugin(bad)
    det = F.write_plugin(tmp_path / "det", proto, {"id": "det", "task": "detection",
                                                   "input": {"layout": "NCDHW"}, "output": {"format": "yolov8"}})
    with pytest.raises(PluginError, match="det/plugin.yaml: input.layout: NCDHW .* segmentation, not detection"):
        load_plugin(det)


def test_2d_model_on_a_volume_stays_slice_by_slice(tmp_path):
    folder = F.write_plugin(tmp_path / "two", F.threshold_segmenter(1),
                            {"id": "two", "task": "segmentation", "input": {"color": "gray", "resize": "none"}})
    image = _volume((5, 8, 9))
    result = predict(folder, image, slices=[1, 3], settings=Settings())
    assert result.info.slice_indices == [1, 3]
    np.testing.assert_array_equal(result.mask[1], (image.data[1] > 0.5).astype(np.uint16))
    assert not result.mask[0].any()


def test_fp16_3d_graph(tmp_path):
    """An fp16 export of a 3-D net (float16 in and out, input.dtype left out) agrees with the float reference."""
    from onnx import TensorProto

    proto, params = F2.conv3d_net(1, 3, kernel=3, hidden=4, seed=11)
    half = F2.with_io_types(proto, elem_in=TensorProto.FLOAT16, elem_out=TensorProto.FLOAT16)
    folder = _plugin(tmp_path, half, {"resize": "tile", "tile": {"size": 16, "overlap": 4},
                                      "intensity": {"scale": 0.01}}, name="h")
    raw = (np.random.default_rng(12).random((20, 24, 28)) * 100).astype(np.int16)
    mask = predict(folder, ImageVolume(raw), settings=Settings()).mask
    ref = _reference(raw.astype(np.float64) * 0.01, params)
    assert float((mask == ref).mean()) > 0.98


# -- the pipelined run (fill and blend on a helper thread while session.run works) -------------------
@pytest.mark.parametrize("classes, batch", [(3, "N"), (2, 1)])
def test_pipelined_run_equals_the_one_thread_reference_exactly(tmp_path, monkeypatch, classes, batch):
    """A 3x3x3 conv net (tiles differ where they overlap, so the blend matters), argmax and the two-class
    softmax shortcut, dynamic and fixed batch: the pipelined label map is bit-identical to the one of the
    same steps on the caller's thread, and the blending really ran on the helper thread."""
    import threading

    import workbench.inference.volume as V
    from workbench.inference.volume_blend import SlabBlender

    proto, _ = F2.conv3d_net(1, classes, kernel=3, hidden=4, batch=batch, seed=11)
    inp = {"resize": "tile", "tile": {"size": [8, 12, 10], "overlap": [3, 4, 3]}}
    folder = _plugin(tmp_path, proto, inp, output={"classes": CLASSES[:classes]})
    image = _volume((23, 31, 26), seed=4)
    engine = Engine(folder, settings=Settings())
    threads = []
    real_add = SlabBlender.add
    monkeypatch.setattr(SlabBlender, "add", lambda self, *a: threads.append(threading.current_thread().name)
                        or real_add(self, *a))
    masks = {}
    for pipelined in (False, True):
        monkeypatch.setattr(V, "PIPELINE", pipelined)
        threads.clear()
        steps: list[int] = []
        masks[pipelined] = predict(engine, image, progress=lambda d, t, m, seen=steps: seen.append(d)).mask
        n_tiles = steps[-1]
        assert steps == list(range(1, n_tiles + 1)) and len(threads) == n_tiles > 20
        assert {t.startswith("workbench-volume") for t in threads} == {pipelined}
    assert len(np.unique(masks[True])) == classes  # a real segmentation, not all background
    np.testing.assert_array_equal(masks[True], masks[False])


def test_pipelined_run_stops_on_cancel_and_on_nan_with_no_thread_left(tmp_path, monkeypatch):
    import threading

    proto, _ = F2.conv3d_net(1, 3, kernel=1)
    folder = _plugin(tmp_path, proto, {"resize": "tile", "tile": {"size": 8, "overlap": 2}})
    engine = Engine(folder, settings=Settings())

    def helpers():
        return [t for t in threading.enumerate() if t.name.startswith("workbench-volume")]

    calls = []
    with pytest.raises(CancelledError):
        predict(engine, _volume((16, 16, 16)), cancel=lambda: calls.append(1) or len(calls) > 3)
    assert len(calls) == 4 and not helpers()
    session = engine.model.session
    real_run, runs = session.run, []

    def poisoned(*args):
        outs = real_run(*args)
        runs.append(1)
        if len(runs) == 3:
            outs[0][0, 0, 1, 2, 3] = np.nan  # the third tile's output: checked on the helper thread
        return outs

    monkeypatch.setattr(session, "run", poisoned)
    with pytest.raises(InferenceError, match="NaN or Inf"):
        predict(engine, _volume((16, 16, 16)))
    assert 3 <= len(runs) <= 5 and not helpers()  # stopped within two tiles of the bad one
