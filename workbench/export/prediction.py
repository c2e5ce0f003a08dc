"""What ``predict``/``batch`` write per image: ``<stem>.json`` (DESIGN.md section 3), the mask or the
restored image, and an overlay PNG. Every file records the plugin id/version/sha256 and the provider."""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..core.errors import ExportError
from ..core.image import ImageVolume
from ..core.results import RestorationResult, Result, SegmentationResult
from ..io.atomic import atomic_write_text
from ..io.writers import output_dir, write_png, write_png_encoded, write_tiff
from .masks import mask_suffix, write_mask
from .overlay import render_overlay


def output_stem(image: ImageVolume, fallback: str = "image") -> str:
    """``astronaut`` for ``astronaut.png``; ``ct`` for ``ct.nii.gz``; the folder name for DICOM series."""
    if image.path is None:
        return fallback
    name = image.path.name
    for suffix in (".nii.gz", ".ome.tiff", ".ome.tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return image.path.stem if image.path.suffix else name


def restored_suffix(image: ImageVolume, restored: ImageVolume) -> str:
    """8-bit single slice in -> PNG out; 16-bit, float or stacks -> TIFF (keeps the bit depth)."""
    if restored.n_slices == 1 and restored.data.dtype in (np.uint8, np.uint16) and \
            image.data.dtype == np.uint8:
        return ".png"
    if restored.n_slices == 1 and restored.data.dtype == np.uint16 and image.path is not None and \
            image.path.suffix.lower() == ".png":
        return ".png"  # a 16-bit PNG in stays a 16-bit PNG
    return ".tif"


def result_dict(result: Result, image: ImageVolume, files: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON result of one image (DESIGN.md section 3); ``files`` names the written mask/output."""
    info = result.info
    files = files or {}
    out: dict[str, Any] = {
        "task": info.task,
        "image": {"path": str(image.path) if image.path is not None else info.source_path,
                  "shape": list(image.shape[1:] if image.n_slices == 1 else image.shape)},
        "plugin": {"id": info.plugin_id, "name": info.plugin_name, "version": info.plugin_version,
                   "sha256": info.sha256},
        "provider": info.provider,
        "timing_ms": {k: round(float(v), 3) for k, v in info.timing_ms.items()},
        "warnings": list(info.warnings),  # outside what the plugin was made for (meta.expects; issue 20)
    }
    if image.n_slices > 1:
        out["slices"] = list(info.slice_indices)
    out.update(result.json_record(image, files))  # the result type's own part
    if files.get("overlay"):
        out["overlay"] = files["overlay"]
    return out


def write_prediction(result: Result, image: ImageVolume, out_dir: str | Path, *, stem: str | None = None,
                     overlay: bool = True, reports: Mapping[str, Path] | None = None) -> dict[str, Path]:
    """Write the per-image outputs of ``predict`` into ``out_dir``; returns ``{kind: path}``.

    Kinds: ``json`` always; ``mask`` (segmentation: image height x width, class values, 8/16-bit PNG or
    TIFF/NIfTI for stacks); ``output`` (restoration: same bit depth); ``overlay`` (8-bit RGB PNG).
    ``reports`` (what :func:`workbench.export.report.write_report` wrote, written first) are recorded in
    the JSON as ``"report": {"html": name, "pdf": name}``.

    Raises
    ------
    ExportError
    """
    out_dir = output_dir(out_dir)
    stem = stem or output_stem(image)
    written: dict[str, Path] = {}
    try:
        return _write_all(result, image, out_dir, stem, overlay, written, reports)
    except BaseException:
        # all or nothing per image: a full disk midway leaves no orphan mask without its JSON
        for path in written.values():
            try:
                path.unlink()
            except OSError:
                pass
        raise


def _write_all(result: Result, image: ImageVolume, out_dir: Path, stem: str, overlay: bool,
               written: dict[str, Path], reports: Mapping[str, Path] | None) -> dict[str, Path]:
    names: dict[str, str] = {}
    if isinstance(result, SegmentationResult):
        path = out_dir / f"{stem}_mask{mask_suffix(image)}"
        written["mask"] = write_mask(path, result.mask, like=image)
    elif isinstance(result, RestorationResult):
        restored = result.image
        path = out_dir / f"{stem}_restored{restored_suffix(image, restored)}"
        if path.suffix == ".png":
            written["output"] = write_png(path, restored.data[0])
        else:
            data = restored.data if restored.n_slices > 1 else restored.data[0]
            written["output"] = write_tiff(path, data, spacing=restored.spacing if restored.spacing_known else None,
                                           metadata=_provenance(result))
    if overlay:
        written["overlay"] = write_overlay_png(out_dir / f"{stem}_overlay.png", render_overlay(result, image))
    names = {k: v.name for k, v in written.items()}
    json_path = out_dir / f"{stem}.json"
    record = result_dict(result, image, names)
    if reports:
        record["report"] = {k.removeprefix("report_"): Path(v).name for k, v in reports.items()}
    try:
        atomic_write_text(json_path, json.dumps(record, indent=2))
    except OSError as exc:
        raise ExportError(f"cannot write ({exc.strerror or exc})", path=json_path) from exc
    written["json"] = json_path
    return written


# Overlays are pictures for eyes, written for every image of a batch: zlib level 1, the SUB row filter
# instead of libpng's adaptive choice (which tries every filter on every row) and run-length matching
# (Z_RLE: cheap, and still collapses flat backgrounds to nothing after the SUB filter). Measured on a
# noisy 256x256 RGB overlay with this OpenCV build: ~2.2-2.8 ms instead of ~5 ms (level 1, adaptive) or
# ~8-11 ms (default level 3), 104 KB instead of 86 KB. (OpenCV < 4.11 lacks the filter flag.)
_OVERLAY_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
if hasattr(cv2, "IMWRITE_PNG_FILTER"):
    _OVERLAY_PNG_PARAMS += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]


def write_overlay_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an 8-bit RGB overlay ``(y, x, 3)`` as a PNG atomically, tuned for encoding speed.

    Raises
    ------
    ExportError
        Not an 8-bit RGB image, or the file cannot be written.
    """
    path = Path(path)
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ExportError(f"an overlay is 8-bit RGB (y, x, 3), got {rgb.dtype} {rgb.shape}", path=path)
    return write_png_encoded(path, cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR), _OVERLAY_PNG_PARAMS)


def _provenance(result: Result) -> dict[str, Any]:
    info = result.info
    # no source path: it is often the patient's name (the <stem>.json beside the file names the input)
    return {"plugin_id": info.plugin_id, "plugin_version": info.plugin_version,
            "sha256": info.sha256, "provider": info.provider}
