"""The "Similar cases" dock (issue 18): query a similar-case index by the shown slice or a drawn region.

The dock is a thin shell over :func:`workbench.similar.query.search_image` (the same code as
``workbench search``): it picks the index file, runs the search in a pool job (the encoder run and the
index scan never block the GUI thread), and lists the hits as the thumbnails stored in the index with their
score; clicking one opens that file (at its slice) in the window. "Draw region" arms a rubber-band tool on
the canvas; releasing the drag searches by that rectangle (``--roi`` of the command line).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..qt import Qt, QtCore, QtGui, QtWidgets
from ..tools.base import BaseCanvasTool, CanvasEvent
from ..workers import CallableJob
from .base import make_dock

THUMB_PX = 64
ROI_COLOR = "#40c4ff"


def _load_hits(image: Any, slice_index: int, db: Path, k: int, roi: tuple[int, int, int, int] | None
               ) -> list[tuple[Any, bytes | None]]:
    """Pool thread: the hits and their stored thumbnails."""
    from ...similar.query import search_image
    from ...similar.store import IndexStore

    hits = search_image(image, db, k=k, slice_index=slice_index, roi=roi)
    with IndexStore(db) as store:
        return [(h, store.thumbnail(h.path, h.slice)) for h in hits]


class RoiTool(BaseCanvasTool):
    """Left drag draws a rectangle; on release it calls ``on_roi((x0, y0, x1, y1))`` in image pixels."""

    name = "similar-roi"
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, on_roi) -> None:
        super().__init__()
        self.on_roi = on_roi
        self._start: tuple[float, float] | None = None
        self._rect: QtWidgets.QGraphicsRectItem | None = None

    def press(self, event: CanvasEvent) -> bool:
        if self.canvas is None:
            return False
        self._start = (event.x, event.y)
        self.canvas.clear_preview()
        self._rect = QtWidgets.QGraphicsRectItem(QtCore.QRectF(event.x, event.y, 0, 0))
        pen = QtGui.QPen(QtGui.QColor(ROI_COLOR), 1.5)
        pen.setCosmetic(True)
        self._rect.setPen(pen)
        self.canvas.add_preview_item(self._rect)
        return True

    def move(self, event: CanvasEvent) -> bool:
        if self._start is None or self._rect is None:
            return False
        x0, y0 = self._start
        self._rect.setRect(QtCore.QRectF(QtCore.QPointF(x0, y0), QtCore.QPointF(event.x, event.y)).normalized())
        return True

    def release(self, event: CanvasEvent) -> bool:
        if self._start is None or self.canvas is None or self.canvas.document.image is None:
            return False
        image = self.canvas.document.image
        x0, y0 = self._start
        self._start = None
        xs = sorted((x0, event.x))
        ys = sorted((y0, event.y))
        roi = (max(0, int(xs[0])), max(0, int(ys[0])), min(image.width, int(xs[1]) + 1),
               min(image.height, int(ys[1]) + 1))
        self.on_roi(roi)
        return True


class SimilarPanel(QtWidgets.QWidget):
    """Index file, query buttons, result thumbnails. ``hits`` holds the last results (tests read it)."""

    def __init__(self, main_window: QtWidgets.QMainWindow) -> None:
        super().__init__()
        self.win = main_window
        self.hits: list[Any] = []
        self.job: CallableJob | None = None
        self._pending_slice: int | None = None
        self.db_edit = QtWidgets.QLineEdit()
        self.db_edit.setPlaceholderText("LIBRARY.wbindex (built by workbench index)")
        browse = QtWidgets.QToolButton()
        browse.setText("…")
        browse.setToolTip("Choose an index file")
        browse.clicked.connect(self._browse)
        self.k_spin = QtWidgets.QSpinBox()
        self.k_spin.setRange(1, 100)
        self.k_spin.setValue(12)
        self.k_spin.setToolTip("Number of results")
        self.search_button = QtWidgets.QPushButton("Search this slice")
        self.search_button.setToolTip("Find the indexed images most similar to the shown slice")
        self.search_button.clicked.connect(lambda: self.search())
        self.roi_button = QtWidgets.QPushButton("Draw region")
        self.roi_button.setCheckable(True)
        self.roi_button.setToolTip("Drag a rectangle on the image: search by that region only")
        self.roi_button.toggled.connect(self._arm_roi)
        self.status = QtWidgets.QLabel("No search yet")
        self.status.setWordWrap(True)
        self.results = QtWidgets.QListWidget()
        self.results.setViewMode(QtWidgets.QListView.ViewMode.IconMode)
        self.results.setIconSize(QtCore.QSize(THUMB_PX, THUMB_PX))
        self.results.setResizeMode(QtWidgets.QListView.ResizeMode.Adjust)
        self.results.setMovement(QtWidgets.QListView.Movement.Static)
        self.results.setGridSize(QtCore.QSize(THUMB_PX + 34, THUMB_PX + 40))
        self.results.setWordWrap(True)
        self.results.setToolTip("Click a result to open it")
        self.results.itemClicked.connect(self._open_item)

        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.db_edit, 1)
        top.addWidget(browse)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.search_button)
        row.addWidget(self.roi_button)
        row.addWidget(QtWidgets.QLabel("k"))
        row.addWidget(self.k_spin)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.results, 1)
        self.win.load_settled.connect(self._after_open)  # type: ignore[attr-defined]

    # -- state -------------------------------------------------------------------------------------
    @property
    def is_busy(self) -> bool:
        return self.job is not None and not self.job.done

    def set_index(self, path: str | Path) -> None:
        self.db_edit.setText(str(path))

    def _browse(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Similar-case index", "",
                                                        "Similar-case index (*.wbindex);;All files (*)")
        if path:
            self.set_index(path)

    # -- searching ---------------------------------------------------------------------------------
    def search(self, roi: tuple[int, int, int, int] | None = None) -> None:
        """Search the index by the shown slice (or ``roi`` of it) in a pool job."""
        image = self.win.document.image  # type: ignore[attr-defined]
        db = self.db_edit.text().strip()
        if image is None:
            self.status.setText("Open an image first")
            return
        if not db:
            self.status.setText("Choose an index file (…)")
            return
        if self.is_busy:
            return
        z = self.win.view_state.slice_index  # type: ignore[attr-defined]
        k = self.k_spin.value()
        what = f"region {roi[0]},{roi[1]},{roi[2]},{roi[3]}" if roi else f"slice {z}"
        self.status.setText(f"Searching by {what}…")
        self.search_button.setEnabled(False)
        job = CallableJob(lambda _p, _c: _load_hits(image, z, Path(db), k, roi), parent=self)
        job.finished.connect(self._show_hits)
        job.failed.connect(self._failed)
        job.cancelled.connect(self._failed)
        self.job = job
        job.start()

    def _show_hits(self, pairs: list[tuple[Any, bytes | None]]) -> None:
        self.search_button.setEnabled(True)
        self.results.clear()
        self.hits = [h for h, _ in pairs]
        for hit, png in pairs:
            name = Path(hit.path).name + (f" [{hit.slice}]" if hit.slice else "")
            item = QtWidgets.QListWidgetItem(f"{hit.score:.3f}\n{name}")
            pix = QtGui.QPixmap()
            if png is not None and pix.loadFromData(png):
                item.setIcon(QtGui.QIcon(pix))
            item.setToolTip(f"{hit.path}\nslice {hit.slice}, cosine {hit.score:.4f}")
            item.setData(Qt.ItemDataRole.UserRole, (hit.path, hit.slice))
            self.results.addItem(item)
        self.status.setText(f"{len(pairs)} similar images" if pairs else "The index is empty")

    def _failed(self, message: str) -> None:
        self.search_button.setEnabled(True)
        self.status.setText(message)
        self.win.show_error(message)  # type: ignore[attr-defined]

    # -- region ------------------------------------------------------------------------------------
    def _arm_roi(self, on: bool) -> None:
        canvas = self.win.canvas  # type: ignore[attr-defined]
        if on:
            canvas.set_tool(RoiTool(self._roi_drawn))
        elif isinstance(canvas.tool, RoiTool):
            canvas.set_tool(None)

    def _roi_drawn(self, roi: tuple[int, int, int, int]) -> None:
        self.search(roi=roi)  # a region too small or outside the image fails in the job, in one line

    # -- opening -----------------------------------------------------------------------------------
    def _open_item(self, item: QtWidgets.QListWidgetItem) -> None:
        path, slice_index = item.data(Qt.ItemDataRole.UserRole)
        self._pending_slice = int(slice_index)
        self.win.open_path(path)  # type: ignore[attr-defined]

    def _after_open(self, ok: bool) -> None:
        if ok and self._pending_slice:
            self.win.view_state.set_slice(self._pending_slice)  # type: ignore[attr-defined]
        self._pending_slice = None


def create_dock(main_window: QtWidgets.QMainWindow) -> QtWidgets.QDockWidget:
    return make_dock(main_window, "Similar cases", "SimilarCasesDock", SimilarPanel(main_window), area="right")
