"""Putting a read session into a :class:`~workbench.core.document.Document`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.document import Document
from ..core.labels import Label, LabelMap
from .read import read_session
from .snapshot import Session


# -- documents -------------------------------------------------------------------------------------------
def restore_labels(document: Document, session: Session) -> None:
    """Put the session's label table and label map into ``document`` (whose image is ``session.image``).

    Not an undo step: a reopened session starts with an empty history, as after opening an image.
    """
    labels: LabelMap = document.labels  # type: ignore[assignment]
    labels.labels = {lab.value: Label(lab.value, lab.name, lab.color, lab.visible) for lab in session.label_table}
    if session.label_data is not None:
        labels.data[...] = session.label_data
        for value in np.unique(session.label_data).tolist():
            if value and value not in labels.labels:
                labels.ensure_label(value)
    labels.labels_changed.emit()
    labels.data_changed.emit(tuple(slice(0, n) for n in labels.shape))


def restore_results(document: Document, session: Session) -> None:
    """Put the session's results (and heat maps) into ``document`` (not an undo step) and emit
    ``results_changed``."""
    document.results = list(session.results)
    document.results_changed.emit()
    if session.heatmaps:
        from .heatmaps import restore_heatmaps

        restore_heatmaps(document, session.heatmaps)


def apply_session(document: Document, session: Session) -> None:
    """Make ``document`` show ``session``: its image, label map, label table and results; empty history."""
    document.set_image(session.image)
    restore_labels(document, session)
    restore_results(document, session)


def load_session(path: str | Path, *, max_pixels: int | None = None,
                 allow_changed_source: bool = False) -> tuple[Document, dict[str, Any]]:
    """Open a session file as a new :class:`Document`.

    Parameters
    ----------
    path : str or Path
        The ``.wbsession`` file.
    max_pixels : int, optional
        Passed to the image reader.
    allow_changed_source : bool
        See :func:`read_session`.

    Returns
    -------
    (Document, dict)
        The document (image re-read from its source, label map, label table, results; empty undo history)
        and the saved view settings.

    Raises
    ------
    SessionError, ImageReadError
        See :func:`read_session`.
    """
    session = read_session(path, max_pixels=max_pixels, allow_changed_source=allow_changed_source)
    document = Document()
    apply_session(document, session)
    return document, session.view
