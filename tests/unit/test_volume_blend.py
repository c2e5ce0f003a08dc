"""The core/shell blending of 3-D tiles (volume_blend) against a naive full-volume accumulation: every
tile weighted by the outer product of its ramps, summed in float32, then turned into class ids."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.inference.preprocess import blend_weights, tile_origins
from workbench.inference.volume_blend import Scoring, SlabBlender, axis_plan, shell_boxes


def _naive(outputs, starts, tile, padded, grid, score):
    k = score.channels(next(iter(outputs.values())))
    acc = np.zeros((k,) + padded, np.float32)
    ws = [dict(zip(st, blend_weights(st, t, 3))) if len(st) > 1 else {st[0]: np.ones(t, np.float32)}
          for st, t in zip(starts, tile)]
    for (z, y, x), chw in outputs.items():
        w = (ws[0][z][:, None, None] * ws[1][y][None, :, None] * ws[2][x][None, None, :]).astype(np.float32)
        part = score.scores(chw, out=np.empty((k,) + tile, np.float32))
        part *= w
        acc[:, z:z + tile[0], y:y + tile[1], x:x + tile[2]] += part
    return score.ids(acc[:, :grid[0], :grid[1], :grid[2]])


@pytest.mark.parametrize("mode, channels, values", [
    ("diff", 2, [0, 1]), ("diff", 2, [7, 3]), ("argmax", 4, [0, 1, 2, 3]), ("threshold", 3, [1, 2, 3]),
    ("votes", None, [0, 4, 9])])
def test_core_shell_blending_equals_full_accumulation(mode, channels, values):
    rng = np.random.default_rng(len(values) + (channels or 0))
    grid, tile = (19, 30, 27), (8, 12, 10)
    padded = tuple(max(g, t) for g, t in zip(grid, tile))
    starts = tuple(tile_origins(p, t, 3) for p, t in zip(padded, tile))
    score = Scoring(mode, np.asarray(values, np.uint16), threshold=0.2)
    outputs = {}
    for z in starts[0]:
        for y in starts[1]:
            for x in starts[2]:
                outputs[(z, y, x)] = (rng.integers(0, 3, tile) if channels is None
                                      else rng.standard_normal((channels,) + tile).astype(np.float32))
    labels = np.zeros(grid, np.uint16)
    blender = SlabBlender(tuple(axis_plan(st, t, 3) for st, t in zip(starts, tile)), tile, padded, labels)
    blender.score = score
    for i, z in enumerate(starts[0]):
        for y in starts[1]:
            for x in starts[2]:
                blender.add(outputs[(z, y, x)], (z, y, x))
        last = i + 1 == len(starts[0])
        blender.finish(padded[0] if last else starts[0][i + 1], last)
    np.testing.assert_array_equal(labels, _naive(outputs, starts, tile, padded, grid, score))


def test_axis_plan_cores_and_shell_boxes():
    plan = axis_plan([0, 56, 112, 168, 192], 64, 8)
    assert plan.tiles[0].core == (0, 56) and plan.tiles[0].nonzero == (0, 64)
    assert plan.tiles[56].core == (8, 56)
    # the last two tiles share 40 voxels; the ramp sits in the middle: [208, 216)
    assert plan.tiles[168].core == (8, 40) and plan.tiles[168].nonzero == (0, 48)
    assert plan.tiles[192].nonzero == (16, 64) and plan.tiles[192].core == (24, 64)
    assert plan.shared == [(56, 64), (112, 120), (168, 176), (208, 216)]
    boxes = shell_boxes(((0, 8), (0, 8), (0, 8)), ((2, 6), (2, 6), (2, 6)))
    assert len(boxes) == 6 and sum(np.prod([b - a for a, b in box]) for box in boxes) == 8 ** 3 - 4 ** 3
    assert shell_boxes(((0, 8),) * 3, ((0, 0), (0, 8), (0, 8))) == [((0, 8),) * 3]
