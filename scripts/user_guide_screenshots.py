#!/usr/bin/env python3
"""Render the window screenshots of docs/USER_GUIDE.md (1366 x 768 and 1920 x 1080) the way a user opens an
image: ``workbench IMAGE --screenshot PNG --window-size WxH``, offscreen, default layout.

The image is the bundled sample (assets/samples/mri_t1_noisy.png, a template, no patient) wrapped as an MR
DICOM file with a series description, so the overlay text shows a modality and the de-identified series
line; the brain-tissue plugin runs on drop so the label overlay is visible. Then the bundled copy of the
guide is refreshed (scripts/update_user_guide.py). Look at every picture before committing it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZES = ((1366, 768), (1920, 1080))


def sample_dicom(target: Path) -> Path:
    """The sample slice as a single-frame MR DICOM file (1 mm pixels)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    pixels = cv2.imread(str(ROOT / "assets" / "samples" / "mri_t1_noisy.png"), cv2.IMREAD_UNCHANGED)
    pixels = np.asarray(pixels, np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(target), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = generate_uid(), generate_uid(), generate_uid()
    ds.Modality, ds.SeriesDescription, ds.PatientName = "MR", "T1 axial (template sample)", "Sample^Template"
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelSpacing, ds.SliceThickness = [1.0, 1.0], 1.0
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0.0, 0.0, 12.0], [1, 0, 0, 0, 1, 0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = pixels.tobytes()
    ds.save_as(str(target), enforce_file_format=True)
    return target


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="workbench-shots-"))
    config = work / "config"
    config.mkdir()
    (config / "settings.json").write_text(json.dumps({"run_on_drop": ["brain-tissue"]}), encoding="utf-8")
    image = sample_dicom(work / "mr_sample.dcm")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "WORKBENCH_CONFIG_DIR": str(config)}
    exe = [sys.executable, "-m", "workbench.cli"] if not (Path(sys.executable).parent / "workbench").exists() \
        else [str(Path(sys.executable).parent / "workbench")]
    for w, h in SIZES:
        out = ROOT / "docs" / "images" / f"window_{w}x{h}.png"
        subprocess.run([*exe, str(image), "--screenshot", str(out), "--window-size", f"{w}x{h}"], env=env,
                       check=True, timeout=300)
        print(f"wrote {out}")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "update_user_guide.py")], check=True, timeout=300)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
