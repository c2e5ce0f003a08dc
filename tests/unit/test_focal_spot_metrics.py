"""The focal-spot detector's metric and in-graph decoding (issue 20 item 2): the target is *spot* recall, so
a found spot with the wrong bright/dark class is one hit (class-agnostic headline), and the shipped graph
reports each spot once, as one class."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # models/ is training code, not an installed package
    sys.path.insert(0, str(REPO))

from models.focal_spot.common import (  # noqa: E402
    MULTIPLE_OF,
    at_threshold,
    average_precision,
    found_spots,
    heldout_set,
    insert_blobs,
    normalize,
    recall_at_fp,
    recall_by_size,
    spot_size,
)

GT = [(np.array([[10, 10, 30, 30], [60, 60, 80, 76]], np.float32), np.array([0, 1]))]


def _dets(boxes, scores, classes):
    return [(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32), np.array(classes))]


def test_a_found_spot_of_the_wrong_class_is_a_hit_not_a_miss_and_a_false_positive():
    # both spots found, the second one called bright; one real false positive elsewhere
    dets = _dets([[10, 10, 30, 30], [60, 61, 80, 76], [100, 100, 110, 110]], [0.9, 0.8, 0.7], [0, 0, 1])
    assert recall_at_fp(dets, GT, 1.0) == {"recall": 1.0, "threshold": 0.7, "fp_per_image": 1.0}
    assert at_threshold(dets, GT, 0.75) == {"recall": 1.0, "fp_per_image": 0.0}
    # class-aware (what v2.0 reported): the wrong class costs a miss and a false positive
    assert recall_at_fp(dets, GT, 1.0, class_aware=True) == {"recall": 0.5, "threshold": 0.8, "fp_per_image": 1.0}
    assert at_threshold(dets, GT, 0.75, class_aware=True) == {"recall": 0.5, "fp_per_image": 1.0}
    ap = average_precision(dets, GT)
    assert ap["ap50_class_agnostic"] == 1.0 and ap["ap50_per_class"] == [1.0, 0.0]


def test_a_duplicate_and_a_poor_box_are_false_positives():
    dets = _dets([[10, 10, 30, 30], [11, 10, 31, 30], [60, 60, 95, 95]], [0.9, 0.8, 0.7], [0, 0, 1])
    assert at_threshold(dets, GT, 0.5) == {"recall": 0.5, "fp_per_image": 2.0}
    assert recall_at_fp(dets, GT, 1.0)["recall"] == 0.5


def test_shipped_graph_reports_each_peak_once_as_one_class():
    sess = ort.InferenceSession(str(REPO / "plugins" / "focal-spot" / "model.onnx"),
                                providers=["CPUExecutionProvider"])
    img, boxes, _ = heldout_set(per_base=1)[3]  # CT_small with inserted spots
    x = normalize(img)
    h, w = x.shape
    x = np.pad(x, ((0, (-h) % MULTIPLE_OF), (0, (-w) % MULTIPLE_OF)))
    out = sess.run(None, {"input": x[None, None]})[0][0]
    scores = out[4:].reshape(2, x.shape[0] // 4, x.shape[1] // 4)
    assert not ((scores[0] > 0) & (scores[1] > 0)).any(), "a cell reported as both bright and dark"
    top = scores.max(0)
    ys, xs = np.nonzero(top)
    assert len(ys) > len(boxes)  # peaks of low score too: the decoder's threshold does the rest
    # no two reported cells touch (3x3 peak suppression across both classes)
    for y, xx in zip(ys, xs):
        window = top[max(0, y - 1):y + 2, max(0, xx - 1):xx + 2]
        assert (window > 0).sum() == 1 or np.isclose(window[window > 0], top[y, xx]).all()


def test_recall_per_size_band_counts_each_spot_in_its_band_at_the_threshold():
    # spots 8, 15 and 25 px across (an 8 x 8, a 15 x 15 and a 20 x 31.25 box: geometric mean 25)
    gt = [(np.array([[0, 0, 8, 8], [40, 40, 55, 55], [100, 100, 120, 131.25]], np.float32), np.array([0, 1, 0]))]
    assert np.allclose(spot_size(gt[0][0]), [8, 15, 25])
    # the small spot found with a high score, the large one with a low score, the middle one missed
    dets = _dets([[0, 0, 8, 8], [100, 100, 120, 131], [200, 200, 210, 210]], [0.9, 0.3, 0.6], [0, 0, 1])
    assert [u.tolist() for u in found_spots(dets, gt, 0.5)] == [[True, False, False]]
    high = recall_by_size(dets, gt, 0.5)
    assert high == {"6-10 px": {"recall": 1.0, "n_spots": 1}, "10-20 px": {"recall": 0.0, "n_spots": 1},
                    "20-36 px": {"recall": 0.0, "n_spots": 1}}
    assert recall_by_size(dets, gt, 0.2)["20-36 px"]["recall"] == 1.0


def test_insert_blobs_meta_describes_each_spot_without_changing_the_draws():
    base = np.random.default_rng(0).random((128, 128)).astype(np.float32)
    meta: list = []
    img, boxes, _ = insert_blobs(base, np.random.default_rng(4), meta=meta)
    again, boxes2, _ = insert_blobs(base, np.random.default_rng(4))
    assert np.array_equal(img, again) and np.array_equal(boxes, boxes2)
    assert len(meta) == len(boxes)
    for m, b in zip(meta, boxes):
        assert 3.0 <= m["r"] <= 18.0 and 0.3 <= m["edge"] and 0.12 <= m["contrast"] <= 0.6
        assert spot_size(b[None])[0] >= 2 * m["r"] / np.sqrt(2.0)  # the box holds the ellipse


def test_small_spots_are_oversampled_only_when_asked():
    base = np.full((256, 256), 0.5, np.float32)
    sizes = {p: np.concatenate([spot_size(insert_blobs(base, np.random.default_rng(s), small_p=p)[1])
                                for s in range(40)]) for p in (0.0, 0.6)}
    assert (sizes[0.6] < 12).mean() > (sizes[0.0] < 12).mean() + 0.2


def test_shipped_graph_averages_the_flips_so_a_mirrored_image_gives_mirrored_spots():
    # v3 averages the net's maps over the image and its three flips before decoding: the answer on a
    # mirror image is the mirror of the answer (a single pass is not: the net is not flip-symmetric)
    from models.focal_spot.common import decode_yolov8

    sess = ort.InferenceSession(str(REPO / "plugins" / "focal-spot" / "model.onnx"),
                                providers=["CPUExecutionProvider"])
    img, _, _ = heldout_set(per_base=1)[3]  # CT_small (128 x 128: no padding, so the flip is exact)
    x = normalize(img)
    assert x.shape[0] % MULTIPLE_OF == 0 and x.shape[1] % MULTIPLE_OF == 0
    w = x.shape[1]
    b1, s1, _ = decode_yolov8(sess.run(None, {"input": x[None, None]})[0], score_threshold=0.2)
    b2, s2, _ = decode_yolov8(sess.run(None, {"input": np.ascontiguousarray(x[:, ::-1])[None, None]})[0],
                              score_threshold=0.2)
    assert len(b1) >= 2 and len(b1) == len(b2)
    mirrored = np.stack([w - b2[:, 2], b2[:, 1], w - b2[:, 0], b2[:, 3]], 1)
    o1, o2 = np.lexsort(b1.T[::-1]), np.lexsort(mirrored.T[::-1])
    assert np.allclose(b1[o1], mirrored[o2], atol=1e-3)
    assert np.allclose(s1[o1], s2[o2], atol=1e-5)
