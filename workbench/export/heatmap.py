"""Heat maps of explanations (saliency / uncertainty) as files: the float32 TIFF in image geometry, an
8-bit overlay PNG (colormap over the image, with a legend strip) and the JSON record.

Shared by ``workbench explain``, the GUI's export of a heat-map layer and the report figure, so the three
show the same colours for the same values. No source path goes into any of these files.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..core.errors import ExportError
from ..core.image import ImageVolume
from ..io.atomic import atomic_write_text
from ..io.writers import output_dir, write_tiff
from .overlay import display_rgb
from .prediction import write_overlay_png

#: Colormaps offered for heat maps (OpenCV's perceptually uniform ones plus jet for habit).
COLORMAPS = {"inferno": cv2.COLORMAP_INFERNO, "magma": cv2.COLORMAP_MAGMA, "viridis": cv2.COLORMAP_VIRIDIS,
             "plasma": cv2.COLORMAP_PLASMA, "turbo": cv2.COLORMAP_TURBO, "jet": cv2.COLORMAP_JET}


def display_range(values: np.ndarray, method: str) -> tuple[float, float]:
    """The value range the colours span: ``[0, 1]`` for uncertainty maps (their units are bounded);
    ``[0, max]`` for saliency (negative saliency -- hiding the pixel *raises* the score -- is shown as
    the lowest colour: the map answers "what supports the class")."""
    if method in ("entropy", "margin", "tta"):
        return 0.0, 1.0
    top = float(np.max(values)) if values.size else 0.0
    return 0.0, top if top > 0 else 1.0


def colormap_lut(name: str = "inferno") -> np.ndarray:
    """``(256, 3)`` uint8 RGB lookup table of a colormap."""
    if name not in COLORMAPS:
        raise ExportError(f"colormap {name}: expected one of {', '.join(COLORMAPS)}")
    ramp = np.arange(256, dtype=np.uint8).reshape(1, 256)
    return cv2.cvtColor(cv2.applyColorMap(ramp, COLORMAPS[name]), cv2.COLOR_BGR2RGB).reshape(256, 3)


def normalise(values: np.ndarray, vrange: tuple[float, float]) -> np.ndarray:
    lo, hi = vrange
    return np.clip((values.astype(np.float32) - lo) / max(hi - lo, 1e-12), 0.0, 1.0)


def colorize(values: np.ndarray, vrange: tuple[float, float], cmap: str = "inferno") -> np.ndarray:
    """``(H, W)`` values -> ``(H, W, 4)`` uint8 RGBA: colour from the colormap, alpha = the normalised
    value, so that low values leave the image visible (and zero saliency is fully transparent)."""
    norm = normalise(values, vrange)
    idx = np.rint(norm * 255).astype(np.uint8)
    rgba = np.empty(values.shape + (4,), np.uint8)
    rgba[..., :3] = colormap_lut(cmap)[idx]
    rgba[..., 3] = np.rint(np.sqrt(norm) * 255).astype(np.uint8)  # sqrt: faint values still show
    return rgba


def blend_heatmap(rgb: np.ndarray, values: np.ndarray, vrange: tuple[float, float], *, cmap: str = "inferno",
                  opacity: float = 0.6) -> np.ndarray:
    """The heat map over an 8-bit RGB picture (per-pixel alpha = opacity x the colour's alpha)."""
    rgba = colorize(values, vrange, cmap)
    a = (rgba[..., 3:4].astype(np.float32) / 255.0) * float(opacity)
    out = rgb.astype(np.float32) * (1.0 - a) + rgba[..., :3].astype(np.float32) * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def legend_strip(width: int, vrange: tuple[float, float], units: str, *, cmap: str = "inferno") -> np.ndarray:
    """An RGB band: the colour ramp with its end values and the units under it."""
    width = max(int(width), 160)
    scale = 0.35 if width < 320 else 0.45
    bar_h, text_h = 10, 16
    band = np.full((bar_h + 2 * text_h + 6, width, 3), 24, np.uint8)
    ramp = colormap_lut(cmap)[np.linspace(0, 255, width - 8).astype(np.uint8)]
    band[3:3 + bar_h, 4:width - 4] = ramp[np.newaxis]
    white = (235, 235, 235)
    lo, hi = vrange
    y = 3 + bar_h + text_h - 4
    cv2.putText(band, f"{lo:.3g}", (4, y), cv2.FONT_HERSHEY_SIMPLEX, scale, white, 1, cv2.LINE_AA)
    hi_text = f"{hi:.3g}"
    (tw, _), _ = cv2.getTextSize(hi_text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.putText(band, hi_text, (width - 4 - tw, y), cv2.FONT_HERSHEY_SIMPLEX, scale, white, 1, cv2.LINE_AA)
    text = units
    while len(text) > 3 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > width - 8:
        text = text[:-4] + "..."
    cv2.putText(band, text, (4, y + text_h), cv2.FONT_HERSHEY_SIMPLEX, scale, white, 1, cv2.LINE_AA)
    return band


def render_heatmap(expl: Any, image: ImageVolume, *, cmap: str = "inferno", opacity: float = 0.6,
                   legend: bool = True) -> np.ndarray:
    """The overlay picture of an explanation: its slice of the image, the heat map, a peak marker for
    saliency, and the legend strip under it."""
    rgb = display_rgb(image, expl.slice_index)
    if rgb.shape[:2] != expl.map.shape:
        raise ExportError(f"heat map of {expl.map.shape[0]}x{expl.map.shape[1]} does not match the image "
                          f"slice of {rgb.shape[0]}x{rgb.shape[1]}")
    vrange = display_range(expl.map, expl.method)
    out = blend_heatmap(rgb, expl.map, vrange, cmap=cmap, opacity=opacity)
    if expl.method in ("occlusion", "rise", "gradcam"):
        p = expl.peak
        r = max(3, min(out.shape[:2]) // 40)
        cv2.drawMarker(out, (p["x"], p["y"]), (0, 255, 255), cv2.MARKER_CROSS, 2 * r + 1, max(1, r // 3))
    if not legend:
        return out
    strip = legend_strip(out.shape[1], vrange, expl.units, cmap=cmap)
    if strip.shape[1] != out.shape[1]:  # a narrow image: pad it to the legend's minimum width
        pad = np.full((out.shape[0], strip.shape[1] - out.shape[1], 3), 24, np.uint8)
        out = np.concatenate([out, pad], axis=1)
    return np.concatenate([out, strip], axis=0)


def explanation_record(expl: Any, image: ImageVolume, files: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON of ``workbench explain`` (no source path: file names may carry patient names)."""
    rec = expl.as_dict()
    rec["image"] = {"shape": [int(image.height), int(image.width)], "slices": int(image.n_slices)}
    rec["files"] = dict(files or {})
    return rec


def write_explanation(expl: Any, image: ImageVolume, out_dir: str | Path, stem: str, *, cmap: str = "inferno",
                      opacity: float = 0.6, overlay: bool = True) -> dict[str, Path]:
    """Write ``<stem>_saliency.tiff`` (float32, image geometry), ``<stem>_saliency.png`` (overlay) and
    ``<stem>.json``; returns the paths by kind (``tiff``, ``png``, ``json``).

    Raises
    ------
    ExportError
    """
    out_dir = output_dir(out_dir)
    written: dict[str, Path] = {}
    spacing = (image.spacing[1], image.spacing[2]) if image.spacing_known else None
    written["tiff"] = write_tiff(out_dir / f"{stem}_saliency.tiff", np.asarray(expl.map, np.float32),
                                 spacing=spacing,
                                 metadata={"method": expl.method, "plugin": expl.plugin_id, "units": expl.units,
                                           "slice": expl.slice_index})
    if overlay:
        written["png"] = write_overlay_png(out_dir / f"{stem}_saliency.png",
                                           render_heatmap(expl, image, cmap=cmap, opacity=opacity))
    rec = explanation_record(expl, image, {k: p.name for k, p in written.items()})
    json_path = out_dir / f"{stem}.json"
    try:
        atomic_write_text(json_path, json.dumps(rec, indent=2) + "\n")
    except OSError as exc:
        raise ExportError(f"cannot write ({exc.strerror or exc})", path=json_path) from exc
    written["json"] = json_path
    return written
