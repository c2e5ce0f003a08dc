"""The one error type of :mod:`workbench.pacs`."""
from __future__ import annotations

from ..core.errors import WorkbenchError


class PacsError(WorkbenchError):
    """A DICOM network operation failed (refused, rejected, timed out, aborted, a failure status).

    The message is one line that names the node (``name (AET@host:port)`` or its URL) and what went wrong;
    ``retryable`` tells whether trying again later may help (a refused connection, a timeout, an abort)
    as opposed to a configuration error (wrong AE title, unknown node).
    """

    def __init__(self, message: str, *, retryable: bool = False, **kw):
        super().__init__(message, **kw)
        self.retryable = retryable
