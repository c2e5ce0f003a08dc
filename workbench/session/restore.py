"""Putting a read session into a :class:`~workbench.core.document.Document`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.document import Document
from .read import read_session
from .snapshot import Session


def apply_session(document: Document, session: Session) -> None:
    """Make ``document`` show ``session``: its image, label map, label table, results and heat maps; empty
    history."""
    document.restore(session.image, label_data=session.label_data, label_table=session.label_table,
                     results=session.results)
    if session.heatmaps:
        from .heatmaps import restore_heatmaps

        restore_heatmaps(document, session.heatmaps)
    if session.annotations:
        from ..core.annotations import annotations_of

        annotations_of(document).load(session.annotations)
    if session.key_images:
        from ..core.key_images import key_images_of

        key_images_of(document).load(session.key_images)


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
