"""The document's rules in the core (issue 10): segmentation merge policy, label-table edits as undo steps,
the undo stack's clean point, the paint/erase, ROI-write and island-split rules. No Qt."""
import numpy as np
import pytest

from workbench.core import Document, ImageVolume
from workbench.core.edits import MAX_SPLIT_LABELS, merge_segmentation, paint_rule, split_label, write_mask
from workbench.core.errors import ProcessingError
from workbench.core.labels import Label, LabelMap
from workbench.core.results import RunInfo, SegmentationClass, SegmentationResult
from workbench.core.undo import CallbackStep, UndoStack


def _doc(shape=(1, 20, 30)) -> Document:
    return Document(ImageVolume(np.zeros(shape, np.uint8)))


def _seg(mask: np.ndarray) -> SegmentationResult:
    info = RunInfo("seg", "Seg model", "1.0", "0" * 64, "CPUExecutionProvider", "segmentation")
    return SegmentationResult(info, mask.astype(np.uint16), [SegmentationClass(2, "organ", "#00ff00")])


def _hand(doc: Document, value: int = 1) -> None:
    with doc.labels.edit("hand") as e:
        e.assign((slice(0, 1), slice(0, 10), slice(0, 10)), value)


# -- segmentation results -------------------------------------------------------------------------------
def test_merge_policy_keeps_hand_edits_and_replace_overwrites():
    doc = _doc()
    _hand(doc)
    mask = np.full((1, 20, 30), 2)
    doc.apply_segmentation(_seg(mask), "merge")
    assert (doc.labels.data[0, :10, :10] == 1).all() and (doc.labels.data[0, 10:] == 2).all()
    assert doc.labels.labels[2].name == "organ"
    doc.apply_segmentation(_seg(mask), "replace")
    assert (doc.labels.data == 2).all()


def test_add_result_merges_with_the_document_policy_in_one_undo_step():
    doc = _doc()
    doc.segmentation_policy = "merge"
    added = []
    doc.result_added.connect(added.append)
    result = _seg(np.full((1, 20, 30), 2))
    doc.add_result(result)
    assert (doc.labels.data == 2).all() and doc.results == [result] and added == [result]
    assert len(doc.undo) == 1 and doc.undo.last_step.automatic
    doc.undo.undo()  # the result and its mask go together
    assert doc.results == [] and not doc.labels.data.any()
    doc.undo.redo()  # redo restores both without merging (or announcing) again
    assert doc.results == [result] and (doc.labels.data == 2).all() and added == [result]
    assert len(doc.undo) == 1


def test_without_a_policy_a_result_stays_apart_from_the_labels():
    doc = _doc()
    doc.add_result(_seg(np.full((1, 20, 30), 2)))
    assert not doc.labels.data.any() and len(doc.results) == 1


def test_a_mask_of_the_wrong_shape_is_refused_but_the_result_is_kept():
    doc = _doc()
    doc.segmentation_policy = "merge"
    with pytest.raises(ProcessingError, match=r"segmentation of seg: mask shape \(1, 5, 5\)"):
        doc.add_result(_seg(np.ones((1, 5, 5))))
    assert len(doc.results) == 1 and not doc.labels.data.any()
    with pytest.raises(ProcessingError, match="merge or replace"):
        merge_segmentation(doc.labels, np.ones((1, 20, 30)), [], policy="overwrite", name="x")


def test_restore_puts_a_saved_state_without_history_or_merging():
    doc = _doc()
    doc.segmentation_policy = "merge"
    data = np.zeros((1, 20, 30), np.uint16)
    data[0, 0, 0], data[0, 1, 1] = 3, 7
    result = _seg(np.full((1, 20, 30), 2))
    doc.restore(ImageVolume(np.zeros((1, 20, 30), np.uint8)), label_data=data,
                label_table=[Label(3, "kept", "#123456")], results=[result])
    np.testing.assert_array_equal(doc.labels.data, data)  # not merged again
    assert doc.labels.labels[3].name == "kept" and doc.labels.labels[7].name == "label 7"
    assert doc.results == [result] and not doc.undo.can_undo and doc.undo.is_clean


# -- label table ---------------------------------------------------------------------------------------
def test_rename_and_recolour_are_undo_steps_and_unsaved_changes():
    labels = LabelMap((1, 4, 4))
    labels.ensure_label(2, "liver", "#ff0000")
    labels.undo.mark_clean()
    labels.set_label(2, name="spleen")
    assert labels.undo.undo_name == "Rename label 2" and not labels.undo.is_clean
    labels.set_label(2, color="#00ff00")
    assert labels.undo.undo_name == "Recolour label 2"
    labels.undo.undo()
    labels.undo.undo()
    assert (labels.labels[2].name, labels.labels[2].color) == ("liver", "#ff0000") and labels.undo.is_clean
    labels.set_label(2, visible=False)  # a display toggle, not an edit
    assert not labels.labels[2].visible and labels.undo.is_clean and labels.undo.can_redo


def test_add_and_remove_label_are_undo_steps():
    labels = LabelMap((2, 4, 4))
    lab = labels.add_label("new")
    assert lab.value == 1 and labels.undo.undo_name == "Add label 1"
    with labels.edit("paint") as e:
        e.assign((slice(0, 2), slice(0, 2), slice(0, 2)), 1)
    labels.remove_label(1)
    assert 1 not in labels.labels and not labels.data.any() and labels.undo.undo_name == "Remove label 1"
    labels.undo.undo()  # pixels and table entry come back together
    assert labels.labels[1].name == "new" and (labels.data == 1).sum() == 8
    labels.undo.undo()
    labels.undo.undo()
    assert 1 not in labels.labels


# -- clean point ---------------------------------------------------------------------------------------
def _step(name: str, automatic: bool = False) -> CallbackStep:
    return CallbackStep(name, lambda: None, lambda: None, automatic=automatic)


def test_clean_point_undo_back_is_clean_and_a_lost_branch_stays_unsaved():
    undo = UndoStack()
    assert undo.is_clean and not undo.has_hand_edits
    undo.push(_step("a"))
    undo.mark_clean()
    undo.push(_step("b"))
    assert not undo.is_clean and undo.has_hand_edits
    undo.undo()
    assert undo.is_clean
    undo.undo()  # below the saved state
    assert not undo.is_clean and [s.name for s in undo.unsaved_steps()] == ["a"]
    undo.push(_step("c", automatic=True))  # the saved state is unreachable now
    assert not undo.is_clean and undo.has_hand_edits  # "a" (a hand edit) is still not in this state
    assert sorted(s.name for s in undo.unsaved_steps()) == ["a", "c"]
    undo.clear()
    assert undo.is_clean


def test_model_runs_alone_are_not_hand_edits():
    undo = UndoStack()
    undo.push(_step("run", automatic=True))
    assert not undo.is_clean and not undo.has_hand_edits
    undo.undo()
    undo.redo()
    assert not undo.has_hand_edits


def test_a_savepoint_taken_before_later_edits_leaves_them_unsaved():
    undo = UndoStack()
    undo.push(_step("a"))
    point = undo.savepoint()
    undo.push(_step("b"))  # made while the save was writing
    undo.mark_clean(point)
    assert not undo.is_clean and [s.name for s in undo.unsaved_steps()] == ["b"]
    undo.undo()
    assert undo.is_clean
    undo.undo()
    undo.push(_step("x"))
    stale = (1, object())  # a savepoint of a state the history left
    undo.mark_clean(stale)
    assert not undo.is_clean


def test_budget_drops_keep_the_clean_point_right():
    undo = UndoStack(max_bytes=10)
    for name in "abc":
        undo.push(CallbackStep(name, lambda: None, lambda: None, size=6))  # one step fits at a time
    undo.mark_clean()
    assert undo.is_clean
    undo.push(CallbackStep("d", lambda: None, lambda: None, size=6))
    assert not undo.is_clean and len(undo) == 1
    undo.undo()
    assert undo.is_clean  # the saved state is the one before "d", though the steps before it were dropped
    undo.push(CallbackStep("e", lambda: None, lambda: None, size=6))
    undo.push(CallbackStep("f", lambda: None, lambda: None, size=6))  # drops "e": the saved state is gone
    assert not undo.is_clean and [s.name for s in undo.unsaved_steps()] == ["e", "f"]


# -- paint / write / split rules ----------------------------------------------------------------------------
@pytest.mark.parametrize("overwrite, erase, expected", [
    ("any", False, (3, "any", None)),
    ("background", False, (3, "background", None)),
    ("selected", False, (3, "selected", 5)),
    ("any", True, (0, "any", None)),
    ("background", True, (0, "selected", 3)),  # erase only the current label
    ("selected", True, (0, "selected", 5)),  # erase only the selected label
])
def test_paint_rule(overwrite, erase, expected):
    assert paint_rule(3, overwrite, 5, erase=erase) == expected


def test_write_mask_inside_an_roi_makes_the_label_exactly_the_mask():
    labels = LabelMap((2, 6, 6))
    with labels.edit("x") as e:
        e.assign((slice(0, 2), slice(0, 6), slice(0, 3)), 4)  # label 4 on the left half of both slices
        e.assign((slice(0, 1), slice(0, 1), slice(5, 6)), 9)  # another label outside the ROI
    roi = labels.data[0] == 4
    new = np.zeros((6, 6), bool)
    new[:3, :3] = True  # the threshold kept the top of the ROI
    count = write_mask(labels, new, name="Threshold", value=4, z=0, roi=roi)
    assert count == 9 and labels.undo.undo_name == "Threshold"
    assert (labels.data[0, 3:, :3] == 0).all() and labels.data[0, 0, 5] == 9
    assert (labels.data[1, :, :3] == 4).all()  # other slices untouched
    stack = np.zeros((2, 6, 6), bool)
    stack[:, 5, 5] = True
    assert write_mask(labels, stack, name="Grow", value=4, overwrite="background") == 9 + 18 + 2


def test_split_label_gives_every_island_a_label_in_one_step():
    labels = LabelMap((1, 5, 9))
    labels.ensure_label(2, "cells")
    with labels.edit("x") as e:
        for c in (0, 4, 8):
            e.assign((slice(0, 1), slice(0, 5), slice(c, c + 1)), 2)
    labels.ensure_label(1)  # value 1 is taken: the new labels skip it
    comp = np.zeros((5, 9), np.int32)
    for i, c in enumerate((0, 4, 8), start=1):
        comp[:, c] = i
    assert split_label(labels, 2, comp, 3, z=0) == 3
    assert set(np.unique(labels.data).tolist()) == {0, 2, 3, 4}
    assert labels.labels[3].name == "cells (2)" and labels.labels[4].name == "cells (3)"
    assert labels.undo.undo_name == "Split label 2 into 3"
    with pytest.raises(ProcessingError, match=f"at most {MAX_SPLIT_LABELS} labels"):
        split_label(labels, 2, comp, MAX_SPLIT_LABELS + 1, z=0)


def test_a_held_history_refuses_undo_and_redo_until_released():
    undo = UndoStack()
    undo.push(_step("a"))
    seen = []
    undo.changed.connect(lambda: seen.append(undo.can_undo))
    with undo.held():  # a brush drag is open
        assert not undo.can_undo and undo.undo() is None and len(undo) == 1
    assert undo.can_undo and seen == [False, True]


def test_core_events_hold_listeners_weakly():
    """psygnal keeps bound methods by weak reference: a view that is gone is no longer called (and kept)."""
    import gc
    import weakref

    labels = LabelMap((1, 4, 4))

    class View:
        def __init__(self) -> None:
            self.boxes: list = []

        def on_data(self, bbox) -> None:
            self.boxes.append(bbox)

    view = View()
    labels.data_changed.connect(view.on_data)
    with labels.edit("a") as e:
        e.assign((slice(0, 1), slice(0, 2), slice(0, 2)), 1)
    assert view.boxes == [(slice(0, 1), slice(0, 2), slice(0, 2))]
    gone = weakref.ref(view)
    del view
    gc.collect()
    assert gone() is None
    with labels.edit("b") as e:  # emitting to the dead view is a no-op
        e.assign((slice(0, 1), slice(2, 4), slice(2, 4)), 2)
    assert len(labels.data_changed) == 0
