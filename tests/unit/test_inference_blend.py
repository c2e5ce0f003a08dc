"""Tile blending weights form a partition of unity (the engine adds weighted tiles without dividing)."""
import numpy as np
import onnx_factory as F
import pytest

from workbench.core.image import ImageVolume
from workbench.core.settings import Settings
from workbench.inference.preprocess import blend_weights, tile_origins, tile_weight
from workbench.inference.run import predict


@pytest.mark.parametrize("length,tile,overlap", [(600, 256, 32), (2048, 256, 32), (257, 256, 32), (300, 224, 32),
                                                 (1000, 256, 0), (513, 256, 100), (100, 256, 32), (150, 64, 16)])
def test_blend_weights_sum_to_one(length, tile, overlap):
    starts = tile_origins(max(length, tile), tile, overlap)
    weights = blend_weights(starts, tile, overlap)
    total = np.zeros(max(length, tile), np.float64)
    for start, w in zip(starts, weights):
        assert w.dtype == np.float32 and w.shape == (tile,) and w.min() >= 0
        total[start:start + tile] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    # image borders keep full weight: no ramp where there is no neighbour
    assert weights[0][0] == 1.0 and weights[-1][-1] == 1.0


def test_blend_weights_match_tile_weight_ramps_when_evenly_spaced():
    starts = tile_origins(2048, 256, 32)
    weights = blend_weights(starts, 256, 32)
    interior = tile_weight((256, 256), 32, (False, False, False, False))[128]
    first = tile_weight((256, 256), 32, (True, True, True, False))[128]
    np.testing.assert_allclose(weights[3], interior, atol=1e-6)
    np.testing.assert_allclose(weights[0], first, atol=1e-6)


def test_irregular_last_tile_ramp_sits_inside_the_shared_stretch():
    starts = tile_origins(300, 224, 32)  # [0, 76]: 148 shared pixels, a 32-pixel ramp in their middle
    w0, w1 = blend_weights(starts, 224, 32)
    ramp = np.flatnonzero((w1 > 0) & (w1 < 1)) + 76
    assert ramp.min() >= 76 and ramp.max() < 224 and len(ramp) == 32
    assert abs((ramp.min() - 76) - (223 - ramp.max())) <= 1  # centred between both tiles' borders


def test_tiled_identity_with_odd_sizes_and_three_channels(tmp_path):
    """An identity RGB model over tiles with a flush last tile on both axes returns the image."""
    manifest = {"id": "den3", "task": "restoration",
                "input": {"color": "rgb", "resize": "tile", "tile": {"size": 64, "overlap": 12}},
                "output": {}}
    folder = F.write_plugin(tmp_path / "den3", F.affine(["N", 3, "H", "W"], 1.0, 0.0), manifest)
    rng = np.random.default_rng(0)
    img = rng.normal(0, 100, (131, 97, 3)).astype(np.float32)
    out = predict(folder, ImageVolume(img[None]), settings=Settings()).image.data[0]
    np.testing.assert_allclose(out, img, atol=1e-3)
