"""What a session holds, independent of the live document (:class:`Session`), and :func:`capture` of it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..core.document import Document
from ..core.errors import ExportError
from ..core.image import ImageVolume
from ..core.labels import Label
from ..core.results import Result

SESSION_SUFFIX = ".wbsession"

SCHEMA_VERSION = 1

FORMAT_NAME = "workbench-session"

MANIFEST = "manifest.json"

LABELS_ENTRY = "labels.npz"

ProgressFn = Callable[[int, int], None]

CancelFn = Callable[[], bool]


class SessionError(ExportError):
    """A session file is corrupt, truncated, of an unknown schema, or cannot be written."""


# -- snapshot: what a session holds, independent of the live document --------------------------------
@dataclass
class Session:
    """The content of a session: the image, label map, label table, results and view.

    ``label_data`` is ``None`` when the label map is all zero. ``view`` is free-form JSON data owned by the
    GUI (window/level, slice, overlay styles); ``manifest`` is the parsed manifest when read from a file.
    """

    image: ImageVolume
    label_data: np.ndarray | None
    label_table: list[Label]
    results: list[Result]
    view: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    heatmaps: list = field(default_factory=list)  # (Explanation, HeatmapStyle) pairs, see .heatmaps
    annotations: list = field(default_factory=list)  # core.annotations (issue 15: rulers, angles, ROIs, notes)
    key_images: list = field(default_factory=list)  # core.key_images.KeyImage (issue 15: the case report's)


def _snapshot_labels(data: np.ndarray) -> np.ndarray | None:
    """A copy of a (z, y, x) label map, ``None`` when it is all zero -- cheap enough for the GUI thread.

    Only the slices holding labels are copied, into a fresh ``np.zeros`` array whose untouched pages the
    OS maps lazily: 3 ms for a 512x512x300 map labelled on a few slices, where ``data.any()`` plus a full
    copy took 20-490 ms (the first copy of 150 MiB faults in every page).
    """
    import cv2

    labelled = [z for z in range(data.shape[0]) if cv2.countNonZero(data[z])]
    if not labelled:
        return None
    snapshot = np.zeros(data.shape, dtype=data.dtype)
    for z in labelled:
        snapshot[z] = data[z]
    return snapshot


def capture(document: Document, *, view: dict[str, Any] | None = None, copy: bool = True) -> Session:
    """A snapshot of ``document`` to save (the label map is copied, so editing may go on while a worker
    writes the snapshot).

    Raises
    ------
    SessionError
        Nothing is open, or the image has no source file on disk.
    """
    image = document.image
    if image is None or document.labels is None:
        raise SessionError("nothing to save: no image is open")
    if image.path is None:
        raise SessionError("the image has no source file: a session refers to the image on disk")
    data = document.labels.data
    label_data = _snapshot_labels(data) if copy else (data if data.any() else None)
    table = [Label(lab.value, lab.name, lab.color, lab.visible) for lab in document.labels.labels.values()]
    from .heatmaps import snapshot_heatmaps

    return Session(image=image, label_data=label_data, label_table=table, results=list(document.results),
                   view=dict(view or {}), heatmaps=snapshot_heatmaps(document),
                   annotations=list(getattr(getattr(document, "annotations", None), "items", [])),
                   key_images=list(getattr(getattr(document, "key_images", None), "items", [])))
