"""Issue 20: running the bundled brain-tissue model on a colour photograph from the Models dock shows the
Results dock's "outside what it was made for" badge with the reason in its tooltip; the bundled MRI sample
shows none. The run still happens (a result is added)."""
from __future__ import annotations

from pathlib import Path

import pytest
import skimage

from workbench.inference.session import clear_session_cache

ROOT = Path(__file__).resolve().parents[2]
ASTRONAUT = Path(skimage.__file__).parent / "data" / "astronaut.png"
SAMPLE = ROOT / "plugins" / "brain-tissue" / "sample.png"


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    clear_session_cache()
    monkeypatch.delenv("WORKBENCH_PLUGINS_DIR", raising=False)  # the bundled plugins of the repository
    yield
    from workbench.gui.qt import QtCore

    QtCore.QThreadPool.globalInstance().waitForDone(30_000)
    clear_session_cache()


def _run(window, qtbot, panel):
    n = len(window.document.results)
    panel.select_plugin("brain-tissue")
    panel.run_image_button.click()
    qtbot.waitUntil(lambda: len(window.document.results) == n + 1, timeout=60_000)
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=60_000)


def test_badge_on_a_photo_none_on_the_mri_sample(window, qtbot, load, tmp_path):
    models = window.docks["ModelsDock"].panel
    models.reload()
    results = window.docks["ResultsDock"].panel
    badge = results.ood_badge
    load(window, qtbot, ASTRONAUT)
    _run(window, qtbot, models)
    assert window.document.results[-1].info.warnings == ["3 channels (colour), made for 1 (grayscale)"]
    window.docks["ResultsDock"].raise_()
    qtbot.waitUntil(badge.isVisible, timeout=5_000)
    assert "brain-tissue" in badge.text()
    assert "3 channels (colour), made for 1 (grayscale)" in badge.toolTip()
    window.grab().save(str(tmp_path / "ood.png"))

    load(window, qtbot, SAMPLE)
    _run(window, qtbot, models)
    assert window.document.results[-1].info.warnings == []
    assert not badge.isVisible()
