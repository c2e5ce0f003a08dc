"""``workbench index FOLDER --db LIBRARY.wbindex -m ENCODER [--recursive] [--identity] [--duplicates]``: build or
update a similar-case index (and list near-duplicates)."""
from __future__ import annotations

import argparse
import sys

NAME = "index"
HELP = "embed a folder of images into a similar-case index (incremental; see docs/SEARCH.md)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="FOLDER", help="folder of images (PNG/JPEG/TIFF, DICOM, NIfTI, .npy)")
    parser.add_argument("--db", required=True, metavar="LIBRARY.wbindex", help="the index file (created if missing)")
    parser.add_argument("-m", "--model", default="similar-encoder", metavar="ENCODER",
                        help="a task: embedding plugin (id or folder; default: the bundled similar-encoder)")
    parser.add_argument("--recursive", action="store_true", help="include sub-folders")
    parser.add_argument("--identity", action="store_true",
                        help="also store patient/study fields of DICOM files (PHI; off by default)")
    parser.add_argument("--no-thumbnails", action="store_true", help="do not store 64 px thumbnails")
    parser.add_argument("--duplicates", action="store_true",
                        help="after indexing, list near-duplicate pairs of different files")
    parser.add_argument("--threshold", type=float, default=0.995,
                        help="cosine similarity of a near-duplicate pair (default 0.995)")


def run(args: argparse.Namespace) -> int:
    from ..core.errors import WorkbenchError
    from ..similar.build import find_duplicates, index_folder

    def progress(done: int, total: int, path: str) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\rindex: {done}/{total}")
            sys.stderr.flush()

    if args.duplicates and not 0.0 < args.threshold <= 1.0:  # refused before a long run, not after it
        raise WorkbenchError(f"--threshold {args.threshold}: must be in (0, 1]")
    summary = index_folder(args.folder, args.db, args.model, recursive=args.recursive, progress=progress,
                           identity=args.identity, thumbnails=not args.no_thumbnails)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    for line in summary.lines():
        print(line)
    if args.duplicates:
        pairs = find_duplicates(args.db, threshold=args.threshold)
        print(f"near-duplicates (cosine >= {args.threshold:g}): {len(pairs)} pairs")
        for p in pairs:
            a = f"{p.a[0]}" + (f" [slice {p.a[1]}]" if p.a[1] else "")
            b = f"{p.b[0]}" + (f" [slice {p.b[1]}]" if p.b[1] else "")
            print(f"{p.score:.4f}  {a}  {b}")
    return 0
