"""``workbench segment IMAGE [steps...] -o MASK``: classic segmentation, the steps applied in order.

Selection steps (``--threshold``, ``--grow``) compute a mask from the image; when a mask already exists
they work inside it (threshold within the ROI, grow without leaving it). Clean-up steps (``--islands``,
``--fill-holes``, ``--dilate``...) change the current mask. Every step calls the same
:mod:`workbench.processing` function the GUI uses.

``--from-mask FILE`` starts from an existing mask (a model's or a colleague's) aligned to IMAGE by
:func:`workbench.io.mask_import.read_mask` -- File > Import mask… of the GUI: steps then correct it, and with no
step the aligned mask alone is written (e.g. a DICOM SEG or a NIfTI of another grid onto the image's grid).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ProcessingError
from ._prompt_cli import add_prompt_arguments, parse_prompt, prompt_mask

NAME = "segment"
HELP = "classic segmentation of an image (threshold, region grow, islands, morphology), steps in order"

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


class _Step(argparse.Action):
    """Append ``(step, value)`` to ``namespace.steps`` so the steps keep their command-line order."""

    def __call__(self, parser, namespace, values, option_string=None):
        steps = getattr(namespace, "steps", None) or []
        steps.append((self.dest, values))
        namespace.steps = steps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="image file, NIfTI, .npy, DICOM file or folder")
    parser.add_argument("-o", "--output", metavar="MASK", required=True,
                        help="mask to write: .png (a plane), .tif/.tiff or .nii/.nii.gz (a stack)")
    steps = parser.add_argument_group("steps (applied in the order given; each may repeat)")
    steps.add_argument("--threshold", dest="threshold", action=_Step, metavar="METHOD|LO:HI",
                       help="automatic (otsu, li, yen, triangle, mean, isodata, multiotsu: foreground above "
                            "the threshold) or an inclusive range LO:HI (either side may be empty)")
    steps.add_argument("--grow", dest="grow", action=_Step, metavar="X,Y[,Z]:TOL",
                       help="region grow from pixel X,Y (Z: slice of a stack) within seed value +- TOL")
    steps.add_argument("--islands", dest="islands", action=_Step, metavar="largest|min:N",
                       help="keep the largest island, or remove islands under N pixels "
                            "(min:Nmm2 / min:Nmm3 for an area / a volume)")
    steps.add_argument("--fill-holes", dest="fill_holes", action=_Step, nargs=0,
                       help="fill the holes of the mask")
    for name, what in (("dilate", "grow the mask by"), ("erode", "shrink the mask by"),
                       ("open", "open (erode then dilate) by"), ("close", "close (dilate then erode) by"),
                       ("smooth", "smooth the outline with a Gaussian of sigma")):
        steps.add_argument(f"--{name}", dest=name, action=_Step, metavar="MM",
                           help=f"{what} a radius in mm (needs a known pixel spacing), or pixels with a px "
                                "suffix (e.g. 3px)")
    parser.add_argument("--connectivity", type=int, default=None, choices=[4, 8, 6, 18, 26],
                        help="4/8: per plane; 6/18/26: through the stack (default 8 on a plane, 26 on a stack)")
    parser.add_argument("--value", type=int, default=1, help="label value written for the mask (default 1)")
    parser.add_argument("--force", action="store_true",
                        help="allow -o to overwrite an input, a session or a source DICOM image")
    parser.add_argument("--into", metavar="LABELS", default=None,
                        help="write the mask into this existing label map (same size as IMAGE; e.g. a mask "
                             "exported earlier) instead of an empty one, with the --overwrite rule of the GUI")
    parser.add_argument("--from-mask", metavar="FILE", default=None,
                        help="start from an existing mask aligned to IMAGE: a PNG/TIFF label image of its size, a "
                             "NIfTI (resampled by the affines) or a DICOM SEG of the series; with no steps it is "
                             "just written to -o on IMAGE's grid")
    parser.add_argument("--overwrite", choices=["any", "background", "selected"], default="any",
                        help="with --into / --from-mask: paint over any label (default), only over background, or over "
                             "background and label --selected (the brush's rules)")
    parser.add_argument("--selected", type=int, default=None, metavar="N",
                        help="the label the 'selected' rule may paint over")
    add_prompt_arguments(parser)  # --click/--box -m PLUGIN: a promptable model's mask (commands/_prompt_cli.py)
    parser.set_defaults(steps=None)


# -- argument parsing -------------------------------------------------------------------------------
def _number(text: str, what: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ProcessingError(f"{what}: {text!r} is not a number") from None
    if not np.isfinite(v):
        raise ProcessingError(f"{what}: {text!r} is not a finite number")
    return v


def parse_threshold(text: str) -> dict[str, Any]:
    """``"otsu"`` -> ``{"method": "otsu"}``; ``"100:300"`` -> ``{"lo": 100.0, "hi": 300.0}``."""
    from ..processing.threshold import METHODS

    arg = f"--threshold {text}"
    t = text.strip()
    if ":" not in t:
        if t.lower() not in METHODS:
            raise ProcessingError(f"{arg}: expected one of {', '.join(METHODS)} or LO:HI")
        return {"method": t.lower()}
    lo_s, _, hi_s = t.partition(":")
    lo = _number(lo_s, f"{arg}: low bound") if lo_s.strip() else None
    hi = _number(hi_s, f"{arg}: high bound") if hi_s.strip() else None
    if lo is None and hi is None:
        raise ProcessingError(f"{arg}: give at least one bound of LO:HI")
    if lo is not None and hi is not None and lo > hi:
        raise ProcessingError(f"{arg}: low bound {lo:g} is above the high bound {hi:g}")
    return {"lo": lo, "hi": hi}


def parse_grow(text: str) -> tuple[tuple[float, ...], float]:
    """``"X,Y[,Z]:TOL"`` -> ``((x, y[, z]), tol)``."""
    arg = f"--grow {text}"
    point, sep, tol_s = text.partition(":")
    if not sep:
        raise ProcessingError(f"{arg}: expected X,Y[,Z]:TOL")
    parts = [p.strip() for p in point.split(",")]
    if len(parts) not in (2, 3):
        raise ProcessingError(f"{arg}: the seed needs X,Y or X,Y,Z")
    coords = []
    for name, p in zip("XYZ", parts):
        if not re.fullmatch(r"[-+]?\d+", p):
            raise ProcessingError(f"{arg}: seed {name} {p!r} is not a whole pixel index")
        coords.append(float(p))
    try:
        tol = float(tol_s)
    except ValueError:
        raise ProcessingError(f"{arg}: tolerance is not a number") from None
    if not np.isfinite(tol) or tol < 0:
        raise ProcessingError(f"{arg}: tolerance must be a number >= 0")
    return tuple(coords), tol


def parse_islands(text: str) -> dict[str, Any]:
    """``"largest"`` or ``"min:N"`` / ``"min:Nmm2"`` / ``"min:Nmm3"``."""
    arg = f"--islands {text}"
    t = text.strip().lower()
    if t == "largest":
        return {"op": "largest"}
    m = re.fullmatch(rf"min:({_NUMBER})(px|mm2|mm3)?", t)
    if not m:
        raise ProcessingError(f"{arg}: expected largest, min:N, min:Nmm2 or min:Nmm3")
    value = float(m.group(1))
    if value < 0:
        raise ProcessingError(f"{arg}: the minimum must be >= 0")
    unit = m.group(2) or "px"
    return {"op": "min", "value": value, "unit": unit}


def parse_radius(text: str, option: str) -> tuple[float, str]:
    """``"2"``/``"2mm"`` -> ``(2.0, "mm")``; ``"3px"`` -> ``(3.0, "px")``."""
    t = text.strip().lower()
    m = re.fullmatch(rf"({_NUMBER})\s*(mm|px)?", t)
    if not m:
        raise ProcessingError(f"--{option} {text}: expected a radius in mm (e.g. 2 or 2mm) or pixels (3px)")
    value = float(m.group(1))
    if value < 0:
        raise ProcessingError(f"--{option} {text}: the radius must be >= 0")
    return value, m.group(2) or "mm"


# -- the pipeline ---------------------------------------------------------------------------------
def run_steps(image: np.ndarray, steps: list[tuple[str, Any]], *, spacing: tuple[float, float, float] | None,
              connectivity: int | None = None, initial: np.ndarray | None = None) -> np.ndarray:
    """Apply the parsed ``steps`` to a scalar ``(z, y, x)`` image; returns the final bool mask.

    ``spacing`` is ``None`` when unknown. Steps are ``(name, raw text)`` as the command line gave them.
    """
    from .. import processing as P

    plane = image.shape[0] == 1
    img = image[0] if plane else image
    sp = None if spacing is None else (tuple(spacing[1:]) if plane else tuple(spacing))
    mask: np.ndarray | None = None if initial is None else (initial[0] if plane else initial)

    def need_mask(step: str) -> np.ndarray:
        if mask is None:
            raise ProcessingError(f"--{step.replace('_', '-')}: needs a mask from an earlier --threshold or --grow")
        return mask

    for name, raw in steps:
        if name == "threshold":
            spec = parse_threshold(raw)
            mask = P.apply_threshold(img, method=spec.get("method"), lo=spec.get("lo"), hi=spec.get("hi"),
                                     mask=mask)
        elif name == "grow":
            coords, tol = parse_grow(raw)
            if plane:
                if len(coords) == 3 and coords[2] != 0:
                    raise ProcessingError(f"--grow {raw}: the image has one slice; Z must be 0 or omitted")
                seed: tuple[float, ...] = (coords[1], coords[0])
            else:
                if len(coords) != 3:
                    raise ProcessingError(f"--grow {raw}: the image is a stack of {image.shape[0]} slices; "
                                          "give X,Y,Z")
                seed = (coords[2], coords[1], coords[0])
            if any(c < 0 or c >= n for c, n in zip(seed, img.shape)):
                size = "x".join(str(n) for n in reversed(img.shape))
                raise ProcessingError(f"--grow {raw}: seed is outside the image ({size})")
            if mask is not None and not mask[tuple(int(c) for c in seed)]:
                raise ProcessingError(f"--grow {raw}: seed is outside the current mask")
            mask = P.region_grow(img, [seed], tolerance=tol, connectivity=connectivity, within=mask)
        elif name == "islands":
            spec = parse_islands(raw)
            m = need_mask(name)
            if spec["op"] == "largest":
                mask = P.keep_largest(m, connectivity=connectivity)
            elif spec["unit"] == "px":
                mask = P.remove_small(m, min_size=spec["value"], connectivity=connectivity)
            else:
                if sp is None:
                    raise ProcessingError(f"--islands {raw}: the pixel spacing of the image is unknown; "
                                          "give a size in pixels (min:N)")
                key = "min_area_mm2" if spec["unit"] == "mm2" else "min_volume_mm3"
                conn = connectivity
                if conn is None and not plane:
                    conn = 8 if key == "min_area_mm2" else 26
                mask = P.remove_small(m, spacing=sp, connectivity=conn, **{key: spec["value"]})
        elif name == "fill_holes":
            mask = P.fill_holes(need_mask(name))
        elif name in ("dilate", "erode", "open", "close", "smooth"):
            radius, units = parse_radius(raw, name)
            m = need_mask(name)
            if units == "mm" and sp is None:
                raise ProcessingError(f"--{name} {raw}: the radius is in mm but the pixel spacing of the image "
                                      "is unknown; give pixels instead (e.g. 3px)")
            fn = {"dilate": P.dilate, "erode": P.erode, "open": P.opening, "close": P.closing,
                  "smooth": P.smooth}[name]
            mask = fn(m, radius, units=units, spacing=sp)
        else:  # pragma: no cover - argparse only produces the names above
            raise ProcessingError(f"unknown step {name}")
    if mask is None:
        raise ProcessingError("segment: give at least one --threshold or --grow step")
    return mask[np.newaxis] if plane else mask


def _write(path: Path, labels: np.ndarray, vol) -> None:
    from ..io import write_nifti, write_png, write_tiff

    name = path.name.lower()
    if name.endswith(".png"):
        if labels.shape[0] != 1:
            raise ProcessingError(f"{path}: a PNG holds one plane but the mask has {labels.shape[0]} slices; "
                                  "write .tif or .nii.gz")
        write_png(path, labels[0])
    elif name.endswith((".tif", ".tiff")):
        write_tiff(path, labels if labels.shape[0] > 1 else labels[0],
                   spacing=vol.spacing if vol.spacing_known else None)
    elif name.endswith((".nii", ".nii.gz")):
        write_nifti(path, labels, like=vol)
    else:
        raise ProcessingError(f"{path}: the mask must be .png, .tif/.tiff or .nii/.nii.gz")


def _read_into(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """The ``--into`` label map: an integer array of the image's size."""
    from ..io import read_image

    base = read_image(path).data
    if base.ndim != 3 or not np.issubdtype(base.dtype, np.integer) or base.shape != shape:
        raise ProcessingError(f"--into {path}: needs an integer label map of the image's size {shape}, "
                              f"got {base.dtype} {base.shape}")
    if base.size and (base.min() < 0 or base.max() > 65535):
        raise ProcessingError(f"--into {path}: label values must be 0..65535")
    return base.astype(np.uint16)


def _from_mask(path: Path, vol) -> tuple[np.ndarray, str]:
    """The ``--from-mask`` label map on ``vol``'s grid (the GUI's File > Import mask code path) and a note."""
    from ..core.edits import import_mask
    from ..core.labels import LabelMap
    from ..io.mask_import import read_mask

    imported = read_mask(path, vol)
    labels = LabelMap((vol.n_slices, vol.height, vol.width))
    import_mask(labels, imported.data, imported.labels)
    note = "; ".join([imported.format] + imported.notes)
    return labels.data, f"{path} ({note}, {len(imported.labels)} labels)"


def _write_into(base: np.ndarray, mask: np.ndarray, args: argparse.Namespace) -> np.ndarray:
    """The label map ``base`` with ``mask`` written as label ``--value`` by the document's paint rule
    (:func:`workbench.core.edits.paint_rule` / :func:`~workbench.core.edits.write_mask`, as the GUI does)."""
    from ..core.edits import paint_rule, write_mask
    from ..core.labels import LabelMap

    if args.overwrite == "selected" and args.selected is None:
        raise ProcessingError("--overwrite selected: give the label it may paint over with --selected N")
    labels = LabelMap(mask.shape)
    labels.load(base, [])
    value, overwrite, selected = paint_rule(args.value, args.overwrite, args.selected or 0, erase=False)
    write_mask(labels, mask, name="segment", value=value, overwrite=overwrite, selected=selected)
    data = labels.data
    return data.astype(np.uint8) if int(data.max(initial=0)) <= 255 else data


def run(args: argparse.Namespace) -> int:
    from ..io import read_image
    from ..io.paths import check_output
    from ..processing import to_scalar

    steps = list(args.steps or [])
    prompt = parse_prompt(args)  # --click/--box -m PLUGIN
    if not steps and args.from_mask is None and prompt is None:
        raise ProcessingError("segment: give at least one step (--threshold, --grow, ...) or --from-mask FILE")
    if args.from_mask is not None and args.into is not None:
        raise ProcessingError("segment: --into and --from-mask both give the starting label map; use one")
    # Check every step's syntax before reading the image, so a typo fails fast.
    for name, raw in steps:
        if name == "threshold":
            parse_threshold(raw)
        elif name == "grow":
            parse_grow(raw)
        elif name == "islands":
            parse_islands(raw)
        elif name in ("dilate", "erode", "open", "close", "smooth"):
            parse_radius(raw, name)
    if not 1 <= args.value <= 65535:
        raise ProcessingError(f"--value {args.value}: must be 1..65535")
    out = Path(args.output)
    if not out.name.lower().endswith((".png", ".tif", ".tiff", ".nii", ".nii.gz")):
        raise ProcessingError(f"-o {out}: the mask must be .png, .tif/.tiff or .nii/.nii.gz")
    check_output(out, inputs=[args.image, *([args.into] if args.into else [])], option="-o", force=args.force)
    vol = read_image(args.image)
    image = to_scalar(vol.data)
    spacing = vol.spacing if vol.spacing_known else None
    imported = ""
    if args.from_mask is not None:
        base, imported = _from_mask(Path(args.from_mask), vol)
        if not steps:
            labels = base if int(base.max(initial=0)) > 255 else base.astype(np.uint8)
            _write(out, labels, vol)
            print(f"{out}: imported {imported}, {int(np.count_nonzero(labels))} labelled pixels", file=sys.stdout)
            return 0
    initial = prompt_mask(args, vol, prompt) if prompt is not None else None
    mask = run_steps(image, steps, spacing=spacing, connectivity=args.connectivity, initial=initial)
    if args.from_mask is not None:
        labels = _write_into(base, mask, args)
    elif args.into is not None:
        labels = _write_into(_read_into(Path(args.into), mask.shape), mask, args)
    else:
        dtype = np.uint8 if args.value <= 255 else np.uint16
        labels = np.where(mask, args.value, 0).astype(dtype)
    _write(out, labels, vol)
    n = int(np.count_nonzero(mask))
    extra = ""
    if spacing is not None:
        if mask.shape[0] == 1:
            extra = f" ({n * spacing[1] * spacing[2]:.6g} mm²)"
        else:
            extra = f" ({n * spacing[0] * spacing[1] * spacing[2]:.6g} mm³)"
    if imported:
        extra += f", on the mask imported from {imported}"
    print(f"{out}: {n} pixels{extra}", file=sys.stdout)
    return 0
