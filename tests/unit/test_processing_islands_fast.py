"""The tuned 2D islands paths (bounding-box labelling, uint16 labels, 16-bit LUT, split histogram) give
exactly what scipy.ndimage / skimage give, including their fallbacks."""
import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import morphology

from workbench.processing import islands, keep_largest, remove_small, split


def _ref_sizes(mask, rank=2):
    ref, _ = ndi.label(mask, structure=ndi.generate_binary_structure(2, rank))
    return ref, np.bincount(ref.ravel())


def _speckles(shape, seed, box=None, level=0.55):
    rng = np.random.default_rng(seed)
    m = ndi.gaussian_filter(rng.random(shape), 1.5) > level
    if box is not None:
        keep = np.zeros(shape, bool)
        keep[box] = True
        m &= keep
    return m


@pytest.mark.parametrize("box", [None, (slice(40, 90), slice(7, 60)), (slice(0, 30), slice(100, 140)),
                                 (slice(110, 120), slice(0, 5))])
@pytest.mark.parametrize("conn,rank", [(4, 1), (8, 2)])
def test_small_masks_anywhere_in_the_plane(box, conn, rank):
    m = _speckles((120, 140), 5, box)
    ref, counts = _ref_sizes(m, rank)
    counts[0] = 0
    np.testing.assert_array_equal(keep_largest(m, connectivity=conn), ref == counts.argmax())
    top3 = np.zeros(len(counts), bool)
    top3[np.argsort(-counts, kind="stable")[:3]] = True
    top3[0] = False
    np.testing.assert_array_equal(keep_largest(m, count=3, connectivity=conn), top3[ref])
    for n in (2, 8):
        np.testing.assert_array_equal(remove_small(m, min_size=n, connectivity=conn),
                                      morphology.remove_small_objects(m, max_size=n - 1, connectivity=rank))
    lab = split(m, connectivity=conn)
    assert lab.dtype == np.uint16 and lab.shape == m.shape and lab.max() == len(counts) - 1
    assert len(set(zip(lab[m].tolist(), ref[m].tolist()))) == len(counts) - 1  # same partition


def test_empty_mask():
    m = np.zeros((30, 40), bool)
    assert not keep_largest(m).any() and not remove_small(m, min_size=3).any()
    assert split(m).dtype == np.uint16 and not split(m).any()


def test_more_islands_than_uint16_labels_fall_back_to_int32():
    m = np.zeros((600, 600), bool)
    m[::2, ::2] = True  # 90000 single-pixel islands (8-connected: none touch)
    m[100:104, 100:110] = True  # one island of 40 pixels (it swallows a few of the dots)
    ref, counts = _ref_sizes(m)
    assert len(counts) - 1 > 65535
    counts[0] = 0
    np.testing.assert_array_equal(keep_largest(m), ref == counts.argmax())
    np.testing.assert_array_equal(remove_small(m, min_size=2), ref == counts.argmax())


def test_lookup_without_16_bit_lut(monkeypatch):
    monkeypatch.setattr(islands, "_lut16", False)  # as on OpenCV 4.x
    m = _speckles((90, 110), 4)
    np.testing.assert_array_equal(remove_small(m, min_size=5),
                                  morphology.remove_small_objects(m, max_size=4, connectivity=2))


def test_uint16_label_histogram_matches_bincount():
    m = _speckles((300, 200), 7, level=0.52)
    _, labels, n = islands._label_box16(m, 8)
    assert labels.dtype == np.uint16
    np.testing.assert_array_equal(islands._sizes(labels, n), np.bincount(labels.ravel().astype(np.int64),
                                                                         minlength=n + 1))
