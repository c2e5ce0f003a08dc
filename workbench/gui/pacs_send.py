"""File > Send to PACS…: send the label map (DICOM SEG), the report (encapsulated PDF) and the restored
image (a derived DICOM series) to a node, after saying exactly what leaves the machine
(:data:`workbench.pacs.outbox.WHAT_LEAVES`); progress per instance, Cancel, a one-line error."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .pacs_dialog import node_combo, start_job
from .qt import QtWidgets
from .workers import CallableJob


class SendToPacsDialog(QtWidgets.QDialog):
    """Pick a node and the objects; Send builds them in a temporary folder and C-STOREs / STOW-RSes them.

    ``status`` shows the outcome; ``sent`` the number of objects the node accepted (tests read both).
    """

    def __init__(self, window, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent or window)
        self.window = window
        self.setWindowTitle("Send to PACS")
        self.setMinimumWidth(560)
        self.job: CallableJob | None = None
        self.sent = 0

        self.node = node_combo()
        self.node.currentIndexChanged.connect(self._update_statement)
        from ..pacs.outbox import latest_restoration

        document = window.document
        labels = getattr(document, "labels", None)
        has_labels = labels is not None and bool(labels.data.any())
        restoration = latest_restoration(document)
        self.seg = QtWidgets.QCheckBox("Label map as DICOM SEG" + ("" if has_labels else " (the label map is empty)"))
        self.seg.setChecked(has_labels)
        self.seg.setEnabled(has_labels)
        self.report = QtWidgets.QCheckBox("Report as encapsulated PDF")
        self.report.setChecked(True)
        self.restored = QtWidgets.QCheckBox(
            f"Restored image as a derived DICOM series ({restoration.info.plugin_name}, "
            f"{restoration.image.shape[0]} slice(s))" if restoration is not None
            else "Restored image as a derived DICOM series (no restoration result)")
        self.restored.setChecked(restoration is not None)
        self.restored.setEnabled(restoration is not None)
        self.statement = QtWidgets.QLabel()
        self.statement.setWordWrap(True)
        self.statement.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.statement.setContentsMargins(8, 8, 8, 8)
        self.progress = QtWidgets.QProgressBar()
        self.progress.hide()
        self.status = QtWidgets.QLabel()
        self.status.setWordWrap(True)
        self.send_button = QtWidgets.QPushButton("Send")
        self.send_button.clicked.connect(self.send)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        close = QtWidgets.QPushButton("Close")
        close.clicked.connect(self.reject)

        form = QtWidgets.QFormLayout()
        form.addRow("Send to", self.node)
        form.addRow("Objects", self.seg)
        form.addRow("", self.report)
        form.addRow("", self.restored)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(close)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QtWidgets.QLabel("<b>What leaves this computer</b>"))
        layout.addWidget(self.statement)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self._update_statement()

    def _update_statement(self) -> None:
        from ..pacs.outbox import WHAT_LEAVES

        self.statement.setText(WHAT_LEAVES.format(node=self.node.currentText()))
        self.send_button.setEnabled(self.node.currentData() is not None)

    def send(self) -> None:
        from ..core.errors import WorkbenchError
        from ..pacs import PacsError
        from ..pacs.client import collect_files, connect, refused_message, send as send_files
        from ..pacs.nodes import load_config, resolve_node
        from ..pacs.outbox import build_outbox
        from ..session import capture

        try:
            config = load_config()
            client = connect(resolve_node(self.node.currentData() or "", config), config)
            session = capture(self.window.document)
        except WorkbenchError as exc:
            self.status.setText(str(exc))
            return
        seg, report, restored = self.seg.isChecked(), self.report.isChecked(), self.restored.isChecked()

        def work(progress, cancelled) -> int:
            folder = Path(tempfile.mkdtemp(prefix="workbench-outbox-"))
            try:
                files = collect_files(build_outbox(session, folder, seg=seg, report=report, restored=restored))
                step = send_files(client, files, cancel=cancelled)
                try:
                    while True:
                        p = next(step)
                        progress(p.done, p.total or 0)
                except StopIteration as stop:
                    refused = stop.value
                if refused:
                    raise PacsError(refused_message(client.node, refused, len(files)))
                return len(files)
            finally:
                shutil.rmtree(folder, ignore_errors=True)  # derived objects only: the document is untouched

        def done(count: int) -> None:
            self.job = None
            self.sent = count
            self.progress.hide()
            self.cancel_button.hide()
            self.send_button.setEnabled(True)
            self.status.setText(f"Sent {count} object(s) to {client.node.label}")
            self.window.show_status(f"Sent {count} object(s) to {client.node.label}")

        def failed(message: str) -> None:
            self.job = None
            self.progress.hide()
            self.cancel_button.hide()
            self.send_button.setEnabled(True)
            self.status.setText(" ".join(message.split()))  # one line, whatever the error

        def progressed(done_: int, total: int) -> None:
            self.progress.setRange(0, max(total, 1))
            self.progress.setValue(done_)

        self.send_button.setEnabled(False)
        self.cancel_button.show()
        self.progress.setRange(0, 0)
        self.progress.show()
        self.status.setText(f"Sending to {client.node.label}…")
        self.job = start_job(self, work, done=done, failed=failed, progress=progressed)

    def cancel(self) -> None:
        """Stop the send between two instances (those already sent stay on the PACS)."""
        if self.job is not None:
            self.job.cancel()


def open_send_dialog(window) -> SendToPacsDialog:
    dialog = SendToPacsDialog(window)
    dialog.show()
    return dialog
