"""The AI click tool (A) driven with the mouse and keys: include, exclude (right click, Shift), box, accept
into the current label (one undo step, manual labels kept unless asked), discard."""
from __future__ import annotations

import numpy as np
import promptable_factory as P
import pytest
from PySide6.QtTest import QTest

from workbench.gui.qt import Qt, QtCore
from workbench.inference.spec import load_plugin
from workbench.io import write_png

LEFT, RIGHT = Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton
NOMOD, SHIFT = Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.ShiftModifier


def widget_pos(canvas, x: float, y: float) -> QtCore.QPoint:
    return canvas.view.mapFromScene(canvas.view.vb.mapViewToScene(QtCore.QPointF(x, y)))


def click(canvas, col, row, button=LEFT, mod=NOMOD) -> None:
    QTest.mouseClick(canvas.view.viewport(), button, mod, widget_pos(canvas, col + 0.5, row + 0.5))


def disk(x, y, r=6, hw=(64, 64)):
    yy, xx = np.mgrid[0:hw[0], 0:hw[1]]
    return (yy - y) ** 2 + (xx - x) ** 2 <= r * r


@pytest.fixture
def ai(window, qtbot, load, tmp_path):
    """A 64 x 64 image and the tiny disk model (radius 6) whose crop always covers the image: its masks are
    the include disks minus the exclude disks, exactly."""
    path = tmp_path / "img.png"
    write_png(path, np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    load(window, qtbot, path)
    window.canvas.zoom_to_fit()
    panel = window.docks["ToolsDock"].panel
    panel.ai_section.use_plugin(load_plugin(P.channels_plugin(tmp_path / "tiny", size=64, encoding="disk",
                                                              radius=6.0, context=4.0)))
    panel.actions["ai"].trigger()  # shortcut A
    assert window.canvas.tool is panel.ai_click.tool
    return panel


def settle(qtbot, ctl):
    qtbot.waitUntil(lambda: not ctl.is_busy and ctl.has_preview, timeout=20_000)


def preview(ctl):
    return ctl.preview.buffer != 0


def test_click_correct_accept_undo(window, qtbot, ai):
    ctl = ai.ai_click
    click(window.canvas, 20, 20)
    settle(qtbot, ctl)
    assert np.array_equal(preview(ctl), disk(20, 20))
    assert not window.document.labels.data.any()  # a preview never writes
    click(window.canvas, 40, 40)  # a second include click
    qtbot.waitUntil(lambda: not ctl.is_busy and len(ctl.prompt.clicks) == 2 and preview(ctl)[40, 40], timeout=20_000)
    click(window.canvas, 44, 40, RIGHT)  # right click excludes
    qtbot.waitUntil(lambda: not ctl.is_busy and not preview(ctl)[40, 44], timeout=20_000)
    click(window.canvas, 20, 16, LEFT, SHIFT)  # Shift + click excludes too
    qtbot.waitUntil(lambda: not ctl.is_busy and not preview(ctl)[16, 20], timeout=20_000)
    want = (disk(20, 20) | disk(40, 40)) & ~disk(44, 40) & ~disk(20, 16)
    assert np.array_equal(preview(ctl), want)
    assert [c.include for c in ctl.prompt.clicks] == [True, True, False, False]
    assert len(ctl.latencies_ms) == 4
    QTest.keyClick(window.canvas.view, Qt.Key.Key_Return)  # Enter accepts
    labels = window.document.labels.data[0]
    assert np.array_equal(labels == 1, want) and not preview(ctl).any()
    assert len(window.document.undo) == 1
    window.undo_action.trigger()
    assert not window.document.labels.data.any()


def test_manual_labels_are_kept_unless_asked(window, qtbot, ai):
    ctl = ai.ai_click
    with window.document.labels.edit("manual") as e:
        e.paint((slice(0, 1), slice(0, 64), slice(0, 20)), np.ones((1, 64, 20), bool), 2)
    click(window.canvas, 20, 30)
    settle(qtbot, ctl)
    assert ctl.accept()
    labels = window.document.labels.data[0]
    assert (labels[:, :20] == 2).all()  # the manual label 2 stays
    assert np.array_equal(labels == 1, disk(20, 30) & (np.arange(64) >= 20)[None, :])
    window.undo_action.trigger()
    ai.ai_section.overwrite_check.setChecked(True)  # asked: the Paint over rule applies
    ai.overwrite_combo.setCurrentIndex(ai.overwrite_combo.findData("any"))  # Paint over: any label
    click(window.canvas, 20, 30)
    settle(qtbot, ctl)
    assert ctl.accept()
    assert np.array_equal(window.document.labels.data[0] == 1, disk(20, 30))


def test_escape_discards(window, qtbot, ai):
    ctl = ai.ai_click
    click(window.canvas, 30, 30)
    settle(qtbot, ctl)
    QTest.keyClick(window.canvas.view, Qt.Key.Key_Escape)
    assert not ctl.has_preview and not preview(ctl).any() and not ctl.prompt.clicks
    assert not window.document.labels.data.any() and len(window.document.undo) == 0
    assert window.canvas.tool is ai.ai_click.tool  # a second Esc goes back to navigation
    QTest.keyClick(window.canvas.view, Qt.Key.Key_Escape)
    assert window.canvas.tool is not ai.ai_click.tool


def test_drag_gives_a_box_prompt(window, qtbot, ai, tmp_path):
    ctl = ai.ai_click
    ai.ai_section.use_plugin(load_plugin(P.encoder_decoder_plugin(tmp_path / "sam", size=64, radius=5.0)))
    view = window.canvas.view.viewport()
    QTest.mousePress(view, LEFT, NOMOD, widget_pos(window.canvas, 10.5, 12.5))
    QTest.mouseMove(view, widget_pos(window.canvas, 20.5, 20.5))
    QTest.mouseMove(view, widget_pos(window.canvas, 30.5, 25.5))
    QTest.mouseRelease(view, LEFT, NOMOD, widget_pos(window.canvas, 30.5, 25.5))
    settle(qtbot, ctl)
    assert ctl.prompt.box == (10, 12, 30, 25) and not ctl.prompt.clicks
    m = preview(ctl)
    assert m[12, 10] and not m[25, 30]  # the tiny decoder's cone sits on the box's first corner
    click(window.canvas, 40, 40)  # a second click on the same slice: the embedding is cached
    qtbot.waitUntil(lambda: not ctl.is_busy and len(ctl.prompt.clicks) == 1 and ctl.result.cached, timeout=20_000)


def test_propagate_through_slices_until_the_object_vanishes(window, qtbot, load, tmp_path):
    """A bright disk on slices 1..4 of a 6-slice stack; one click on slice 2, accept, Propagate: the label
    covers the disk on slices 1..4 only (the gated tiny model follows the bright pixels), one undo step."""
    stack = np.full((6, 48, 48), 10, np.uint8)
    yy, xx = np.mgrid[0:48, 0:48]
    for z in range(1, 5):
        stack[z][(yy - 24) ** 2 + (xx - 20 - z) ** 2 <= 64] = 250
    np.save(tmp_path / "stack.npy", stack)
    load(window, qtbot, tmp_path / "stack.npy")
    window.canvas.zoom_to_fit()
    panel = window.docks["ToolsDock"].panel
    panel.ai_section.use_plugin(load_plugin(P.channels_plugin(tmp_path / "gated", size=48, encoding="disk",
                                                              radius=12.0, context=4.0, gated=True)))
    panel.actions["ai"].trigger()
    window.view_state.set_slice(2)
    ctl = panel.ai_click
    click(window.canvas, 22, 24)
    settle(qtbot, ctl)
    panel.ai_section.propagate_button.click()  # accepts the preview, then propagates
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=20_000)
    labels = window.document.labels.data
    assert np.array_equal(labels == 1, stack > 128), panel.last_message
    assert "4 more slice" not in panel.last_message and "3 more slice(s) (1..4)" in panel.last_message
    assert len(window.document.undo) == 2  # the accept, then the propagation
    window.undo_action.trigger()
    assert np.array_equal(labels == 1, (stack > 128) & (np.arange(6) == 2)[:, None, None])


def test_changing_slice_discards_the_preview(window, qtbot, load, stack_npy, tmp_path):
    load(window, qtbot, stack_npy)
    window.canvas.zoom_to_fit()
    panel = window.docks["ToolsDock"].panel
    panel.ai_section.use_plugin(load_plugin(P.channels_plugin(tmp_path / "tiny", size=64, encoding="disk")))
    panel.actions["ai"].trigger()
    ctl = panel.ai_click
    click(window.canvas, 20, 20)
    settle(qtbot, ctl)
    assert ctl.result.index == window.view_state.slice_index == 3  # a stack opens on its middle slice
    window.view_state.set_slice(1)
    assert not ctl.has_preview and not preview(ctl).any()


def test_run_on_a_promptable_card_hands_it_to_the_ai_click_tool(window, qtbot, ai, tmp_path):
    spec = load_plugin(P.encoder_decoder_plugin(tmp_path / "sam2", size=64))
    window.docks["ModelsDock"].panel.run_plugin(spec)
    assert window.canvas.tool is ai.ai_click.tool and ai.ai_click.spec is spec


def test_neighbouring_embeddings_are_precomputed(window, qtbot, load, stack_npy, tmp_path):
    load(window, qtbot, stack_npy)
    panel = window.docks["ToolsDock"].panel
    panel.ai_section.use_plugin(load_plugin(P.encoder_decoder_plugin(tmp_path / "sam", size=64)))
    panel.actions["ai"].trigger()
    ctl = panel.ai_click
    window.canvas.zoom_to_fit()
    click(window.canvas, 20, 20)  # slice 3
    settle(qtbot, ctl)
    assert not ctl.result.cached
    qtbot.waitUntil(lambda: not ctl.prefetching, timeout=20_000)
    window.view_state.set_slice(4)
    click(window.canvas, 20, 20)
    settle(qtbot, ctl)
    assert ctl.result.index == 4 and ctl.result.cached  # computed while the user looked at slice 3
