"""``workbench search IMAGE --db LIBRARY.wbindex [-k 10] [--slice N] [--roi X0,Y0,X1,Y1] [--json]``: the most
similar indexed images."""
from __future__ import annotations

import argparse
import json
import sys

NAME = "search"
HELP = "find the indexed images most similar to IMAGE (cosine similarity of encoder vectors)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="the query image (file, NIfTI, DICOM)")
    parser.add_argument("--db", required=True, metavar="LIBRARY.wbindex", help="an index built by `workbench index`")
    parser.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    parser.add_argument("-m", "--model", default=None, metavar="ENCODER",
                        help="the encoder (default: the one the index was built with)")
    parser.add_argument("--slice", type=int, default=None, help="query slice of a volume (default: the middle one)")
    parser.add_argument("--roi", default=None, metavar="X0,Y0,X1,Y1",
                        help="query by this region of the slice only (pixels; x right, y down, end exclusive)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of text")


def run(args: argparse.Namespace) -> int:
    from ..similar.query import parse_roi, search

    roi = parse_roi(args.roi) if args.roi is not None else None
    hits = search(args.image, args.db, k=args.k, encoder=args.model, slice_index=args.slice, roi=roi)
    if args.json:
        json.dump([h.as_dict() for h in hits], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not hits:
        print("the index is empty")
    for h in hits:
        where = f" [slice {h.slice}]" if h.slice else ""
        print(f"{h.rank:3d}  {h.score:.4f}  {h.path}{where}")
    return 0
