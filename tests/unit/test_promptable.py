"""Promptable segmentation: the contract (both shapes), the coordinate mapping, the embedding cache."""
from __future__ import annotations

import numpy as np
import promptable_factory as P
import pytest

from workbench.core.errors import PluginError
from workbench.core.image import ImageVolume
from workbench.inference.promptable.cache import EmbeddingCache
from workbench.inference.promptable.prompts import (
    Click,
    Letterbox,
    Prompt,
    PromptError,
    crop_box,
    parse_box,
    parse_click,
)
from workbench.inference.promptable.run import PromptSession
from workbench.inference.spec import load_plugin


def _image(h=30, w=80, spacing=(1.0, 2.0, 1.0), seed=0):
    rng = np.random.default_rng(seed)
    return ImageVolume(rng.integers(0, 255, (h, w), dtype=np.uint8), spacing=spacing, spacing_known=True)


def test_parse_click_and_box():
    assert parse_click("12,34") == Click(12, 34, True)
    assert parse_click("12,34:-") == Click(12, 34, False)
    assert parse_click("1.5, 2 ,3:+") == Click(1.5, 2, True, 3)
    assert parse_box("10,20,5,8") == (5, 8, 10, 20)
    with pytest.raises(PromptError, match="--click '12;34'"):
        parse_click("12;34")
    with pytest.raises(PromptError, match="--box"):
        parse_box("1,2,3")


def test_letterbox_anisotropic_roundtrip():
    # 30 rows of 2 mm x 80 columns of 1 mm: 60 x 80 mm -> 48 x 64 model pixels, padded below
    lb = Letterbox.fit((30, 80), 64, spacing=(2.0, 1.0))
    assert lb.new_hw == (48, 64) and lb.offset == (0, 0) and lb.scale == (1.6, 0.8)
    assert lb.to_model(0, 0) == pytest.approx((0.3, -0.1))
    c = Letterbox.fit((30, 80), 64, pad="center", spacing=(2.0, 1.0))
    assert c.offset == (8, 0)
    # a model-grid map of "row index" comes back as the source rows (pixel-centre convention)
    gy = np.mgrid[0:64, 0:64][0].astype(np.float32)
    back = c.back(gy)
    assert back.shape == (30, 80)
    np.testing.assert_allclose(back[:, 5], [c.to_model(y, 5)[0] for y in range(30)], atol=1e-4)


@pytest.mark.parametrize("shape", ["channels", "encoder_decoder"])
@pytest.mark.parametrize("pad", ["bottom_right", "center"])
def test_click_lands_on_its_pixel(tmp_path, shape, pad):
    """A click at a known pixel of a letterboxed, anisotropic image peaks on that very pixel of the mask."""
    if shape == "channels":
        folder = P.channels_plugin(tmp_path / "p", pad=pad)
    else:
        folder = P.encoder_decoder_plugin(tmp_path / "p", pad=pad)
    spec = load_plugin(folder)
    assert spec.task == "promptable" and spec.prompt.kind == shape
    sess = PromptSession(spec, threads=1)
    img = _image()
    for x, y in [(57, 11), (3, 28), (79, 0), (40, 15)]:
        res = sess.predict(img, Prompt([Click(x, y)]))
        assert res.mask.shape == (30, 80)
        assert np.unravel_index(int(np.argmax(res.logits)), res.logits.shape) == (y, x)
        assert res.mask[y, x]


def test_channels_crop_follows_previous_mask(tmp_path):
    spec = load_plugin(P.channels_plugin(tmp_path / "p", size=32))
    sess = PromptSession(spec, threads=1)
    img = _image(120, 200, spacing=(1, 1, 1))
    first = sess.predict(img, Prompt([Click(150, 60)]))
    assert first.crop == (0, 0, 120, 200)  # a lone first click sees the whole image
    prompt = Prompt([Click(150, 60), Click(140, 70)])
    second = sess.predict(img, prompt, previous=first)
    y0, x0, y1, x1 = second.crop
    assert (y1 - y0, x1 - x0) != (120, 200) and y0 <= 60 < y1 and x0 <= 140 < x1
    peak = np.unravel_index(int(np.argmax(second.logits)), second.logits.shape)
    assert peak in ((60, 150), (70, 140))
    assert not second.mask[: y0].any() and not second.mask[:, x1:].any()  # nothing outside the crop


def test_crop_box_rules():
    prev = np.zeros((100, 100), bool)
    prev[40:50, 40:60] = True
    assert crop_box((100, 100), Prompt([Click(45, 45)]), prev, context=0.5, min_size=8) == (35, 30, 55, 70)
    # at the border the crop shifts inside instead of shrinking
    prev[:] = False
    prev[0:10, 0:10] = True
    assert crop_box((100, 100), Prompt([Click(2, 2)]), prev, context=0.5, min_size=8) == (0, 0, 20, 20)
    assert crop_box((1000, 800), Prompt([Click(500, 500)]), None, context=0.4, min_size=8,
                    first_size=256) == (372, 372, 628, 628)


def test_the_next_click_reuses_the_normalised_slice_until_its_content_changes(tmp_path, monkeypatch):
    """A click session normalises a slice once (percentiles over the whole plane: half a click at 2048²); new
    content in the same slice is normalised again, and the masks equal a fresh session's."""
    import workbench.inference.promptable.run as R

    calls = []
    real = R.intensity_map
    monkeypatch.setattr(R, "intensity_map", lambda *a, **k: calls.append(1) or real(*a, **k))
    spec = load_plugin(P.channels_plugin(tmp_path / "p", size=32))
    sess = PromptSession(spec, threads=1)
    vol = ImageVolume(np.random.default_rng(2).integers(0, 255, (2, 60, 90), dtype=np.uint8))
    first = sess.predict(vol, Prompt([Click(40, 30)]), index=0)
    second = sess.predict(vol, Prompt([Click(40, 30), Click(50, 35, False)]), index=0, previous=first)
    assert len(calls) == 1
    vol.data[0] = 255 - vol.data[0]  # new content, same slice
    third = sess.predict(vol, Prompt([Click(40, 30)]), index=0)
    assert len(calls) == 2
    fresh = PromptSession(spec, threads=1)
    np.testing.assert_array_equal(third.logits, fresh.predict(vol, Prompt([Click(40, 30)]), index=0).logits)
    vol.data[0] = 255 - vol.data[0]
    again = fresh.predict(vol, Prompt([Click(40, 30)]), index=0)
    np.testing.assert_array_equal(second.logits, fresh.predict(vol, Prompt([Click(40, 30), Click(50, 35, False)]),
                                                               index=0, previous=again).logits)


def test_encoder_runs_once_per_slice_and_cache_is_keyed_by_content(tmp_path):
    spec = load_plugin(P.encoder_decoder_plugin(tmp_path / "p"))
    sess = PromptSession(spec, threads=1, cache=EmbeddingCache(10 ** 6))
    vol = ImageVolume(np.random.default_rng(1).integers(0, 255, (3, 40, 50), dtype=np.uint8))
    a = sess.predict(vol, Prompt([Click(10, 10, z=1)]))
    assert a.index == 1 and not a.cached and a.encoder_ms > 0
    b = sess.predict(vol, Prompt([Click(10, 10, z=1), Click(30, 20, False, z=1)]), previous=a)
    assert b.cached and b.encoder_ms == 0  # the second click: decoder only
    c = sess.predict(vol, Prompt([Click(5, 5)]), index=2)
    assert not c.cached
    vol.data[1] = 255 - vol.data[1]  # same slice index, new content: a miss
    d = sess.predict(vol, Prompt([Click(10, 10)]), index=1)
    assert not d.cached
    assert (sess.cache.hits, sess.cache.misses) == (1, 3)


def test_embedding_cache_byte_bound():
    cache = EmbeddingCache(max_bytes=2500)
    def item(v):
        return {"e": np.full(250, v, np.float32)}  # 1000 bytes

    cache.put("a", item(1))
    cache.put("b", item(2))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", item(3))  # 3000 bytes > 2500: the least recently used (b) goes
    assert "b" not in cache and "a" in cache and "c" in cache and cache.nbytes == 2000
    cache.put("big", {"e": np.zeros(1000, np.float32)})  # larger than the bound: not kept
    assert "big" not in cache and len(cache) == 2
    assert cache.get("b") is None and (cache.hits, cache.misses) == (1, 1)


def test_box_prompt_reaches_decoder_as_two_corner_points(tmp_path):
    spec = load_plugin(P.encoder_decoder_plugin(tmp_path / "p"))
    sess = PromptSession(spec, threads=1)
    res = sess.predict(_image(), Prompt([], box=(20, 5, 40, 25)))
    # the tiny decoder draws around the first point: the box's top-left corner
    assert np.unravel_index(int(np.argmax(res.logits)), res.logits.shape) == (5, 20)


def test_contract_errors(tmp_path):
    folder = P.channels_plugin(tmp_path / "p")
    P.edit_manifest(folder, prompt=None)
    with pytest.raises(PluginError, match="prompt: required for task promptable"):
        load_plugin(folder)
    folder = P.channels_plugin(tmp_path / "q")
    P.edit_manifest(folder, task="segmentation")
    with pytest.raises(PluginError, match="prompt: only for task promptable"):
        load_plugin(folder)
    folder = P.channels_plugin(tmp_path / "r", encoding="rings")
    with pytest.raises(PluginError, match="prompt.encoding"):
        load_plugin(folder)
    folder = P.encoder_decoder_plugin(tmp_path / "s")
    (folder / "decoder.onnx").unlink()
    with pytest.raises(PluginError, match="prompt.decoder.file: 'decoder.onnx' not found"):
        load_plugin(folder)
    folder = P.encoder_decoder_plugin(tmp_path / "t")
    (folder / "decoder.onnx").write_bytes((folder / "decoder.onnx").read_bytes() + b"x")
    with pytest.raises(PluginError, match="prompt.decoder.sha256"):
        PromptSession(load_plugin(folder), threads=1)


def test_prompt_errors(tmp_path):
    sess = PromptSession(load_plugin(P.channels_plugin(tmp_path / "p")), threads=1)
    img = _image()
    with pytest.raises(PromptError, match="outside the 80x30 image"):
        sess.predict(img, Prompt([Click(80, 3)]))
    with pytest.raises(PromptError, match="at least one click"):
        sess.predict(img, Prompt([]))
    with pytest.raises(PromptError, match="first click must include"):
        sess.predict(img, Prompt([Click(3, 3, False)]))
    with pytest.raises(PromptError, match="several slices"):
        sess.predict(img, Prompt([Click(3, 3, z=0), Click(4, 4, z=1)]))
