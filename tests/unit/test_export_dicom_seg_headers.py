"""DICOM SEG builds from the headers the reader kept (issue 10): no second parse of the source files."""
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.core import Document
from workbench.export.dicom_seg import read_dicom_seg_labels, write_dicom_seg
from workbench.io import read_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
import io_fixtures as fixtures


def test_seg_export_needs_no_source_file_after_the_read(tmp_path, monkeypatch):
    pytest.importorskip("highdicom")
    import pydicom

    fixtures.write_dicom_series(tmp_path / "ct", n=3, rows=16, cols=12)
    image = read_image(tmp_path / "ct")
    assert len(image.metadata["dicom_headers"]) == 3
    kept = [set(ds.keys()) for ds in image.metadata["dicom_headers"]]
    shutil.rmtree(tmp_path / "ct")  # the files are gone: only the kept headers can serve
    reads = []
    real = pydicom.dcmread
    monkeypatch.setattr(pydicom, "dcmread", lambda *a, **k: reads.append(a) or real(*a, **k))
    doc = Document(image)
    with doc.labels.edit("b") as e:
        e.paint((slice(0, 2), slice(2, 8), slice(3, 9)), np.ones((2, 6, 6), bool), 4)
    out = write_dicom_seg(tmp_path / "seg.dcm", doc.labels.data, image, names={4: "liver"})
    assert reads == []  # nothing parsed again
    numbers, names = read_dicom_seg_labels(out, image)
    assert names == {1: "liver"} and np.array_equal(numbers, (doc.labels.data == 4).astype(numbers.dtype))
    assert [set(ds.keys()) for ds in image.metadata["dicom_headers"]] == kept  # the kept headers untouched
