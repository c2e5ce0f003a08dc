"""Morphology against scipy.ndimage with the same (elliptical) structuring element."""
import numpy as np
import pytest
from scipy import ndimage as ndi

from workbench.core import ProcessingError
from workbench.processing import closing, dilate, erode, fill_holes, opening, smooth, structuring_element


@pytest.fixture(scope="module")
def blob():
    rng = np.random.default_rng(11)
    return ndi.gaussian_filter(rng.random((70, 80)), 3) > 0.5


def test_structuring_element_is_an_ellipse_in_mm():
    k = structuring_element(2.0, units="mm", spacing=(1, 0.5, 1.0))
    assert k.shape == (9, 5)  # 4 px along y, 2 px along x
    assert k[4, 4] and k[0, 2] and k[4, 0] and not k[0, 0]


@pytest.mark.parametrize("radius,spacing", [(1, None), (3, None), (2.0, (1, 0.5, 1.0))])
def test_dilate_erode_match_scipy(blob, radius, spacing):
    units = "px" if spacing is None else "mm"
    k = structuring_element(radius, units=units, spacing=spacing)
    ref_d = ndi.binary_dilation(blob, structure=k)
    # scipy erodes from the image border unless border_value=1; we do not erode from the border
    ref_e = ndi.binary_erosion(blob, structure=k, border_value=1)
    np.testing.assert_array_equal(dilate(blob, radius, units=units, spacing=spacing), ref_d)
    np.testing.assert_array_equal(erode(blob, radius, units=units, spacing=spacing), ref_e)
    np.testing.assert_array_equal(opening(blob, radius, units=units, spacing=spacing),
                                  ndi.binary_dilation(ref_e, structure=k))
    np.testing.assert_array_equal(closing(blob, radius, units=units, spacing=spacing),
                                  ndi.binary_erosion(ref_d, structure=k, border_value=1))


def test_3d_edt_path_matches_scipy_with_the_ball():
    rng = np.random.default_rng(12)
    vol = ndi.gaussian_filter(rng.random((16, 30, 30)), 2) > 0.5
    sp = (2.0, 1.0, 1.0)
    k = structuring_element(3.0, units="mm", spacing=sp, ndim=3)
    np.testing.assert_array_equal(dilate(vol, 3.0, units="mm", spacing=sp), ndi.binary_dilation(vol, structure=k))
    np.testing.assert_array_equal(erode(vol, 3.0, units="mm", spacing=sp),
                                  ndi.binary_erosion(vol, structure=k, border_value=1))
    per = dilate(vol, 2, per_slice=True)
    k2 = structuring_element(2)
    for z in range(vol.shape[0]):
        np.testing.assert_array_equal(per[z], ndi.binary_dilation(vol[z], structure=k2))


def test_fill_holes_matches_scipy(blob):
    ring = ~blob
    np.testing.assert_array_equal(fill_holes(ring), ndi.binary_fill_holes(ring))
    np.testing.assert_array_equal(fill_holes(blob), ndi.binary_fill_holes(blob))
    vol = np.stack([ring, blob, ring])
    np.testing.assert_array_equal(fill_holes(vol), ndi.binary_fill_holes(vol))
    per = fill_holes(vol, per_slice=True)
    np.testing.assert_array_equal(per[1], ndi.binary_fill_holes(blob))
    # an 8-connected diagonal gap still leaks (background is 4-connected, as in scipy)
    sq = np.zeros((7, 7), bool)
    sq[1:6, 1:6] = True
    sq[2:5, 2:5] = False
    assert fill_holes(sq).sum() == 25


def test_smooth_keeps_area_and_removes_bumps():
    m = np.zeros((60, 60), bool)
    m[15:45, 15:45] = True
    m[10:15, 29:31] = True  # a thin spike
    for method in ("gaussian", "median"):
        s = smooth(m, 2.5, method=method)
        assert not s[10:13, 29:31].any()
        assert abs(int(s.sum()) - 900) < 60
    np.testing.assert_array_equal(smooth(m, 0), m)
    with pytest.raises(ProcessingError):
        smooth(m, 1, method="box")


def test_degenerate_and_errors():
    empty = np.zeros((5, 5), bool)
    for fn in (dilate, erode, opening, closing):
        assert not fn(empty, 2).any()
    one = np.zeros((1, 1), bool)
    one[0, 0] = True
    assert dilate(one, 3).all() and erode(one, 3).all()  # the border never erodes
    assert fill_holes(np.zeros((0, 4), bool)).shape == (0, 4)
    np.testing.assert_array_equal(dilate(empty | True, 0), np.ones((5, 5), bool))
    with pytest.raises(ProcessingError, match="spacing"):
        dilate(one, 1, units="mm")
    with pytest.raises(ProcessingError):
        dilate(one, -1)
