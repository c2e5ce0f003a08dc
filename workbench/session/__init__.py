"""Sessions: save what is open (labels, label table, model results, view) and open it again later.

A session file ``*.wbsession`` is a zip archive, written atomically (:mod:`workbench.io.atomic`)::

    manifest.json                 schema_version, app version, source image (absolute path, path relative
                                  to the session file, shape, dtype, fingerprint), label table, view
                                  (window/level, slice...), the results with their RunInfo provenance
    labels.npz                    the label map, uint16 (z, y, x), compressed; only when not all zero
    results/<n>_<task>.npz|.json  result data: segmentation masks and classification scores (npz),
                                  detections (JSON), restored images (npz)

The source image itself is *not* stored: a session refers to the file (or DICOM folder) on disk and reads
it again with :func:`workbench.io.read_image`. The fingerprint recorded at save time (size, mtime and the
sha256 of the first :data:`FINGERPRINT_HEAD_BYTES` bytes; for a folder the same over its files) tells a
moved copy (same content, new mtime: accepted) from a changed file (other size or content: refused, since
the labels would no longer match the pixels).

Not saved: the undo history (a reopened session starts with an empty history), the per-pixel class
probabilities of segmentation results (``SegmentationResult.probabilities``, large and not kept by
default), and values of ``RestorationResult.extra`` that are not JSON data.

Modules: :mod:`.snapshot` (:class:`Session`, :func:`capture`), :mod:`.write`, :mod:`.read`, :mod:`.restore`
(into a :class:`~workbench.core.document.Document`), :mod:`.fingerprint` (of the source image). Exports of a
session (mask, measurements, reports) are in :mod:`workbench.export.session_exports`.
"""
from .fingerprint import fingerprint_differences, source_fingerprint
from .read import read_session
from .restore import apply_session, load_session
from .snapshot import SESSION_SUFFIX, Session, SessionError, capture
from .write import save_session, write_session

__all__ = [
    "SESSION_SUFFIX", "Session", "SessionError", "capture", "save_session", "write_session", "read_session",
    "load_session", "apply_session", "source_fingerprint",
    "fingerprint_differences",
]
