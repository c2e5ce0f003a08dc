"""Exports: masks, overlays, detections JSON/CSV/COCO and the predict JSON result."""
from __future__ import annotations

import csv
import io
import json

import cv2
import numpy as np
import pytest

from workbench.core.errors import ExportError
from workbench.core.image import ImageVolume
from workbench.core.results import (
    ClassificationResult,
    ClassScore,
    Detection,
    DetectionResult,
    RestorationResult,
    RunInfo,
    SegmentationClass,
    SegmentationResult,
)
from workbench.export.detections import coco_dict, detections_csv_text, write_coco
from workbench.export.masks import compact_mask, mask_suffix, write_mask
from workbench.export.overlay import blend_labels, display_rgb, render_overlay
from workbench.export.prediction import output_stem, result_dict, write_prediction


def _info(task, path="in/astro.png"):
    return RunInfo("faces", "Faces", "1.0.0", "ab" * 32, "CPUExecutionProvider", task, path,
                   {"preprocess": 1.2, "inference": 15.1, "postprocess": 0.8}, [0])


def test_mask_png_8_and_16_bit_and_stack_formats(tmp_path):
    mask = np.zeros((1, 5, 7), np.uint16)
    mask[0, 1, 1] = 3
    p = write_mask(tmp_path / "m.png", mask)
    back = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint8 and back.shape == (5, 7) and back[1, 1] == 3
    mask[0, 2, 2] = 300
    back = cv2.imread(str(write_mask(tmp_path / "m16.png", mask)), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and back[2, 2] == 300
    stack = np.zeros((3, 4, 4), np.uint16)
    with pytest.raises(ExportError, match="PNG holds one slice"):
        write_mask(tmp_path / "s.png", stack)
    import tifffile

    assert tifffile.imread(write_mask(tmp_path / "s.tif", stack)).shape == (3, 4, 4)
    vol = ImageVolume(np.zeros((3, 4, 4), np.int16), spacing=(2, 1, 1), spacing_known=True, modality="CT")
    import nibabel

    nii = nibabel.load(str(write_mask(tmp_path / "s.nii.gz", stack, like=vol)))
    assert nii.shape == (4, 4, 3)
    with pytest.raises(ExportError, match="differs from the image"):
        write_mask(tmp_path / "x.png", np.zeros((1, 2, 2)), like=ImageVolume(np.zeros((3, 3))))
    assert compact_mask(np.array([[1]], np.uint16)).dtype == np.uint8
    assert mask_suffix(ImageVolume(np.zeros((2, 3)))) == ".png" and mask_suffix(vol) == ".nii.gz"


def test_overlay_colours_labels_and_windows_16bit():
    image = ImageVolume(np.linspace(0, 4000, 100, dtype=np.float32).reshape(10, 10).astype(np.uint16))
    rgb = display_rgb(image)
    assert rgb.shape == (10, 10, 3) and rgb.dtype == np.uint8 and rgb.max() > 200
    mask = np.zeros((10, 10), np.uint16)
    mask[2:8, 2:8] = 1
    out = blend_labels(np.zeros((10, 10, 3), np.uint8), mask, {1: "#ff0000"}, alpha=0.5)
    assert abs(int(out[5, 5, 0]) - 127) <= 1 and out[5, 5, 1:].tolist() == [0, 0] and out[0, 0].tolist() == [0, 0, 0]
    assert out[2, 2].tolist() == [255, 0, 0]  # outline at full colour


def test_result_json_matches_design_format(tmp_path):
    image = ImageVolume(np.zeros((1, 20, 30, 3), np.uint8), path=tmp_path / "astronaut.png")
    det = DetectionResult(_info("detection"), [Detection(0, "face", 0.99, (179.0, 63.0, 269.4, 173.0))])
    d = result_dict(det, image)
    assert d["task"] == "detection" and d["provider"] == "CPUExecutionProvider"
    assert d["image"]["shape"] == [20, 30, 3]
    assert d["plugin"] == {"id": "faces", "name": "Faces", "version": "1.0.0", "sha256": "ab" * 32}
    assert d["timing_ms"] == {"preprocess": 1.2, "inference": 15.1, "postprocess": 0.8}
    assert d["detection"]["detections"] == [{"index": 0, "label": "face", "score": 0.99, "box": [179, 63, 269.4, 173]}]
    assert "segmentation" not in d and "classification" not in d and "restoration" not in d
    cls = ClassificationResult(_info("classification"), np.array([0.09, 0.91]), ["good", "blurred"],
                               [ClassScore(1, "blurred", 0.91)])
    assert result_dict(cls, image)["classification"]["top"] == [{"index": 1, "label": "blurred", "score": 0.91}]


def test_write_prediction_segmentation_and_restoration(tmp_path):
    image = ImageVolume(np.zeros((20, 30), np.uint16), path=tmp_path / "ct.nii.gz")
    mask = np.zeros((1, 20, 30), np.uint16)
    mask[0, :5] = 2
    seg = SegmentationResult(_info("segmentation"), mask, [SegmentationClass(2, "person", "#00ff00", 150, None)])
    files = write_prediction(seg, image, tmp_path / "out")
    assert output_stem(image) == "ct"
    data = json.loads(files["json"].read_text())
    assert data["segmentation"] == {"mask": "ct_mask.png", "classes": [
        {"value": 2, "name": "person", "color": "#00ff00", "pixels": 150, "area_mm2": None}]}
    assert cv2.imread(str(files["mask"]), cv2.IMREAD_UNCHANGED).shape == (20, 30)
    assert files["overlay"].is_file()
    # restoration keeps the bit depth: 8-bit PNG -> PNG, 16-bit -> TIFF
    img8 = ImageVolume(np.full((4, 6), 9, np.uint8), path=tmp_path / "a.png")
    res8 = RestorationResult(_info("restoration"), ImageVolume(np.full((8, 12), 9, np.uint8)), scale=2)
    f8 = write_prediction(res8, img8, tmp_path / "out")
    assert f8["output"].name == "a_restored.png"
    assert cv2.imread(str(f8["output"]), cv2.IMREAD_UNCHANGED).shape == (8, 12)
    img16 = ImageVolume(np.full((4, 6), 900, np.uint16), path=tmp_path / "b.tif")
    res16 = RestorationResult(_info("restoration"), ImageVolume(np.full((4, 6), 900, np.uint16)))
    f16 = write_prediction(res16, img16, tmp_path / "out")
    import tifffile

    back = tifffile.imread(f16["output"])
    assert f16["output"].suffix == ".tif" and back.dtype == np.uint16 and back[0, 0] == 900
    assert json.loads(f16["json"].read_text())["restoration"]["output"] == "b_restored.tif"


def test_detections_csv_and_coco(tmp_path):
    det = DetectionResult(_info("detection"), [Detection(1, "dog", 0.5, (1.0, 2.0, 11.0, 22.0))])
    rows = list(csv.DictReader(io.StringIO(detections_csv_text([("a.png", det)]))))
    assert rows[0]["label"] == "dog" and rows[0]["x2"] == "11.00" and rows[0]["sha256"] == "ab" * 32
    image = ImageVolume(np.zeros((30, 40), np.uint8))
    coco = coco_dict([("a.png", image, det)], labels=["cat", "dog"])
    assert coco["images"] == [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}]
    assert coco["annotations"][0]["bbox"] == [1.0, 2.0, 10.0, 20.0] and coco["annotations"][0]["category_id"] == 2
    assert coco["categories"] == [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
    coco_file = write_coco(tmp_path / "c.json", [("a.png", image, det)])
    assert json.loads(coco_file.read_text())["info"]["plugin_id"] == "faces"


def test_render_overlay_for_every_task():
    image = ImageVolume(np.zeros((1, 20, 30, 3), np.uint8))
    det = DetectionResult(_info("detection"), [Detection(0, "face", 0.9, (2.0, 2.0, 12.0, 12.0))])
    assert render_overlay(det, image)[12, 7].any()  # bottom edge (the label covers the top one)
    cls = ClassificationResult(_info("classification"), np.array([1.0]), ["x"], [ClassScore(0, "x", 1.0)])
    assert render_overlay(cls, image).shape == (20, 30, 3)
    res = RestorationResult(_info("restoration"), ImageVolume(np.zeros((1, 40, 60, 3), np.uint8)), scale=2)
    assert render_overlay(res, image).shape[0] == 40
