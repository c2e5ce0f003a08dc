"""The restored image as a derived DICOM series (workbench/export/dicom_derived.py): values through the
source's rescale, geometry (also super-resolved), references to the source instances."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest
from orthanc_server import make_series

from workbench.core.errors import ExportError
from workbench.core.image import ImageVolume
from workbench.export.dicom_derived import SOURCE_IMAGE_PURPOSE, derived_datasets, write_derived_series
from workbench.io import read_image


@pytest.fixture
def ct(tmp_path):
    series = make_series(tmp_path / "ct", patient_id="P1", patient_name="Doe^Jane", modality="CT", n=4, size=8)
    return series, read_image(series.files[0].parent)


def test_derived_series_reads_back_with_the_restored_values_and_references(ct, tmp_path):
    series, image = ct
    restored = ImageVolume(image.data[1:3].astype(np.float32) * 0.5 - 100.25, spacing=image.spacing)
    files = write_derived_series(tmp_path / "out", restored, image, slices=[1, 2], algorithm="Denoiser 1.0",
                                 description="Restored: Denoiser")
    assert [f.name for f in files] == ["derived_0001.dcm", "derived_0002.dcm"]
    back = read_image(tmp_path / "out")
    assert back.shape[:3] == (2, 8, 8)
    np.testing.assert_allclose(back.data, np.rint(restored.data), atol=0.5)  # HU, rounded to stored integers
    sources = [pydicom.dcmread(f) for f in series.files]
    uids = set()
    for k, path in enumerate(files):
        ds, src = pydicom.dcmread(path), sources[k + 1]
        assert ds.SOPClassUID == src.SOPClassUID and ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.SOPInstanceUID != src.SOPInstanceUID and ds.SeriesInstanceUID != src.SeriesInstanceUID
        uids.add(ds.SeriesInstanceUID)
        for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "FrameOfReferenceUID",
                        "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            assert ds[keyword].value == src[keyword].value, keyword
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY"] and "Denoiser 1.0" in ds.DerivationDescription
        ref = ds.SourceImageSequence[0]
        assert (ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID) == (src.SOPClassUID, src.SOPInstanceUID)
        code = ref.PurposeOfReferenceCodeSequence[0]
        assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == SOURCE_IMAGE_PURPOSE
        assert ds.SeriesDescription == "Restored: Denoiser" and ds.SeriesNumber == src.SeriesNumber + 1000
    assert len(uids) == 1


def test_building_a_derived_series_leaves_the_source_headers_untouched(ct):
    """Building the datasets twice (a cancelled send, then the real one) must reference the source
    instances both times: the export's new UIDs never leak into the document's headers."""
    _series, image = ct
    headers = image.metadata["dicom_headers"]
    before = [(h.SOPInstanceUID, h.SeriesInstanceUID, h.get("SeriesDescription")) for h in headers]
    restored = ImageVolume(image.data.astype(np.float32), spacing=image.spacing)
    first = derived_datasets(restored, image)
    second = derived_datasets(restored, image)
    assert [(h.SOPInstanceUID, h.SeriesInstanceUID, h.get("SeriesDescription")) for h in headers] == before
    for ds in (*first, *second):
        assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID in {uid for uid, _s, _t in before}


def test_super_resolution_halves_the_spacing_and_moves_the_first_pixel(ct):
    _series, image = ct
    restored = ImageVolume(np.zeros((4, 16, 16), np.float32), spacing=(1.0, 0.5, 0.5))
    datasets = derived_datasets(restored, image, scale=2)
    assert (datasets[0].Rows, datasets[0].Columns) == (16, 16)
    assert [float(v) for v in datasets[0].PixelSpacing] == [0.5, 0.5]
    # source pixel (0, 0) is centred at (0, 0, z) with 1 mm pixels: the new 0.5 mm pixel sits 0.25 mm up-left
    assert [float(v) for v in datasets[2].ImagePositionPatient] == [-0.25, -0.25, 2.0]
    # values below the stored range are clipped, not wrapped (CT: int16 with intercept -1024)
    clipped = derived_datasets(ImageVolume(np.full((4, 8, 8), -1e6, np.float32)), image)[0]
    assert int(np.frombuffer(clipped.PixelData, np.int16).min()) == -32768


def test_derived_series_needs_a_dicom_series(tmp_path):
    plain = ImageVolume(np.zeros((2, 4, 4), np.float32))
    with pytest.raises(ExportError, match="read from DICOM"):
        derived_datasets(plain, plain)
