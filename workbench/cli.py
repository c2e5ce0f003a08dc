"""The ``workbench`` command: the GUI by default, headless sub-commands otherwise.

Sub-commands live one per module in :mod:`workbench.commands`; each module defines ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. They are discovered here, so adding a command never
touches this file. User errors (:class:`WorkbenchError`) print one line on stderr and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from types import ModuleType

from . import __version__
from .core.errors import WorkbenchError

EXIT_USAGE = 2


def _command_modules() -> dict[str, ModuleType]:
    from . import commands

    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(commands.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "run"):
            found[module.NAME] = module
    return dict(sorted(found.items()))


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit status 2 (its default is also 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"workbench: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    commands = _command_modules()
    parser = _Parser(
        prog="workbench",
        description="Desktop image-analysis workbench. Without a command: open the GUI "
        "(workbench [FILES...] [--screenshot PNG]).",
    )
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in commands.items():
        p = sub.add_parser(name, help=getattr(module, "HELP", ""), description=getattr(module, "HELP", ""))
        module.add_arguments(p)
    return parser


def build_gui_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="workbench", description="Open the Workbench window.")
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    parser.add_argument("files", nargs="*", help="images, DICOM files or DICOM folders to open")
    parser.add_argument("--screenshot", metavar="PNG", help="open, render, save a grab of the window, quit")
    parser.add_argument("--window-size", metavar="WxH", type=_window_size,
                        help="window size in pixels, e.g. 1366x768 (screenshots of a given screen size)")
    return parser


def _window_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1366x768, got {text!r}") from None
    if not (320 <= w <= 16384 and 240 <= h <= 16384):
        raise argparse.ArgumentTypeError(f"{text}: width 320..16384 and height 240..16384 pixels")
    return w, h


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``workbench`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from .core.log import setup_logging

    setup_logging()  # library warnings into our log file, not onto stderr before our one line
    try:
        commands = _command_modules()
        if argv and argv[0] in commands or argv[:1] in (["-h"], ["--help"]):
            args = build_parser().parse_args(argv)
            if args.command is None:
                build_parser().print_help()
                return 0
            return int(commands[args.command].run(args) or 0)
        args = build_gui_parser().parse_args(argv)
        from .gui.app import run_gui  # Qt is imported only for the GUI

        return int(run_gui(args.files, screenshot=args.screenshot, size=args.window_size) or 0)
    except WorkbenchError as exc:
        print(f"workbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:  # a backstop: sizes are checked before allocating, but not every library says so
        print("workbench: error: out of memory (the input or an option implies arrays larger than this "
              "machine can hold; see the log)", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("workbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
