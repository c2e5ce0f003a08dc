"""The "Trust code" box of the Models dock (issue 21): warning first, then the same content-hash record as
`workbench models trust`; a changed plugin shows as untrusted again; a trusted decoder runs from the dock."""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from workbench.inference.results import DetectionResult
from workbench.inference.session import clear_session_cache

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "anchor-free-detector"


@pytest.fixture
def example_root(tmp_path, monkeypatch):
    root = tmp_path / "plugins"
    dest = root / "anchor-free"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("model.onnx", "sample.png", "__pycache__"))
    spec = importlib.util.spec_from_file_location("afd_build_gui", dest / "build_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(dest)
    monkeypatch.setenv("WORKBENCH_PLUGINS_DIR", str(root))
    clear_session_cache()
    yield dest
    from workbench.gui.qt import QtCore

    QtCore.QThreadPool.globalInstance().waitForDone(30_000)
    clear_session_cache()


def test_trust_box_warns_records_and_revokes(window, example_root, qtbot, load, monkeypatch, tmp_path):
    from workbench.gui.panels.models import trust_box

    measurements = window.docks.get("MeasurementsDock")
    if measurements is not None:
        measurements.close()
    panel = window.docks["ModelsDock"].panel
    panel.reload()
    card = panel.cards["anchor-free-example"]
    box = card.trust_check
    assert box.isVisible() and not box.isChecked() and box.text() == "Trust code"
    assert "runs only after you trust it" in box.toolTip()
    warning = trust_box.warning_text(card.spec)
    assert "decoder.py" in warning and "your</b> rights" in warning and "withdraws the trust" in warning
    grab = card.grab()
    assert grab.save(str(tmp_path / "card.png"))

    asked = []
    monkeypatch.setattr(trust_box, "confirm_trust", lambda parent, spec: asked.append(spec.id) or False)
    box.click()  # declined: nothing recorded
    assert asked == ["anchor-free-example"] and not box.isChecked() and window.settings.trusted_code == []
    monkeypatch.setattr(trust_box, "confirm_trust", lambda parent, spec: True)
    box.click()
    assert box.isChecked() and box.state == "trusted"
    assert window.settings.trusted_code[0].id == "anchor-free-example"

    # the trusted decoder runs from the dock
    load(window, qtbot, example_root / "sample.png")
    panel.select_plugin("anchor-free-example")
    panel.run_selected("image")
    qtbot.waitUntil(lambda: len(window.document.results) == 1, timeout=60_000)
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=60_000)
    result = window.document.results[0]
    assert isinstance(result, DetectionResult) and [d.label for d in result.detections] == ["small", "large"]

    # edited code: shown as changed, unchecked
    decoder = example_root / "decoder.py"
    decoder.write_text(decoder.read_text() + "\n# edited\n")
    panel.reload()
    box = panel.cards["anchor-free-example"].trust_check
    assert not box.isChecked() and box.text() == "Trust code (changed)" and box.state == "changed"
    # plugins without a decoder get no box
    assert all(getattr(c, "trust_check", None) is None for k, c in panel.cards.items() if k != "anchor-free-example")
    box.click()  # trust the new content, then withdraw
    assert box.state == "trusted"
    box.click()
    assert box.state == "untrusted" and window.settings.trusted_code == []
