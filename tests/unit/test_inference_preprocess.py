"""Preprocessing: geometry and its inverse, the folded intensity chain, tiles, colour."""
from __future__ import annotations

import numpy as np
import onnx_factory as F
import pytest

from workbench.core.errors import InferenceError
from workbench.core.image import ImageVolume
from workbench.inference.preprocess import (
    Geometry,
    intensity_map,
    luma_to_rgb,
    plane_to_model_color,
    prepare_plane,
    target_geometry,
    tile_origins,
    tile_weight,
)
from workbench.inference.spec import load_plugin


def _spec(tmp_path, inp, task="segmentation", output=None):
    manifest = {"id": "p", "task": task, "input": inp, "output": output or {}}
    return load_plugin(F.write_plugin(tmp_path / "p", F.identity(["N", 1, "H", "W"]), manifest))


def test_letterbox_geometry_roundtrip(tmp_path):
    spec = _spec(tmp_path, {"color": "gray", "resize": "letterbox", "size": [640, 640]})
    geo = target_geometry(spec, (480, 640), (None, None))
    assert geo.content_hw == (480, 640) and geo.pad == (80, 0)
    boxes = geo.boxes_to_source(np.array([[0, 80, 640, 560], [-10, 0, 700, 700]]))
    np.testing.assert_allclose(boxes, [[0, 0, 640, 480], [0, 0, 640, 480]])
    arr = np.zeros((640, 640), np.uint8)
    arr[80:560] = 7
    back = geo.to_source(arr, nearest=True)
    assert back.shape == (480, 640) and (back == 7).all()
    # a stride-4 output (160x160) crops the scaled padding
    small = np.zeros((160, 160), np.uint8)
    small[20:140] = 3
    assert (geo.to_source(small, nearest=True) == 3).all()


def test_stretch_and_none_geometry(tmp_path):
    spec = _spec(tmp_path, {"color": "gray", "resize": "stretch", "size": [100, 100]})
    geo = target_geometry(spec, (50, 200), (None, None))
    assert geo.scale == (2.0, 0.5)
    np.testing.assert_allclose(geo.boxes_to_source(np.array([[10, 10, 20, 20]])), [[20, 5, 40, 10]])
    spec = _spec(tmp_path, {"color": "gray", "resize": "none", "multiple_of": 16})
    geo = target_geometry(spec, (50, 65), (None, None))
    assert geo.dst_hw == (64, 80) and geo.content_hw == (50, 65)
    with pytest.raises(InferenceError, match="does not fit the model input 32x32"):
        target_geometry(spec, (50, 65), (32, 32))


def test_intensity_chain_folds_exactly(tmp_path):
    spec = _spec(tmp_path, {"color": "rgb", "intensity": {"window": [-1000, 400], "scale": 2.0, "offset": -1.0,
                                                        "mean": [0.1, 0.2, 0.3], "std": [0.5, 0.5, 2.0]}})
    raw = np.array([-2000.0, -1000.0, -300.0, 400.0, 3000.0], np.float32)
    imap = intensity_map(spec, ImageVolume(raw[None, None]), raw[None])
    for c, (m, s) in enumerate(zip([0.1, 0.2, 0.3], [0.5, 0.5, 2.0])):
        expected = ((np.clip((raw + 1000) / 1400, 0, 1) * 2 - 1) - m) / s
        got = np.clip(raw, *imap.clip) * imap.a[c] + imap.b[c]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # to_raw inverts the part before mean/std
    np.testing.assert_allclose(imap.to_raw(np.array([-1.0, 1.0], np.float32)), [-1000, 400], rtol=1e-5)


def test_dicom_window_and_percentile(tmp_path):
    spec = _spec(tmp_path, {"color": "gray", "intensity": {"window": "dicom"}})
    ct = ImageVolume(np.array([[[-1000.0, 40.0, 1000.0]]], np.float32), window=(40.0, 400.0), modality="CT")
    imap = intensity_map(spec, ct, ct.data[0])
    assert imap.clip == (-160.0, 240.0)
    assert imap.apply_scalar(40.0) == pytest.approx(0.5)
    spec = _spec(tmp_path, {"color": "gray", "intensity": {"percentile": [0, 100]}})
    data16 = np.array([[100, 1100, 60000]], np.uint16)
    imap = intensity_map(spec, ImageVolume(data16), data16)
    assert imap.clip == (100.0, 60000.0)
    # constant and all-NaN planes do not divide by zero
    flat = np.full((4, 4), 7.0, np.float32)
    assert np.isfinite(intensity_map(spec, ImageVolume(flat), flat).a).all()
    nan = np.full((4, 4), np.nan, np.float32)
    assert np.isfinite(intensity_map(spec, ImageVolume(nan), nan).a).all()


def test_16bit_and_hu_inputs_are_not_truncated(tmp_path):
    spec = _spec(tmp_path, {"color": "gray", "resize": "stretch", "size": [4, 4], "intensity": {"scale": 1 / 65535}})
    data = np.full((1, 8, 8), 65535, np.uint16)
    prep = prepare_plane(spec, ImageVolume(data), 0, graph_hw=(None, None), dtype=np.dtype(np.float32))
    assert prep.tensor.shape == (1, 1, 4, 4) and prep.tensor.max() == pytest.approx(1.0)
    spec = _spec(tmp_path, {"color": "gray", "resize": "none", "intensity": {"window": [-1000, 1000]}})
    hu = np.array([[[-3024.0, -1000.0, 0.0, 1000.0, 3071.0]]], np.float32)
    prep = prepare_plane(spec, ImageVolume(hu, modality="CT"), 0, graph_hw=(None, None), dtype=np.dtype(np.float32))
    np.testing.assert_allclose(prep.tensor[0, 0, 0], [0, 0, 0.5, 1, 1], atol=1e-6)


def test_color_conversions():
    rgb = np.zeros((2, 2, 4), np.uint8)
    rgb[..., 0], rgb[..., 3] = 255, 128
    gray, _ = plane_to_model_color(rgb, "gray")
    assert gray.shape == (2, 2) and int(gray[0, 0]) == 76  # 0.299 * 255, alpha ignored
    bgr, _ = plane_to_model_color(rgb, "bgr")
    assert bgr[0, 0].tolist() == [0, 0, 255]
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (5, 6, 3)).astype(np.uint16) * 200
    y, chroma = plane_to_model_color(img, "luma")
    np.testing.assert_allclose(luma_to_rgb(y, chroma), img, atol=0.05)
    g, c = plane_to_model_color(np.ones((3, 3), np.float32), "luma")
    assert c is None and g.shape == (3, 3)


def test_tiles_cover_and_weights_blend_to_one():
    assert tile_origins(100, 256, 32) == [0]
    assert tile_origins(600, 256, 32) == [0, 224, 344]
    ov = 32
    total = np.zeros(600, np.float32)
    for i, start in enumerate(tile_origins(600, 256, ov)):
        w = tile_weight((256, 256), ov, (True, True, i == 0, start + 256 >= 600))[0]
        total[start:start + 256] += w
        assert w.min() > 0
    assert total.min() >= 1.0 - 1e-6  # every pixel covered, edges at full weight
    w = tile_weight((64, 64), 16, (False, False, False, False))
    assert w[32, 32] == 1.0 and w[0, 0] < 0.01 and np.allclose(w, w.T)


def test_tile_blending_has_no_seams(tmp_path):
    """An identity model over overlapping tiles reproduces a smooth float image exactly."""
    from workbench.core.settings import Settings
    from workbench.inference.run import predict

    manifest = {"id": "den", "task": "restoration",
                "input": {"color": "gray", "resize": "tile", "tile": {"size": 64, "overlap": 16}},
                "output": {}}
    folder = F.write_plugin(tmp_path / "den", F.affine(["N", 1, "H", "W"], 1.0, 0.0), manifest)
    yy, xx = np.mgrid[0:150, 0:170]
    img = (np.sin(xx / 9.0) * np.cos(yy / 13.0) * 1000).astype(np.float32)
    result = predict(folder, ImageVolume(img), settings=Settings())
    out = result.image.data[0]
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, img, atol=1e-3)


def test_geometry_scale_property():
    geo = Geometry((100, 200), (64, 64), (32, 64), (16, 0), "letterbox")
    assert geo.scale == (0.32, 0.32)
