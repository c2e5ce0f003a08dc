"""Shared pieces of the ``predict`` and ``batch`` commands (not a command: the name starts with _)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ..core.results import Result


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", required=True, metavar="PLUGIN",
                        help="id of an installed plugin or a path to a plugin folder")
    parser.add_argument("-o", "--output", default=None, metavar="DIR",
                        help="output folder (created); required unless the site configuration sets "
                             "export_folder (then default: a folder per run inside it, see docs/INSTALL.md)")
    parser.add_argument("--provider", default=None, choices=("auto", "cpu", "cuda", "tensorrt"),
                        help="execution provider (default: the setting, normally auto = the plugin's list, "
                             "filtered, CPU last)")
    parser.add_argument("--no-overlay", action="store_true", help="do not write the overlay PNGs")
    parser.add_argument("--force", action="store_true",
                        help="allow outputs to overwrite input images (refused by default)")
    parser.add_argument("--report", action="store_true",
                        help="also write a de-identified report per image: <stem>_report.html and "
                             "<stem>_report.pdf (see docs/REPORTS.md)")
    parser.add_argument("--report-names", action="store_true",
                        help="name each image by its file stem inside the reports (default: 'image 1', "
                             "'image 2'...: file names often contain the patient's name)")
    parser.add_argument("--report-dates", choices=("remove", "shift"), default="remove",
                        help="dates in reports: remove (default) or shift back by a per-patient offset")


def output_dir(args: argparse.Namespace) -> Path:
    """``-o DIR``, else ``<site export_folder>/<command>-<UTC time>`` (issue 20), else the one-line error."""
    from ..core.errors import WorkbenchError
    from ..core.site import site_policy

    if args.output is not None:
        return Path(args.output)
    site_dir = site_policy().export_dir()
    if site_dir is None:
        raise WorkbenchError("-o DIR is required (the site configuration sets no export_folder)")
    return site_dir / f"{args.command}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"


def write_outputs(args: argparse.Namespace, engine: Any, result: Result, image: Any, out_dir: Path,
                  stem: str, number: int) -> dict[str, Path]:
    """The per-image files of ``predict``/``batch``: :func:`workbench.export.outputs.write_outputs`."""
    from ..export.outputs import write_outputs as write

    return write(args, engine.spec.meta, result, image, out_dir, stem, number)


def summary(result: Result) -> str:
    """One short human line describing a result (:meth:`summary` of its type, :mod:`workbench.core.results`)."""
    return result.summary()


def warn_provider(requested: str, used: str) -> None:
    """One warning line when the GPU was wanted but the session runs on CPU (an explicit --provider cuda
    that falls back is an error raised when the session is made, see inference/gpu.py)."""
    from ..inference.gpu import fallback_warning

    msg = fallback_warning(requested, used)
    if msg:
        print(f"workbench: warning: {msg}", file=sys.stderr)


def warn_outside(name: str, engine: Any, result: Result) -> None:
    """One warning line when the image falls outside what the plugin was made for (``meta.expects``)."""
    from ..inference.expects import warning_line

    if result.info.warnings:
        print(f"workbench: warning: {warning_line(name, engine.spec.id, result.info.warnings)}", file=sys.stderr)


class ProgressBar:
    """A one-line progress bar on stderr (a line per 10% when stderr is not a terminal)."""

    def __init__(self, total: int, label: str = "") -> None:
        self.total = max(1, total)
        self.label = label
        self.t0 = time.perf_counter()
        self.tty = sys.stderr.isatty()
        self._last_decile = -1

    def update(self, done: int, note: str = "") -> None:
        rate = done / max(time.perf_counter() - self.t0, 1e-9)
        frac = done / self.total
        if self.tty:
            width = 30
            fill = int(frac * width)
            sys.stderr.write(f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {done}/{self.total} "
                             f"{rate:.1f} img/s {note[:40]:<40}")
            sys.stderr.flush()
        else:
            decile = int(frac * 10)
            if decile != self._last_decile:
                self._last_decile = decile
                print(f"{self.label} {done}/{self.total} ({rate:.1f} img/s)", file=sys.stderr)

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()
