"""The GUI honours the site configuration (workbench/core/site.py): clinic mode greys out the plugin
folders and refuses the model import; ``deidentify = "always"`` greys out keeping the identity; the export
dialogs start in the site's export folder."""
from __future__ import annotations

from pathlib import Path

from workbench.gui.qt import QtWidgets


def _site(tmp_path: Path, monkeypatch, text: str) -> None:
    path = tmp_path / "site.toml"
    path.write_text(text)
    monkeypatch.setenv("WORKBENCH_SITE_FILE", str(path))


def test_clinic_mode_in_the_settings_dialog_and_the_import(window, tmp_path, monkeypatch):
    from workbench.gui.import_model_dialog import open_import_dialog
    from workbench.gui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(window.settings, window)
    assert dialog.plugin_dirs.isEnabled()
    _site(tmp_path, monkeypatch, "clinic_mode = true\n")
    dialog = SettingsDialog(window.settings, window)
    add = next(b for b in dialog.findChildren(QtWidgets.QPushButton) if b.text() == "Add folder…")
    assert not dialog.plugin_dirs.isEnabled() and not add.isEnabled()
    assert "Clinic mode" in dialog.plugin_dirs.toolTip()
    model = Path(__file__).resolve().parents[2] / "plugins" / "quality" / "model.onnx"
    assert open_import_dialog(window, model) is None
    assert "disabled in clinic mode" in window.banner.label.text()


def test_deidentify_always_and_the_export_folder(qtbot, tmp_path, monkeypatch):
    from workbench.gui.main_window import MainWindow

    exports = tmp_path / "exports"
    exports.mkdir()
    _site(tmp_path, monkeypatch, f"deidentify = 'always'\nexport_folder = '{exports}'\n")
    win = MainWindow(restore_layout=False, persist=False)
    qtbot.addWidget(win)
    assert not win.session.keep_identity_action.isEnabled()
    assert win.session._default_dir() == exports
