"""The GUI binds to the document's rules (issue 10): a label rename is an undo step and an unsaved change
(quitting used to lose it silently), and undoing back to the saved state is saved again."""
from __future__ import annotations

from workbench.gui.panels.layers_panel import COL_NAME
from workbench.gui.qt import QtWidgets

Box = QtWidgets.QMessageBox.StandardButton


def test_rename_in_the_layers_dock_is_undoable_and_asks_before_quitting(window, qtbot, gradient_png, tmp_path,
                                                                        load, monkeypatch):
    load(window, qtbot, gradient_png)
    labels = window.document.labels
    labels.ensure_label(1, "first")
    with qtbot.waitSignal(window.session.job_settled, timeout=20_000):
        assert window.session.save_to(tmp_path / "s.wbsession")
    assert not window.session.dirty
    layers = window.docks["LayersDock"].panel
    layers.table.item(0, COL_NAME).setText("tumour")
    assert labels.labels[1].name == "tumour"
    assert window.session.dirty and window.session.hand_edited and window.isWindowModified()
    assert window.undo_action.text() == "&Undo Rename label 1"
    asked = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "question",
                        staticmethod(lambda *a, **k: asked.append(a[2]) or Box.Cancel))
    window.quit_action.trigger()
    assert len(asked) == 1 and window.isVisible()  # the rename is not lost silently
    window.undo()
    assert labels.labels[1].name == "first" and layers.table.item(0, COL_NAME).text() == "first"
    assert not window.session.dirty and not window.isWindowModified()  # back at the saved state
