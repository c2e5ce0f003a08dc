"""Benchmarks of the processing tools, as ratios against baselines measured in the same run.

Run with ``python -m pytest -m bench -s tests/bench/test_bench_processing.py``. Timings are the best of
several interleaved repeats (the machine is shared); asserts keep generous margins, the printed ratios
are the figures to record.
"""
import time

import cv2
import numpy as np
import pytest
from scipy import ndimage as ndi

from workbench import processing as P
from workbench.core import LabelMap

pytestmark = pytest.mark.bench


def best_ms(fn, repeat=7):
    fn()  # warm-up (allocations, OpenCV thread pool)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1000


def compare(name, ours, base, base_name, repeat=7):
    # interleave so both see the same machine load
    t_ours, t_base = [], []
    for _ in range(2):
        t_base.append(best_ms(base, repeat))
        t_ours.append(best_ms(ours, repeat))
    o, b = min(t_ours), min(t_base)
    print(f"\n[bench] {name}: {o:.2f} ms vs {base_name} {b:.2f} ms -> ratio {o / b:.2f}x")
    return o / b


@pytest.fixture(scope="module")
def image2048():
    rng = np.random.default_rng(0)
    small = cv2.GaussianBlur(rng.random((512, 512)).astype(np.float32), (0, 0), 4)
    img = cv2.resize(small, (2048, 2048), interpolation=cv2.INTER_LINEAR)
    img = (img - img.min()) / (img.max() - img.min())
    noise = rng.normal(0, 0.01, img.shape).astype(np.float32)
    return ((img + noise).clip(0, 1) * 60000).astype(np.uint16)


def _seed_and_tol(img):
    seed = (1024, 1024)
    return seed, int(img[seed]), 3000


def test_region_grow_2d_vs_threshold_floodfill(image2048):
    img = image2048
    seed, v, tol = _seed_and_tol(img)

    def base():
        binary = cv2.inRange(img, v - tol, v + tol)
        ff = np.zeros((img.shape[0] + 2, img.shape[1] + 2), np.uint8)
        cv2.floodFill(binary, ff, (seed[1], seed[0]), 0, 0, 0, 8 | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
        return ff[1:-1, 1:-1]

    region = P.region_grow(img, [seed], tolerance=tol)
    assert np.array_equal(region, base().view(bool))
    print(f"\n[bench] region fraction {region.mean():.3f}")
    ratio = compare("region grow 2D 2048² uint16", lambda: P.region_grow(img, [seed], tolerance=tol), base,
                    "cv2.inRange + cv2.floodFill")
    assert ratio <= 1.6


def test_region_grow_preview_slider_rate(image2048):
    img = image2048
    seed, v, tol = _seed_and_tol(img)
    prev = P.RegionGrowPreview(img, seed)
    tols = np.linspace(500, 6000, 40)  # distinct values: no cache hits
    t0 = time.perf_counter()
    for t in tols:
        prev.update(float(t))
    per_update = (time.perf_counter() - t0) / len(tols) * 1000
    rate = 1000 / per_update

    def base():
        binary = cv2.inRange(img, v - tol, v + tol)
        ff = np.zeros((img.shape[0] + 2, img.shape[1] + 2), np.uint8)
        cv2.floodFill(binary, ff, (seed[1], seed[0]), 0, 0, 0, 8 | cv2.FLOODFILL_MASK_ONLY | (1 << 8))

    base_ms = best_ms(base)
    print(f"\n[bench] region-grow preview 2048²: {rate:.0f} updates/s ({per_update:.1f} ms each; "
          f"one cv2.inRange + cv2.floodFill here: {base_ms:.1f} ms)")
    # >= 30/s on an unloaded machine; under load an update must at least cost no more than the baseline
    assert rate >= 30 or per_update <= 1.5 * base_ms


def test_region_grow_3d_vs_threshold_label():
    rng = np.random.default_rng(1)
    small = ndi.zoom(rng.random((32, 32, 32)).astype(np.float32), 8, order=1)
    vol = (small * 60000).astype(np.uint16)  # 256³
    seed = (128, 128, 128)
    v, tol = int(vol[seed]), 6000
    struct = ndi.generate_binary_structure(3, 3)

    def base():
        lab, _ = ndi.label((vol >= v - tol) & (vol <= v + tol), structure=struct)
        return lab

    ratio = compare("region grow 3D 256³ uint16 (26-conn)",
                    lambda: P.region_grow(vol, [seed], tolerance=tol, connectivity=26), base,
                    "numpy threshold + scipy.ndimage.label", repeat=2)
    assert ratio <= 1.6


def test_otsu_vs_opencv(image2048):
    img = image2048
    ratio = compare("Otsu uint16 2048²", lambda: P.threshold_value(img, method="otsu"),
                    lambda: cv2.threshold(img, 0, 1, cv2.THRESH_BINARY | cv2.THRESH_OTSU),
                    "cv2.threshold THRESH_OTSU")
    assert ratio <= 1.5


def test_islands_vs_connected_components(image2048):
    mask = image2048 > np.median(image2048)
    u8 = mask.view(np.uint8)
    base = lambda: cv2.connectedComponents(u8, connectivity=8, ltype=cv2.CV_32S)  # noqa: E731
    n = base()[0] - 1
    print(f"\n[bench] islands: {n} components")
    y, x = np.argwhere(mask)[len(np.argwhere(mask)) // 2]
    r_pick = compare("islands pick (by click)", lambda: P.pick(mask, (y, x)), base, "cv2.connectedComponents")
    r_split = compare("islands split", lambda: P.split(mask), base, "cv2.connectedComponents")
    r_large = compare("islands keep largest", lambda: P.keep_largest(mask), base, "cv2.connectedComponents")
    r_small = compare("islands remove small (min 500 px)", lambda: P.remove_small(mask, min_size=500), base,
                      "cv2.connectedComponents")
    stats = lambda: cv2.connectedComponentsWithStats(u8, connectivity=8, ltype=cv2.CV_32S)  # noqa: E731
    compare("islands keep largest", lambda: P.keep_largest(mask), stats, "cv2.connectedComponentsWithStats")

    def floor():
        # the least any keep-largest / remove-small built on library primitives must do: label, then
        # count each label once (cv2.calcHist, the fastest per-pixel count measured here: np.bincount is
        # 4x slower, connectedComponentsWithStats adds 10 ms, cc3d labels 2x slower than OpenCV)
        n, labels = cv2.connectedComponents(u8, connectivity=8, ltype=cv2.CV_32S)
        return cv2.calcHist([labels.astype(np.uint16)], [0], None, [n], [0, n])

    compare("floor: label + count (no output)", floor, base, "cv2.connectedComponents")
    assert r_pick <= 1.3 and r_split <= 1.6
    # A mask spread over the whole plane (its bounding box is the plane): the sizes need one counting
    # pass over the labels and the result one more pass. The floor above (label + count, no output)
    # measured 1.7-1.9x on an idle machine, where the baseline's labelling runs on both cores; keep
    # largest / remove small measured 2.1-2.6x (idle) and 1.5-2.9x (loaded). On organ-sized masks
    # (the next test) both are 0.5-0.8x.
    assert r_large <= 3.0 and r_small <= 3.5


def test_islands_organ_sized_mask_vs_connected_components():
    """The common case: one structure plus specks, a few % of the plane -- only its box is labelled."""
    rng = np.random.default_rng(2)
    mask = np.zeros((2048, 2048), np.uint8)
    cv2.ellipse(mask, (1200, 900), (260, 180), 30, 0, 360, 1, -1)
    specks = cv2.GaussianBlur(rng.random((2048, 2048)).astype(np.float32), (0, 0), 2) > 0.56
    mask[600:1250, 850:1550] |= specks[600:1250, 850:1550]
    mask = mask.view(bool)
    u8 = mask.view(np.uint8)
    base = lambda: cv2.connectedComponents(u8, connectivity=8, ltype=cv2.CV_32S)  # noqa: E731
    print(f"\n[bench] islands (organ-sized): {base()[0] - 1} components, {mask.mean():.1%} of the plane")
    ref = base()[1]
    counts = np.bincount(ref.ravel())
    counts[0] = 0
    assert np.array_equal(P.keep_largest(mask), ref == counts.argmax())
    r_large = compare("islands keep largest (organ-sized mask)", lambda: P.keep_largest(mask), base,
                      "cv2.connectedComponents")
    r_small = compare("islands remove small (organ-sized mask, min 50 px)", lambda: P.remove_small(mask, min_size=50),
                      base, "cv2.connectedComponents")
    # measured ~0.5x: labelling the bounding box beats labelling the plane
    assert r_large <= 1.0 and r_small <= 1.0


def test_brush_dab_on_4096():
    shape = (1, 4096, 4096)
    from skimage.draw import disk

    ratio = compare("brush dab r=20 on 4096² (compute)", lambda: P.dab((0, 2000.3, 3000.7), 20, shape=shape),
                    lambda: disk((2000.3, 3000.7), 20, shape=shape[1:]), "skimage.draw.disk", repeat=50)
    ms = best_ms(lambda: P.dab((0, 2000.3, 3000.7), 20, shape=shape), 200)
    ms_stroke = best_ms(lambda: P.stroke((0, 2000, 3000), (0, 2011, 3017), 20, shape=shape), 200)
    print(f"\n[bench] dab {ms:.3f} ms, stroke segment {ms_stroke:.3f} ms")
    assert ms < 1.0 and ms_stroke < 1.0 and ratio < 5


def test_undo_memory_after_200_strokes_on_4096():
    labels = LabelMap((1, 4096, 4096))
    rng = np.random.default_rng(3)
    t0 = time.perf_counter()
    for i in range(200):
        pts = np.cumsum(rng.normal(0, 15, (20, 2)), axis=0) + rng.uniform(200, 3900, 2)
        with labels.edit("Brush") as e:
            for a, b in zip(pts[:-1], pts[1:]):
                box, mask = P.stroke((0, *a), (0, *b), 12, shape=labels.shape)
                e.paint(box, mask, 1 + i % 3)
    elapsed = time.perf_counter() - t0
    mb = labels.undo.nbytes / 2**20
    print(f"\n[bench] 200 strokes x 19 segments on 4096²: undo {mb:.1f} MB, "
          f"{elapsed / 200 * 1000:.1f} ms per stroke (compute + paint + diff)")
    assert len(labels.undo) == 200
    assert labels.undo.nbytes <= 64 * 2**20


def test_measure_labels_vs_ndimage_reductions():
    """measure_labels (every field, perimeter included) against the intensity statistics alone by
    scipy.ndimage's indexed reductions (mean, minimum, maximum, median over the labels), which the
    function used before: 2048² 16-bit image, two large labels."""
    rng = np.random.default_rng(4)
    image = rng.integers(0, 60000, (2048, 2048)).astype(np.uint16)
    labels = np.zeros(image.shape, np.uint16)
    labels[100:1500, 200:1800] = 1
    labels[1600:2000, 100:2000] = 2
    index = [1, 2]

    def ours():
        P.measure_labels(labels, image, spacing=(1.0, 0.5, 0.5))

    def base():
        ndi.mean(image, labels, index)
        ndi.minimum(image, labels, index)
        ndi.maximum(image, labels, index)
        ndi.median(image, labels, index)

    ratio = compare("measure_labels 2048² two labels", ours, base, "ndimage mean+min+max+median", repeat=2)
    assert ratio < 0.5
