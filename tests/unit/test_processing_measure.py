"""Measurements against hand-computed values and scikit-image."""
import csv
import json
import math

import numpy as np
import pytest
from skimage.measure import perimeter as sk_perimeter

from workbench.core import ProcessingError
from workbench.export.measurements import write_csv
from workbench.processing import format_table, measure_labels, roi_histogram, to_json


@pytest.fixture
def scene():
    labels = np.zeros((10, 12), np.uint16)
    labels[2:5, 3:7] = 1  # 3 x 4 rectangle, 12 px
    labels[7, 10] = 3  # one pixel
    image = np.arange(120, dtype=np.float32).reshape(10, 12)
    return labels, image


def test_hand_computed_2d(scene):
    labels, image = scene
    s1, s3 = measure_labels(labels, image, spacing=(5.0, 0.5, 2.0), names={1: "liver"})
    vals = image[2:5, 3:7]
    assert (s1.label, s1.name, s1.pixels) == (1, "liver", 12)
    assert s1.area_mm2 == pytest.approx(12 * 1.0) and s1.volume_mm3 is None
    assert s1.mean == pytest.approx(vals.mean()) and s1.std == pytest.approx(vals.std())
    assert (s1.min, s1.max, s1.median) == (27.0, 54.0, float(np.median(vals)))
    # contour through boundary pixel centres: 2 * (3 px * 2 mm + 2 px * 0.5 mm)
    assert s1.perimeter_px == pytest.approx(2 * (3 + 2))
    assert s1.perimeter_mm == pytest.approx(2 * (3 * 2.0 + 2 * 0.5))
    assert s1.equivalent_diameter_mm == pytest.approx(2 * math.sqrt(12 / math.pi))
    assert s1.bbox == (0, 2, 3, 1, 5, 7)
    assert s3.pixels == 1 and s3.perimeter_px == 0 and s3.mean == image[7, 10] and s3.std == 0


def test_unknown_spacing_and_no_image(scene):
    labels, _ = scene
    s1, _ = measure_labels(labels)
    assert s1.area_mm2 is None and s1.perimeter_mm is None and s1.equivalent_diameter_mm is None
    assert s1.mean is None and s1.median is None
    assert s1.equivalent_diameter_px == pytest.approx(2 * math.sqrt(12 / math.pi))


def test_perimeter_close_to_skimage_on_a_disc():
    yy, xx = np.mgrid[:101, :101]
    disc = ((yy - 50) ** 2 + (xx - 50) ** 2 <= 40 ** 2).astype(np.uint8)
    (s,) = measure_labels(disc)
    assert s.perimeter_px == pytest.approx(sk_perimeter(disc), rel=0.08)
    assert s.perimeter_px == pytest.approx(2 * math.pi * 40, rel=0.08)


def test_3d_volume_and_hu_stats():
    labels = np.zeros((4, 5, 5), np.uint8)
    labels[1:3, 1:4, 1:4] = 2
    hu = np.full(labels.shape, -1000.0, np.float32)
    hu[1:3, 1:4, 1:4] = 40.0
    hu[1, 1, 1] = np.nan  # not counted in the statistics, counted in the size
    (s,) = measure_labels(labels, hu, spacing=(2.5, 0.7, 0.7))
    assert s.pixels == 18 and s.volume_mm3 == pytest.approx(18 * 2.5 * 0.49) and s.area_mm2 is None
    assert s.mean == 40.0 and s.std == 0.0 and s.perimeter_px is None
    assert s.equivalent_diameter_mm == pytest.approx((6 * s.volume_mm3 / math.pi) ** (1 / 3))


def test_many_labels_vectorised_matches_loop():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 30, (60, 70)).astype(np.uint16)
    image = rng.normal(100, 20, labels.shape)
    stats = measure_labels(labels, image, perimeter=False)
    assert [s.label for s in stats] == list(range(1, 30))
    for s in stats[::7]:
        v = image[labels == s.label]
        assert s.pixels == v.size
        assert s.mean == pytest.approx(v.mean()) and s.std == pytest.approx(v.std())
        assert (s.min, s.max) == (v.min(), v.max()) and s.median == pytest.approx(np.median(v))


def test_exports(tmp_path, scene):
    labels, image = scene
    stats = measure_labels(labels, image, spacing=(1, 1, 1))
    path = write_csv(stats, tmp_path / "m.csv")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["label"] == "1" and rows[0]["pixels"] == "12" and rows[0]["bbox"] == "0 2 3 1 5 7"
    assert rows[1]["volume_mm3"] == ""
    doc = json.loads(to_json(stats))
    assert doc[0]["area_mm2"] == 12.0 and doc[0]["volume_mm3"] is None
    text = format_table(stats)
    assert "area_mm2" in text and "label 3" in text
    assert format_table([]) == "no labels"


def test_degenerate_and_errors(scene):
    labels, image = scene
    assert measure_labels(np.zeros((3, 3), np.uint8)) == []
    assert measure_labels(np.zeros((0, 3), np.uint8)) == []
    assert measure_labels(labels, image, values=[3])[0].label == 3
    with pytest.raises(ProcessingError):
        measure_labels(labels, image[:5])
    with pytest.raises(ProcessingError):
        measure_labels(labels.astype(np.float32))
    h = roi_histogram(image, labels == 1, bins=4)
    assert h.counts.sum() == 12


def _scipy_reference(labels, image, index):
    """The previous implementation's figures: scipy.ndimage's indexed reductions over finite pixels."""
    from scipy import ndimage as ndi

    vals = image.reshape(-1)
    lab = labels.reshape(-1).astype(np.int64)
    if np.issubdtype(vals.dtype, np.floating):
        finite = np.isfinite(vals)
        lab = np.where(finite, lab, 0)
        vals = np.where(finite, vals, 0)
    return {name: np.asarray(f(vals, lab, index), dtype=np.float64).reshape(-1)
            for name, f in (("min", ndi.minimum), ("max", ndi.maximum), ("median", ndi.median))}


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.int16, np.uint8, bool])
@pytest.mark.parametrize("label_dtype", [np.uint16, np.int32])
def test_grouped_statistics_equal_scipy_ndimage_exactly(dtype, label_dtype):
    rng = np.random.default_rng(11)
    labels = np.zeros((3, 40, 50), label_dtype)
    labels[0, 5:20, 5:30] = 4  # 375 px (odd)
    labels[1:, 10:30, 20:45] = 2  # 1000 px (even)
    labels[:, 35:, :] = rng.integers(100, 500, (3, 5, 50))  # ~400 small labels: the lexsort path
    labels[2, 1, 1] = 60  # a one-pixel label far above the others
    labels[0, 0, 1:3] = 61  # a label whose pixels are all NaN below (float only)
    if dtype is bool:
        image = rng.random(labels.shape) > 0.5
    elif np.issubdtype(dtype, np.floating):
        image = rng.normal(40, 900, labels.shape).astype(dtype)
        image[:, ::3, ::7] = np.nan
        image[0, 0, 1:3] = np.nan
    else:
        info = np.iinfo(dtype)
        image = rng.integers(info.min, int(info.max) + 1, labels.shape).astype(dtype)
    all_nan = set()
    for values in (None, [2, 5, 150, 333, 60, 61, 99]):  # a few labels: the partition path
        stats = measure_labels(labels, image, values=values)
        index = [s.label for s in stats]
        present = set(np.unique(labels).tolist()) - {0}
        assert index == sorted(present if values is None else present & set(values))
        assert len(index) > 256 if values is None else len(index) < 10  # both median paths are run
        ref = _scipy_reference(labels, image, index)
        for i, s in enumerate(stats):
            v = image[labels == s.label].astype(np.float64)
            v = v[np.isfinite(v)]
            if v.size == 0:  # label 61 on float images, and small labels hit by the NaN grid
                assert s.mean is s.min is s.max is s.median is s.std is None
                all_nan.add(s.label)
                continue
            assert (s.min, s.max, s.median) == (ref["min"][i], ref["max"][i], ref["median"][i]), s.label
            assert s.mean == pytest.approx(v.mean(), rel=1e-12, abs=1e-9)
            assert s.std == pytest.approx(v.std(), rel=1e-9, abs=1e-9)
            assert s.pixels == int((labels == s.label).sum())
    assert (61 in all_nan) == (np.issubdtype(dtype, np.floating))
