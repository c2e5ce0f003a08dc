"""Brush: dabs against skimage.draw.disk, gap-free strokes, mm/anisotropic, spheres, gate, undo memory."""
import numpy as np
import pytest
from skimage.draw import disk

from workbench.core import LabelMap, ProcessingError
from workbench.processing import dab, gate, stroke, stroke_path


def paint(shape, box, mask):
    out = np.zeros(shape, dtype=bool)
    out[box] = mask
    return out


@pytest.mark.parametrize("center,radius", [((20, 30), 5), ((20.3, 29.6), 7.5), ((0, 0), 4), ((47, 63), 3.2)])
def test_dab_matches_skimage_disk(center, radius):
    shape = (48, 64)
    box, mask = dab(center, radius, shape=shape)
    ref = np.zeros(shape, dtype=bool)
    ref[disk(center, radius, shape=shape)] = True
    got = paint(shape, box, mask)
    # skimage's disk is "centre strictly inside"; we add the pixel holding the centre, already inside here
    assert np.array_equal(got, ref)


def test_dab_box_is_tight_and_clipped():
    box, mask = dab((1, 1), 10, shape=(100, 100))
    assert box[0].start == 0 and box[1].start == 0
    assert mask.shape == (box[0].stop - box[0].start, box[1].stop - box[1].start)
    assert mask.any(axis=1).all() and mask.any(axis=0).all()


def test_tiny_and_zero_radius_paint_the_centre_pixel():
    for r in (0, 0.1):
        box, mask = dab((5.4, 6.6), r, shape=(10, 10))
        got = paint((10, 10), box, mask)
        assert got.sum() == 1 and got[5, 7]


def test_dab_outside_is_empty():
    box, mask = dab((-50, -50), 5, shape=(10, 10))
    assert mask.size == 0
    lm = LabelMap((1, 10, 10))
    with lm.edit("Brush") as e:
        e.paint((slice(0, 1),) + box, mask[np.newaxis] if mask.ndim == 2 else mask, 1)
    assert lm.data.sum() == 0 and not lm.undo.can_undo


def test_stroke_has_no_gaps_and_equals_union_of_dense_dabs():
    shape = (80, 120)
    p0, p1 = (10.2, 5.7), (70.9, 110.1)
    box, mask = stroke(p0, p1, 3, shape=shape)
    got = paint(shape, box, mask)
    dense = np.zeros(shape, dtype=bool)
    for t in np.linspace(0, 1, 2000):
        c = (p0[0] + t * (p1[0] - p0[0]), p0[1] + t * (p1[1] - p0[1]))
        b, m = dab(c, 3, shape=shape)
        dense[b] |= m
    # the capsule contains the dense dabs, and only adds pixels within a hair of the radius
    assert (dense & ~got).sum() == 0
    assert (got & ~dense).sum() <= 4
    # gap-free: every column along the way is hit
    cols = got.any(axis=0)
    assert cols[6:110].all()


def test_stroke_path_is_union_of_segments():
    pts = [(5, 5), (5, 40), (30, 40), (30, 5)]
    box, mask = stroke_path(pts, 2, shape=(40, 50))
    got = paint((40, 50), box, mask)
    ref = np.zeros((40, 50), dtype=bool)
    for a, b in zip(pts[:-1], pts[1:]):
        bb, m = stroke(a, b, 2, shape=(40, 50))
        ref[bb] |= m
    assert np.array_equal(got, ref)


def test_mm_radius_on_anisotropic_pixels_is_an_ellipse():
    box, mask = dab((50, 50), 10, shape=(101, 101), units="mm", spacing=(1.0, 0.5, 2.0))
    got = paint((101, 101), box, mask)
    rows = np.flatnonzero(got.any(axis=1))
    cols = np.flatnonzero(got.any(axis=0))
    assert rows.max() - rows.min() + 1 == 39  # 10 mm / 0.5 mm = 20 px radius (strict)
    assert cols.max() - cols.min() + 1 == 9  # 10 mm / 2 mm = 5 px radius (strict)


def test_mm_needs_spacing():
    with pytest.raises(ProcessingError, match="spacing"):
        dab((5, 5), 2, shape=(10, 10), units="mm")


def test_disc_on_a_stack_stays_on_its_slice_and_sphere_spans_slices():
    shape = (9, 40, 40)
    box, mask = dab((4, 20, 20), 5, shape=shape)
    assert box[0] == slice(4, 5) and mask.shape[0] == 1
    box, mask = dab((4, 20, 20), 5, shape=shape, sphere=True)
    got = paint(shape, box, mask)
    zz, yy, xx = np.ogrid[:9, :40, :40]
    ref = (zz - 4) ** 2 + (yy - 20) ** 2 + (xx - 20) ** 2 < 25
    assert np.array_equal(got, ref)
    # thick slices: the sphere reaches fewer slices (round in physical space)
    box, mask = dab((4, 20, 20), 5, shape=shape, sphere=True, spacing=(2.5, 1.0, 1.0))
    got = paint(shape, box, mask)
    assert np.flatnonzero(got.any(axis=(1, 2))).tolist() == [3, 4, 5]  # 2 slices = 5 mm, not < 5


def test_gate_paints_only_in_range_and_never_nan():
    img = np.arange(100, dtype=np.float32).reshape(10, 10)
    img[5, 5] = np.nan
    box, mask = dab((5, 5), 4, shape=img.shape, image=img, lo=40, hi=60)
    got = paint(img.shape, box, mask)
    assert got.any()
    assert np.all((img[got] >= 40) & (img[got] <= 60))
    assert not got[5, 5]
    with pytest.raises(ProcessingError):
        gate(mask, img, box, lo=5, hi=1)


def test_bad_points_raise():
    with pytest.raises(ProcessingError):
        dab((1, 2, 3), 2, shape=(10, 10))
    with pytest.raises(ProcessingError):
        dab((np.nan, 2), 2, shape=(10, 10))
    with pytest.raises(ProcessingError):
        dab((1, 2), -1, shape=(10, 10))


def test_brush_drag_is_one_undo_step_with_overwrite_rules():
    lm = LabelMap((1, 64, 64))
    lm.data[0, 30:34, :] = 2
    pts = [(0, 10, 5), (0, 32, 30), (0, 50, 60)]
    with lm.edit("Brush") as e:
        for a, b in zip(pts[:-1], pts[1:]):
            box, mask = stroke(a, b, 3, shape=lm.shape)
            e.paint(box, mask, 1, overwrite="background")
    assert len(lm.undo) == 1
    assert (lm.data == 2).sum() == 4 * 64  # label 2 untouched
    assert (lm.data == 1).sum() > 0
    lm.undo.undo()
    assert (lm.data == 1).sum() == 0 and (lm.data == 2).sum() == 4 * 64
