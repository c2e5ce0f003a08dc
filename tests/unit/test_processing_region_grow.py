"""Region growing against skimage.segmentation.flood / scipy.ndimage.label, preview, confidence."""
import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.segmentation import flood

from workbench.core import LabelMap, ProcessingError
from workbench.processing import RegionGrowPreview, confidence_connected, region_grow


@pytest.fixture(scope="module")
def blobs16():
    rng = np.random.default_rng(5)
    img = ndi.gaussian_filter(rng.random((120, 140)), 4)
    img = (img - img.min()) / np.ptp(img)
    return (img * 60000).astype(np.uint16)


@pytest.mark.parametrize("conn,sk_conn", [(4, 1), (8, 2)])
def test_2d_relative_tolerance_equals_skimage_flood(blobs16, conn, sk_conn):
    for seed in [(60, 70), (5, 5), (119, 139)]:
        for tol in (0, 800, 5000):
            got = region_grow(blobs16, [seed], tolerance=tol, connectivity=conn)
            ref = flood(blobs16, seed, tolerance=tol, connectivity=sk_conn)
            np.testing.assert_array_equal(got, ref)


def test_absolute_range_and_seed_outside_the_range(blobs16):
    v = int(blobs16[60, 70])
    got = region_grow(blobs16, [(60, 70)], lo=v - 1000, hi=v + 3000)
    lab, _ = ndi.label((blobs16 >= v - 1000) & (blobs16 <= v + 3000), structure=np.ones((3, 3)))
    np.testing.assert_array_equal(got, lab == lab[60, 70])
    assert not region_grow(blobs16, [(60, 70)], lo=v + 1, hi=v + 10).any()


def test_3d_connectivities_equal_scipy_label():
    rng = np.random.default_rng(2)
    vol = ndi.gaussian_filter(rng.random((20, 30, 30)), 2).astype(np.float32)
    seed = (10, 15, 15)
    v = float(vol[seed])
    for conn, rank in ((6, 1), (18, 2), (26, 3)):
        got = region_grow(vol, [seed], tolerance=0.02, connectivity=conn)
        binary = (vol >= np.float32(v - 0.02)) & (vol <= np.float32(v + 0.02))
        lab, _ = ndi.label(binary, structure=ndi.generate_binary_structure(3, rank))
        np.testing.assert_array_equal(got, lab == lab[seed])


def test_per_slice_on_a_stack_grows_only_the_seed_slice():
    vol = np.zeros((4, 10, 10), np.uint8)
    vol[:, 2:8, 2:8] = 100
    got = region_grow(vol, [(1, 5, 5)], tolerance=10, connectivity=8)
    assert got[1].sum() == 36 and got[[0, 2, 3]].sum() == 0
    got3 = region_grow(vol, [(1, 5, 5)], tolerance=10, connectivity=6)
    assert got3.sum() == 4 * 36


def test_seed_mask_grows_the_existing_label():
    img = np.zeros((30, 30), np.uint8)
    img[5:25, 5:25] = 50
    img[10:12, 10:12] = 200  # the "AI mask" region, brighter
    seed = np.zeros_like(img, bool)
    seed[10:12, 10:12] = True
    got = region_grow(img, seed, lo=40, hi=60)
    assert got[5:25, 5:25].all() and got.sum() == 400  # grown through the square, seeds kept
    # relative tolerance around the seed mean (200 +- 10): only the seeds
    assert region_grow(img, seed, tolerance=10).sum() == 4


def test_within_mask_limits_growth_and_multiple_seeds_union():
    img = np.zeros((20, 20), np.uint8)
    within = np.zeros_like(img, bool)
    within[:, :10] = True
    got = region_grow(img, [(5, 5)], tolerance=0, within=within)
    np.testing.assert_array_equal(got, within)
    img[:, 10] = 255
    got = region_grow(img, [(5, 2), (5, 15)], tolerance=0)
    assert got.sum() == 400 - 20


def test_degenerate_inputs():
    one = np.array([[7]], np.uint16)
    assert region_grow(one, [(0, 0)], tolerance=0).tolist() == [[True]]
    nan = np.array([[np.nan, 1.0], [1.0, 1.0]], np.float32)
    assert not region_grow(nan, [(0, 0)], tolerance=5).any()  # NaN seed grows nothing
    assert region_grow(nan, [(1, 1)], tolerance=0).sum() == 3  # and NaN never joins
    const = np.full((5, 5), 3.0)
    assert region_grow(const, [(2, 2)], tolerance=0).all()
    with pytest.raises(ProcessingError, match="outside"):
        region_grow(const, [(9, 2)], tolerance=1)
    with pytest.raises(ProcessingError):
        region_grow(const, [(2, 2)])
    with pytest.raises(ProcessingError):
        region_grow(const, [(2, 2)], tolerance=-1)
    with pytest.raises(ProcessingError):
        region_grow(const, [(2, 2)], tolerance=1, connectivity=6)
    with pytest.raises(ProcessingError):
        region_grow(const, np.zeros((5, 5), bool), tolerance=1)


def test_preview_equals_region_grow_and_reports_area_and_box(blobs16):
    prev = RegionGrowPreview(blobs16, (60, 70))
    for tol in (0, 500, 2500, 500):
        got = prev.update(tol)
        ref = region_grow(blobs16, [(60, 70)], tolerance=tol)
        np.testing.assert_array_equal(got, ref)
        assert prev.last_area == ref.sum()
        ys, xs = np.nonzero(ref)
        assert prev.last_bbox == (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    fprev = RegionGrowPreview(blobs16.astype(np.float32), (60, 70), connectivity=4)
    np.testing.assert_array_equal(fprev.update(1234.5), flood(blobs16.astype(np.float32), (60, 70),
                                                              tolerance=1234.5, connectivity=1))


def test_confidence_connected_finds_a_noisy_region_and_stops():
    rng = np.random.default_rng(9)
    img = rng.normal(100, 5, (60, 60)).astype(np.float32)
    img[15:45, 15:45] = rng.normal(300, 10, (30, 30))
    got = confidence_connected(img, [(30, 30)], multiplier=3, iterations=5)
    assert got[15:45, 15:45].mean() > 0.98 and got.sum() <= 900
    seed = np.zeros(img.shape, bool)
    seed[28:32, 28:32] = True
    got2 = confidence_connected(img, seed, multiplier=3)
    assert got2[15:45, 15:45].mean() > 0.98 and got2.sum() <= 900


def test_region_grow_written_as_one_undo_step(blobs16):
    lm = LabelMap((1, *blobs16.shape))
    region = region_grow(blobs16, [(60, 70)], tolerance=2000)
    with lm.edit("Region grow") as e:
        e.paint((slice(0, 1), slice(None), slice(None)), region[np.newaxis], 4)
    assert (lm.data == 4).sum() == region.sum() and len(lm.undo) == 1
