"""Issue 15 item 5: results that keep the view honest -- the newest result is the one shown, switching results
resets the compare state, a reopened session does not re-run models (tests/gui/test_view_truth.py), boxes
are drawn on the image (and slice) they belong to."""
from __future__ import annotations

import numpy as np

from workbench.core.image import ImageVolume
from workbench.core.results import (
    ClassificationResult,
    ClassScore,
    Detection,
    DetectionResult,
    RestorationResult,
    RunInfo,
)


def _info(task: str, name: str = "T") -> RunInfo:
    return RunInfo(name.lower(), name, "1", "0" * 64, "CPUExecutionProvider", task)


def _classification(name: str, scores) -> ClassificationResult:
    labels = ["good", "noisy"]
    top = sorted((ClassScore(i, labels[i], float(s)) for i, s in enumerate(scores)), key=lambda c: -c.score)
    return ClassificationResult(_info("classification", name), np.asarray(scores, float), labels, top)


def _restoration(image: ImageVolume, offset: float, name: str) -> RestorationResult:
    return RestorationResult(_info("restoration", name), ImageVolume(np.asarray(image.data, np.float32) + offset))


def _panel(window):
    return window.docks["ResultsDock"].panel


def test_a_new_result_is_the_one_shown_even_after_picking_an_older_one(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    panel = _panel(window)
    first = _classification("First", [0.9, 0.1])
    window.document.add_result(first)
    window.document.add_result(_classification("Second", [0.2, 0.8]))
    panel.list.setCurrentRow(0)  # the user looks at the first again
    assert "good" in panel.class_top.text()
    third = _classification("Third", [0.3, 0.7])
    window.document.add_result(third)
    assert panel.list.currentRow() == 2  # the new result is selected in the list ...
    assert panel._current(ClassificationResult) is third  # ... and it is what the dock shows
    assert "noisy" in panel.class_top.text() and "0.700" in panel.class_top.text()


def test_a_new_restoration_replaces_the_compared_one_and_starts_afresh(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    state = window.view_state
    image = window.document.image
    first = _restoration(image, 10.0, "First")
    window.document.add_result(first)
    assert state.restoration is first and state.compare_mode == "swipe"
    state.set_compare("difference", swipe=0.2)
    second = _restoration(image, 20.0, "Second")
    window.document.add_result(second)
    assert state.restoration is second  # the newest is compared, not the first
    assert state.compare_mode == "swipe" and state.swipe == 0.5
    assert _panel(window).list.currentRow() == 1


def test_switching_results_resets_compare_difference_and_swipe(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    state = window.view_state
    image = window.document.image
    a, b = _restoration(image, 10.0, "A"), _restoration(image, 30.0, "B")
    boxes = DetectionResult(_info("detection"), [Detection(0, "spot", 0.9, (10, 10, 30, 30))])
    for result in (a, b, boxes):
        window.document.add_result(result)
    panel = _panel(window)
    panel.list.setCurrentRow(0)  # restoration A
    assert state.restoration is a and state.compare_mode == "swipe"
    state.set_compare("difference", swipe=0.8)
    assert not window.canvas.detection_overlay.isVisible()
    panel.list.setCurrentRow(1)  # restoration B: not shown through A's difference map or swipe position
    assert state.restoration is b and state.compare_mode == "swipe" and state.swipe == 0.5
    assert panel.compare_combo.currentData() == "swipe"
    state.set_compare("side")
    panel.list.setCurrentRow(2)  # the detections: shown on the image, no compare view over them
    assert state.compare_mode == "off"
    assert window.canvas.detection_overlay.isVisible() and window.canvas.detection_overlay.visible_boxes
    assert not window.canvas.side_view.isVisible()
    panel.list.setCurrentRow(1)  # back to B, which is still the compared one: the compare comes back
    assert state.restoration is b and state.compare_mode == "swipe"


def test_boxes_are_drawn_on_the_image_and_slice_they_belong_to(window, qtbot, stack_npy, load):
    load(window, qtbot, stack_npy)
    state = window.view_state
    canvas = window.canvas
    image = window.document.image
    on_two = DetectionResult(_info("detection"), [Detection(0, "spot", 0.9, (5, 5, 15, 15), slice_index=2),
                                                  Detection(0, "spot", 0.8, (20, 5, 30, 15), slice_index=4)])
    window.document.add_result(on_two)
    state.set_slice(2)
    boxes = canvas.detection_overlay.visible_boxes
    assert len(boxes) == 1 and boxes[0].rect().getCoords() == (5.0, 5.0, 15.0, 15.0)
    state.set_slice(3)
    assert canvas.detection_overlay.visible_boxes == []  # no box of slice 2 or 4 on slice 3
    state.set_slice(4)
    assert [b.rect().left() for b in canvas.detection_overlay.visible_boxes] == [20.0]

    # side by side: the boxes stay on the original (left) view; the restored view shows none
    window.document.add_result(_restoration(image, 5.0, "R"))
    state.set_compare("side")
    assert canvas.side_view.isVisible()
    assert canvas.detection_overlay.scene() is canvas.view.scene()
    assert not any(isinstance(item, type(canvas.detection_overlay)) for item in canvas.side_view.scene().items())
    state.set_compare("difference")
    assert not canvas.detection_overlay.isVisible()  # never over a difference (noise) map
    state.set_compare("off")
    assert canvas.detection_overlay.isVisible()

    # another image: the old image's boxes go with it
    window.document.set_image(ImageVolume(np.zeros((6, 40, 50), np.uint16)))
    state.set_slice(4)
    assert canvas.detection_overlay.visible_boxes == []


def test_the_highlighted_box_never_jumps_to_another_result(window, qtbot, gradient_png, load):
    load(window, qtbot, gradient_png)
    results = [DetectionResult(_info("detection", n), [Detection(0, n, 0.9, (x, 10, x + 10, 20))])
               for n, x in (("a", 5), ("b", 30), ("c", 60))]
    for result in results:
        window.document.add_result(result)
    canvas = window.canvas
    canvas.select_detection((1, 0), (30, 10, 40, 20))  # b's box, e.g. clicked in the Results table

    def thick():
        return [b.rect().left() for b in canvas.detection_overlay.visible_boxes if b.pen().widthF() >= 3]

    assert thick() == [30.0]
    window.document.remove_result(results[0])  # b is now result 0, c result 1
    assert thick() == [30.0]  # still b's box, not c's
    window.document.remove_result(results[1])  # b itself goes: no highlight left
    assert thick() == []
