"""Generators of small synthetic test inputs (written into a test's tmp_path, never committed).

Import from a test with :func:`load` (tests are not a package)::

    fixtures = load()
    fixtures.write_dicom_series(tmp_path / "ct", n=8)
"""
from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import numpy as np

PYDICOM_FILES = Path(__import__("pydicom").__file__).parent / "data" / "test_files"


def load():
    """This module, importable from any test file."""
    name = "workbench_test_io_fixtures"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def write_dicom_series(folder: Path, *, n: int = 8, rows: int = 16, cols: int = 12, spacing_z: float = 2.5,
                       pixel_spacing: tuple[float, float] = (0.7, 0.8), modality: str = "CT",
                       slope: float = 1.0, intercept: float = -1024.0, series_uid: str | None = None,
                       study_uid: str | None = None, shuffle: bool = True, seed: int = 0,
                       iop: tuple[float, ...] = (1, 0, 0, 0, 1, 0), z0: float = -40.0,
                       rescale: bool = True, photometric: str = "MONOCHROME2", window=(40.0, 400.0),
                       description: str = "synthetic", values: np.ndarray | None = None,
                       bits_stored: int = 16) -> tuple[list[Path], np.ndarray]:
    """Write an int16 series; slice k has stored values ``k * 100 + pattern`` so order is checkable.

    File names are random (``shuffle``) so that only the positions can give the order, and the
    InstanceNumbers are reversed relative to position to prove positions win over them.

    Returns
    -------
    (paths in slice order, stored values as (n, rows, cols) int16)
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if values is None:
        base = rng.integers(0, 50, size=(rows, cols), dtype=np.int16)
        values = np.stack([base + np.int16(k * 100) for k in range(n)]).astype(np.int16)
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    frame_uid = generate_uid()
    normal = np.cross(np.asarray(iop[:3], float), np.asarray(iop[3:], float))
    names = [f"{i:04d}" for i in range(n)]
    if shuffle:
        random.Random(seed).shuffle(names)
    paths = []
    for k in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage if modality == "CT" else MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.Modality = modality
        ds.PatientName = "Test^Patient"
        ds.PatientID = "ID0001"
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "O"
        ds.StudyDate = "20240102"
        ds.SeriesDescription = description
        ds.SeriesNumber = 3
        ds.InstanceNumber = n - k  # reversed on purpose: positions must win
        ds.ImageOrientationPatient = [float(v) for v in iop]
        pos = np.array([-100.0, -120.0, 0.0]) + normal * (z0 + k * spacing_z)
        ds.ImagePositionPatient = [float(v) for v in pos]
        ds.PixelSpacing = [float(pixel_spacing[0]), float(pixel_spacing[1])]
        ds.SliceThickness = float(spacing_z)
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated = 16
        ds.BitsStored = bits_stored
        ds.HighBit = bits_stored - 1
        ds.PixelRepresentation = 1
        if rescale:
            ds.RescaleSlope = slope
            ds.RescaleIntercept = intercept
        if window is not None:
            ds.WindowCenter = [window[0], window[0] + 10]  # multi-valued: the first must win
            ds.WindowWidth = [window[1], window[1] * 2]
        ds.PixelData = np.ascontiguousarray(values[k]).tobytes()
        path = folder / names[k]
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths, values


def png_bytes(array: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", array)
    assert ok
    return buf.tobytes()


def jpeg_bytes(array: np.ndarray, quality: int = 90) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", array, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def tiff_bytes(array: np.ndarray, tmp: Path) -> bytes:
    import tifffile

    tifffile.imwrite(tmp, array)
    return tmp.read_bytes()


def bmp_bytes(array: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".bmp", array)
    assert ok
    return buf.tobytes()


def png_claiming(width: int, height: int) -> bytes:
    """A valid-looking PNG (correct CRCs) whose IHDR claims ``width`` x ``height``, with one tiny IDAT."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def tiff_claiming(width: int, height: int, tmp: Path) -> bytes:
    """A small TIFF whose first IFD's ImageWidth/ImageLength are patched to a huge size."""
    import tifffile

    tifffile.imwrite(tmp, np.zeros((4, 4), np.uint8))
    raw = bytearray(tmp.read_bytes())
    with tifffile.TiffFile(tmp) as tif:
        page = tif.pages[0]
        for name, value in (("ImageWidth", width), ("ImageLength", height)):
            tag = page.tags[name]
            fmt = "<I" if tag.dtype == 4 else "<H"
            import struct

            if fmt == "<H" and value > 0xFFFF:
                raise ValueError("tag too small for the value; use LONG")
            raw[tag.valueoffset:tag.valueoffset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    return bytes(raw)
