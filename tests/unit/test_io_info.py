"""``workbench info`` through the real CLI entry point."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from workbench.cli import main
from workbench.io import write_png

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from io_fixtures import PYDICOM_FILES, write_dicom_series


def test_info_json_ct_small_in_hu(capsys):
    path = PYDICOM_FILES / "CT_small.dcm"
    assert main(["info", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ds = pydicom.dcmread(path)
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert out["shape"] == [1, 128, 128]
    assert out["dtype"] == "float32"
    assert out["modality"] == "CT" and out["units"] == "HU"
    assert (out["min"], out["max"]) == (hu.min(), hu.max())
    assert out["spacing"][1:] == pytest.approx([float(v) for v in ds.PixelSpacing])
    assert out["spacing_known"] is True
    assert out["window"] is None and len(out["default_window"]) == 2
    assert out["format"] == "DICOM"


def test_info_text_png(tmp_path, capsys):
    write_png(tmp_path / "a.png", np.full((3, 5), 9, np.uint16))
    assert main(["info", str(tmp_path / "a.png")]) == 0
    text = capsys.readouterr().out
    assert "shape:     1 x 3 x 5" in text and "dtype:     uint16" in text and "[unknown]" in text
    assert "range:     9 .. 9" in text


def test_info_folder_reports_series(tmp_path, capsys):
    write_dicom_series(tmp_path / "d" / "a", n=4, series_uid="1.2.3.1", window=(50.0, 350.0))
    write_dicom_series(tmp_path / "d" / "b", n=2, series_uid="1.2.3.2")
    assert main(["info", str(tmp_path / "d"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["series_count"] == 2 and out["series_uid"] == "1.2.3.1"
    assert out["shape"] == [4, 16, 12] and out["window"] == [50.0, 350.0]
    assert [s["n_files"] for s in out["series"]] == [4, 2]
    assert main(["info", str(tmp_path / "d"), "--series", "1.2.3.2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["shape"][0] == 2


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n broken", b"random bytes" * 50])
def test_info_bad_file_exits_2_with_one_line(tmp_path, capsys, content):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    assert main(["info", str(path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("workbench: error: ") and "bad.png" in lines[0]
    assert captured.out == ""


def test_info_rtplan_clear_error(capsys):
    assert main(["info", str(PYDICOM_FILES / "rtplan.dcm"), "--json"]) == 2
    assert "without pixel data" in capsys.readouterr().err
