"""Issue 15 item 4: Help > Keyboard shortcuts (one generated table, also in the user guide) and Help > User guide
(the bundled guide, offline)."""
from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import tomllib

from workbench.gui.help.guide import GUIDE_DIR, referenced_images, shortcuts_section, stale_files
from workbench.gui.help.shortcuts import BEGIN, END, collect, conflicts, markdown_table, replace_section
from workbench.gui.qt import QtCore, QtGui, QtWidgets

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
FIX = "run `.venv/bin/python scripts/update_user_guide.py` and commit the result"


def test_the_table_covers_every_action_with_a_shortcut(window):
    rows = collect(window, native=False)
    listed = {(k, r.description) for r in rows for k in r.keys}
    keys = {k for k, _ in listed}
    actions = [a for a in window.findChildren(QtGui.QAction) if any(not s.isEmpty() for s in a.shortcuts())]
    assert len(actions) >= 25
    for action in actions:
        for seq in action.shortcuts():
            assert seq.toString() in keys, f"{action.text()!r}: {seq.toString()} is not in the shortcuts table"
    for shortcut in window.findChildren(QtGui.QShortcut):
        if shortcut.whatsThis():
            assert shortcut.key().toString() in keys
    # the tools of the registry are there with their names, and the menus' commands with theirs
    descriptions = " | ".join(r.description for r in rows)
    for text in ("Brush tool", "Eraser tool", "Polygon tool", "Grow tool", "AI click tool", "Undo", "Redo",
                 "Zoom to fit", "Open", "Save session", "Export mask", "Run model", "Overlay text",
                 "Keyboard shortcuts", "User guide"):
        assert text in descriptions, text
    assert ("Ctrl+Shift+Z", "Redo") in listed and ("Ctrl+Y", "Redo") in listed


def test_the_table_is_the_same_on_every_call_and_leaves_the_actions_alive(window):
    # PySide6 6.9 (the Debian 11 build): QAction.menu()'s temporary wrapper took the wrappers of the menu's
    # actions down with it; the first table then listed Ctrl+Alt+M twice (View > Layout and Window), the second
    # once, and the view area's own maximise action was dead (RuntimeError at its next use)
    first, second = collect(window, native=False), collect(window, native=False)
    assert first == second
    assert markdown_table(first) == markdown_table(second) == markdown_table(collect(window, native=False))
    # complete, each key in one row, and a menu's action under its menu (not again under "Window")
    keys = [k for row in first for k in row.keys]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    bound = {seq.toString() for a in window.findChildren(QtGui.QAction) for seq in a.shortcuts()
             if not seq.isEmpty()}
    assert bound <= set(keys)
    where = {k: row.group for row in first for k in row.keys}
    assert where["Ctrl+Alt+M"] == where["Ctrl+Alt+1"] == "View ▸ Layout"
    area = window.view_area
    assert area._maximise_action.shortcut().toString() == "Ctrl+Alt+M"
    assert [a.isCheckable() for a in area._actions.values()] == [True] * len(area._actions)


def test_no_key_is_bound_twice(window):
    # Qt fires neither action of an ambiguous shortcut: a new tool or menu entry must pick a free key
    assert conflicts(window) == {}


def test_user_guide_holds_the_current_table(window):
    text = (DOCS / "USER_GUIDE.md").read_text(encoding="utf-8")
    assert BEGIN in text and END in text
    assert replace_section(text, shortcuts_section(window)) == text, f"the shortcuts table is stale: {FIX}"


def test_bundled_guide_is_the_docs_guide_and_is_package_data():
    assert stale_files(DOCS) == [], f"workbench/gui/help/data differs from docs/: {FIX}"
    text = (GUIDE_DIR / "USER_GUIDE.md").read_text(encoding="utf-8")
    images = referenced_images(text)
    assert "images/window_1366x768.png" in images and "images/window_1920x1080.png" in images
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["workbench.gui.help"]
    for rel in ["USER_GUIDE.md", *images]:
        assert any(fnmatch(f"data/{rel}", p) for p in patterns), rel  # shipped in the wheel


def test_markdown_table_escapes_and_joins():
    from workbench.gui.help.shortcuts import ShortcutRow

    table = markdown_table([ShortcutRow(("Ctrl+Y", "Ctrl+Shift+Z"), "Redo | again", "Edit")])
    assert table.splitlines()[-1] == "| `Ctrl+Y` or `Ctrl+Shift+Z` | Redo \\| again | Edit |"


def _dialog(kind):
    dialogs = [w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, kind) and w.isVisible()]
    assert dialogs, kind
    return dialogs[-1]


def test_shortcuts_dialog_shows_the_table(window, qtbot):
    from workbench.gui.help.dialogs import ShortcutsDialog

    window.shortcuts_action.trigger()
    dialog = _dialog(ShortcutsDialog)
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == len(collect(window)) > 20
    keys = {dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())}
    assert "B" in keys
    dialog.filter.setText("brush")
    shown = [r for r in range(dialog.table.rowCount()) if not dialog.table.isRowHidden(r)]
    assert shown and all("brush" in dialog.table.item(r, 1).text().lower() for r in shown)
    dialog.close()


def test_user_guide_opens_offline_from_the_package(window, qtbot, monkeypatch):
    from workbench.gui.help.dialogs import UserGuideDialog

    # no browser, no network: the dialog must not reach for either
    monkeypatch.setattr(QtGui.QDesktopServices, "openUrl", staticmethod(lambda *a: (_ for _ in ()).throw(
        AssertionError("the guide tried to open a browser"))))
    assert window.user_guide_action.shortcut() == QtGui.QKeySequence(QtGui.QKeySequence.StandardKey.HelpContents)
    window.user_guide_action.trigger()
    dialog = _dialog(UserGuideDialog)
    qtbot.addWidget(dialog)
    browser = dialog.browser
    source = browser.source()
    assert source.isLocalFile() and Path(source.toLocalFile()) == GUIDE_DIR / "USER_GUIDE.md"
    text = browser.toPlainText()
    assert "Workbench user guide" in text and "Keyboard shortcuts" in text and "Overlay text" in text
    # the screenshots load from the package too
    image = browser.document().resource(QtGui.QTextDocument.ResourceType.ImageResource,
                                        QtCore.QUrl("images/window_1366x768.png"))
    assert isinstance(image, (QtGui.QImage, QtGui.QPixmap)) and image.width() == 1366
    # shown scaled to the dialog's width (no sideways scrolling to see a screenshot)
    assert 0 < max(dialog.image_widths()) <= browser.viewport().width()
    browser.anchorClicked.emit(QtCore.QUrl("https://example.org/elsewhere"))  # shows a tip, opens nothing
    dialog.close()
