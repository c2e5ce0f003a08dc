"""The work list of a batch run and its summary files.

Every input gets its output stem and its number before anything runs (:func:`plan_items`), from its path
alone, so the serial run, a cluster run and a resumed run name every output the same way.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import WorkbenchError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom", ".nii", ".nii.gz", ".npy")
SUMMARY_FIELDS = ("image", "status", "error", "task", "result", "provider", "preprocess_ms", "inference_ms",
                  "postprocess_ms", "json", "mask", "output", "overlay", "report_html", "report_pdf")
# The summary columns that measure time: the only ones that differ between two runs on the same inputs.
TIMING_FIELDS = ("preprocess_ms", "inference_ms", "postprocess_ms")


@dataclass(frozen=True)
class OutputOptions:
    """The command-line options that change what is written per image (names as in argparse)."""

    no_overlay: bool = False
    report: bool = False
    report_names: bool = False
    report_dates: str = "remove"
    recursive: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"no_overlay": self.no_overlay, "report": self.report, "report_names": self.report_names,
                "report_dates": self.report_dates, "recursive": self.recursive}


@dataclass(frozen=True)
class ItemPlan:
    """One input of a batch: ``source`` as listed (relative to the working directory when the folder was
    given so), ``name`` relative to the batch folder, the output ``stem`` and the 1-based ``number`` that
    reports use instead of the file name."""

    source: Path
    name: str
    stem: str
    number: int


@dataclass
class ItemOutcome:
    """What one input produced: its summary row and, for detection plugins, the result for detections.csv."""

    row: dict[str, Any]
    detections: Any = None  # DetectionResult | None
    skipped: bool = False  # --resume: outputs were already there

    @property
    def failed(self) -> bool:
        return self.row.get("status") == "error"


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files of ``folder`` by suffix, sorted (hidden files skipped)."""
    if not folder.is_dir():
        raise WorkbenchError("not a folder", path=folder)
    pattern = folder.rglob("*") if recursive else folder.iterdir()
    files = [p for p in pattern if p.is_file() and not p.name.startswith(".")
             and p.name.lower().endswith(IMAGE_SUFFIXES)]
    return sorted(files)


def path_stem(path: Path) -> str:
    """The output stem of a file: ``astronaut`` for ``astronaut.png``, ``ct`` for ``ct.nii.gz``
    (what :func:`workbench.export.prediction.output_stem` gives for an image read from ``path``)."""
    name = path.name
    for suffix in (".nii.gz", ".ome.tiff", ".ome.tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem if path.suffix else name


def plan_items(files: list[Path], folder: Path, *, recursive: bool = False) -> list[ItemPlan]:
    """Output stems and numbers of ``files`` (sorted, inside ``folder``).

    A file in a sub-folder (``--recursive``) gets the folder in its stem (``a_b_scan``); equal stems get
    ``_1``, ``_2``... in list order. Stems are assigned to every input, also to one that later fails, so
    a name never depends on which other inputs could be read.
    """
    plans: list[ItemPlan] = []
    seen: dict[str, int] = {}
    for number, path in enumerate(files, start=1):
        name = str(path.relative_to(folder))
        stem = path_stem(Path(name))
        if recursive and Path(name).parent != Path("."):
            stem = str(Path(name).parent / stem).replace("/", "_").replace("\\", "_")
        if stem in seen:
            seen[stem] += 1
            stem = f"{stem}_{seen[stem]}"
        else:
            seen[stem] = 0
        plans.append(ItemPlan(path, name, stem, number))
    return plans


def summary_csv_text(outcomes: list[ItemOutcome]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SUMMARY_FIELDS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for outcome in outcomes:
        w.writerow(outcome.row)
    return buf.getvalue()


def write_summary(out_dir: Path, outcomes: list[ItemOutcome]) -> None:
    """``summary.csv`` (one row per input, in input order) and, for detections, ``detections.csv``."""
    from ..export.detections import write_detections_csv
    from ..io.atomic import atomic_write_text

    atomic_write_text(out_dir / "summary.csv", summary_csv_text(outcomes))
    detections = [(o.row["image"], o.detections) for o in outcomes if o.detections is not None]
    if detections:
        write_detections_csv(out_dir / "detections.csv", detections)
