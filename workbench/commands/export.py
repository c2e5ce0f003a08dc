"""``workbench export SESSION [--mask OUT] [--measurements CSV] [--annotations CSV|JSON] [--report DIR]
[--case-report DIR]``: exports of a saved session."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import ExportError

NAME = "export"
HELP = ("write the label map (PNG/TIFF/NIfTI/DICOM SEG), per-label or annotation measurements, the per-result "
        "reports or the one case report of a saved session")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", metavar="SESSION", help="a .wbsession file saved by the app (File > Save session)")
    parser.add_argument("--mask", metavar="OUT", default=None,
                        help="write the whole label map: .png (one slice), .tif (stack), .nii / .nii.gz (with the "
                             "image geometry) or .dcm (DICOM SEG, DICOM sources only)")
    parser.add_argument("--measurements", metavar="CSV", default=None,
                        help="write per-label measurements (pixels, area/volume in mm, intensity statistics) as CSV")
    parser.add_argument("--annotations", metavar="FILE", default=None,
                        help="write the annotation measurements (rulers, angles, ellipse/rectangle ROIs, text "
                             "arrows) as .csv or .json")
    parser.add_argument("--report", metavar="DIR", default=None,
                        help="write de-identified HTML + PDF reports (the label map and each model result) into DIR")
    parser.add_argument("--report-format", choices=("html", "pdf", "both"), default="both",
                        help="report formats (default both)")
    parser.add_argument("--case-report", metavar="DIR", default=None,
                        help="write ONE de-identified case report (<stem>_case_report.html/.pdf) into DIR: study, "
                             "labels and results with statistics, measurements, key images, provenance")
    parser.add_argument("--reader", metavar="NAME", default="", help="the reader's name in the case report")
    parser.add_argument("--findings", metavar="TEXT", default=None, help="the reader's findings in the case report")
    parser.add_argument("--findings-file", metavar="FILE", default=None,
                        help="read the case report's findings from a UTF-8 text file")
    parser.add_argument("--allow-changed-source", action="store_true",
                        help="open the session even if the source image's size/content changed since saving "
                             "(its shape must still match)")
    parser.add_argument("--keep-identity", action="store_true",
                        help="DICOM SEG: keep the patient/study identity and the original UIDs (to send the SEG "
                             "back to the source PACS); default: de-identified (PS3.15 basic profile)")
    parser.add_argument("--force", action="store_true",
                        help="allow an output to overwrite the session, its source image or another session")


def run(args: argparse.Namespace) -> int:
    from ..session import read_session

    if not (args.mask or args.measurements or args.annotations or args.report or args.case_report):
        raise ExportError("nothing to export: give --mask OUT, --measurements CSV, --annotations FILE, --report DIR "
                          "and/or --case-report DIR")
    from ..io.paths import check_output, protecting

    # check what can be checked before the (possibly slow) read, then again with the source's files
    for option, value, is_folder in (("--mask", args.mask, False), ("--measurements", args.measurements, False),
                                     ("--annotations", args.annotations, False), ("--report", args.report, True),
                                     ("--case-report", args.case_report, True)):
        if value:
            check_output(value, inputs=[args.session], option=option, force=args.force, folder=is_folder)
    args.findings_text = _findings(args)
    session = read_session(args.session, allow_changed_source=args.allow_changed_source)
    inputs = [Path(args.session), *session_sources(session)]
    for option, value in (("--mask", args.mask), ("--measurements", args.measurements),
                          ("--annotations", args.annotations)):
        if value:
            check_output(value, inputs=inputs, option=option, force=args.force)
            check_output(Path(value).with_name(Path(value).name + ".provenance.json"), inputs=inputs,
                         option=option, force=args.force)
    written = []
    with protecting(inputs, enabled=not args.force):
        written += _write(args, session)
    for path in written:
        print(path)
    return 0


def session_sources(session) -> list[Path]:
    """The source image of a session and, for a DICOM series, every file of it."""
    image = session.image
    found: list[Path] = []
    if image.path is not None:
        found.append(Path(image.path))
    for name in image.metadata.get("files", []) or []:
        found.append(Path(name))
    return found


def _write(args: argparse.Namespace, session) -> list[Path]:
    from ..export.session_exports import export_annotations, export_label_map, export_measurements, export_reports

    written: list[Path] = []
    if args.mask:
        written += export_label_map(session, args.mask, keep_identity=args.keep_identity)
    if args.measurements:
        written += export_measurements(session, args.measurements)
    if args.annotations:
        written += export_annotations(session, args.annotations)
    if args.report:
        formats = ("html", "pdf") if args.report_format == "both" else (args.report_format,)
        written += export_reports(session, args.report, formats=formats)
    if args.case_report:
        from ..export.report.case import write_case_report

        formats = ("html", "pdf") if args.report_format == "both" else (args.report_format,)
        written += list(write_case_report(session, args.case_report, reader=args.reader,
                                          findings=args.findings_text, formats=formats).values())
    return written


def _findings(args: argparse.Namespace) -> str:
    """The case report's findings from --findings or --findings-file (read before the slow session read)."""
    if args.findings is not None and args.findings_file:
        raise ExportError("give --findings TEXT or --findings-file FILE, not both")
    if (args.findings is not None or args.findings_file or args.reader) and not args.case_report:
        raise ExportError("--reader, --findings and --findings-file belong to --case-report DIR")
    text = args.findings or ""
    if args.findings_file:
        try:
            text = Path(args.findings_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ExportError(f"--findings-file: cannot read it ({getattr(exc, 'strerror', None) or exc})",
                              path=args.findings_file) from exc
    return text
