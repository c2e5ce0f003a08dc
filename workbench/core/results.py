"""Model results as plain data: what a plugin run produced, in the original image's geometry.

The GUI shows them, the document stores them (undoably), exports write them. Fields may be added;
existing names are an interface between the engine, the GUI and the exports.

Each result type is the one home of its behaviour: ``summary()`` (the one line of the command line, the
batch summary and the Models dock), ``sentence(image)`` (the report's summary), ``json_record(image, files)``
(its part of the prediction JSON, DESIGN.md section 3), ``session_fields()`` / ``from_session(...)`` (its
session entry: JSON fields plus an npz or JSON payload), ``findings(image, max_rows)`` (its report table)
and :func:`overlay_slice` (the slice its picture shows). The writers (:mod:`workbench.export.prediction`,
:mod:`workbench.session`, :mod:`workbench.export.report`) only do the file work and the layout.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np

from .image import ImageVolume
from .labels import color_to_rgb, default_color


def json_safe(value: Any) -> Any:
    """JSON data, with numpy scalars/arrays converted (non-finite floats become ``None``); ``TypeError``
    for anything else."""
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON data")


def image_geometry(image: ImageVolume) -> dict[str, Any]:
    """The geometry and display fields of an image as JSON data (sessions record it)."""
    return {"spacing": list(image.spacing), "origin": list(image.origin), "spacing_known": image.spacing_known,
            "window": list(image.window) if image.window is not None else None, "modality": image.modality,
            "invert_display": image.invert_display}


@dataclass
class Table:
    """Findings as rows of text; ``swatches`` holds an optional ``#rrggbb`` per row (class colours);
    ``numeric`` flags right-aligned columns."""

    columns: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    swatches: list[str | None] = field(default_factory=list)
    note: str = ""


def _swatch(color: str | None, value: int) -> str:
    try:
        r, g, b = color_to_rgb(color or default_color(value))
    except ValueError:
        r, g, b = color_to_rgb(default_color(value))
    return f"#{r:02x}{g:02x}{b:02x}"


def _shape(image: ImageVolume) -> list[int]:
    return list(image.shape[1:] if image.n_slices == 1 else image.shape)


@dataclass
class RunInfo:
    """Provenance recorded with every result and written into every export."""

    plugin_id: str
    plugin_name: str
    plugin_version: str
    sha256: str
    provider: str  # the provider actually used, from session.get_providers()[0]
    task: str
    source_path: str | None = None
    timing_ms: dict[str, float] = field(default_factory=dict)
    slice_indices: list[int] = field(default_factory=list)  # slices the model ran on
    warnings: list[str] = field(default_factory=list)  # how the image falls outside meta.expects (issue 20)


@dataclass
class ClassScore:
    index: int
    label: str
    score: float


@dataclass
class ClassificationResult:
    """Scores of every class; ``top`` is sorted by score, highest first."""

    info: RunInfo
    scores: np.ndarray  # (C,) probabilities (or raw scores with activation none)
    labels: list[str]
    top: list[ClassScore]
    multi_label: bool = False
    slice_scores: np.ndarray | None = None  # (S, C) per slice run; ``scores`` is their mean

    @property
    def nbytes(self) -> int:
        return int(self.scores.nbytes)

    kind: ClassVar[str] = "classification"
    payload: ClassVar[str] = "npz"

    def json_record(self, image: ImageVolume, files: dict[str, str]) -> dict[str, Any]:
        return {"classification": {"top": [{"index": t.index, "label": t.label, "score": round(t.score, 6)}
                                           for t in self.top], "multi_label": self.multi_label}}

    def session_fields(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        arrays = {"scores": np.asarray(self.scores)}
        if self.slice_scores is not None:
            arrays["slice_scores"] = np.asarray(self.slice_scores)
        return {"labels": list(self.labels),
                "top": [{"index": t.index, "label": t.label, "score": float(t.score)} for t in self.top],
                "multi_label": bool(self.multi_label)}, arrays

    @classmethod
    def from_session(cls, info: RunInfo, entry: dict[str, Any], payload: Any,
                     image: ImageVolume) -> ClassificationResult:
        top = [ClassScore(int(t["index"]), str(t["label"]), float(t["score"])) for t in entry.get("top", [])]
        return cls(info=info, scores=payload["scores"], labels=list(entry.get("labels", [])), top=top,
                   multi_label=bool(entry.get("multi_label", False)), slice_scores=payload.get("slice_scores"))

    def findings(self, image: ImageVolume, *, max_rows: int = 200) -> Table:
        """The report's findings table of this result on ``image`` (at most ``max_rows`` rows)."""
        rows = [[str(k), t.label, f"{t.score:.4f}"] for k, t in enumerate(self.top[:max_rows], start=1)]
        note = "Multi-label: each score is independent (sigmoid)." if self.multi_label else ""
        if self.slice_scores is not None and len(self.slice_scores) > 1:
            note = (note + " " if note else "") + f"Scores are the mean over {len(self.slice_scores)} slices."
        return Table(["Rank", "Class", "Score"], rows, [True, False, True], [], note)

    def summary(self) -> str:
        top = self.top[0] if self.top else None
        return f"{top.label} ({top.score:.3f})" if top else "no classes"

    def sentence(self, image: ImageVolume) -> str:
        if not self.top:
            return "No class scores."
        t = self.top[0]
        return f"Top class: {t.label} (score {t.score:.3f})."


@dataclass
class SegmentationClass:
    value: int
    name: str
    color: str
    pixels: int = 0
    area_mm2: float | None = None
    volume_mm3: float | None = None  # pixels (voxels) x voxel volume, when the spacing is known (issue 12)


@dataclass
class SegmentationResult:
    """A label mask with the image's ``(z, y, x)`` shape and the classes it holds (background = 0)."""

    info: RunInfo
    mask: np.ndarray  # uint16, same (z, y, x) as the image
    classes: list[SegmentationClass]
    probabilities: np.ndarray | None = None  # optional (C, z, y, x) float16 — not kept by default

    @property
    def nbytes(self) -> int:
        return int(self.mask.nbytes + (self.probabilities.nbytes if self.probabilities is not None else 0))

    kind: ClassVar[str] = "segmentation"
    payload: ClassVar[str] = "npz"

    def json_record(self, image: ImageVolume, files: dict[str, str]) -> dict[str, Any]:
        return {"segmentation": {"mask": files.get("mask"),
                                 "classes": [{"value": c.value, "name": c.name, "color": c.color, "pixels": c.pixels,
                                              "area_mm2": round(c.area_mm2, 4) if c.area_mm2 is not None else None,
                                              # stacks and volumes (issue 12): voxels x voxel volume
                                              **({"volume_mm3": round(c.volume_mm3, 4)} if image.n_slices > 1
                                                 and c.volume_mm3 is not None else {})}
                                             for c in self.classes]}}

    def session_fields(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return ({"classes": [json_safe(asdict(c)) for c in self.classes]},
                {"mask": np.asarray(self.mask, dtype=np.uint16)})

    @classmethod
    def from_session(cls, info: RunInfo, entry: dict[str, Any], payload: Any,
                     image: ImageVolume) -> SegmentationResult:
        mask = payload["mask"]
        if mask.shape != tuple(image.shape[:3]):
            raise ValueError(f"mask {mask.shape} does not fit the image {tuple(image.shape[:3])}")
        return cls(info=info, mask=mask, classes=[SegmentationClass(**c) for c in entry.get("classes", [])])

    def findings(self, image: ImageVolume, *, max_rows: int = 200) -> Table:
        """The report's findings table of this result on ``image`` (at most ``max_rows`` rows)."""
        stack = image.n_slices > 1
        total = max(1, image.n_slices * image.height * image.width)
        voxel = image.voxel_volume_mm3
        columns = ["Class", "Value", "Voxels" if stack else "Pixels", "% of image"]
        numeric = [False, True, True, True]
        if stack:
            columns.append("Volume (mm\u00b3)")
        else:
            columns.append("Area (mm\u00b2)")
        numeric.append(True)
        rows: list[list[str]] = []
        swatches: list[str | None] = []
        for c in self.classes:
            if stack:
                size = f"{c.pixels * voxel:,.1f}" if voxel is not None else "\u2014"
            else:
                size = f"{c.area_mm2:,.2f}" if c.area_mm2 is not None else "\u2014"
            rows.append([c.name, str(c.value), f"{c.pixels:,}", f"{100.0 * c.pixels / total:.2f}", size])
            swatches.append(_swatch(c.color, c.value))
        note = "" if image.spacing_known else "Pixel size unknown: physical sizes are not available."
        return Table(columns, rows, numeric, swatches, note)

    def summary(self) -> str:
        volume = self.mask.shape[0] > 1  # a stack or volume: voxels and mm³ (issue 12)
        parts = [f"{c.name}: {c.pixels} {'voxels' if volume else 'px'}"
                 + (f" ({c.volume_mm3:,.1f} mm\u00b3)" if volume and c.volume_mm3 is not None else "")
                 for c in self.classes if c.pixels]
        return ", ".join(parts) if parts else "nothing segmented"

    def sentence(self, image: ImageVolume) -> str:
        found = [c for c in self.classes if c.pixels]
        if not found:
            return "Nothing segmented."
        unit = "voxels" if image.n_slices > 1 else "px"
        parts = []
        for c in found:
            part = f"{c.name} {c.pixels:,} {unit}"
            if c.area_mm2 is not None and image.n_slices == 1:
                part += f" ({c.area_mm2:,.1f} mm\u00b2)"
            parts.append(part)
        return f"{len(found)} class{'es' if len(found) != 1 else ''} found: " + "; ".join(parts) + "."


def box4(values: Any) -> tuple[float, float, float, float]:
    """``[x1, y1, x2, y2]`` as four floats (a JSON list, an array row...); raises ValueError or TypeError
    when ``values`` is not exactly four numbers."""
    x1, y1, x2, y2 = (float(v) for v in values)
    return x1, y1, x2, y2


@dataclass
class Detection:
    """One box in pixel coordinates of the original image: ``[x1, y1, x2, y2]``."""

    index: int  # class index (score column, background column included)
    label: str
    score: float
    box: tuple[float, float, float, float]
    slice_index: int = 0

    def record(self, *, with_slice: bool = False) -> dict[str, Any]:
        """As in the predict JSON: ``{"index", "label", "score", "box": [x1, y1, x2, y2]}`` (+ ``"slice"``)."""
        rec: dict[str, Any] = {"index": int(self.index), "label": self.label, "score": round(float(self.score), 5),
                               "box": [round(float(v), 2) for v in self.box]}
        if with_slice:
            rec["slice"] = int(self.slice_index)
        return rec


@dataclass
class DetectionResult:
    info: RunInfo
    detections: list[Detection]

    @property
    def nbytes(self) -> int:
        return 64 * len(self.detections)

    kind: ClassVar[str] = "detection"
    payload: ClassVar[str] = "json"

    def json_record(self, image: ImageVolume, files: dict[str, str]) -> dict[str, Any]:
        return {"detection": {"detections": [d.record(with_slice=image.n_slices > 1) for d in self.detections]}}

    def session_fields(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return {}, [{"index": d.index, "label": d.label, "score": float(d.score), "box": [float(v) for v in d.box],
                     "slice_index": int(d.slice_index)} for d in self.detections]

    @classmethod
    def from_session(cls, info: RunInfo, entry: dict[str, Any], payload: Any,
                     image: ImageVolume) -> DetectionResult:
        dets = [Detection(index=int(d["index"]), label=str(d["label"]), score=float(d["score"]),
                          box=cast(tuple[float, float, float, float], tuple(float(v) for v in d["box"])),
                          slice_index=int(d.get("slice_index", 0))) for d in payload]
        return cls(info=info, detections=dets)

    def findings(self, image: ImageVolume, *, max_rows: int = 200) -> Table:
        """The report's findings table of this result on ``image`` (at most ``max_rows`` rows)."""
        stack = image.n_slices > 1
        columns = ["#", "Label", "Score", "Box x1, y1, x2, y2 (px)", "Size (px)"]
        numeric = [True, False, True, False, True]
        if stack:
            columns.append("Slice")
            numeric.append(True)
        rows: list[list[str]] = []
        swatches: list[str | None] = []
        for k, d in enumerate(self.detections[:max_rows], start=1):
            x1, y1, x2, y2 = d.box
            row = [str(k), d.label, f"{d.score:.3f}", ", ".join(f"{v:.0f}" for v in d.box),
                   f"{x2 - x1:.0f} \u00d7 {y2 - y1:.0f}"]
            if stack:
                row.append(str(d.slice_index + 1))
            rows.append(row)
            swatches.append(_swatch(None, d.index + 1))  # the overlay's box colour
        note = ""
        if len(self.detections) > max_rows:
            note = f"First {max_rows} of {len(self.detections)} detections; the JSON result lists all."
        return Table(columns, rows, numeric, swatches, note)

    def summary(self) -> str:
        n = len(self.detections)
        return f"{n} detection{'s' if n != 1 else ''}"

    def sentence(self, image: ImageVolume) -> str:
        n = len(self.detections)
        if not n:
            return "No detections."
        counts: dict[str, int] = {}
        for d in self.detections:
            counts[d.label] = counts.get(d.label, 0) + 1
        listed = ", ".join(f"{k} \u00d7 {v}" for k, v in counts.items())
        return f"{n} detection{'s' if n != 1 else ''}: {listed}."


@dataclass
class RestorationResult:
    """The restored image (``scale`` times larger for super-resolution), in the input's value scale."""

    info: RunInfo
    image: ImageVolume
    scale: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return int(self.image.data.nbytes)

    kind: ClassVar[str] = "restoration"
    payload: ClassVar[str] = "npz"

    def json_record(self, image: ImageVolume, files: dict[str, str]) -> dict[str, Any]:
        return {"restoration": {"output": files.get("output"), "scale": self.scale, "shape": _shape(self.image)}}

    def session_fields(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        extra = {}
        for key, value in self.extra.items():
            try:
                extra[str(key)] = json_safe(value)
            except TypeError:
                continue  # documented: non-JSON extras are not saved
        return ({"scale": int(self.scale), "geometry": image_geometry(self.image), "extra": extra},
                {"image": self.image.data})

    @classmethod
    def from_session(cls, info: RunInfo, entry: dict[str, Any], payload: Any,
                     image: ImageVolume) -> RestorationResult:
        geo = entry.get("geometry") or {}
        window = geo.get("window")
        restored = ImageVolume(payload["image"], spacing=tuple(geo.get("spacing", (1.0, 1.0, 1.0))),
                               origin=tuple(geo.get("origin", (0.0, 0.0, 0.0))),
                               window=tuple(window) if window else None, modality=geo.get("modality"),
                               invert_display=bool(geo.get("invert_display", False)),
                               spacing_known=bool(geo.get("spacing_known", False)))
        return cls(info=info, image=restored, scale=int(entry.get("scale", 1)), extra=dict(entry.get("extra") or {}))

    def findings(self, image: ImageVolume, *, max_rows: int = 200) -> Table:
        """The report's findings table of this result on ``image`` (at most ``max_rows`` rows)."""
        r = self.image
        rows = [["Input size", f"{image.width} \u00d7 {image.height} px"],
                ["Output size", f"{r.width} \u00d7 {r.height} px"],
                ["Scale", f"\u00d7{self.scale}"],
                ["Output value type", str(r.data.dtype)]]
        return Table(["Property", "Value"], rows, [False, False], [], "")

    def summary(self) -> str:
        return f"restored {self.image.height}x{self.image.width}"

    def sentence(self, image: ImageVolume) -> str:
        r = self.image
        scale = f" (scale \u00d7{self.scale})." if self.scale != 1 else "."
        return f"Restored image: {image.width} \u00d7 {image.height} \u2192 {r.width} \u00d7 {r.height} px{scale}"


Result = ClassificationResult | SegmentationResult | DetectionResult | RestorationResult
#: the result classes by their session ``type`` (``kind``)
RESULT_TYPES: dict[str, type[Result]] = {c.kind: c for c in (ClassificationResult, SegmentationResult,
                                                              DetectionResult, RestorationResult)}


def overlay_slice(result: Result) -> int:
    """The slice a picture of ``result`` shows (overlay PNG, report picture and its caption).

    The slice the model ran on with the most labelled pixels (segmentation) or boxes (detection); on a tie
    the first of them in the order the model ran; other results: the first slice the model ran on.
    """
    ran = result.info.slice_indices or [0]
    if isinstance(result, SegmentationResult) and len(ran) > 1:
        counts = [int(np.count_nonzero(result.mask[i])) for i in ran]
        return ran[counts.index(max(counts))]
    if isinstance(result, DetectionResult) and result.detections and len(ran) > 1:
        per = {i: 0 for i in ran}
        for d in result.detections:
            per[d.slice_index] = per.get(d.slice_index, 0) + 1
        return max(per, key=lambda k: per[k])  # the first key of the largest count
    return ran[0]
