"""The annotation measurements (rulers, angles, ROIs, text arrows) as CSV or JSON, written atomically.

One row per annotation from :func:`workbench.processing.roi.measure_annotations` (the numbers the
Measurements dock shows): shared by File > Export annotation measurements…, ``workbench export SESSION
--annotations FILE`` and the case report. Text cells are escaped against spreadsheet formula injection
(:mod:`workbench.io.csv_safe`), as in every CSV the app writes. See docs/EXPORT.md.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.annotations import Annotation
from ..core.errors import ExportError
from ..core.image import ImageVolume
from ..io.atomic import atomic_open
from ..processing.roi import AnnotationMeasurement, intensity_unit, measure_annotations

ANNOTATION_SUFFIXES = (".csv", ".json")

#: CSV columns: slice is 1-based like everywhere the user sees it; points are image ``x y`` pairs.
CSV_COLUMNS = ["id", "type", "slice", "value", "unit", "area_mm2", "area_px", "pixels", "mean", "std", "min", "max",
               "label", "points"]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def csv_rows(annotations: Sequence[Annotation], image: ImageVolume) -> list[list[str]]:
    """The CSV rows (without the header) of ``annotations`` on ``image``, unescaped."""
    rows = []
    for a, m in zip(annotations, measure_annotations(annotations, image)):
        roi = m.roi
        rows.append([_cell(v) for v in (
            m.id, m.kind, m.z + 1, m.value, m.unit,
            roi.area_mm2 if roi else None, roi.area_px if roi else None, roi.pixels if roi else None,
            roi.mean if roi else None, roi.std if roi else None, roi.min if roi else None, roi.max if roi else None,
            m.label, " ".join(f"{x:.2f} {y:.2f}" for x, y in a.points))])
    return rows


def json_document(annotations: Sequence[Annotation], image: ImageVolume) -> dict[str, Any]:
    """The JSON export: units, spacing and one record per annotation (its points and measurement)."""
    records = []
    for a, m in zip(annotations, measure_annotations(annotations, image)):
        record: dict[str, Any] = {"id": m.id, "type": m.kind, "slice": m.z + 1, "z": m.z,
                                  "points": [list(p) for p in a.points], "value": m.value, "unit": m.unit,
                                  "text": m.text, "label": m.label}
        if m.roi is not None:
            record["roi"] = m.roi.as_dict()
        records.append(record)
    return {"spacing_mm": list(image.spacing) if image.spacing_known else None,
            "intensity_unit": intensity_unit(image), "annotations": records}


def write_annotations(annotations: Sequence[Annotation], image: ImageVolume, path: str | Path) -> Path:
    """Write the measurements of ``annotations`` as CSV (``.csv``) or JSON (``.json``) atomically.

    Raises
    ------
    ExportError
        Another suffix, or the file cannot be written.
    """
    from ..io.csv_safe import escape_cell

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ANNOTATION_SUFFIXES:
        raise ExportError(f"unknown measurements format {path.suffix or '(none)'!r} (use .csv or .json)", path=path)
    try:
        with atomic_open(path, "w") as fh:
            if suffix == ".json":
                fh.write(json.dumps(json_document(annotations, image), indent=2, ensure_ascii=False) + "\n")
            else:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(CSV_COLUMNS)
                # a label typed by the user ("=HYPERLINK(...)") must not run in a spreadsheet
                writer.writerows([[escape_cell(c) for c in row] for row in csv_rows(annotations, image)])
    except OSError as exc:
        raise ExportError(f"cannot write the measurements ({exc.strerror or exc})", path=path) from exc
    return path


__all__ = ["ANNOTATION_SUFFIXES", "CSV_COLUMNS", "AnnotationMeasurement", "csv_rows", "json_document",
           "write_annotations"]
