"""The error hierarchy.

Every error a user can cause is a :class:`WorkbenchError`. Its message is one line that names the
file (or argument) and what is wrong with it; the CLI prints it and exits 2, the GUI shows it in its
status/error area. Anything else escaping is a bug.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


class WorkbenchError(Exception):
    """Base of all user-facing errors. ``str(err)`` is a one-line message."""

    def __init__(self, message: str, *, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self.reason = message
        text = f"{path}: {message}" if path is not None else message
        # One line, always: multi-line library messages are folded.
        super().__init__(" ".join(str(text).split()))


class ImageReadError(WorkbenchError):
    """An image, DICOM file/series or volume could not be read."""


class PluginError(WorkbenchError):
    """A model plugin is invalid (plugin.yaml, model file, checksum, graph mismatch)."""


class InferenceError(WorkbenchError):
    """A model failed at run time or produced unusable output."""


class ExportError(WorkbenchError):
    """An export (mask, table, report, session) could not be written."""


class ProcessingError(WorkbenchError):
    """A processing tool got arguments it cannot work with."""


class CancelledError(WorkbenchError):
    """The user cancelled a long operation."""

    def __init__(self, message: str = "cancelled by the user", **kw: Any) -> None:
        super().__init__(message, **kw)
