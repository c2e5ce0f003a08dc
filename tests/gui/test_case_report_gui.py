"""File > Report… (issue 15 item 6) and File > Export annotation measurements… (item 2) driven as a user would:
a label and a ruler drawn by mouse, the view added to the report, the reader's findings typed in the dialog."""
from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_export_report import CT_SMALL, PHI, _parse, _visible_html, pdf_text
from test_ruler_gui import drag


@pytest.fixture
def ct(tmp_path):
    path = tmp_path / "CT_small.dcm"
    shutil.copy(CT_SMALL, path)
    return path


def test_case_report_from_the_dialog_holds_findings_measurements_and_the_key_image(window, qtbot, load, ct,
                                                                                    tmp_path):
    load(window, qtbot, ct)
    image = window.document.image
    with window.document.labels.edit("Brush") as e:
        mask = np.zeros((1, image.height, image.width), bool)
        mask[0, 30:60, 30:70] = True
        e.paint((slice(0, 1), slice(0, image.height), slice(0, image.width)), mask, 1)
    section = window.docks["MeasurementsDock"].panel.rulers
    section.tool_actions["ruler"].trigger()
    drag(window.canvas, (20.0, 100.0), (100.0, 100.0))
    [ruler] = section.store.rulers
    length = f"{ruler.length_mm(image.spacing):.1f} mm"

    actions = window.case_report
    from workbench.gui.shell import menus_by_title  # not QAction.menu(): its wrapper dies on PySide6 6.9

    view_menu = menus_by_title(window)["View"]
    assert actions.add_view_action in view_menu.actions() and actions.report_action in window.file_menu.actions()
    actions.add_view_action.trigger()
    [key] = actions.store.items
    h, w = key.rgb.shape[:2]
    assert abs(w / h - image.width / image.height) < 0.05  # the image area, not the whole view
    yellow = (key.rgb[..., 0] > 200) & (key.rgb[..., 1] > 180) & (key.rgb[..., 2] < 80)
    assert yellow.sum() > 20  # the ruler is in the picture

    dialog = actions.report_dialog()
    assert dialog.key_list.count() == 1 and not dialog.show_name_check.isChecked()
    dialog.reader_edit.setText("Dr. A. Reader")
    dialog.findings_edit.setPlainText("Hypodense lesion in the left lobe.\nNo lymph nodes.")
    dialog.folder_edit.setText(str(tmp_path / "report"))
    with qtbot.waitSignal(actions.settled, timeout=60_000) as blocker:
        dialog.accept()
    assert blocker.args == [True], window.last_error
    html_path, pdf_path = sorted(actions.last_files)
    assert html_path.name == "CT_small_case_report.html" and pdf_path.suffix == ".pdf"
    html_text = html_path.read_text(encoding="utf-8")
    assert len(_parse(html_text).images) == 1
    visible = _visible_html(html_text)
    for expected in ("Hypodense lesion in the left lobe.", "No lymph nodes.", "Dr. A. Reader", length, "Ruler",
                     "Key image 1", "label 1", "Mean (HU)"):
        assert expected in visible, expected
    text = pdf_text(pdf_path.read_bytes())
    for expected in ("Hypodense lesion in the left lobe.", "Dr. A. Reader", length, "Key image 1"):
        assert expected in text, expected
    for phi in PHI:
        assert phi not in visible and phi not in text, phi
    assert actions.reader == "Dr. A. Reader"  # offered again next time

    # the measurements as CSV and JSON through the File menu's path
    with qtbot.waitSignal(actions.settled, timeout=30_000):
        assert actions.export_annotations(tmp_path / "m.csv")
    rows = list(csv.DictReader((tmp_path / "m.csv").open(newline="")))
    assert [(r["type"], r["value"], r["unit"]) for r in rows] == [("ruler", f"{ruler.length_mm(image.spacing):.6g}",
                                                                   "mm")]
    assert (tmp_path / "m.csv.provenance.json").exists()
    with qtbot.waitSignal(actions.settled, timeout=30_000):
        assert actions.export_annotations(tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    assert doc["annotations"][0]["text"] == length and doc["intensity_unit"] == "HU"
