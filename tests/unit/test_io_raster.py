"""PNG / JPEG / BMP / TIFF / .npy readers and the PNG/TIFF writers."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from workbench.core.errors import ExportError, ImageReadError
from workbench.io import read_image, sniff_format, write_png, write_tiff

SKIMAGE_DATA = Path(__import__("skimage").__file__).parent / "data"


def _ramp(h=20, w=30, dtype=np.uint8):
    hi = np.iinfo(dtype).max
    return (np.arange(h * w).reshape(h, w) * (hi // (h * w))).astype(dtype)


def _rgb(h=20, w=30, dtype=np.uint8):
    r = _ramp(h, w, dtype)
    return np.dstack([r, r[::-1], np.full_like(r, 7)])


# -- PNG ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_gray_roundtrip(tmp_path, dtype):
    data = _ramp(dtype=dtype)
    write_png(tmp_path / "g.png", data)
    vol = read_image(tmp_path / "g.png")
    assert vol.shape == (1, 20, 30) and vol.data.dtype == dtype
    np.testing.assert_array_equal(vol.data[0], data)
    assert vol.spacing_known is False and vol.modality is None


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_rgb_and_rgba_keep_rgb_order(tmp_path, dtype):
    rgb = _rgb(dtype=dtype)
    write_png(tmp_path / "c.png", rgb)
    vol = read_image(tmp_path / "c.png")
    assert vol.shape == (1, 20, 30, 3) and vol.data.dtype == dtype
    np.testing.assert_array_equal(vol.data[0], rgb)  # not BGR
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 5, dtype)])
    write_png(tmp_path / "a.png", rgba)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png").data[0], rgba)


def test_png_written_by_opencv_is_rgb(tmp_path):
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV's order
    cv2.imwrite(str(tmp_path / "b.png"), bgr)
    vol = read_image(tmp_path / "b.png")
    assert vol.data[0, 0, 0].tolist() == [0, 0, 200]


def test_png_gray_alpha_becomes_rgba(tmp_path):
    # OpenCV cannot write gray+alpha; build it with tifffile-free raw PNG encoding via zlib
    import struct
    import zlib

    h, w = 3, 4
    raw = b"".join(b"\x00" + bytes([v for _ in range(w) for v in (100, 50)]) for _ in range(h))

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 4, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    (tmp_path / "ga.png").write_bytes(png)
    vol = read_image(tmp_path / "ga.png")
    assert vol.shape == (1, h, w, 4)
    assert vol.data[0, 0, 0].tolist() == [100, 100, 100, 50]


def test_skimage_samples(tmp_path):
    astronaut = read_image(SKIMAGE_DATA / "astronaut.png")
    assert astronaut.shape == (1, 512, 512, 3) and astronaut.data.dtype == np.uint8
    from skimage import io as skio

    np.testing.assert_array_equal(astronaut.data[0], skio.imread(SKIMAGE_DATA / "astronaut.png"))
    assert read_image(SKIMAGE_DATA / "camera.png").shape == (1, 512, 512)
    assert read_image(SKIMAGE_DATA / "chessboard_RGB.png").data.dtype == np.uint16


# -- JPEG / BMP --------------------------------------------------------------------------------------
def test_jpeg_gray_and_color(tmp_path):
    gray = _ramp(64, 64)
    cv2.imwrite(str(tmp_path / "g.jpg"), gray, [cv2.IMWRITE_JPEG_QUALITY, 100])
    vol = read_image(tmp_path / "g.jpg")
    assert vol.shape == (1, 64, 64) and vol.data.dtype == np.uint8
    assert np.abs(vol.data[0].astype(int) - gray).max() <= 3
    color = read_image(SKIMAGE_DATA / "rocket.jpg")
    assert color.shape == (1, 427, 640, 3)
    ref = cv2.cvtColor(cv2.imread(str(SKIMAGE_DATA / "rocket.jpg")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(color.data[0], ref)


def test_jpeg_with_trailing_bytes_after_eoi_still_reads(tmp_path):
    ok, buf = cv2.imencode(".jpg", _rgb(32, 32))
    (tmp_path / "t.jpg").write_bytes(buf.tobytes() + b"\x00" * 100)
    assert read_image(tmp_path / "t.jpg").shape == (1, 32, 32, 3)


@pytest.mark.parametrize("image", [_ramp(), _rgb()], ids=["gray", "rgb"])
def test_bmp(tmp_path, image):
    cv2.imwrite(str(tmp_path / "x.bmp"), image[..., ::-1] if image.ndim == 3 else image)
    vol = read_image(tmp_path / "x.bmp")
    expected = image if image.ndim == 3 else image
    # OpenCV writes gray BMPs as 8-bit palette and reads them back as 3 equal channels
    data = vol.data[0]
    if image.ndim == 2 and data.ndim == 3:
        data = data[..., 0]
    np.testing.assert_array_equal(data, expected)


# -- TIFF --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff_roundtrip_with_spacing(tmp_path, dtype):
    data = _ramp(dtype=np.uint16).astype(dtype)
    write_tiff(tmp_path / "a.tif", data, spacing=(0.25, 0.5))
    vol = read_image(tmp_path / "a.tif")
    assert vol.shape == (1, 20, 30) and vol.data.dtype == dtype
    np.testing.assert_array_equal(vol.data[0], data)
    assert vol.spacing_known and vol.spacing[1:] == pytest.approx((0.25, 0.5))


def test_tiff_multipage_stack_and_rgb(tmp_path):
    stack = np.stack([_ramp(dtype=np.uint16) + i for i in range(5)])
    write_tiff(tmp_path / "s.tif", stack)
    vol = read_image(tmp_path / "s.tif")
    assert vol.shape == (5, 20, 30)
    np.testing.assert_array_equal(vol.data, stack)
    rgb = np.stack([_rgb(), _rgb()[::-1]])
    write_tiff(tmp_path / "c.tif", rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "c.tif").data, rgb)
    multi = read_image(SKIMAGE_DATA / "multipage.tif")
    assert multi.shape == (2, 15, 10)


def test_tiff_stack_keeps_slice_spacing_and_metadata(tmp_path):
    stack = np.zeros((3, 4, 5), np.uint16)
    write_tiff(tmp_path / "z.tif", stack, spacing=(2.0, 0.5, 0.25), metadata={"source": "ct.dcm"})
    vol = read_image(tmp_path / "z.tif")
    assert vol.spacing == pytest.approx((2.0, 0.5, 0.25)) and vol.spacing_known
    with tifffile.TiffFile(tmp_path / "z.tif") as tif:
        assert tif.shaped_metadata[0]["source"] == "ct.dcm"


def test_tiff_rgba_and_planar(tmp_path):
    rgba = np.dstack([_rgb(), np.full((20, 30), 9, np.uint8)])
    write_tiff(tmp_path / "a.tif", rgba)
    np.testing.assert_array_equal(read_image(tmp_path / "a.tif").data[0], rgba)
    planar = np.moveaxis(_rgb(), -1, 0)  # (3, y, x) stored as planar RGB
    tifffile.imwrite(tmp_path / "p.tif", planar, photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_image(tmp_path / "p.tif").data[0], _rgb())


def test_tiff_inch_resolution_is_not_physical(tmp_path):
    tifffile.imwrite(tmp_path / "dpi.tif", _ramp(), resolution=(72, 72), resolutionunit="INCH")
    assert read_image(tmp_path / "dpi.tif").spacing_known is False


def test_lzw_tiff_without_imagecodecs_falls_back_to_opencv(tmp_path):
    rgb = _rgb()
    ok, buf = cv2.imencode(".tiff", rgb[..., ::-1])  # OpenCV writes LZW by default
    (tmp_path / "lzw.tif").write_bytes(buf.tobytes())
    with tifffile.TiffFile(tmp_path / "lzw.tif") as tif:
        assert tif.pages[0].compression == 5  # LZW
    np.testing.assert_array_equal(read_image(tmp_path / "lzw.tif").data[0], rgb)


# -- .npy --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape,expected",
    [((20, 30), (1, 20, 30)), ((20, 30, 3), (1, 20, 30, 3)), ((3, 20, 30), (3, 20, 30)),
     ((6, 20, 30), (6, 20, 30)), ((2, 20, 30, 4), (2, 20, 30, 4))],
)
def test_npy_shapes(tmp_path, shape, expected):
    arr = np.arange(np.prod(shape), dtype=np.int16).reshape(shape)
    np.save(tmp_path / "a.npy", arr)
    vol = read_image(tmp_path / "a.npy")
    assert vol.shape == expected
    np.testing.assert_array_equal(vol.data.reshape(shape), arr)


def test_npy_dtypes_normalised(tmp_path):
    np.save(tmp_path / "b.npy", np.ones((4, 4), bool))
    assert read_image(tmp_path / "b.npy").data.dtype == np.uint8
    np.save(tmp_path / "f.npy", np.full((4, 4), np.nan))
    vol = read_image(tmp_path / "f.npy")
    assert vol.data.dtype == np.float32 and vol.value_range() == (0.0, 0.0)
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ImageReadError, match="objects"):
        read_image(tmp_path / "o.npy")
    np.save(tmp_path / "x.npy", np.zeros(5))
    with pytest.raises(ImageReadError, match="not an image"):
        read_image(tmp_path / "x.npy")


# -- sniffing, writers -------------------------------------------------------------------------------
def test_format_by_content_not_suffix(tmp_path):
    write_png(tmp_path / "a.png", _ramp())
    wrong = tmp_path / "really_png.jpg"
    wrong.write_bytes((tmp_path / "a.png").read_bytes())
    assert sniff_format(wrong) == "png"
    np.testing.assert_array_equal(read_image(wrong).data[0], _ramp())


def test_write_png_rejects_what_png_cannot_hold(tmp_path):
    with pytest.raises(ExportError, match="uint8 or uint16"):
        write_png(tmp_path / "f.png", np.zeros((4, 4), np.float32))
    with pytest.raises(ExportError, match="0..65535"):
        write_png(tmp_path / "n.png", np.full((4, 4), -1, np.int32))
    with pytest.raises(ExportError, match="shape"):
        write_png(tmp_path / "v.png", np.zeros((2, 4, 5), np.uint8))
    assert not list(tmp_path.iterdir())  # nothing half-written
    write_png(tmp_path / "ok.png", np.full((4, 4), 300, np.int32))  # fits uint16
    assert read_image(tmp_path / "ok.png").data.dtype == np.uint16
    write_png(tmp_path / "m.png", np.eye(4, dtype=bool))
    np.testing.assert_array_equal(read_image(tmp_path / "m.png").data[0], np.eye(4, dtype=np.uint8))


def test_writers_replace_atomically(tmp_path):
    target = tmp_path / "x.png"
    write_png(target, _ramp())
    write_png(target, _ramp()[::-1])
    np.testing.assert_array_equal(read_image(target).data[0], _ramp()[::-1])
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]  # no temporary files left
