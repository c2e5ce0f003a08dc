"""Exports of a session (CLI ``workbench export`` and the GUI's File > Export): label map, measurements,
reports, each with a provenance record.
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..core.errors import ExportError
from ..core.image import ImageVolume
from ..core.results import Result, RunInfo, SegmentationClass, SegmentationResult, json_safe
from ..session.fingerprint import source_fingerprint
from ..session.snapshot import Session


def provenance(session: Session) -> dict[str, Any]:
    """What every export of a session records: source file, session, software, the model runs."""
    image = session.image
    return {
        "software": f"Workbench {__version__}",
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "session": str(session.path) if session.path is not None else None,
        "source": {"path": str(image.path) if image.path is not None else None, "shape": list(image.shape),
                   "fingerprint": (session.manifest.get("source") or {}).get("fingerprint")},
        "labels": [{"value": lab.value, "name": lab.name, "color": lab.color} for lab in session.label_table],
        "results": [{"task": r.info.task, "plugin_id": r.info.plugin_id, "plugin_name": r.info.plugin_name,
                     "plugin_version": r.info.plugin_version, "sha256": r.info.sha256, "provider": r.info.provider}
                    for r in session.results],
    }

# -- exports of a session (CLI ``workbench export`` and the GUI's File > Export) -------------------------
MASK_EXPORT_SUFFIXES = (".png", ".tif", ".tiff", ".nii", ".nii.gz", ".dcm")


def _session_provenance(session: Session) -> dict[str, Any]:
    record = provenance(session)
    if record["source"]["fingerprint"] is None and session.image.path is not None:
        try:
            files = session.image.metadata.get("files") if Path(session.image.path).is_dir() else None
            record["source"]["fingerprint"] = source_fingerprint(session.image.path, files)
        except OSError:
            record["source"]["fingerprint"] = None  # the source is gone: the path is still recorded
    return record


def write_provenance(target: str | Path, session: Session, *, what: str,
                     extra: dict[str, Any] | None = None) -> Path:
    """Write ``<target>.provenance.json`` beside an exported file: the source file, the session, the
    software and every model run (plugin id, version, sha256, provider) behind the exported labels."""
    from ..io.atomic import atomic_write_text

    target = Path(target)
    record = {"export": what, "file": target.name, **_session_provenance(session), **(extra or {})}
    out = target.with_name(target.name + ".provenance.json")
    try:
        atomic_write_text(out, json.dumps(json_safe(record), indent=2))
    except OSError as exc:
        raise ExportError(f"cannot write ({exc.strerror or exc})", path=out) from exc
    return out


def _label_data(session: Session) -> np.ndarray:
    if session.label_data is not None:
        return session.label_data
    return np.zeros(session.image.shape[:3], dtype=np.uint16)


def default_mask_suffix(image: ImageVolume) -> str:
    """The natural whole-label-map format: PNG for one slice, DICOM SEG for a DICOM stack, NIfTI for other
    volumes with geometry (NIfTI, DICOM without its files), multi-page TIFF for plain stacks."""
    from .dicom_seg import is_dicom_source
    from .masks import mask_suffix

    if image.n_slices == 1:
        return ".png"
    if is_dicom_source(image):
        return ".dcm"
    return mask_suffix(image)


def export_label_map(session: Session, path: str | Path, *, keep_identity: bool = False) -> list[Path]:
    """Write the whole label map; the format follows the suffix.

    ``.png`` (one slice; 8-bit when the values fit, else 16-bit), ``.tif``/``.tiff`` (one page per slice,
    pixel spacing kept), ``.nii``/``.nii.gz`` (the image's geometry), ``.dcm`` (DICOM SEG referencing the
    DICOM source). A ``.provenance.json`` sidecar is written beside it.

    Returns
    -------
    list of Path
        The mask and its provenance file.

    Raises
    ------
    ExportError
        Unknown suffix, a stack as PNG, a DICOM SEG of a non-DICOM image, or a write failure.
    """
    from .dicom_seg import write_dicom_seg
    from .masks import write_mask

    path = Path(path)
    name = path.name.lower()
    if not name.endswith(MASK_EXPORT_SUFFIXES):
        raise ExportError(f"unknown mask format {path.suffix!r} (use {', '.join(MASK_EXPORT_SUFFIXES)})", path=path)
    data = _label_data(session)
    if name.endswith(".dcm"):
        write_dicom_seg(path, data, session.image,
                        names={lab.value: lab.name for lab in session.label_table},
                        colors={lab.value: lab.color for lab in session.label_table},
                        algorithm=[asdict(r.info) for r in session.results
                                   if isinstance(r, SegmentationResult)], keep_identity=keep_identity)
        what = "DICOM SEG" if keep_identity else "DICOM SEG (de-identified)"
    else:
        write_mask(path, data, like=session.image)
        what = "label map"
    return [path, write_provenance(path, session, what=what)]


def measure_session(session: Session) -> list:
    """Per-label measurements (:func:`workbench.processing.measure_labels`) of the label map over the
    image, in physical units when the spacing is known, named by the label table."""
    from ..processing import measure_labels, to_scalar

    image = session.image
    return measure_labels(_label_data(session), to_scalar(image.data),
                          spacing=image.spacing if image.spacing_known else None,
                          names={lab.value: lab.name for lab in session.label_table})


def export_measurements(session: Session, path: str | Path) -> list[Path]:
    """Write the per-label measurements CSV (:func:`workbench.export.measurements.write_csv`) and its provenance.

    Raises
    ------
    ExportError
    """
    from .measurements import write_csv

    path = Path(path)
    stats = measure_session(session)
    write_csv(stats, path)
    units = "HU" if session.image.is_ct else "stored values"
    return [path, write_provenance(path, session, what="measurements",
                                   extra={"intensity_units": units, "spacing_known": session.image.spacing_known})]


def export_annotations(session: Session, path: str | Path) -> list[Path]:
    """Write the annotation measurements (rulers, angles, ROIs, text arrows) of ``session`` as CSV or JSON by
    the suffix (:func:`workbench.export.annotations.write_annotations`) and its provenance.

    Raises
    ------
    ExportError
        Unknown suffix, or a write failure.
    """
    from ..processing.roi import intensity_unit
    from .annotations import write_annotations

    path = Path(path)
    write_annotations(session.annotations, session.image, path)
    return [path, write_provenance(path, session, what="annotation measurements",
                                   extra={"intensity_units": intensity_unit(session.image),
                                          "spacing_known": session.image.spacing_known,
                                          "annotations": len(session.annotations)})]


def label_map_result(session: Session) -> SegmentationResult:
    """The label map as a :class:`SegmentationResult` so the report module can show it; its provenance says
    it is the edited label map, not a model output."""
    data = _label_data(session)
    image = session.image
    counts = np.bincount(data.reshape(-1), minlength=1) if data.size else np.zeros(1, np.int64)
    table = {lab.value: lab for lab in session.label_table}
    area = image.pixel_area_mm2
    classes = []
    for value in np.nonzero(counts)[0].tolist():
        if value == 0:
            continue
        lab = table.get(value)
        pixels = int(counts[value])
        classes.append(SegmentationClass(value=value, name=lab.name if lab else f"label {value}",
                                         color=lab.color if lab else "", pixels=pixels,
                                         area_mm2=pixels * area if area is not None and image.n_slices == 1 else None))
    slices = [int(z) for z in np.nonzero(data.reshape(data.shape[0], -1).any(axis=1))[0]] or [0]
    info = RunInfo(plugin_id="label-map", plugin_name="Label map (edited in Workbench)",
                   plugin_version=__version__, sha256="n/a (label map, not a model)", provider="n/a",
                   task="segmentation", source_path=str(image.path) if image.path is not None else None,
                   slice_indices=slices)
    return SegmentationResult(info=info, mask=data, classes=classes)


def export_reports(session: Session, out_dir: str | Path, *, formats: tuple[str, ...] = ("html", "pdf"),
                   show_name: bool = False) -> list[Path]:
    """Write de-identified reports (:func:`workbench.export.report.write_report`) into ``out_dir``: one of
    the label map (when it holds labels) and one per model result.

    Returns
    -------
    list of Path
        Every file written.

    Raises
    ------
    ExportError
        Nothing to report (empty label map and no results), or a write failure.
    """
    from .prediction import output_stem
    from .report import write_report

    out_dir = Path(out_dir)
    stem = output_stem(session.image, fallback="image")
    items: list[tuple[str, Result]] = []
    if session.label_data is not None and session.label_data.any():
        items.append((f"{stem}_labels", label_map_result(session)))
    for i, result in enumerate(session.results, start=1):
        items.append((f"{stem}_{i}_{result.info.plugin_id}", result))
    heatmaps = list(getattr(session, "heatmaps", None) or [])  # issue 17: saliency / uncertainty maps
    if not items and not heatmaps:
        raise ExportError("nothing to report: the label map is empty and there are no model results",
                          path=session.path)
    written: list[Path] = []
    for item_stem, result in items:
        files = write_report(result, session.image, out_dir, item_stem, formats=formats, show_name=show_name)
        written += list(files.values())
    if heatmaps:
        from .heatmap_report import write_heatmap_report

        for j, (expl, _style) in enumerate(heatmaps, start=1):
            written += list(write_heatmap_report(expl, session.image, out_dir, f"{stem}_heatmap{j}_{expl.method}",
                                                 formats=formats, image_label=stem if show_name else "image 1"
                                                 ).values())
    # no provenance sidecar here: reports are de-identified and never name the source file; each report
    # carries the plugin id, version, sha256 and provider itself
    return written
