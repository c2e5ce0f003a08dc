"""The PACS dialogs driven with qtbot against the test Orthanc: node form + Test, search, retrieve with
progress into the study cache, open on double click, Send to PACS (SEG + encapsulated PDF, a restored image as
a derived series, Cancel)."""
from __future__ import annotations

import json
import os

import pytest
from orthanc_server import free_port

pytest.importorskip("pytestqt")
from workbench.gui.qt import QtCore

Qt = QtCore.Qt


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
    assert "association rejected by the PACS (permanent): called AE title not recognised" in dialog.status.text()
    assert "'WRONGAET'" in dialog.status.text()
    dialog.ae_title.setText("ORTHANC")
    dialog.port.setValue(free_port())  # nothing listens there: one line after the retries
    dialog.test_button.click()
    qtbot.waitUntil(lambda: dialog.job is None, timeout=10_000)
    assert "cannot connect (connection refused or host unreachable)" in dialog.status.text()
    assert "\n" not in dialog.status.text()
    dialog.port.setValue(orthanc.dicom_port)
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
    # its preview arrives in the first column (fetched in a worker, cached under the study cache)
    qtbot.waitUntil(lambda: dialog.thumbs.job is None and bool(dialog.thumbs.shown or dialog.thumbs.errors),
                    timeout=10_000)
    assert dialog.thumbs.shown == {0: True}, dialog.thumbs.errors
    pixmap = dialog.table.item(0, 0).data(Qt.ItemDataRole.DecorationRole)
    assert not pixmap.isNull() and max(pixmap.width(), pixmap.height()) <= 64
    assert dialog.table.horizontalHeaderItem(0).text() == "Preview"
    dialog.grab().save(os.environ.get("WB_PACS_SCREENSHOT_SERIES", str(tmp_path / "pacs_series.png")))

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


def test_send_restored_image_as_a_derived_series(qtbot, window, orthanc, tmp_path):
    """Open the MR series, run a restoration model, send the result: a new series in the same study on
    Orthanc whose instances reference the source instances slice by slice; Cancel stops a send."""
    import onnx_factory as F
    import pydicom

    from workbench.gui.pacs_send import SendToPacsDialog
    from workbench.inference.run import predict

    manifest = {"id": "halve", "name": "Halver", "task": "restoration",
                "input": {"color": "gray", "resize": "none", "intensity": {"scale": 1 / 4096}},
                "output": {"range": [0, 1]}}
    F.write_plugin(tmp_path / "halve", F.affine(["N", 1, "H", "W"], 0.5, 0.0), manifest)
    with qtbot.waitSignal(window.load_settled, timeout=20_000):
        window.open_path(orthanc.mr.files[0].parent)
    result = predict(tmp_path / "halve", window.document.image)
    window.document.add_result(result)

    dialog = SendToPacsDialog(window)
    qtbot.addWidget(dialog)
    assert dialog.restored.isEnabled() and dialog.restored.isChecked() and "Halver" in dialog.restored.text()
    assert not dialog.seg.isEnabled()  # nothing drawn: no SEG to offer
    assert "derived DICOM series" in dialog.statement.text()
    dialog.report.setChecked(False)
    dialog.send_button.click()
    dialog.cancel()  # before the first instance leaves
    qtbot.waitUntil(lambda: dialog.job is None, timeout=20_000)
    assert "cancelled" in dialog.status.text() and "\n" not in dialog.status.text()
    assert dialog.sent == 0

    dialog.send_button.click()
    qtbot.waitUntil(lambda: dialog.job is None, timeout=20_000)
    assert dialog.sent == 4, dialog.status.text()
    found = orthanc.rest("/tools/find", data=json.dumps(
        {"Level": "Series", "Query": {"StudyInstanceUID": orthanc.mr.study_uid}}).encode(), method="POST")
    tags = {s: orthanc.rest(f"/series/{s}")["MainDicomTags"] for s in found}
    derived = [s for s, t in tags.items() if t["Modality"] == "MR" and t["SeriesInstanceUID"] != orthanc.mr.series_uid]
    assert len(derived) == 1
    sources = {pydicom.dcmread(f).SOPInstanceUID: pydicom.dcmread(f) for f in orthanc.mr.files}
    instances = orthanc.rest(f"/series/{derived[0]}")["Instances"]
    assert len(instances) == 4
    for instance in instances:
        ds = pydicom.dcmread(__import__("io").BytesIO(orthanc.rest(f"/instances/{instance}/file")))
        src = sources[ds.SourceImageSequence[0].ReferencedSOPInstanceUID]
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY"] and "Halver" in ds.DerivationDescription
        assert ds.ImagePositionPatient == src.ImagePositionPatient and ds.PatientID == src.PatientID
        assert ds.SeriesNumber == src.SeriesNumber + 1000
        assert abs(ds.pixel_array.astype(float) - src.pixel_array / 2).max() <= 1.0  # halved
