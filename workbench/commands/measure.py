"""``workbench measure IMAGE MASK [--json] [--csv FILE]``: per-label statistics in physical units."""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ..core.errors import ProcessingError

NAME = "measure"
HELP = "per-label statistics of a mask over an image: pixels, area/volume, intensity (HU for CT), perimeter"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="image file, NIfTI, .npy, DICOM file or folder")
    parser.add_argument("mask", metavar="MASK", help="label image of the same size (0 = background), e.g. "
                        "the output of `workbench segment` or `predict`")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--csv", metavar="FILE", default=None, help="also write the table as CSV")
    parser.add_argument("--force", action="store_true",
                        help="allow --csv to overwrite an input, a session or a source DICOM image")


def measure_files(image_path: str, mask_path: str):
    """Read both files and measure; returns ``(stats, image volume, spacing or None)``."""
    from ..io import read_image
    from ..processing import measure_labels, to_scalar

    vol = read_image(image_path)
    mask_vol = read_image(mask_path)
    if mask_vol.is_color:
        raise ProcessingError(f"{mask_path}: the mask is a colour image; expected label values (gray)")
    labels = mask_vol.data
    if not np.issubdtype(labels.dtype, np.integer):
        if np.issubdtype(labels.dtype, np.floating) and np.all(np.isfinite(labels)) \
                and np.all(labels == np.round(labels)) and labels.min() >= 0:
            labels = labels.astype(np.int64)
        else:
            raise ProcessingError(f"{mask_path}: the mask holds non-integer values ({labels.dtype})")
    if labels.shape != vol.shape[:3]:
        raise ProcessingError(f"{mask_path}: mask shape {labels.shape} does not match the image "
                              f"{vol.shape[:3]} of {image_path}")
    if labels.size and labels.min() < 0:
        raise ProcessingError(f"{mask_path}: the mask holds negative values")
    spacing = vol.spacing if vol.spacing_known else None
    stats = measure_labels(labels, to_scalar(vol.data), spacing=spacing)
    return stats, vol, spacing


def run(args: argparse.Namespace) -> int:
    from ..export.measurements import write_csv
    from ..io.paths import check_output
    from ..processing import format_table

    if args.csv:
        check_output(args.csv, inputs=[args.image, args.mask], option="--csv", force=args.force)
    stats, vol, spacing = measure_files(args.image, args.mask)
    if args.csv:
        write_csv(stats, args.csv)
    if args.json:
        doc = {
            "image": str(vol.path),
            "mask": str(args.mask),
            "spacing": list(spacing) if spacing is not None else None,
            "units": "HU" if vol.is_ct else None,
            "labels": [s.as_dict() for s in stats],
        }
        print(json.dumps(doc, indent=2))
    else:
        units = "HU" if vol.is_ct else "stored values"
        sp = "unknown (physical sizes omitted)" if spacing is None else \
            " x ".join(f"{s:g}" for s in spacing) + " mm (z, y, x)"
        print(f"{vol.display_name}: spacing {sp}; intensities in {units}", file=sys.stdout)
        print(format_table(stats))
    return 0
