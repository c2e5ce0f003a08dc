"""Thresholds against scikit-image / OpenCV, ranges, ROIs, degenerate input, histogram."""
import cv2
import numpy as np
import pytest
from skimage import filters

from workbench.core import ProcessingError
from workbench.processing import (METHODS, apply_threshold, classify, histogram, multiotsu_values,
                                  otsu_cv2, threshold_range, threshold_value)


@pytest.fixture(scope="module")
def bimodal16():
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.normal(1000, 120, 20000), rng.normal(3000, 300, 12000)])
    return a.clip(0, 65535).astype(np.uint16).reshape(160, 200)


def test_otsu_uint16_is_opencv_on_the_full_histogram(bimodal16):
    t_cv, _ = cv2.threshold(bimodal16, 0, 1, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    assert threshold_value(bimodal16) == t_cv
    # scikit-image's exact (bincount) Otsu agrees within a couple of grey levels
    assert abs(threshold_value(bimodal16) - filters.threshold_otsu(bimodal16)) <= 5
    # the 8-bit shortcut is what we avoid: it moves the threshold by up to one 8-bit bin
    scaled = (bimodal16.astype(np.float64) / bimodal16.max() * 255).astype(np.uint8)
    t8, _ = cv2.threshold(scaled, 0, 1, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    assert abs(t8 * bimodal16.max() / 255 - t_cv) > 0


def test_otsu_int16_shift_matches_uint16(bimodal16):
    ct = (bimodal16.astype(np.int32) - 2000).astype(np.int16)
    assert threshold_value(ct) == threshold_value(bimodal16) - 2000


@pytest.mark.parametrize("method", ["li", "yen", "triangle", "mean", "isodata", "otsu"])
def test_float_methods_are_scikit_image(method, bimodal16):
    img = bimodal16.astype(np.float32) / 7.0
    ref = getattr(filters, f"threshold_{method}")(img)
    assert threshold_value(img, method=method) == pytest.approx(float(ref), rel=1e-6)
    np.testing.assert_array_equal(apply_threshold(img, method=method), img > ref)


def test_nan_is_ignored_and_never_foreground(bimodal16):
    img = bimodal16.astype(np.float32)
    ref = threshold_value(img, method="li")
    img[::7, ::5] = np.nan
    t = threshold_value(img, method="li")
    assert abs(t - ref) < 50
    mask = apply_threshold(img, method="li")
    assert not mask[np.isnan(img)].any()
    assert not threshold_range(img, 0, 1e9)[np.isnan(img)].any()


def test_constant_empty_and_all_nan():
    const = np.full((10, 10), 7, np.uint16)
    for m in METHODS:
        if m == "multiotsu":
            with pytest.raises(ProcessingError):
                multiotsu_values(const)
            continue
        assert threshold_value(const, method=m) == 7
        assert not apply_threshold(const, method=m).any()
    with pytest.raises(ProcessingError):
        threshold_value(np.zeros((0, 5), np.uint8))
    with pytest.raises(ProcessingError):
        threshold_value(np.full((4, 4), np.nan, np.float32), method="li")
    with pytest.raises(ProcessingError):
        threshold_value(np.ones((4, 4)), method="nope")


def test_one_pixel_image():
    one = np.array([[42]], np.uint8)
    assert threshold_value(one) == 42
    assert threshold_range(one, 40, 42).tolist() == [[True]]


def test_range_is_inclusive_and_matches_numpy_for_all_dtypes():
    rng = np.random.default_rng(1)
    for dtype in (np.uint8, np.uint16, np.int16, np.float32, np.float64, np.int32):
        img = (rng.random((30, 40)) * 200).astype(dtype)
        for lo, hi in ((10, 100), (10.5, 99.5), (-5, 300), (50, 50)):
            ref = (img >= lo) & (img <= hi)
            np.testing.assert_array_equal(threshold_range(img, lo, hi), ref, err_msg=f"{dtype} {lo} {hi}")
    with pytest.raises(ProcessingError):
        threshold_range(img, 5, 1)
    assert threshold_range(np.arange(10, dtype=np.uint8).reshape(2, 5), 7, None).sum() == 3


def test_roi_and_stack_and_per_slice(bimodal16):
    stack = np.stack([bimodal16, bimodal16 // 2])
    whole = apply_threshold(stack, method="otsu")
    per = apply_threshold(stack, method="otsu", per_slice=True)
    t1 = threshold_value(stack[1])
    np.testing.assert_array_equal(per[1], stack[1] > t1)
    assert per[1].sum() > whole[1].sum()
    roi = np.zeros(bimodal16.shape, bool)
    roi[:, :100] = True
    t_roi = threshold_value(bimodal16, mask=roi)
    assert t_roi == otsu_cv2(bimodal16[:, :100])
    res = apply_threshold(bimodal16, method="otsu", mask=roi)
    assert not res[:, 100:].any()
    np.testing.assert_array_equal(res[:, :100], bimodal16[:, :100] > t_roi)


def test_multiotsu_and_classify():
    img = np.repeat(np.array([10, 100, 200], np.uint8), 50).reshape(10, 15)
    t = multiotsu_values(img, classes=3)
    assert len(t) == 2 and 10 <= t[0] < 100 <= t[1] < 200
    cls = classify(img, t)
    assert set(np.unique(cls).tolist()) == {0, 1, 2}
    np.testing.assert_array_equal(apply_threshold(img, method="multiotsu"), img > t[1])


def test_histogram_matches_numpy():
    rng = np.random.default_rng(3)
    for dtype in (np.uint8, np.uint16, np.float32, np.float64, np.int16):
        img = (rng.random((50, 60)) * 250).astype(dtype)
        h = histogram(img, bins=32)
        ref, edges = np.histogram(img, bins=32, range=(float(img.min()), float(img.max())))
        np.testing.assert_allclose(h.edges, edges)
        assert h.counts.sum() == img.size
        assert np.abs(h.counts - ref).sum() <= 0.01 * img.size, dtype
    const = histogram(np.full((4, 4), 3.0), bins=8)
    assert const.counts.sum() == 16
    nan = histogram(np.array([[np.nan, 1.0], [2.0, np.nan]]), bins=2)
    assert nan.counts.tolist() == [1, 1]
    roi = histogram(np.arange(16, dtype=np.uint8).reshape(4, 4), bins=4, mask=np.eye(4, dtype=bool),
                    value_range=(0, 16))
    assert roi.counts.sum() == 4
