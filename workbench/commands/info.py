"""``workbench info FILE [--json]``: what the reader sees in a file or DICOM folder."""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any

NAME = "info"
HELP = "show what the reader sees: shape, dtype, spacing, modality, window, value range (HU for CT)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="image file, NIfTI, .npy, DICOM file or DICOM folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--series", metavar="UID", default=None,
                        help="DICOM folder: the SeriesInstanceUID to read (default: the largest series)")


def describe(path: str, *, series_uid: str | None = None) -> dict[str, Any]:
    """The facts ``info`` prints, as a JSON-ready dict.

    Raises
    ------
    ImageReadError
        The file cannot be read.
    """
    from ..io import read_image, sniff_format

    vol = read_image(path, series_uid=series_uid)
    lo, hi = vol.value_range()
    meta = vol.metadata
    out: dict[str, Any] = {
        "path": str(vol.path),
        "format": meta.get("format", sniff_format(path)),
        "shape": list(vol.shape),
        "dtype": str(vol.data.dtype),
        "spacing": list(vol.spacing),
        "spacing_known": vol.spacing_known,
        "origin": list(vol.origin),
        "modality": vol.modality,
        "window": list(vol.window) if vol.window is not None else None,
        "default_window": list(vol.default_window()),
        "invert_display": vol.invert_display,
        "min": lo,
        "max": hi,
        "units": "HU" if vol.is_ct else None,
    }
    if meta.get("format") == "DICOM":
        out["series_count"] = meta.get("series_count", 1)
        out["series_uid"] = meta.get("SeriesInstanceUID")
        out["series_description"] = meta.get("dicom", {}).get("SeriesDescription")
        out["transfer_syntax"] = meta.get("transfer_syntax")
        out["photometric"] = meta.get("photometric")
        if meta.get("series"):
            out["series"] = [{k: s[k] for k in ("uid", "description", "modality", "n_files")}
                             for s in meta["series"]]
    if meta.get("warnings"):
        out["warnings"] = list(meta["warnings"])
    if meta.get("format") == "NIfTI":
        out["source_orientation"] = meta.get("source_orientation")
        out["n_volumes"] = meta.get("n_volumes")
    return out


def _fmt(values: list[float]) -> str:
    return " x ".join(f"{v:.6g}" for v in values)


def run(args: argparse.Namespace) -> int:
    # Library warnings (pydicom on odd-but-readable headers) would add stray stderr lines; the command's
    # contract is its own output, plus exactly one line on error.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = describe(args.file, series_uid=args.series)
    if args.json:
        json.dump(info, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    unit = " HU" if info["units"] == "HU" else ""
    lines = [
        f"file:      {info['path']}",
        f"format:    {info['format']}",
        f"shape:     {' x '.join(map(str, info['shape']))}  (z, y, x{', c' if len(info['shape']) == 4 else ''})",
        f"dtype:     {info['dtype']}",
        f"spacing:   {_fmt(info['spacing'])} mm (z, y, x){'' if info['spacing_known'] else '  [unknown]'}",
        f"modality:  {info['modality'] or '-'}",
        "window:    " + (f"center {info['window'][0]:.6g}, width {info['window'][1]:.6g}"
                         if info["window"] else "- (none in file)"),
        f"range:     {info['min']:.6g} .. {info['max']:.6g}{unit}",
    ]
    if info.get("invert_display"):
        lines.append("display:   inverted (MONOCHROME1)")
    if "series_count" in info:
        lines.append(f"series:    {info['series_count']} in source; read {info.get('series_uid')}"
                     + (f" ({info['series_description']})" if info.get("series_description") else ""))
    for warning in info.get("warnings", []):
        lines.append(f"warning:   {warning}")
    print("\n".join(lines))
    return 0
