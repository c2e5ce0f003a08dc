"""Bad input: only ImageReadError, naming the file, never None / partial data / another exception."""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from workbench.core.errors import ImageReadError
from workbench.io import read_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from io_fixtures import PYDICOM_FILES, bmp_bytes, jpeg_bytes, png_bytes, png_claiming, tiff_bytes, tiff_claiming

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _image(h=48, w=64):
    rng = np.random.default_rng(3)
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


def _valid_files(folder: Path) -> dict[str, bytes]:
    img = _image()
    nii = folder / "v.nii.gz"
    nib.save(nib.Nifti1Image(img[..., 0].astype(np.int16), np.eye(4)), str(nii))
    npy = folder / "v.npy"
    np.save(npy, img[..., 0])
    return {
        ".png": png_bytes(img),
        ".jpg": jpeg_bytes(img),
        ".bmp": bmp_bytes(img),
        ".tif": tiff_bytes(img, folder / "v.tif"),
        ".dcm": (PYDICOM_FILES / "CT_small.dcm").read_bytes(),
        ".nii.gz": nii.read_bytes(),
        ".npy": npy.read_bytes(),
    }


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    return _valid_files(tmp_path_factory.mktemp("valid"))


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif", ".dcm", ".nii.gz", ".npy"])
@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_truncated_files(tmp_path, valid, suffix, fraction):
    raw = valid[suffix]
    cut = raw[: int(len(raw) * fraction)] if fraction else raw[:1]
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(cut)
    with pytest.raises(ImageReadError) as err:
        read_image(path)
    assert path.name in str(err.value) and "\n" not in str(err.value)


def test_jpeg_missing_only_its_last_bytes(tmp_path, valid):
    """libjpeg would fill the missing tail with grey and only warn: refused by the EOI check."""
    raw = valid[".jpg"]
    for cut in (2, 10, 200):
        path = tmp_path / f"j{cut}.jpg"
        path.write_bytes(raw[:-cut])
        with pytest.raises(ImageReadError, match="truncated JPEG"):
            read_image(path)


@pytest.mark.parametrize("suffix", ["", ".png", ".jpg", ".tif", ".dcm", ".nii", ".nii.gz", ".npy", ".bmp"])
def test_random_bytes(tmp_path, suffix):
    path = tmp_path / f"noise{suffix}"
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ImageReadError, match=path.name):
        read_image(path)


def test_empty_missing_and_unreadable(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty.png"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.png")


def test_png_header_claiming_40000_squared_is_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_claiming(40000, 40000))
    with pytest.raises(ImageReadError, match="40000x40000 = 1,600,000,000 pixels exceeds the limit"):
        read_image(path)


def test_tiff_flipped_header_is_refused_before_allocating(tmp_path):
    path = tmp_path / "huge.tif"
    path.write_bytes(tiff_claiming(0x00FFFFFF, 0x0000C000, tmp_path / "src.tif"))
    with pytest.raises(ImageReadError, match="exceeds the limit"):
        read_image(path)


def test_jpeg_and_bmp_size_checked_from_header(tmp_path, valid):
    path = tmp_path / "a.jpg"
    path.write_bytes(valid[".jpg"])
    with pytest.raises(ImageReadError, match="48x64 = 3,072 pixels exceeds the limit of 1,000"):
        read_image(path, max_pixels=1000)
    path = tmp_path / "a.bmp"
    path.write_bytes(valid[".bmp"])
    with pytest.raises(ImageReadError, match="exceeds the limit"):
        read_image(path, max_pixels=1000)


def test_max_pixels_default_comes_from_settings(tmp_path, valid, monkeypatch):
    from workbench.core.settings import Settings
    from workbench.io.settings_file import save_settings

    save_settings(Settings(max_pixels=100))
    path = tmp_path / "a.png"
    path.write_bytes(valid[".png"])
    with pytest.raises(ImageReadError, match="limit of 100"):
        read_image(path)
    assert read_image(path, max_pixels=10**6).shape == (1, 48, 64, 3)


def test_corrupt_png_data_with_valid_structure(tmp_path, valid):
    raw = bytearray(valid[".png"])
    idat = raw.index(b"IDAT")
    for i in range(idat + 8, idat + 200):
        raw[i] ^= 0x5A
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(raw))
    with pytest.raises(ImageReadError, match="bad.png"):
        read_image(path)


def test_dicom_header_lies_about_size(tmp_path):
    import pydicom

    ds = pydicom.dcmread(PYDICOM_FILES / "MR_small.dcm")
    ds.Rows = 512  # PixelData holds 64x64
    ds.save_as(tmp_path / "lie.dcm")
    with pytest.raises(ImageReadError, match="lie.dcm: pixel data has 8192 bytes"):
        read_image(tmp_path / "lie.dcm")


def test_dicom_compressed_garbage(tmp_path):
    raw = bytearray((PYDICOM_FILES / "JPEG2000.dcm").read_bytes())
    for i in range(len(raw) - 3000, len(raw) - 100):
        raw[i] = (raw[i] * 7 + 3) & 0xFF
    (tmp_path / "j2k.dcm").write_bytes(bytes(raw))
    try:
        vol = read_image(tmp_path / "j2k.dcm")
    except ImageReadError as err:
        assert "j2k.dcm" in str(err)
    else:  # a lossy codec may decode garbage into pixels; then the geometry must still be whole
        assert vol.shape == (1, 1024, 256)


# -- property tests --------------------------------------------------------------------------------
_SUFFIXES = ["", ".png", ".jpg", ".tif", ".dcm", ".nii", ".nii.gz", ".npy", ".bmp"]
_SCRATCH = Path(tempfile.mkdtemp(prefix="wb_io_hyp_"))
_VALID = _valid_files(_SCRATCH)


def _dicom_pixel_end() -> int:
    """CT_small.dcm ends with DataSetTrailingPadding after its pixels: cutting only that loses nothing."""
    import pydicom

    ds = pydicom.dcmread(PYDICOM_FILES / "CT_small.dcm", defer_size=1024)
    elem = ds.get_item(0x7FE00010, keep_deferred=True)
    return int(elem.value_tell) + int(elem.length)


_INTACT_PREFIX = {".dcm": _dicom_pixel_end()}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=2048), suffix=st.sampled_from(_SUFFIXES),
       prefix=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*",
                               b"\x93NUMPY", b"BM", b"\x00" * 128 + b"DICM", b"\x1f\x8b"]))
def test_random_bytes_only_raise_image_read_error(data, suffix, prefix):
    path = _SCRATCH / f"h{suffix}"
    path.write_bytes(prefix + data)
    try:
        vol = read_image(path)
    except ImageReadError as err:
        assert "\n" not in str(err)
    else:  # a tiny valid image out of random bytes is possible (e.g. a raw .npy); it must be whole
        assert vol.data.size > 0


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(sorted(_VALID)), cut=st.floats(0.0, 1.0, exclude_max=True),
       flip=st.one_of(st.none(), st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(1, 255))))
def test_truncated_or_flipped_valid_files_only_raise_image_read_error(kind, cut, flip):
    raw = bytearray(_VALID[kind])
    if flip is not None:
        where, xor = flip
        raw[int(where * len(raw))] ^= xor
    raw = bytes(raw[: max(1, int(cut * len(raw)))]) if cut > 0 else bytes(raw)
    path = _SCRATCH / f"t{kind}"
    path.write_bytes(raw)
    try:
        vol = read_image(path)
    except ImageReadError as err:
        assert "\n" not in str(err)
    else:
        # a truncated file never loads; a flipped byte may still give a (whole) image, e.g. in pixel data
        intact = cut == 0 or len(raw) >= _INTACT_PREFIX.get(kind, len(_VALID[kind]))
        assert flip is not None or intact, f"truncated {kind} at {len(raw)} bytes loaded as {vol.shape}"
        assert vol.data.size > 0


def teardown_module():
    shutil.rmtree(_SCRATCH, ignore_errors=True)


def test_opencv_stays_quiet_about_corrupt_files(tmp_path, capfd, valid):
    (tmp_path / "x.png").write_bytes(valid[".png"][:-30])
    with pytest.raises(ImageReadError):
        read_image(tmp_path / "x.png")
    assert "libpng" not in capfd.readouterr().err
    assert cv2.utils.logging.getLogLevel() != cv2.utils.logging.LOG_LEVEL_SILENT  # restored
