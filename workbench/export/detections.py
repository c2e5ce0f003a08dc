"""Detection exports: JSON records, CSV rows and COCO (images + annotations + categories), atomic."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Iterable

from ..core.errors import ExportError
from ..core.image import ImageVolume
from ..core.results import DetectionResult
from ..io.atomic import atomic_write_text
from ..io.csv_safe import escape_cell
from ..io.folders import display

CSV_FIELDS = ("image", "slice", "index", "label", "score", "x1", "y1", "x2", "y2", "plugin_id",
              "plugin_version", "sha256", "provider")


def _r(value: float) -> float:
    return round(float(value), 2)


def detections_csv_text(items: Iterable[tuple[str, DetectionResult]]) -> str:
    """CSV of ``(image name, result)`` pairs: one row per box, provenance on every row."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for name, result in items:
        info = result.info
        for det in result.detections:
            writer.writerow([escape_cell(display(name)), det.slice_index, det.index, escape_cell(det.label),
                             f"{det.score:.5f}", *(f"{v:.2f}" for v in det.box), info.plugin_id,
                             info.plugin_version, info.sha256, info.provider])
    return buf.getvalue()


def write_detections_csv(path: str | Path, items: Iterable[tuple[str, DetectionResult]]) -> Path:
    """Write :func:`detections_csv_text` atomically."""
    path = Path(path)
    try:
        atomic_write_text(path, detections_csv_text(items))
    except OSError as exc:
        raise ExportError(f"cannot write CSV ({exc.strerror or exc})", path=path) from exc
    return path


def coco_dict(items: Iterable[tuple[str, ImageVolume, DetectionResult]], labels: list[str] | None = None) -> dict:
    """COCO detection results: ``images`` (file name, width, height), ``annotations`` (bbox as
    ``[x, y, w, h]``, score) and ``categories`` (ids = class index + 1, COCO ids start at 1)."""
    images, annotations, categories = [], [], {}
    info_block: dict = {}
    for idx, label in enumerate(labels or []):
        categories[idx] = label
    ann_id = 1
    for image_id, (name, image, result) in enumerate(items, start=1):
        images.append({"id": image_id, "file_name": name, "width": image.width, "height": image.height})
        info_block = {"plugin_id": result.info.plugin_id, "plugin_version": result.info.plugin_version,
                      "sha256": result.info.sha256, "provider": result.info.provider}
        for det in result.detections:
            categories.setdefault(det.index, det.label)
            x1, y1, x2, y2 = det.box
            annotations.append({"id": ann_id, "image_id": image_id, "category_id": det.index + 1,
                                "bbox": [_r(x1), _r(y1), _r(x2 - x1), _r(y2 - y1)],
                                "area": _r((x2 - x1) * (y2 - y1)), "score": round(float(det.score), 5),
                                "iscrowd": 0, "slice": det.slice_index})
            ann_id += 1
    return {"info": {"description": "workbench detections", **info_block}, "images": images,
            "annotations": annotations,
            "categories": [{"id": k + 1, "name": v} for k, v in sorted(categories.items())]}


def write_coco(path: str | Path, items: Iterable[tuple[str, ImageVolume, DetectionResult]],
               labels: list[str] | None = None) -> Path:
    """Write :func:`coco_dict` as JSON atomically."""
    path = Path(path)
    try:
        atomic_write_text(path, json.dumps(coco_dict(items, labels), indent=1))
    except OSError as exc:
        raise ExportError(f"cannot write COCO JSON ({exc.strerror or exc})", path=path) from exc
    return path
