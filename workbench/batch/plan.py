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
from ..io.csv_safe import escape_row
from ..io.folders import IMAGE_SUFFIXES, display

SUMMARY_FIELDS = ("image", "status", "error", "task", "result", "warnings", "provider", "preprocess_ms", "inference_ms",
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


def list_images(folder: Path, recursive: bool = False, *, exclude: Path | None = None) -> list[Path]:
    """Image files of ``folder`` by suffix, sorted (hidden files skipped).

    ``exclude`` is the output folder: nothing below it, and no file listed in a ``summary.csv`` of it (the
    outputs of an earlier run), is taken as an input -- a batch never reads its own outputs. Dangling
    symlinks, symlink loops and files that are not regular (FIFOs, devices) are skipped with a note.
    """
    from ..io.folders import scan_folder

    return scan_folder(folder, recursive=recursive, suffixes=IMAGE_SUFFIXES, exclude=exclude,
                       exclude_listed=_listed_outputs(exclude) if exclude is not None else ())


def _listed_outputs(out_dir: Path) -> set[str]:
    """File names an earlier run recorded in ``out_dir/summary.csv`` (its json/mask/output/overlay/report
    columns)."""
    from ..io.csv_safe import unescape_cell

    path = out_dir / "summary.csv"
    names: set[str] = set()
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            for row in csv.DictReader(fh):
                for key in ("json", "mask", "output", "overlay", "report_html", "report_pdf"):
                    if row.get(key):
                        names.add(str(out_dir / unescape_cell(row[key])))
    except OSError:
        pass
    return names


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
    for outcome in outcomes:  # text cells escaped against formula injection; undecodable name bytes as U+FFFD
        w.writerow(escape_row({k: display(v) if isinstance(v, str) else v for k, v in outcome.row.items()}))
    return buf.getvalue()


def write_summary(out_dir: Path, outcomes: list[ItemOutcome]) -> None:
    """``summary.csv`` (one row per input, in input order) and, for detections, ``detections.csv``."""
    from ..export.detections import write_detections_csv
    from ..io.atomic import atomic_write_text

    summary_path = out_dir / "summary.csv"
    try:
        atomic_write_text(summary_path, summary_csv_text(outcomes))
    except OSError as exc:  # a full disk: the failed images' files are already gone (write_prediction)
        written = sum(not o.failed for o in outcomes)
        raise WorkbenchError(f"cannot write the summary ({exc.strerror or exc}); {written} of "
                             f"{len(outcomes)} images were written", path=summary_path) from exc
    detections = [(o.row["image"], o.detections) for o in outcomes if o.detections is not None]
    if detections:
        write_detections_csv(out_dir / "detections.csv", detections)
