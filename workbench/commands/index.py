"""``workbench index FOLDER --db LIBRARY.wbindex -m ENCODER [--recursive]``: build or update a similar-case index."""
from __future__ import annotations

import argparse
import sys

NAME = "index"
HELP = "embed a folder of images into a similar-case index (incremental; see docs/SEARCH.md)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="FOLDER", help="folder of images (PNG/JPEG/TIFF, DICOM, NIfTI, .npy)")
    parser.add_argument("--db", required=True, metavar="LIBRARY.wbindex", help="the index file (created if missing)")
    parser.add_argument("-m", "--model", required=True, metavar="ENCODER",
                        help="a task: embedding plugin (id or folder)")
    parser.add_argument("--recursive", action="store_true", help="include sub-folders")


def run(args: argparse.Namespace) -> int:
    from ..similar.build import index_folder

    def progress(done: int, total: int, path: str) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\rindex: {done}/{total}")
            sys.stderr.flush()

    summary = index_folder(args.folder, args.db, args.model, recursive=args.recursive, progress=progress)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    for line in summary.lines():
        print(line)
    return 0
