"""Polygon / lasso rasterisation against skimage.draw.polygon (same pixel rule)."""
import numpy as np
import pytest
from skimage.draw import polygon as sk_polygon

from workbench.core import LabelMap, ProcessingError
from workbench.processing import polygon


def rasterise(v, shape, **kw):
    box, mask = polygon(v, shape=shape, **kw)
    out = np.zeros(shape, dtype=bool)
    out[box] = mask
    return out


def reference(v, shape):
    v = np.asarray(v, dtype=float)
    out = np.zeros(shape, dtype=bool)
    out[sk_polygon(v[:, 0], v[:, 1], shape)] = True
    return out


def star_polygon(rng, n, integer):
    ang = np.sort(rng.random(n)) * 2 * np.pi
    rad = rng.uniform(5, 45, n)
    v = np.stack([50 + rad * np.sin(ang), 60 + rad * np.cos(ang)], axis=1)
    return np.round(v) if integer else v


@pytest.mark.parametrize("integer", [False, True])
def test_matches_skimage_on_random_simple_polygons(integer):
    rng = np.random.default_rng(7 + integer)
    shape = (100, 120)
    for _ in range(150):
        v = star_polygon(rng, int(rng.integers(3, 30)), integer)
        assert np.array_equal(rasterise(v, shape), reference(v, shape))


def test_half_integer_vertices_and_clipping_match_skimage():
    shape = (30, 30)
    for v in ([[-5.5, -3], [10.5, 40], [35, 12.5]], [[2.5, 2.5], [2.5, 20.5], [20.5, 20.5], [20.5, 2.5]],
              [[0, 0], [0, 29], [29, 29], [29, 0]]):
        assert np.array_equal(rasterise(v, shape), reference(v, shape))


def test_closed_square_includes_its_edges():
    got = rasterise([[1, 1], [1, 5], [5, 5], [5, 1]], (8, 8))
    assert got.sum() == 25 and got[1:6, 1:6].all()


def test_degenerate_polygons():
    assert rasterise([[1, 1], [5, 5]], (8, 8)).sum() == 0  # two vertices: nothing
    assert rasterise([[100, 100], [100, 120], [120, 120]], (8, 8)).sum() == 0  # outside
    # A zero-area "polygon" (all vertices on one row) is its closed outline: the pixels 1..6 of row 2.
    # (skimage's vertex/edge special cases give a broken line here; ours is the closed-set rule.)
    line = rasterise([[2, 1], [2, 6], [2, 3]], (8, 8))
    assert np.flatnonzero(line[2]).tolist() == [1, 2, 3, 4, 5, 6] and line.sum() == 6


def test_stack_needs_a_slice_and_writes_through_label_edit():
    lm = LabelMap((3, 20, 20))
    with pytest.raises(ProcessingError):
        polygon([[1, 1], [1, 8], [8, 8]], shape=lm.shape)
    box, mask = polygon([[2, 2], [2, 10], [10, 10], [10, 2]], shape=lm.shape, z=1)
    with lm.edit("Polygon") as e:
        e.paint(box, mask, 3)
    assert (lm.data[1] == 3).sum() == 81 and lm.data[0].sum() == 0 and lm.data[2].sum() == 0
    with lm.edit("Erase polygon") as e:
        e.paint(box, mask, 0)
    assert lm.data.sum() == 0


def test_bad_vertices_raise():
    with pytest.raises(ProcessingError):
        polygon([[1, 2, 3]], shape=(5, 5))
    with pytest.raises(ProcessingError):
        polygon([[1, np.nan], [2, 2], [3, 1]], shape=(5, 5))
