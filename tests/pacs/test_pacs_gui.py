"""The PACS dialogs driven with qtbot against the test Orthanc: node form + Test, search, retrieve with
progress into the study cache, open on double click, Send to PACS (SEG + encapsulated PDF)."""
from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("pytestqt")


@pytest.fixture
def window(qtbot, pacs_env):
    from workbench.gui.main_window import MainWindow

    win = MainWindow(restore_layout=False, persist=False)
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.cancel_load()
    qtbot.waitUntil(lambda: not win.is_loading, timeout=10_000)


def test_node_form_test_and_save(qtbot, orthanc, pacs_env):
    from workbench.core.settings import load_settings
    from workbench.gui.pacs_nodes import PacsNodesDialog

    dialog = PacsNodesDialog()
    qtbot.addWidget(dialog)
    assert [n.name for n in dialog.nodes] == ["test", "web"]  # from the site file
    assert not dialog.save_button.isEnabled()  # site nodes are read-only here
    dialog.new_node()
    dialog.name.setText("mine")
    dialog.ae_title.setText("ORTHANC")
    dialog.host.setText("127.0.0.1")
    dialog.port.setValue(orthanc.dicom_port)
    dialog.test_button.click()
    qtbot.waitUntil(lambda: dialog.job is None, timeout=10_000)
    assert "connection OK" in dialog.status.text()
    dialog.ae_title.setText("WRONGAET")
    dialog.test_button.click()
    qtbot.waitUntil(lambda: dialog.job is None, timeout=10_000)
    assert "association rejected" in dialog.status.text()
    dialog.ae_title.setText("ORTHANC")
    dialog.save_button.click()
    assert [raw["name"] for raw in load_settings().pacs_nodes] == ["mine"]
    assert "mine" in [n.name for n in dialog.nodes]


def test_search_retrieve_and_open(qtbot, window, orthanc, tmp_path):
    dialog = window.pacs_dialog()
    qtbot.addWidget(dialog)
    assert dialog.node.currentData() == "test"
    dialog.patient_id.setText("PAT1")
    dialog.search_button.click()
    qtbot.waitUntil(lambda: dialog.job is None and bool(dialog.matches), timeout=10_000)
    assert [m["StudyInstanceUID"] for m in dialog.matches] == [orthanc.ct.study_uid]
    assert dialog.table.rowCount() == 1 and dialog.table.item(0, 0).text() == "Doe^Jane"
    dialog.grab().save(os.environ.get("WB_PACS_SCREENSHOT", str(tmp_path / "pacs_dialog.png")))
    # the CT series only (other tests may have sent a SEG / PDF into this study)
    dialog.level.setCurrentIndex(dialog.level.findData("series"))
    dialog.modality.setText("CT")
    dialog.search_button.click()
    qtbot.waitUntil(lambda: dialog.job is None and dialog.matches[0].get("SeriesInstanceUID") is not None,
                    timeout=10_000)
    assert [m["SeriesInstanceUID"] for m in dialog.matches] == [orthanc.ct.series_uid]

    progress = []
    dialog.progress.valueChanged.connect(progress.append)
    with qtbot.waitSignal(window.load_settled, timeout=20_000) as blocker:
        dialog.table.cellDoubleClicked.emit(0, 0)
    assert blocker.args == [True], window.last_error
    assert window.document.image.shape[:3] == (6, 16, 16)
    assert progress and max(progress) == 6
    cached = os.environ["WORKBENCH_PACS_CACHE_DIR"]
    assert str(dialog.last_path).startswith(cached)
    series = dialog.last_path
    assert series.name == orthanc.ct.series_uid and len(list(series.glob("*.dcm"))) == 6
    assert json.loads((series / ".series.json").read_text())["instances"] == 6


def test_send_to_pacs(qtbot, window, orthanc):
    from workbench.gui.pacs_send import SendToPacsDialog

    with qtbot.waitSignal(window.load_settled, timeout=20_000):
        window.open_path(orthanc.mr.files[0].parent)
    window.document.labels.data[:, 3:9, 3:9] = 1
    dialog = SendToPacsDialog(window)
    qtbot.addWidget(dialog)
    text = dialog.statement.text()
    assert "test (ORTHANC@127.0.0.1" in text and "identified" in text and "Nothing else" in text
    dialog.send_button.click()
    qtbot.waitUntil(lambda: dialog.job is None, timeout=20_000)
    assert dialog.sent == 2, dialog.status.text()
    found = orthanc.rest("/tools/find", data=json.dumps(
        {"Level": "Series", "Query": {"StudyInstanceUID": orthanc.mr.study_uid}}).encode(), method="POST")
    modalities = sorted(orthanc.rest(f"/series/{s}")["MainDicomTags"]["Modality"] for s in found)
    assert modalities == ["DOC", "MR", "SEG"]
