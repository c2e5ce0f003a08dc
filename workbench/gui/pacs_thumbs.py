"""Series previews in File > PACS…: one pool job per search fetches them row by row
(:func:`workbench.pacs.thumbnails.series_thumbnail`: cached, else rendered by a DICOMweb server, else the
middle instance retrieved and rendered here) and each lands in its row's Preview cell as it arrives.

A new search or closing the dialog cancels the job; a late preview of an earlier search is dropped.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .qt import QtCore, QtGui, QtWidgets
from .workers import CallableJob

Qt = QtCore.Qt
PREVIEW_COLUMN = 0


def to_pixmap(image: np.ndarray) -> QtGui.QPixmap:
    """A pixmap of an 8-bit grey ``(h, w)`` or RGB ``(h, w, 3)`` array (copied)."""
    data = np.ascontiguousarray(image)
    h, w = data.shape[:2]
    if data.ndim == 2:
        qimage = QtGui.QImage(data.data, w, h, w, QtGui.QImage.Format.Format_Grayscale8)
    else:
        data = np.ascontiguousarray(data[..., :3])
        qimage = QtGui.QImage(data.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888)
    return QtGui.QPixmap.fromImage(qimage.copy())


def evict_previews() -> None:
    """Keep the study cache (previews included) under its cap after a batch of previews was written."""
    from ..core.errors import WorkbenchError
    from ..pacs.cache import StudyCache
    from ..pacs.nodes import load_config

    try:
        StudyCache(cap_mb=load_config().cache_mb).evict()
    except (OSError, WorkbenchError):
        pass  # a cache that cannot be trimmed now is trimmed after the next retrieval


class SeriesThumbnails(QtCore.QObject):
    """Fills the Preview column of ``table`` for the series matches of the last search.

    ``shown`` (row -> True) and ``errors`` (row -> one-line message, also the cell's tooltip) are read by
    tests; ``job`` is the running job or None.
    """

    def __init__(self, table: QtWidgets.QTableWidget, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.table = table
        self.job: CallableJob | None = None
        self.shown: dict[int, bool] = {}
        self.errors: dict[int, str] = {}
        self._generation = 0

    def cancel(self) -> None:
        self._generation += 1
        if self.job is not None:
            self.job.cancel()
            self.job = None

    def start(self, client: Any, matches: list[dict]) -> None:
        """Fetch the previews of ``matches`` (series-level dicts) into the rows of the same index."""
        from ..core.errors import CancelledError
        from ..pacs import PacsError
        from ..pacs.thumbnails import THUMB_SIZE, series_thumbnail

        self.cancel()
        self.shown, self.errors = {}, {}
        generation = self._generation
        rows = [(row, str(m["StudyInstanceUID"]), str(m["SeriesInstanceUID"])) for row, m in enumerate(matches)
                if m.get("StudyInstanceUID") and m.get("SeriesInstanceUID")]
        if not rows:
            return
        arrived: dict[int, Any] = {}  # filled by the worker, read in the GUI thread on each progress signal

        def work(progress, cancelled) -> int:
            try:
                for index, (row, study, series) in enumerate(rows):
                    if cancelled():
                        raise CancelledError("previews cancelled")
                    try:
                        arrived[row] = series_thumbnail(client, study, series, size=THUMB_SIZE, cancel=cancelled)
                    except PacsError as exc:
                        arrived[row] = " ".join(str(exc).split())
                    progress(index + 1, len(rows))
            finally:
                evict_previews()
            return len(rows)

        def place(_done: int, _total: int) -> None:
            if generation != self._generation:
                return  # a preview of an earlier search
            for row, value in list(arrived.items()):
                if row in self.shown or row in self.errors:
                    continue
                item = self.table.item(row, PREVIEW_COLUMN)
                if item is None:
                    continue
                if isinstance(value, str):
                    self.errors[row] = value
                    item.setText("—")
                    item.setToolTip(value)
                else:
                    pixmap = to_pixmap(value)
                    if max(pixmap.width(), pixmap.height()) < THUMB_SIZE:  # tiny images: same row look
                        pixmap = pixmap.scaled(THUMB_SIZE, THUMB_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                                               Qt.TransformationMode.FastTransformation)
                    item.setData(Qt.ItemDataRole.DecorationRole, pixmap)
                    self.shown[row] = True

        def finished(_value) -> None:
            if generation == self._generation:
                self.job = None

        job = CallableJob(work, parent=self)
        job.progressed.connect(place)
        job.finished.connect(finished)
        job.failed.connect(finished)
        job.cancelled.connect(finished)
        self.job = job
        job.start()
