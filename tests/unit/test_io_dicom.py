"""DICOM reader: pydicom's shipped files (opened by path) and synthetic series written with pydicom."""
from __future__ import annotations

import shutil
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pydicom
import pytest

from workbench.core.errors import CancelledError, ImageReadError
from workbench.io import list_dicom_series, read_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from io_fixtures import PYDICOM_FILES, write_dicom_series

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns on odd test files


def test_ct_small_hu_equals_pydicom():
    path = PYDICOM_FILES / "CT_small.dcm"
    vol = read_image(path)
    ds = pydicom.dcmread(path)
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert vol.shape == (1, 128, 128) and vol.data.dtype == np.float32
    assert vol.value_range() == (hu.min(), hu.max())
    np.testing.assert_array_equal(vol.data[0], hu.astype(np.float32))
    assert vol.modality == "CT" and vol.is_ct
    assert vol.spacing_known and vol.spacing[1:] == pytest.approx([float(v) for v in ds.PixelSpacing])
    meta = vol.metadata
    assert meta["StudyInstanceUID"] == ds.StudyInstanceUID
    assert meta["SeriesInstanceUID"] == ds.SeriesInstanceUID
    assert meta["sop_instance_uids"] == [ds.SOPInstanceUID]
    assert meta["FrameOfReferenceUID"] == ds.FrameOfReferenceUID
    assert meta["dicom"]["PatientName"] == str(ds.PatientName)
    assert "PixelData" not in meta["dicom_header"]  # header copy for exports, pixel-free
    assert vol.origin == pytest.approx(tuple(float(v) for v in ds.ImagePositionPatient)[::-1])


def test_mr_small_window_and_values():
    path = PYDICOM_FILES / "MR_small.dcm"
    vol = read_image(path)
    ds = pydicom.dcmread(path)
    assert vol.modality == "MR" and vol.data.dtype == ds.pixel_array.dtype  # no rescale: stored dtype
    np.testing.assert_array_equal(vol.data[0], ds.pixel_array)
    assert vol.window == (float(ds.WindowCenter), float(ds.WindowWidth))


@pytest.mark.parametrize("name", ["MR_small_bigendian.dcm", "MR_small_implicit.dcm", "MR_small_RLE.dcm",
                                  "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
                                  "MR_small_padded.dcm", "MR_small_expb.dcm"])
def test_mr_small_encodings_decode_identically(name):
    reference = read_image(PYDICOM_FILES / "MR_small.dcm").data
    np.testing.assert_array_equal(read_image(PYDICOM_FILES / name).data, reference)


def test_jpeg2000_compressed():
    vol = read_image(PYDICOM_FILES / "JPEG2000.dcm")
    ds = pydicom.dcmread(PYDICOM_FILES / "JPEG2000.dcm")
    assert vol.shape == (1, ds.Rows, ds.Columns)
    np.testing.assert_array_equal(vol.data[0], ds.pixel_array)


def test_colour_photometrics_become_rgb():
    rgb = read_image(PYDICOM_FILES / "SC_rgb_rle.dcm")
    ybr = read_image(PYDICOM_FILES / "SC_ybr_full_422_uncompressed.dcm")
    assert rgb.shape == (1, 100, 100, 3) and ybr.shape == (1, 100, 100, 3)
    # both show the same test pattern; YBR->RGB conversion is lossy by a few levels
    assert np.abs(rgb.data.astype(int) - ybr.data.astype(int)).max() <= 6
    assert rgb.data[0, 5, 5].tolist() == [255, 0, 0]  # red band first: RGB order, not BGR
    palette = read_image(PYDICOM_FILES / "examples_palette.dcm")
    assert palette.is_color


def test_multiframe_file():
    vol = read_image(PYDICOM_FILES / "rtdose.dcm")
    ds = pydicom.dcmread(PYDICOM_FILES / "rtdose.dcm")
    assert vol.shape == (int(ds.NumberOfFrames), ds.Rows, ds.Columns)
    # RT dose: stored values x DoseGridScaling = Gy
    np.testing.assert_allclose(vol.data, ds.pixel_array * float(ds.DoseGridScaling), rtol=1e-6)
    assert vol.spacing[0] == pytest.approx(5.0)  # from GridFrameOffsetVector
    color2 = read_image(PYDICOM_FILES / "SC_rgb_rle_2frame.dcm")
    assert color2.shape == (2, 100, 100, 3)


def test_truncated_pixel_data_is_refused():
    with pytest.raises(ImageReadError, match="MR_truncated.dcm.*(pixel data|truncated)"):
        read_image(PYDICOM_FILES / "MR_truncated.dcm")


def test_no_meta_is_refused_and_why(tmp_path):
    """no_meta.dcm ("CT_small.dcm with no File Meta Information", says pydicom's README) is not readable
    as it is: it starts with one stray byte (0x20) before the first element, so a forced parse yields a
    single bogus (0820,0500) UN element and no image. We refuse it. Without that byte it is a valid
    preamble-less dataset, which we read, identical to CT_small."""
    raw = (PYDICOM_FILES / "no_meta.dcm").read_bytes()
    assert raw[:1] == b"\x20" and raw[1:5] == b"\x08\x00\x05\x00"
    with pytest.raises(ImageReadError, match="no_meta.dcm: not a DICOM image"):
        read_image(PYDICOM_FILES / "no_meta.dcm")
    fixed = tmp_path / "no_meta_fixed.dcm"
    fixed.write_bytes(raw[1:])
    vol = read_image(fixed)
    np.testing.assert_array_equal(vol.data, read_image(PYDICOM_FILES / "CT_small.dcm").data)


def test_preamble_less_file_is_read_by_dcm_suffix(tmp_path):
    """A bare dataset (no preamble, no File Meta, implicit VR LE - old ACR-NEMA style) named *.dcm."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    ds = pydicom.dcmread(PYDICOM_FILES / "MR_small.dcm")
    body = pydicom.Dataset()
    for elem in ds:
        body.add(elem)
    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, True
    write_dataset(buf, body)
    path = tmp_path / "legacy.dcm"
    path.write_bytes(buf.getvalue())
    vol = read_image(path)
    np.testing.assert_array_equal(vol.data, read_image(PYDICOM_FILES / "MR_small.dcm").data)
    # the same bytes without a DICOM suffix are not guessed at
    other = tmp_path / "legacy.bin"
    other.write_bytes(buf.getvalue())
    with pytest.raises(ImageReadError, match="unknown image format"):
        read_image(other)


def test_rtplan_without_pixels_gives_clear_error():
    with pytest.raises(ImageReadError, match=r"rtplan.dcm: DICOM file without pixel data \(modality RTPLAN\)"):
        read_image(PYDICOM_FILES / "rtplan.dcm")


# -- synthetic series ------------------------------------------------------------------------------
def test_series_sorted_by_position_not_name_or_instance(tmp_path):
    paths, values = write_dicom_series(tmp_path / "s", n=9, spacing_z=2.5, slope=2.0, intercept=-1000.0)
    vol = read_image(tmp_path / "s")
    assert vol.shape == (9, 16, 12) and vol.data.dtype == np.float32
    np.testing.assert_array_equal(vol.data, values.astype(np.float32) * 2 - 1000)
    assert vol.spacing == pytest.approx((2.5, 0.7, 0.8)) and vol.spacing_known
    assert vol.window == (40.0, 400.0)  # first of the multi-valued window
    assert vol.metadata["files"] == [str(p) for p in paths]
    assert vol.origin == pytest.approx((-40.0, -120.0, -100.0))
    assert vol.metadata["warnings"] == []


def test_series_oblique_and_reversed_normal(tmp_path):
    # sagittal-ish orientation: normal along -x; positions must be projected, not compared by z
    c, s = np.cos(0.3), np.sin(0.3)
    iop = (0.0, 1.0, 0.0, 0.0, -s * 0 + 0.0, -1.0) if False else (0.0, c, s, 0.0, -s, c)
    paths, values = write_dicom_series(tmp_path / "o", n=7, spacing_z=1.25, iop=iop, modality="MR",
                                       rescale=False)
    vol = read_image(tmp_path / "o")
    np.testing.assert_array_equal(vol.data, values)
    assert vol.spacing[0] == pytest.approx(1.25)


def test_irregular_gap_is_flagged(tmp_path):
    paths, _ = write_dicom_series(tmp_path / "g", n=6, modality="MR", rescale=False)
    paths[2].unlink()  # a missing slice
    vol = read_image(tmp_path / "g")
    assert vol.shape[0] == 5
    assert any("irregular slice spacing" in w for w in vol.metadata["warnings"])


def test_no_positions_fall_back_to_instance_number(tmp_path):
    paths, values = write_dicom_series(tmp_path / "n", n=5, modality="MR", rescale=False)
    for p in paths:
        ds = pydicom.dcmread(p)
        del ds.ImagePositionPatient
        ds.save_as(p)
    vol = read_image(tmp_path / "n")
    # InstanceNumber was written reversed relative to position
    np.testing.assert_array_equal(vol.data, values[::-1])
    assert any("InstanceNumber" in w for w in vol.metadata["warnings"])


def test_largest_series_by_default_and_choice_by_uid(tmp_path):
    write_dicom_series(tmp_path / "mix" / "a", n=3, series_uid="1.2.3.1", description="small")
    _, big = write_dicom_series(tmp_path / "mix" / "b", n=6, series_uid="1.2.3.2", description="big",
                                modality="MR", rescale=False)
    (tmp_path / "mix" / "notes.txt").write_text("not dicom")
    infos = list_dicom_series(tmp_path / "mix")
    assert [(i.uid, i.n_files, i.description, i.modality) for i in infos] == [
        ("1.2.3.2", 6, "big", "MR"), ("1.2.3.1", 3, "small", "CT")]
    vol = read_image(tmp_path / "mix")
    np.testing.assert_array_equal(vol.data, big)
    assert vol.metadata["series_count"] == 2 and vol.metadata["ignored_files"] == 1
    small = read_image(tmp_path / "mix", series_uid="1.2.3.1")
    assert small.shape[0] == 3 and small.modality == "CT"
    with pytest.raises(ImageReadError, match="no series '9.9'"):
        read_image(tmp_path / "mix", series_uid="9.9")


def test_mixed_sizes_refused(tmp_path):
    write_dicom_series(tmp_path / "m", n=4, series_uid="1.2.3.4")
    write_dicom_series(tmp_path / "m" / "x", n=2, rows=8, cols=8, series_uid="1.2.3.4", z0=100.0)
    with pytest.raises(ImageReadError, match=r"mixes image sizes: 16x12 \(4 files\), 8x8 \(2 files\)"):
        read_image(tmp_path / "m")


def test_truncated_slice_fails_the_series(tmp_path):
    paths, _ = write_dicom_series(tmp_path / "t", n=4)
    raw = paths[1].read_bytes()
    paths[1].write_bytes(raw[:-100])
    with pytest.raises(ImageReadError, match=paths[1].name):
        read_image(tmp_path / "t")


def test_corrupt_header_in_folder_fails_not_skipped(tmp_path):
    paths, _ = write_dicom_series(tmp_path / "c", n=4)
    raw = bytearray(paths[0].read_bytes())
    paths[0].write_bytes(bytes(raw[:200]))  # DICM preamble, header cut mid-element
    with pytest.raises(ImageReadError, match=paths[0].name):
        read_image(tmp_path / "c")


def test_monochrome1_and_bits_stored(tmp_path):
    values = np.full((2, 4, 4), 0x0FFF, np.int16)  # 12-bit -1 with zero high bits
    write_dicom_series(tmp_path / "m1", n=2, rows=4, cols=4, photometric="MONOCHROME1", modality="MR",
                       rescale=False, values=values, bits_stored=12)
    vol = read_image(tmp_path / "m1")
    assert vol.invert_display is True
    assert (vol.data == -1).all()  # sign-extended from BitsStored like pydicom
    ds = pydicom.dcmread(sorted((tmp_path / "m1").iterdir())[0])
    assert (ds.pixel_array == -1).all()


def test_series_read_preallocates(tmp_path):
    """Peak memory while reading stays near one copy of the volume (no list of slices + np.stack)."""
    n, rows, cols = 40, 256, 256
    values = np.random.default_rng(0).integers(0, 1000, (n, rows, cols), dtype=np.int16)
    write_dicom_series(tmp_path / "p", n=n, rows=rows, cols=cols, modality="MR", rescale=False, values=values)
    read_image(tmp_path / "p")  # warm imports
    tracemalloc.start()
    try:
        vol = read_image(tmp_path / "p")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(vol.data, values)
    assert peak < 1.4 * values.nbytes, f"peak {peak / 1e6:.1f} MB for a {values.nbytes / 1e6:.1f} MB volume"


def test_progress_and_cancel(tmp_path):
    write_dicom_series(tmp_path / "pc", n=5)
    calls = []
    read_image(tmp_path / "pc", progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1]
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    seen = []

    def cancel():
        seen.append(1)
        return len(seen) > 3

    with pytest.raises(CancelledError):
        read_image(tmp_path / "pc", cancel=cancel)


def test_max_pixels_checked_before_reading(tmp_path):
    write_dicom_series(tmp_path / "big", n=4)
    with pytest.raises(ImageReadError, match="exceeds the limit of 100"):
        read_image(tmp_path / "big", max_pixels=100)


def test_folder_without_dicom(tmp_path):
    (tmp_path / "e").mkdir()
    with pytest.raises(ImageReadError, match="no files"):
        read_image(tmp_path / "e")
    (tmp_path / "e" / "a.txt").write_text("x")
    shutil.copy(PYDICOM_FILES / "rtplan.dcm", tmp_path / "e")
    with pytest.raises(ImageReadError, match="no DICOM images"):
        read_image(tmp_path / "e")


def test_compressed_series_decodes_slice_by_slice(tmp_path):
    """RLE-compressed slices take pydicom's decoder path into the same preallocated array."""
    from pydicom.uid import RLELossless

    paths, values = write_dicom_series(tmp_path / "rle", n=4, slope=1.0, intercept=-1024.0)
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.compress(RLELossless)
        ds.save_as(p)
    vol = read_image(tmp_path / "rle")
    assert vol.metadata["transfer_syntax"] == RLELossless
    np.testing.assert_array_equal(vol.data, values.astype(np.float32) - 1024)
    assert "PixelData" not in vol.metadata["dicom_header"]
