"""Our log: third-party chatter goes to a file in the user data dir, never onto the user's terminal.

pydicom and nibabel warn through :mod:`warnings` and :mod:`logging` (e.g. "Invalid value for VR UI",
"pixdim[0] (qfac) should be 1"), ONNX Runtime prints coloured lines from C++; left alone, those land on
stderr before our one-line error and read like the real failure. :func:`setup_logging` (called once by
the ``workbench`` entry point) sends Python warnings and the libraries' loggers to ``workbench.log``
(bounded: 1 MB, one backup) and keeps them off stderr; our own one-line messages are unaffected.
"""
from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

LOG_NAME = "workbench.log"
#: loggers of libraries whose warnings are about the file, already reported by our own error if it matters;
#: tornado: Dask's event loop logs its callbacks' exceptions there (a Ctrl+C during ``distributed.utils.sync``
#: trips a NameError in its cancel callback under load): our batch reports the outcome of every task itself
THIRD_PARTY = ("pydicom", "nibabel", "highdicom", "tifffile", "PIL", "onnxruntime", "py.warnings", "tornado")

_configured: Path | None = None


def log_path() -> Path:
    from .settings import data_dir

    return data_dir() / LOG_NAME


def setup_logging() -> Path | None:
    """Route warnings and third-party loggers into the log file (idempotent). Returns the log path, or None
    when the data dir cannot be written (then the chatter is dropped, still not printed)."""
    global _configured
    if _configured is not None:
        return _configured
    logging.captureWarnings(True)
    handler: logging.Handler
    target = log_path()
    path: Path | None = target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(target, maxBytes=1 << 20, backupCount=1,
                                                       encoding="utf-8", delay=True)
    except OSError:
        handler, path = logging.NullHandler(), None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    for name in (*THIRD_PARTY, "workbench"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.propagate = False
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO if name == "workbench" else logging.WARNING)
    _configured = path or Path()
    adopt_library_loggers()
    return path


def adopt_library_loggers() -> None:
    """Take back loggers that libraries gave their own stderr handler (nibabel's ``nibabel.global`` prints
    header fixes such as "pixdim[0] (qfac) should be 1"): their records then reach our file only.
    Called by :func:`setup_logging` and again by readers right after they import such a library."""
    if _configured is None:
        return
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger) or not name.startswith(THIRD_PARTY):
            continue
        for h in list(logger.handlers):
            if type(h) is logging.StreamHandler:
                logger.removeHandler(h)
        if name not in THIRD_PARTY:
            logger.propagate = True


def get_logger(name: str = "workbench") -> logging.Logger:
    return logging.getLogger(name)
