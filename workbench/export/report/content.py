"""The content model of a report (:class:`Report`: pictures, findings table, header fields, provenance) and
:func:`build_report`, which fills it once for both renderers.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ... import __version__
from ...core.errors import ExportError
from ...core.image import ImageVolume
from ...core.results import (
    ClassificationResult,
    DetectionResult,
    RestorationResult,
    Result,
    SegmentationResult,
    Table,
    overlay_slice,
)
from ..deid import DateMode, deidentify_metadata, field_label
from ..overlay import _with_window, display_rgb, render_overlay

FORMATS = ("html", "pdf")

DISCLAIMER = "Research use only \u2014 not for diagnosis."

MAX_PICTURE_SIDE = 1600  # px; larger pictures are downscaled (INTER_AREA) to keep reports small

MAX_TABLE_ROWS = 200  # findings rows shown; the JSON result holds all of them

_TASK_TITLES = {"segmentation": "Segmentation", "detection": "Detection", "classification": "Classification",
                "restoration": "Restoration"}


# -- content model -----------------------------------------------------------------------------------
@dataclass
class Picture:
    """An 8-bit RGB picture with a caption."""

    rgb: np.ndarray
    caption: str
    _png: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def png(self) -> bytes:
        """PNG bytes (encoded once: the HTML and the PDF embed the same file). A grey picture is stored
        as one channel: a third of the pixels for PNG, PDF Flate and the viewer."""
        if self._png is None:
            rgb = self.rgb
            gray = np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
            ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., 0]) if gray
                                   else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            if not ok:
                raise ExportError("cannot encode the report picture as PNG")
            self._png = buf.tobytes()
        return self._png


@dataclass
class Report:
    """Everything a report shows, already de-identified and formatted as text."""

    title: str
    subtitle: str
    summary: str
    disclaimer: str
    intended_use: str
    pictures: list[Picture]
    image_fields: list[tuple[str, str]]
    findings: Table
    provenance: list[tuple[str, str]]
    generated: str
    footer: str
    warnings: list[str] = field(default_factory=list)
    # the case report (issue 15 item 6, :mod:`.case`); the per-result report leaves them empty
    reader: str = ""  # the reader's name
    narrative: str = ""  # the reader's free-text findings
    findings_title: str = "Findings"
    tables: list[tuple[str, Table]] = field(default_factory=list)  # further titled tables after the findings
    pictures_title: str = ""  # set: the pictures are a section of their own ("Key images"), never beside details


# -- building ----------------------------------------------------------------------------------------
def build_report(result: Result, image: ImageVolume, *, image_label: str = "image 1",
                 plugin_meta: Mapping[str, Any] | None = None, dates: DateMode = "remove",
                 salt: str | bytes | None = None, now: _dt.datetime | None = None) -> Report:
    """The de-identified content of the report of one image.

    Parameters
    ----------
    result : Result
        The model result of ``image``.
    image : ImageVolume
        The image the model ran on.
    image_label : str
        What the report calls the image ("image 1"; the file stem only when the user asked for names).
    plugin_meta : mapping, optional
        The plugin's ``meta`` block (``intended_use``, ``license``).
    dates, salt
        De-identification options, see :func:`workbench.export.deid.deidentify_metadata`.
    now : datetime, optional
        The report date (default: now, local time).

    Returns
    -------
    Report
    """
    info = result.info
    meta = dict(plugin_meta or {})
    now = now or _dt.datetime.now().astimezone()
    image_fields, warnings = image_details(image, image_label=image_label, dates=dates, salt=salt)
    if info.warnings:  # meta.expects (issue 20): the answer below may be unreliable
        warnings.append(f"This image is outside what {info.plugin_id} was made for: {'; '.join(info.warnings)}.")

    timing = info.timing_ms
    total = sum(float(timing.get(k, 0.0)) for k in ("preprocess", "inference", "postprocess"))
    timing_text = ", ".join(f"{k} {float(v):.1f}" for k, v in timing.items()) + f" (total {total:.1f} ms)" \
        if timing else "not recorded"
    provenance: list[tuple[str, str]] = [
        ("Plugin", f"{info.plugin_name} ({info.plugin_id})"),
        ("Plugin version", info.plugin_version),
        ("Model sha256", info.sha256),
        ("Execution provider", info.provider),
        ("Timing (ms)", timing_text),
    ]
    if image.n_slices > 1:
        provenance.append(("Slices run", _ranges(info.slice_indices, image.n_slices)))
    if meta.get("license"):
        provenance.append(("Model licence", str(meta["license"])))
    provenance += [("Report date", now.strftime("%Y-%m-%d %H:%M %Z").strip()),
                   ("Software", f"Workbench {__version__}")]

    intended = str(meta.get("intended_use") or "").strip()
    return Report(
        title=f"{_TASK_TITLES.get(info.task, info.task.title())} report",
        subtitle=f"{info.plugin_name} {info.plugin_version} \u00b7 {image_label}",
        summary=result.sentence(image),
        disclaimer=DISCLAIMER,
        intended_use=intended,
        pictures=_pictures(result, image),
        image_fields=image_fields,
        findings=result.findings(image, max_rows=MAX_TABLE_ROWS),
        provenance=provenance,
        generated=now.strftime("%Y-%m-%d %H:%M"),
        footer="De-identified report: patient name, IDs, birth date, sex, institution, staff, UIDs and file "
               "paths are not shown; dates are " + ("shifted." if dates == "shift" else "removed."),
        warnings=warnings,
    )


def image_details(image: ImageVolume, *, image_label: str, dates: DateMode = "remove",
                  salt: str | bytes | None = None) -> tuple[list[tuple[str, str]], list[str]]:
    """The de-identified "Image details" rows of a report (name, format, size, pixel size, the allowed header
    fields) and its warnings (burned-in annotation)."""
    fields = deidentify_metadata(image.metadata, salt=salt, dates=dates)
    warnings: list[str] = []
    if "BurnedInAnnotation" in fields:
        warnings.append("The file declares burned-in annotation: the pictures may show identifying text.")
    image_fields: list[tuple[str, str]] = [("Image", image_label)]
    if "format" in fields:
        image_fields.append((field_label("format"), str(fields.pop("format"))))
    dims = f"{image.width} \u00d7 {image.height} px"
    if image.n_slices > 1:
        dims += f" \u00d7 {image.n_slices} slices"
    if image.is_color:
        dims += f", {image.channels} channels"
    image_fields.append(("Size", dims))
    if image.spacing_known:
        dz, dy, dx = image.spacing
        spacing = f"{_num(dx)} \u00d7 {_num(dy)} mm"
        if image.n_slices > 1:
            spacing += f" \u00d7 {_num(dz)} mm"
        image_fields.append(("Voxel size" if image.n_slices > 1 else "Pixel size", spacing))
    else:
        image_fields.append(("Pixel size", "unknown (areas in pixels only)"))
    image_fields += [(field_label(k), str(v)) for k, v in fields.items() if k != "PixelSpacing"]
    return image_fields, warnings


def _num(value: float) -> str:
    return f"{value:.4g}"


def _ranges(indices: Sequence[int], n: int) -> str:
    """1-based slice numbers as compact ranges: ``1-12, 15 (13 of 40)``."""
    idx = sorted(set(int(i) for i in indices))
    if not idx:
        return "none"
    parts: list[str] = []
    start = prev = idx[0]
    for i in idx[1:] + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(f"{start + 1}" if start == prev else f"{start + 1}\u2013{prev + 1}")
        if i is not None:
            start = prev = i
    return f"{', '.join(parts)} ({len(idx)} of {n})"


def _fit(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    side = max(h, w)
    if side <= MAX_PICTURE_SIDE:
        return rgb
    f = MAX_PICTURE_SIDE / side
    return cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def _slice_note(image: ImageVolume, index: int) -> str:
    return f" (slice {index + 1} of {image.n_slices})" if image.n_slices > 1 else ""


def _pictures(result: Result, image: ImageVolume) -> list[Picture]:
    ran = result.info.slice_indices or [0]
    if isinstance(result, RestorationResult):
        index = ran[0]
        before = display_rgb(image, index)
        after = display_rgb(_with_window(result.image, image), 0)
        note = _slice_note(image, index)
        return [Picture(_fit(before), f"Before{note}"), Picture(_fit(after), f"After{note}")]
    index = overlay_slice(result)  # one choice for the picture and its caption
    overlay = render_overlay(result, image, index)
    caption = {SegmentationResult: "Segmentation overlay", DetectionResult: "Detections",
               ClassificationResult: "Image with the top classes"}.get(type(result), "Result")
    return [Picture(_fit(overlay), caption + _slice_note(image, index))]


