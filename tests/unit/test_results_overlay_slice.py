"""One choice of the slice a result's picture shows (issue 10): the overlay PNG, the report picture and
its caption agree, also on ties (they used to show slice 3 and say slice 1)."""
import numpy as np

from workbench.core.image import ImageVolume
from workbench.core.results import (
    Detection,
    DetectionResult,
    RunInfo,
    SegmentationClass,
    SegmentationResult,
    overlay_slice,
)
from workbench.export.overlay import render_overlay
from workbench.export.report import build_report


def _info(task: str, ran: list[int]) -> RunInfo:
    return RunInfo("p", "P", "1", "0" * 64, "CPUExecutionProvider", task, slice_indices=ran)


def _stack() -> ImageVolume:
    rng = np.random.default_rng(0)
    return ImageVolume(rng.integers(0, 255, (4, 24, 32), dtype=np.uint8))


def test_a_tie_picks_the_first_slice_and_picture_and_caption_agree():
    image = _stack()
    mask = np.zeros((4, 24, 32), np.uint16)
    mask[0, 2:6, 2:6] = 1  # slice 0 was not run on: never chosen
    mask[0, 10:20, 10:20] = 1
    mask[1, 0:4, 0:4] = 1  # 16 px
    mask[3, 8:12, 8:12] = 1  # 16 px: a tie with slice 1
    result = SegmentationResult(_info("segmentation", [1, 2, 3]), mask, [SegmentationClass(1, "a", "#ff0000", 32)])
    assert overlay_slice(result) == 1
    report = build_report(result, image, salt="s")
    picture = report.pictures[0]
    assert "slice 2 of 4" in picture.caption
    np.testing.assert_array_equal(picture.rgb, render_overlay(result, image))
    assert not np.array_equal(picture.rgb, render_overlay(result, image, 3))


def test_most_labelled_slice_and_most_boxes_win():
    mask = np.zeros((4, 24, 32), np.uint16)
    mask[2, 0:8, 0:8] = 1
    mask[1, 0:2, 0:2] = 1
    assert overlay_slice(SegmentationResult(_info("segmentation", [0, 1, 2, 3]), mask, [])) == 2
    dets = [Detection(0, "x", 0.9, (1, 1, 5, 5), slice_index=z) for z in (3, 1, 3)]
    assert overlay_slice(DetectionResult(_info("detection", [0, 1, 2, 3]), dets)) == 3
    assert overlay_slice(DetectionResult(_info("detection", [2, 3]), [])) == 2
