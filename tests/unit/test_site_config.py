"""The site configuration of clinic IT (workbench/core/site.py, docs/INSTALL.md), driven through the CLI.

Each test writes a site.toml into a temporary folder, points ``WORKBENCH_SITE_FILE`` at it (tests/conftest.py
sets it empty otherwise) and runs the commands a user would; clinic mode must stop every way of adding a
plugin, a broken or misspelt site file must stop the app with one line, and the defaults must apply.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from workbench.cli import main
from workbench.core.errors import ExportError, WorkbenchError
from workbench.core.settings import Settings, load_settings, settings_path
from workbench.core.site import site_policy

REPO = Path(__file__).resolve().parents[2]


def _site(tmp_path: Path, monkeypatch, text: str) -> Path:
    path = tmp_path / "etc" / "site.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("WORKBENCH_SITE_FILE", str(path))
    return path


def _plugin_copy(src_id: str, root: Path, new_id: str) -> Path:
    """A copy of a bundled plugin under ``root`` with another id (a plugin someone added)."""
    folder = root / new_id
    shutil.copytree(REPO / "plugins" / src_id, folder)
    manifest = yaml.safe_load((folder / "plugin.yaml").read_text())
    manifest["id"] = new_id
    (folder / "plugin.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return folder


def _listed(capsys) -> dict[str, str]:
    assert main(["models", "list", "--json"]) == 0
    return {p["id"]: p["source"] for p in json.loads(capsys.readouterr().out)["plugins"]}


def test_no_site_file_changes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORKBENCH_SITE_FILE", str(tmp_path / "missing.toml"))
    assert site_policy().clinic_mode is False and site_policy().path is None
    assert load_settings().provider == "auto"
    assert main(["doctor"]) in (0, 1)
    assert f"site configuration   : none ({tmp_path / 'missing.toml'} not found)" in capsys.readouterr().out


@pytest.mark.parametrize("text, expected", [
    ("clinic_mod = true\n", "clinic_mod: unknown key"),
    ("clinic_mode = yes\n", "invalid site configuration (TOML:"),
    ("default_provider = 'gpu'\n", "default_provider: String should match pattern"),
    ("deidentify = 'never'\n", "deidentify: Input should be 'always' or 'default'"),
])
def test_broken_site_file_stops_every_command_with_one_line(tmp_path, monkeypatch, capsys, text, expected):
    path = _site(tmp_path, monkeypatch, text)
    assert main(["models", "list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert expected in err and str(path) in err


def test_clinic_mode_searches_only_bundled_and_site_folders(tmp_path, monkeypatch, capsys):
    # a plugin in the user's folder and one in a settings plugin_dirs folder: found without clinic mode
    user_root = Path(settings_path()).parent / "plugins"
    _plugin_copy("quality", user_root, "user-quality")
    own = tmp_path / "own"
    _plugin_copy("quality", own, "own-quality")
    settings_path().write_text(json.dumps({"plugin_dirs": [str(own)]}))
    site_dir = tmp_path / "site-plugins"
    _plugin_copy("quality", site_dir, "site-quality")
    _site(tmp_path, monkeypatch, f"plugin_dirs = [{json.dumps(str(site_dir))}]\n")
    found = _listed(capsys)
    assert found["user-quality"] == "user" and found["own-quality"] == "settings"
    assert found["site-quality"] == "site" and found["quality"] == "bundled"

    _site(tmp_path, monkeypatch, f"clinic_mode = true\nplugin_dirs = [{json.dumps(str(site_dir))}]\n")
    found = _listed(capsys)
    assert "user-quality" not in found and "own-quality" not in found
    assert found["site-quality"] == "site" and found["quality"] == "bundled"
    # a plugin given by path outside the searched folders is refused; one inside them runs
    assert main(["models", "check", str(own / "own-quality")]) == 2
    err = capsys.readouterr().err
    assert "disabled in clinic mode" in err and err.count("\n") == 1
    assert main(["models", "check", str(site_dir / "site-quality")]) == 0


def test_clinic_mode_refuses_import_and_trust(tmp_path, monkeypatch, capsys):
    _site(tmp_path, monkeypatch, "clinic_mode = true\n")
    onnx_file = REPO / "plugins" / "quality" / "model.onnx"
    assert main(["models", "import", str(onnx_file), "-o", str(tmp_path / "imported")]) == 2
    assert "importing a model is disabled in clinic mode" in capsys.readouterr().err
    assert not (tmp_path / "imported").exists()
    assert main(["models", "trust", "quality"]) == 2
    assert "trusting plugin code is disabled in clinic mode" in capsys.readouterr().err
    assert main(["models", "untrust", "quality"]) == 2
    assert "changing plugin trust is disabled in clinic mode" in capsys.readouterr().err


def test_clinic_mode_trust_comes_from_the_site_file_only(tmp_path, monkeypatch):
    from workbench.inference.registry import find_plugin
    from workbench.inference.trust import content_hash, is_trusted, trust_plugin

    spec = find_plugin("quality", Settings())
    settings = Settings()
    trust_plugin(spec, settings, save=False)  # the user's own record
    assert is_trusted(spec, settings)
    _site(tmp_path, monkeypatch, "clinic_mode = true\n")
    assert not is_trusted(spec, settings)  # the user's records do not count in clinic mode
    _site(tmp_path, monkeypatch, f"clinic_mode = true\ntrusted_code = ['{content_hash(spec).sha256}']\n")
    assert is_trusted(spec, Settings())


def test_default_provider_replaces_auto_but_not_a_choice(tmp_path, monkeypatch):
    from workbench.io.settings_file import save_settings

    _site(tmp_path, monkeypatch, "default_provider = 'cpu'\n")
    settings = load_settings()
    assert settings.provider == "cpu"
    save_settings(settings)  # the site's value is not pinned into the user's file
    assert json.loads(settings_path().read_text())["provider"] == "auto"
    settings_path().write_text(json.dumps({"provider": "cuda"}))
    assert load_settings().provider == "cuda"


def test_predict_without_o_writes_into_the_site_export_folder(tmp_path, monkeypatch, capsys):
    image = REPO / "assets" / "samples" / "mri_t1_noisy.png"
    assert main(["predict", "-m", "quality", str(image)]) == 2
    assert "-o DIR is required (the site configuration sets no export_folder)" in capsys.readouterr().err
    exports = tmp_path / "exports"
    _site(tmp_path, monkeypatch, f"export_folder = {json.dumps(str(exports))}\n")
    assert main(["predict", "-m", "quality", str(image)]) == 0
    (run,) = exports.iterdir()
    assert run.name.startswith("predict-") and (run / "mri_t1_noisy.json").is_file()


def test_deidentify_always_refuses_keeping_the_identity(tmp_path, monkeypatch):
    from workbench.core.image import ImageVolume
    from workbench.export.dicom_seg import write_dicom_seg

    image = ImageVolume(np.zeros((1, 8, 8), np.uint8))
    labels = np.ones((1, 8, 8), np.uint8)
    path = _site(tmp_path, monkeypatch, "deidentify = 'always'\n")
    with pytest.raises(ExportError, match='deidentify = "always"') as info:
        write_dicom_seg(tmp_path / "seg.dcm", labels, image, keep_identity=True)
    assert str(path) in str(info.value)
    assert not (tmp_path / "seg.dcm").exists()
    # the default policy goes on to the DICOM checks (this image has no DICOM source)
    _site(tmp_path, monkeypatch, "deidentify = 'default'\n")
    with pytest.raises(WorkbenchError) as info:
        write_dicom_seg(tmp_path / "seg.dcm", labels, image, keep_identity=True)
    assert "DICOM SEG needs an image read from DICOM" in str(info.value)


def test_doctor_shows_the_site_file(tmp_path, monkeypatch, capsys):
    path = _site(tmp_path, monkeypatch, "clinic_mode = true\ndeidentify = 'always'\n")
    assert main(["doctor"]) in (0, 1)
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("site configuration"))
    assert line == f"site configuration   : {path}: clinic_mode = True, deidentify = 'always'"
