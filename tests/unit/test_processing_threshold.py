"""Thresholds against scikit-image / OpenCV, ranges, ROIs, degenerate input, histogram."""
import cv2
import numpy as np
import pytest
from skimage import filters

from workbench.core import ProcessingError
from workbench.processing import (
    METHODS,
    apply_threshold,
    classify,
    histogram,
    multiotsu_values,
    otsu_cv2,
    threshold_range,
    threshold_value,
)


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


# --- multi-Otsu: integer histograms of at most nbins bins (scikit-image bins integers per value) ---

def _trimodal16(shape, rng, scale=1.0):
    n = int(np.prod(shape))
    a = np.concatenate([rng.normal(m * scale, s * scale, n // 3 + 1)
                        for m, s in ((8000, 1500), (25000, 3000), (50000, 4000))])[:n]
    return a.clip(0, 60000 * scale).astype(np.uint16).reshape(shape)


@pytest.mark.parametrize("classes", [2, 3, 4])
def test_multiotsu_uint8_is_scikit_image_exactly(classes):
    from skimage import data

    cam = data.camera()
    assert multiotsu_values(cam, classes=classes) == tuple(
        float(v) for v in filters.threshold_multiotsu(cam, classes=classes))
    roi = np.zeros(cam.shape, bool)
    roi[100:300, 50:400] = True
    assert multiotsu_values(cam, classes=classes, mask=roi) == tuple(
        float(v) for v in filters.threshold_multiotsu(cam[roi], classes=classes))


def test_multiotsu_16bit_within_one_bin_of_the_exact_histogram():
    rng = np.random.default_rng(5)
    img = _trimodal16((256, 256), rng, scale=0.1)  # range ~0..6000: scikit-image's exact search is quick
    exact = filters.threshold_multiotsu(img)
    vmin, span = int(img.min()), int(img.max()) - int(img.min()) + 1
    width = -(-span // 256)
    assert width > 1
    ours = multiotsu_values(img)
    assert len(ours) == 2 and ours[0] < ours[1]
    for t, e in zip(ours, exact):
        assert abs(t - e) <= width
        # each threshold is the top value of a bin: the classes split exactly on bin edges
        assert (int(t) - vmin + 1) % width == 0
    # a range of at most nbins values keeps the exact histogram
    narrow = (img // 40).astype(np.uint16)
    assert int(narrow.max()) - int(narrow.min()) < 256
    assert multiotsu_values(narrow) == tuple(float(v) for v in filters.threshold_multiotsu(narrow))


def test_multiotsu_passes_at_most_nbins_bins_to_scikit_image(monkeypatch):
    import skimage.filters

    real = skimage.filters.threshold_multiotsu
    sizes = []

    def spy(image=None, classes=3, nbins=256, *, hist=None):
        sizes.append(np.asarray(hist[0]).size if hist is not None else nbins)
        assert hist is not None or not np.issubdtype(np.asarray(image).dtype, np.integer)
        return real(image, classes, nbins, hist=hist)

    monkeypatch.setattr(skimage.filters, "threshold_multiotsu", spy)
    rng = np.random.default_rng(6)
    img = _trimodal16((128, 128), rng)
    img[0, 0], img[0, 1] = 0, 60000  # the full 16-bit-ish range: 60001 values
    multiotsu_values(img)
    multiotsu_values(img.astype(np.int32) - 70000)
    multiotsu_values(img, nbins=64)
    multiotsu_values(img, nbins=100_000)  # capped
    assert sizes[:3] == [256, 256, 64] and 1000 < sizes[3] <= 1024  # ceil(60001 / w) bins of width w


def test_multiotsu_on_a_large_16bit_image_does_not_hang():
    """The regression: a 0..60000 image used to take minutes. A thread with a generous timeout keeps
    the test independent of the machine's speed (the fixed code needs ~20 ms)."""
    import threading

    img = _trimodal16((2048, 2048), np.random.default_rng(7))
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("t", multiotsu_values(img)), daemon=True)
    worker.start()
    worker.join(10.0)
    assert not worker.is_alive(), "multi-Otsu on a 16-bit image did not finish within 10 s"
    lo, hi = result["t"]
    assert 8000 < lo < 25000 < hi < 50000


def test_multiotsu_signed_and_wide_integers_shift_exactly():
    img = _trimodal16((200, 200), np.random.default_rng(8))
    ref = multiotsu_values(img)
    for dtype, offset in ((np.int16, -30000), (np.int32, -100_000), (np.int64, -10**12), (np.uint32, 10**9)):
        shifted = (img.astype(np.int64) + offset).astype(dtype)
        assert multiotsu_values(shifted) == tuple(t + offset for t in ref), dtype
    np.testing.assert_array_equal(apply_threshold(img.astype(np.int16) - 30000, method="multiotsu"),
                                  img > ref[1])


def test_multiotsu_float_is_scikit_image_and_ignores_nan():
    img = _trimodal16((300, 300), np.random.default_rng(9)).astype(np.float32) / 3.0
    ref = tuple(float(v) for v in filters.threshold_multiotsu(img))
    assert multiotsu_values(img) == ref
    with_nan = img.copy()
    with_nan[::4, ::3] = np.nan
    finite = with_nan[np.isfinite(with_nan)]
    assert multiotsu_values(with_nan) == tuple(float(v) for v in filters.threshold_multiotsu(finite))
    assert not apply_threshold(with_nan, method="multiotsu")[np.isnan(with_nan)].any()


def test_multiotsu_degenerate_integer_inputs():
    two = np.zeros((20, 20), np.uint16)
    two[:5] = 60000
    with pytest.raises(ProcessingError, match="fewer than 3 distinct"):
        multiotsu_values(two)
    with pytest.raises(ProcessingError, match="fewer than 3 distinct"):
        multiotsu_values(two.astype(np.int64) * 10**9)
    three = two.copy()
    three[10:] = 30000
    t = multiotsu_values(three)
    np.testing.assert_array_equal(classify(three, t), np.digitize(three, [1, 30001]))
    # three distinct values, but 0 and 1 share a bin of the 0..60000 range
    clustered = two.copy()
    clustered[10:] = 1
    with pytest.raises(ProcessingError, match="histogram bins"):
        multiotsu_values(clustered)
    with pytest.raises(ProcessingError):
        multiotsu_values(three, classes=9)
    with pytest.raises(ProcessingError):
        multiotsu_values(three, nbins=2)
    assert len(multiotsu_values(three.astype(bool).astype(np.uint8) + three // 30000, classes=2)) == 1


def test_multiotsu_many_classes_is_capped_not_hung():
    import threading

    from skimage import data

    cam = data.camera()
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("t", multiotsu_values(cam, classes=6)),
                              daemon=True)
    worker.start()
    worker.join(10.0)  # scikit-image on the full 256 bins would take minutes here
    assert not worker.is_alive()
    t = result["t"]
    assert len(t) == 5 and list(t) == sorted(t) and 0 <= t[0] and t[-1] <= 255
