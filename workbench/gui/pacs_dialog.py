"""File > PACS…: search a configured node, retrieve into the local study cache, open on double click.

Every network operation runs in a :class:`~workbench.gui.workers.CallableJob` (pool thread) and calls
:mod:`workbench.pacs.client`, the code path of ``workbench pacs``; the dialog only shows results.
Node configuration (with a Test button) is :class:`PacsNodesDialog` (gui/pacs_nodes.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .qt import QtCore, QtWidgets, Signal
from .workers import CallableJob

Qt = QtCore.Qt

STUDY_COLUMNS = (("PatientName", "Patient"), ("PatientID", "ID"), ("PatientBirthDate", "Born"),
                 ("StudyDate", "Date"), ("AccessionNumber", "Accession"), ("ModalitiesInStudy", "Modalities"),
                 ("StudyDescription", "Description"), ("NumberOfStudyRelatedInstances", "Images"))
SERIES_COLUMNS = (("PatientName", "Patient"), ("PatientID", "ID"), ("Modality", "Modality"),
                  ("SeriesNumber", "#"), ("SeriesDescription", "Description"),
                  ("NumberOfSeriesRelatedInstances", "Images"))


def node_combo(parent: QtWidgets.QWidget | None = None) -> QtWidgets.QComboBox:
    """A combo of the configured nodes (item data: the node name)."""
    from ..pacs.nodes import load_nodes

    combo = QtWidgets.QComboBox(parent)
    try:
        nodes = load_nodes()
    except Exception as exc:  # noqa: BLE001 - a broken site file is shown, not fatal
        combo.addItem(f"(configuration error: {exc})", None)
        return combo
    for node in nodes:
        combo.addItem(node.label, node.name)
    if not nodes:
        combo.addItem("(no node configured: Nodes…)", None)
    return combo


def start_job(owner: QtWidgets.QWidget, fn: Callable, *, done: Callable[[Any], None],
              failed: Callable[[str], None], progress: Callable[[int, int], None] | None = None) -> CallableJob:
    job = CallableJob(fn, parent=owner)
    job.finished.connect(done)
    job.failed.connect(failed)
    job.cancelled.connect(failed)
    if progress is not None:
        job.progressed.connect(progress)
    job.start()
    return job


class PacsSearchDialog(QtWidgets.QDialog):
    """Search, retrieve and open. ``open_requested(path)`` asks the window to open a retrieved folder.

    Attributes used by tests: ``matches`` (the dicts shown), ``job`` (the running job), ``last_path``.
    """

    open_requested = Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PACS")
        self.resize(980, 560)
        self.matches: list[dict] = []
        self.job: CallableJob | None = None
        self.last_path: Path | None = None

        self.node = node_combo()
        nodes_button = QtWidgets.QPushButton("Nodes…")
        nodes_button.clicked.connect(self.edit_nodes)
        self.level = QtWidgets.QComboBox()
        self.level.addItem("Studies", "study")
        self.level.addItem("Series", "series")
        self.patient_id = QtWidgets.QLineEdit()
        self.patient_name = QtWidgets.QLineEdit()
        self.patient_name.setPlaceholderText("Doe* (wildcards * ?)")
        self.accession = QtWidgets.QLineEdit()
        self.modality = QtWidgets.QLineEdit()
        self.modality.setPlaceholderText("CT, MR…")
        self.modality.setMaximumWidth(80)
        self.study_date = QtWidgets.QLineEdit()
        self.study_date.setPlaceholderText("YYYYMMDD or FROM-TO")
        for edit in (self.patient_id, self.patient_name, self.accession, self.modality, self.study_date):
            edit.returnPressed.connect(self.search)
        self.search_button = QtWidgets.QPushButton("Search")
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.search)

        top = QtWidgets.QHBoxLayout()
        top.addWidget(QtWidgets.QLabel("Node"))
        top.addWidget(self.node, 1)
        top.addWidget(nodes_button)
        top.addWidget(QtWidgets.QLabel("Show"))
        top.addWidget(self.level)
        keys = QtWidgets.QHBoxLayout()
        for label, edit in (("Patient ID", self.patient_id), ("Name", self.patient_name),
                            ("Accession", self.accession), ("Modality", self.modality),
                            ("Study date", self.study_date)):
            keys.addWidget(QtWidgets.QLabel(label))
            keys.addWidget(edit)
        keys.addWidget(self.search_button)

        self.table = QtWidgets.QTableWidget(0, 0)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.cellDoubleClicked.connect(lambda row, _col: self.retrieve(open_after=True, row=row))
        self.table.itemSelectionChanged.connect(self._update_buttons)
        from .pacs_thumbs import SeriesThumbnails

        self.thumbs = SeriesThumbnails(self.table, self)
        self._search_client: Any = None

        self.progress = QtWidgets.QProgressBar()
        self.progress.hide()
        self.status = QtWidgets.QLabel("Search a node; double-click a row to retrieve it into the local cache "
                                       "and open it.")
        self.status.setWordWrap(True)
        self.retrieve_button = QtWidgets.QPushButton("Retrieve")
        self.retrieve_button.clicked.connect(lambda: self.retrieve(open_after=False))
        self.open_button = QtWidgets.QPushButton("Retrieve && open")
        self.open_button.clicked.connect(lambda: self.retrieve(open_after=True))
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        close = QtWidgets.QPushButton("Close")
        close.clicked.connect(self.reject)
        bottom = QtWidgets.QHBoxLayout()
        bottom.addWidget(self.progress, 1)
        bottom.addWidget(self.cancel_button)
        bottom.addStretch(0)
        bottom.addWidget(self.retrieve_button)
        bottom.addWidget(self.open_button)
        bottom.addWidget(close)

        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(keys)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        layout.addLayout(bottom)
        self._update_buttons()

    # -- helpers -----------------------------------------------------------------------------------------
    def _client(self):
        from ..pacs import PacsError
        from ..pacs.client import connect
        from ..pacs.nodes import load_config, resolve_node

        name = self.node.currentData()
        if not name:
            raise PacsError("no PACS node selected: configure one with Nodes…")
        config = load_config()
        return connect(resolve_node(name, config), config), config

    def _busy(self, text: str, job_fn: Callable, done: Callable[[Any], None], *, progress: bool = False) -> None:
        self.status.setText(text)
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.cancel_button.show()
        self.search_button.setEnabled(False)
        self.retrieve_button.setEnabled(False)
        self.open_button.setEnabled(False)

        def finished(value) -> None:
            self._idle()
            done(value)

        self.job = start_job(self, job_fn, done=finished, failed=self._failed,
                             progress=self._progress if progress else None)

    def _idle(self) -> None:
        self.job = None
        self.progress.hide()
        self.cancel_button.hide()
        self.search_button.setEnabled(True)
        self._update_buttons()

    def _failed(self, message: str) -> None:
        self._idle()
        self.status.setText(message)

    def _progress(self, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.status.setText(f"Retrieving: {done} of {total} images")

    def _update_buttons(self) -> None:
        has = bool(self.table.selectionModel().selectedRows()) and self.job is None
        self.retrieve_button.setEnabled(has)
        self.open_button.setEnabled(has)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def edit_nodes(self) -> None:
        from .pacs_nodes import PacsNodesDialog

        PacsNodesDialog(self).exec()
        current = self.node.currentData()
        fresh = node_combo()
        self.node.clear()
        for i in range(fresh.count()):
            self.node.addItem(fresh.itemText(i), fresh.itemData(i))
        index = self.node.findData(current)
        if index >= 0:
            self.node.setCurrentIndex(index)

    # -- search ------------------------------------------------------------------------------------------
    def query(self):
        from ..pacs.query import Query

        def text(edit: QtWidgets.QLineEdit) -> str | None:
            return edit.text().strip() or None

        return Query(level=self.level.currentData(), patient_id=text(self.patient_id),
                     patient_name=text(self.patient_name), accession=text(self.accession),
                     modality=text(self.modality), study_date=text(self.study_date))

    def search(self) -> None:
        from ..core.errors import WorkbenchError
        from ..pacs.client import find

        try:
            query = self.query()
            client, _config = self._client()
        except WorkbenchError as exc:
            self.status.setText(str(exc))
            return
        self.thumbs.cancel()
        self._search_client = client
        self._busy(f"Searching {client.node.label}…", lambda _p, cancelled: find(client, query, cancel=cancelled),
                   lambda matches: self.show_matches(matches, query.level))

    def show_matches(self, matches: list[dict], level: str) -> None:
        """Fill the table; at series level the Preview column (first) fills in as previews arrive."""
        from ..pacs.thumbnails import THUMB_SIZE

        self.thumbs.cancel()
        self.matches = list(matches)
        series = level == "series"
        columns = ((("", "Preview"),) + SERIES_COLUMNS) if series else STUDY_COLUMNS
        self.table.clear()
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels([title for _key, title in columns])
        self.table.setRowCount(len(self.matches))
        self.table.setIconSize(QtCore.QSize(THUMB_SIZE, THUMB_SIZE))
        self.table.verticalHeader().setDefaultSectionSize(THUMB_SIZE + 6 if series else 24)
        for row, match in enumerate(self.matches):
            for col, (key, _title) in enumerate(columns):
                item = QtWidgets.QTableWidgetItem(str(match.get(key, "")) if key else "")
                item.setToolTip(match.get("SeriesInstanceUID") or match.get("StudyInstanceUID", ""))
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        if series:
            self.table.setColumnWidth(0, THUMB_SIZE + 12)
            if self._search_client is not None and self.matches:
                self.thumbs.start(self._search_client, self.matches)
        self.status.setText(f"{len(self.matches)} match(es)" + (": double-click one to open it"
                                                                  if self.matches else ""))
        self._update_buttons()

    def done(self, result: int) -> None:
        self.thumbs.cancel()
        super().done(result)

    # -- retrieve ----------------------------------------------------------------------------------------
    def retrieve(self, *, open_after: bool, row: int | None = None) -> None:
        from ..core.errors import WorkbenchError
        from ..pacs.cache import StudyCache
        from ..pacs.client import retrieve_study

        rows = [row] if row is not None else sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        picked = [self.matches[r] for r in rows if 0 <= r < len(self.matches)]
        if not picked or self.job is not None:
            return
        try:
            client, config = self._client()
        except WorkbenchError as exc:
            self.status.setText(str(exc))
            return
        cache = StudyCache(cap_mb=config.cache_mb)

        def work(progress, cancelled) -> Path:
            last: Path | None = None
            for match in picked:
                study = str(match["StudyInstanceUID"])
                series = [match["SeriesInstanceUID"]] if match.get("SeriesInstanceUID") else None
                root = cache.study_dir(study)
                step = retrieve_study(client, study, root, series_uids=series, cancel=cancelled)
                try:
                    while True:
                        p = next(step)
                        progress(p.done, p.total or 0)
                except StopIteration as stop:
                    folders = stop.value
                last = folders[0] if series and folders else root
                cache.evict(keep={study})
            assert last is not None
            return last

        def done(path: Path) -> None:
            self.last_path = Path(path)
            self.status.setText(f"Retrieved into {path}")
            if open_after:
                self.open_requested.emit(str(path))
                self.accept()

        self._busy(f"Retrieving from {client.node.label}…", work, done, progress=True)


def open_pacs_dialog(window) -> PacsSearchDialog:
    """File > PACS…: the search dialog, opening what it retrieves in ``window``."""
    dialog = PacsSearchDialog(window)
    dialog.open_requested.connect(window.open_path)
    dialog.show()
    return dialog
