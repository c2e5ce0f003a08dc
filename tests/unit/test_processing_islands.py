"""Islands against scipy.ndimage.label / skimage.morphology.remove_small_objects."""
import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import morphology

from workbench.core import ProcessingError
from workbench.processing import component_sizes, keep_largest, label_components, pick, remove_small, split


@pytest.fixture(scope="module")
def speckles():
    rng = np.random.default_rng(4)
    return ndi.gaussian_filter(rng.random((90, 110)), 1.5) > 0.53


@pytest.mark.parametrize("conn,rank", [(4, 1), (8, 2)])
def test_labels_and_sizes_match_scipy(speckles, conn, rank):
    labels, n = label_components(speckles, connectivity=conn)
    ref, n_ref = ndi.label(speckles, structure=ndi.generate_binary_structure(2, rank))
    assert n == n_ref
    # same partition (numbering may differ)
    pairs = set(zip(labels[speckles].tolist(), ref[speckles].tolist()))
    assert len(pairs) == n
    _, sizes = component_sizes(speckles, connectivity=conn)
    assert sorted(sizes[1:].tolist()) == sorted(np.bincount(ref.ravel())[1:].tolist())


@pytest.mark.parametrize("conn,rank", [(4, 1), (8, 2)])
def test_keep_largest(speckles, conn, rank):
    ref, _ = ndi.label(speckles, structure=ndi.generate_binary_structure(2, rank))
    counts = np.bincount(ref.ravel())
    counts[0] = 0
    np.testing.assert_array_equal(keep_largest(speckles, connectivity=conn), ref == counts.argmax())
    two = keep_largest(speckles, count=2, connectivity=conn)
    assert two.sum() == np.sort(counts)[-2:].sum()


@pytest.mark.parametrize("conn,rank", [(4, 1), (8, 2)])
def test_remove_small_matches_skimage(speckles, conn, rank):
    for n in (1, 5, 30):
        ref = morphology.remove_small_objects(speckles, max_size=n - 1, connectivity=rank)
        np.testing.assert_array_equal(remove_small(speckles, min_size=n, connectivity=conn), ref)


def test_remove_small_in_mm():
    m = np.zeros((20, 20), bool)
    m[1:3, 1:3] = True  # 4 px = 1 mm² at 0.5 mm pixels
    m[10:15, 10:15] = True  # 25 px = 6.25 mm²
    out = remove_small(m, min_area_mm2=1.0, spacing=(1, 0.5, 0.5))
    np.testing.assert_array_equal(out, m)  # exactly 1 mm² is kept
    out = remove_small(m, min_area_mm2=1.01, spacing=(1, 0.5, 0.5))
    assert out.sum() == 25
    with pytest.raises(ProcessingError, match="spacing"):
        remove_small(m, min_area_mm2=1.0)
    vol = np.zeros((4, 10, 10), bool)
    vol[0:2, 0:2, 0:2] = True  # 8 voxels x 2 mm³
    vol[2:4, 5:9, 5:9] = True  # 32 voxels
    out = remove_small(vol, min_volume_mm3=20, spacing=(2, 1, 1), connectivity=6)
    assert out.sum() == 32
    with pytest.raises(ProcessingError):
        remove_small(vol, min_area_mm2=1, spacing=(2, 1, 1), connectivity=26)


def test_split_and_pick(speckles):
    lab = split(speckles)
    assert lab.dtype == np.uint16 and lab.max() == label_components(speckles)[1]
    lab5 = split(speckles, start=5)
    assert lab5[speckles].min() == 5
    y, x = np.argwhere(speckles)[0]
    got = pick(speckles, (y, x))
    ref, _ = ndi.label(speckles, structure=np.ones((3, 3)))
    np.testing.assert_array_equal(got, ref == ref[y, x])
    assert not pick(speckles, tuple(np.argwhere(~speckles)[0])).any()
    with pytest.raises(ProcessingError):
        pick(speckles, (500, 0))


def test_stacks_3d_and_per_slice():
    vol = np.zeros((3, 10, 10), bool)
    vol[0, 1:3, 1:3] = True
    vol[1, 1:3, 1:3] = True
    vol[2, 6:9, 6:9] = True
    labels, n = label_components(vol, connectivity=26)
    assert n == 2
    labels, n = label_components(vol, connectivity=8)
    assert n == 3 and len(np.unique(labels)) == 4
    assert keep_largest(vol, connectivity=6).sum() == 9  # the 3x3 blob of slice 2 vs 2x2x2 = 8
    assert keep_largest(vol, connectivity=8).sum() == 4 + 4 + 9  # per slice
    got = pick(vol, (0, 1, 1), connectivity=26)
    assert got.sum() == 8


def test_degenerate():
    empty = np.zeros((5, 5), bool)
    assert not keep_largest(empty).any()
    assert not remove_small(empty, min_size=3).any()
    assert split(empty).max() == 0
    one = np.ones((1, 1), bool)
    assert keep_largest(one).all() and remove_small(one, min_size=1).all()
    assert not remove_small(one, min_size=2).any()
    with pytest.raises(ProcessingError):
        remove_small(one, min_size=1, min_area_mm2=1, spacing=(1, 1, 1))
    with pytest.raises(ProcessingError):
        keep_largest(one, count=0)
