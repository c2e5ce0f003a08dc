import numpy as np
import pytest

from workbench.core import Document, ImageVolume, LabelMap
from workbench.core.undo import DiffAtom, UndoStack


def test_brush_drag_is_one_step_and_undo_restores():
    labels = LabelMap((1, 300, 300))
    seen = []
    labels.data_changed.connect(seen.append)
    with labels.edit("Brush") as e:
        for x in range(10, 200, 5):  # overlapping dabs
            e.paint((slice(0, 1), slice(40, 60), slice(x, x + 20)), np.ones((1, 20, 20), bool), 3)
    assert len(labels.undo) == 1
    assert labels.undo.undo_name == "Brush"
    painted = labels.data.copy()
    assert (painted == 3).sum() == 20 * 205  # x from 10 to 215
    assert seen  # dirty boxes were announced
    labels.undo.undo()
    assert not labels.data.any()
    labels.undo.redo()
    np.testing.assert_array_equal(labels.data, painted)


def test_memory_grows_with_changed_pixels_not_image_size():
    labels = LabelMap((1, 2048, 2048))
    for i in range(20):
        with labels.edit("dab") as e:
            e.paint((slice(0, 1), slice(i * 10, i * 10 + 10), slice(0, 10)), np.ones((1, 10, 10), bool), 1)
    # each step: 100 px x (2 B old + 2 B new) + one packed tile mask (2 KB) per touched tile (<= 2);
    # a full copy per step would be 20 x 8 MB
    assert labels.undo.nbytes <= 20 * 2 * (128 * 128 // 8 + 400)


def test_nothing_changed_pushes_nothing_and_exception_rolls_back():
    labels = LabelMap((1, 10, 10))
    with labels.edit("noop") as e:
        e.paint((slice(0, 1), slice(0, 5), slice(0, 5)), np.zeros((1, 5, 5), bool), 1)
    assert len(labels.undo) == 0
    with pytest.raises(RuntimeError):
        with labels.edit("fails") as e:
            e.assign((slice(0, 1), slice(0, 10), slice(0, 10)), 7)
            raise RuntimeError("boom")
    assert not labels.data.any()
    assert len(labels.undo) == 0


def test_overwrite_rules():
    labels = LabelMap((1, 4, 4))
    box = (slice(0, 1), slice(0, 4), slice(0, 4))
    with labels.edit("a") as e:
        e.assign((slice(0, 1), slice(0, 2), slice(0, 4)), 1)
    with labels.edit("b") as e:
        e.paint(box, np.ones((1, 4, 4), bool), 2, overwrite="background")
    assert (labels.data[0, :2] == 1).all() and (labels.data[0, 2:] == 2).all()
    with labels.edit("c") as e:
        e.paint(box, np.ones((1, 4, 4), bool), 0)  # erase everything
    assert not labels.data.any()


def test_diff_atom_roundtrip_and_empty_diff():
    before = np.zeros((1, 3, 3), np.uint16)
    after = before.copy()
    assert DiffAtom.from_arrays((slice(0, 1), slice(0, 3), slice(0, 3)), before, after) is None
    after[0, 1, 1] = 5
    atom = DiffAtom.from_arrays((slice(0, 1), slice(0, 3), slice(0, 3)), before, after)
    target = after.copy()
    atom.write(target, "old")
    np.testing.assert_array_equal(target, before)


def test_undo_stack_budget_drops_oldest():
    stack = UndoStack(max_bytes=1)
    labels = LabelMap((1, 8, 8), undo=stack)
    for v in (1, 2, 3):
        with labels.edit(f"s{v}") as e:
            e.assign((slice(0, 1), slice(0, 8), slice(0, 8)), v)
    assert len(stack) == 1 and stack.undo_name == "s3"


def test_document_results_are_undoable_and_new_image_resets():
    doc = Document(ImageVolume(np.zeros((5, 5), np.uint8)))
    events = []
    doc.results_changed.connect(lambda: events.append(len(doc.results)))
    doc.add_result("r1")
    assert doc.results == ["r1"]
    doc.undo.undo()
    assert doc.results == []
    doc.undo.redo()
    assert doc.results == ["r1"] and events == [1, 0, 1]
    doc.set_image(ImageVolume(np.zeros((2, 7, 7), np.uint16)))
    assert doc.results == [] and doc.labels.shape == (2, 7, 7) and not doc.undo.can_undo


@pytest.mark.parametrize("data", [np.zeros((1, 1), np.uint8), np.full((3, 4), np.nan, np.float32),
                                  np.arange(12, dtype=np.uint16).reshape(3, 4)])
def test_image_volume_degenerate(data):
    vol = ImageVolume(data)
    assert vol.n_slices == 1
    center, width = vol.default_window()
    assert width > 0 and np.isfinite(center)


def test_image_volume_rejects_bad_shape():
    with pytest.raises(ValueError):
        ImageVolume(np.zeros((2, 2, 2, 5)))


def test_group_makes_one_step_and_result_handlers_join_it():
    doc = Document(ImageVolume(np.zeros((4, 4), np.uint8)))

    def merge_mask():  # what the GUI does when a segmentation result arrives
        if doc.results:
            with doc.labels.edit("merge") as e:
                e.assign((slice(0, 1), slice(0, 2), slice(0, 2)), 1)

    doc.results_changed.connect(merge_mask)
    doc.add_result("seg", name="Run model")
    assert len(doc.undo) == 1 and doc.undo.undo_name == "Run model"
    doc.undo.undo()
    assert doc.results == [] and not doc.labels.data.any()
    doc.undo.redo()
    assert doc.results == ["seg"] and doc.labels.data.sum() == 4


def test_group_marks_automatic_steps_and_last_step_follows_push_undo_redo():
    from workbench.core.undo import CallbackStep

    stack = UndoStack()
    log = []
    with stack.group("model run", automatic=True):
        stack.push(CallbackStep("add", lambda: log.append("u1"), lambda: log.append("r1")))
        stack.push(CallbackStep("merge", lambda: log.append("u2"), lambda: log.append("r2")))
    assert stack.last_step.automatic and stack.last_step.name == "model run"
    stack.push(CallbackStep("rename label", lambda: None, lambda: None))
    assert not stack.last_step.automatic
    stack.undo()
    assert stack.last_step.name == "rename label"
    stack.undo()
    assert stack.last_step.automatic and log == ["u2", "u1"]
    stack.redo()
    assert stack.last_step.automatic and log == ["u2", "u1", "r1", "r2"]
    with stack.group("one step", automatic=True):
        stack.push(CallbackStep("only", lambda: None, lambda: None))
    assert stack.last_step.automatic and stack.last_step.name == "one step"
    stack.clear()
    assert stack.last_step is None


def test_a_model_result_is_an_automatic_step_and_a_label_edit_is_not():
    doc = Document()
    doc.set_image(ImageVolume(np.zeros((1, 8, 8), np.uint8)))
    doc.add_result(object(), name="Run seg")
    assert doc.undo.last_step.automatic and doc.undo.undo_name == "Run seg"
    with doc.labels.edit("Brush") as e:
        e.assign((slice(0, 1), slice(0, 2), slice(0, 2)), 1)
    assert not doc.undo.last_step.automatic
