"""End to end (issue 20): `workbench predict -m brain-tissue` on a colour photograph warns with one stderr
line and records it in the JSON, the report and the batch summary; the bundled MRI sample gives none."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import skimage

from workbench.cli import main

ROOT = Path(__file__).resolve().parents[2]
ASTRONAUT = Path(skimage.__file__).parent / "data" / "astronaut.png"
SAMPLE = ROOT / "plugins" / "brain-tissue" / "sample.png"


pytestmark = pytest.mark.usefixtures("fresh_session_cache")


def test_photo_warns_once_and_mri_sample_does_not(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", "-m", "brain-tissue", str(ASTRONAUT), "-o", str(out), "--no-overlay",
                 "--report"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "outside what" in line]
    assert lines == [f"workbench: warning: {ASTRONAUT}: outside what brain-tissue was made for: "
                     "3 channels (colour), made for 1 (grayscale)"], err
    data = json.loads((out / "astronaut.json").read_text())
    assert data["warnings"] == ["3 channels (colour), made for 1 (grayscale)"]
    assert data["segmentation"]  # the run still happened: a warning, not a refusal
    html = (out / "astronaut_report.html").read_text()
    assert "outside what brain-tissue was made for: 3 channels (colour)" in html

    out2 = tmp_path / "out2"
    assert main(["predict", "-m", "brain-tissue", str(SAMPLE), "-o", str(out2), "--no-overlay"]) == 0
    assert "outside what" not in capsys.readouterr().err
    assert json.loads((out2 / "sample.json").read_text())["warnings"] == []


def test_batch_summary_has_a_warnings_column(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "photo.png").write_bytes(ASTRONAUT.read_bytes())
    (folder / "mri.png").write_bytes(SAMPLE.read_bytes())
    assert main(["batch", "-m", "brain-tissue", str(folder), "-o", str(tmp_path / "out"), "--no-overlay"]) == 0
    rows = {r["image"]: r for r in csv.DictReader((tmp_path / "out" / "summary.csv").open())}
    assert rows["photo.png"]["warnings"] == "3 channels (colour), made for 1 (grayscale)"
    assert rows["mri.png"]["warnings"] == ""
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "outside what" in line] == [
        "workbench: warning: photo.png: outside what brain-tissue was made for: 3 channels (colour), made for 1 "
        "(grayscale)"], err
