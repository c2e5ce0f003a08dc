"""``workbench export SESSION [--mask OUT] [--measurements CSV] [--report DIR]``: exports of a saved session."""
from __future__ import annotations

import argparse

from ..core.errors import ExportError

NAME = "export"
HELP = "write the label map (PNG/TIFF/NIfTI/DICOM SEG), per-label measurements or reports of a saved session"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", metavar="SESSION", help="a .wbsession file saved by the app (File > Save session)")
    parser.add_argument("--mask", metavar="OUT", default=None,
                        help="write the whole label map: .png (one slice), .tif (stack), .nii / .nii.gz (with the "
                             "image geometry) or .dcm (DICOM SEG, DICOM sources only)")
    parser.add_argument("--measurements", metavar="CSV", default=None,
                        help="write per-label measurements (pixels, area/volume in mm, intensity statistics) as CSV")
    parser.add_argument("--report", metavar="DIR", default=None,
                        help="write de-identified HTML + PDF reports (the label map and each model result) into DIR")
    parser.add_argument("--report-format", choices=("html", "pdf", "both"), default="both",
                        help="report formats (default both)")
    parser.add_argument("--allow-changed-source", action="store_true",
                        help="open the session even if the source image's size/content changed since saving "
                             "(its shape must still match)")


def run(args: argparse.Namespace) -> int:
    from ..export.session_exports import export_label_map, export_measurements, export_reports
    from ..session import read_session

    if not (args.mask or args.measurements or args.report):
        raise ExportError("nothing to export: give --mask OUT, --measurements CSV and/or --report DIR")
    session = read_session(args.session, allow_changed_source=args.allow_changed_source)
    written = []
    if args.mask:
        written += export_label_map(session, args.mask)
    if args.measurements:
        written += export_measurements(session, args.measurements)
    if args.report:
        formats = ("html", "pdf") if args.report_format == "both" else (args.report_format,)
        written += export_reports(session, args.report, formats=formats)
    for path in written:
        print(path)
    return 0
