"""PACS node configuration: the list of nodes (site nodes read-only), a form, and a Test (echo) button.

Saving writes the user's settings through :mod:`workbench.pacs.nodes`; no credential is ever stored: a
DICOMweb node names the environment variable that holds its password/token, or relies on the OS keyring.
"""
from __future__ import annotations

from .pacs_dialog import start_job
from .qt import QtWidgets
from .workers import CallableJob


class PacsNodesDialog(QtWidgets.QDialog):
    """Add, edit, remove and test nodes. ``status`` shows the last outcome (tests read it)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PACS nodes")
        self.resize(720, 420)
        self.job: CallableJob | None = None

        self.list = QtWidgets.QListWidget()
        self.list.currentRowChanged.connect(self._show_node)
        self.name = QtWidgets.QLineEdit()
        self.kind = QtWidgets.QComboBox()
        self.kind.addItem("DICOM (DIMSE)", "dimse")
        self.kind.addItem("DICOMweb", "dicomweb")
        self.kind.currentIndexChanged.connect(self._update_fields)
        self.ae_title = QtWidgets.QLineEdit()
        self.ae_title.setMaxLength(16)
        self.host = QtWidgets.QLineEdit()
        self.port = QtWidgets.QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(104)
        self.our_ae_title = QtWidgets.QLineEdit()
        self.our_ae_title.setMaxLength(16)
        self.our_ae_title.setPlaceholderText("default from the settings (WORKBENCH)")
        self.url = QtWidgets.QLineEdit()
        self.url.setPlaceholderText("https://pacs.example/dicom-web")
        self.auth = QtWidgets.QComboBox()
        for value in ("none", "basic", "bearer"):
            self.auth.addItem(value, value)
        self.username = QtWidgets.QLineEdit()
        self.secret_env = QtWidgets.QLineEdit()
        self.secret_env.setPlaceholderText("environment variable; else the OS keyring (service workbench-pacs)")
        self.timeout = QtWidgets.QDoubleSpinBox()
        self.timeout.setRange(1, 3600)
        self.timeout.setValue(30)
        self.timeout.setSuffix(" s")

        self.form = QtWidgets.QFormLayout()
        for label, widget in (("Name", self.name), ("Type", self.kind), ("AE title", self.ae_title),
                              ("Host", self.host), ("Port", self.port), ("Our AE title", self.our_ae_title),
                              ("URL", self.url), ("Authentication", self.auth), ("User", self.username),
                              ("Secret from", self.secret_env), ("Timeout", self.timeout)):
            self.form.addRow(label, widget)
        self.status = QtWidgets.QLabel("Passwords and tokens are never saved: name the environment variable "
                                       "that holds them, or store them in the OS keyring.")
        self.status.setWordWrap(True)

        new = QtWidgets.QPushButton("New")
        new.clicked.connect(self.new_node)
        self.save_button = QtWidgets.QPushButton("Save")
        self.save_button.clicked.connect(self.save)
        self.remove_button = QtWidgets.QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove)
        self.test_button = QtWidgets.QPushButton("Test connection")
        self.test_button.clicked.connect(self.test)
        close = QtWidgets.QPushButton("Close")
        close.clicked.connect(self.accept)
        buttons = QtWidgets.QHBoxLayout()
        for b in (new, self.save_button, self.remove_button, self.test_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)

        right = QtWidgets.QVBoxLayout()
        right.addLayout(self.form)
        right.addWidget(self.status)
        right.addStretch(1)
        split = QtWidgets.QHBoxLayout()
        split.addWidget(self.list, 1)
        split.addLayout(right, 2)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(split, 1)
        layout.addLayout(buttons)
        self.reload()

    # -- list --------------------------------------------------------------------------------------------
    def reload(self, select: str | None = None) -> None:
        from ..core.errors import WorkbenchError
        from ..pacs.nodes import load_nodes

        self.list.clear()
        try:
            self.nodes = load_nodes()
        except WorkbenchError as exc:
            self.nodes = []
            self.status.setText(str(exc))
        for node in self.nodes:
            item = QtWidgets.QListWidgetItem(node.name + ("  [site]" if node.source == "site" else ""))
            item.setToolTip(node.address)
            self.list.addItem(item)
        names = [n.name for n in self.nodes]
        if select in names:
            self.list.setCurrentRow(names.index(select))
        elif self.nodes:
            self.list.setCurrentRow(0)
        else:
            self.new_node()

    def _show_node(self, row: int) -> None:
        if not 0 <= row < len(self.nodes):
            return
        node = self.nodes[row]
        self.name.setText(node.name)
        self.kind.setCurrentIndex(self.kind.findData(node.kind))
        self.ae_title.setText(node.ae_title or "")
        self.host.setText(node.host or "")
        self.port.setValue(node.port or 104)
        self.our_ae_title.setText(node.our_ae_title or "")
        self.url.setText(node.url or "")
        self.auth.setCurrentIndex(self.auth.findData(node.auth))
        self.username.setText(node.username or "")
        self.secret_env.setText(node.secret_env or "")
        self.timeout.setValue(node.timeout)
        site = node.source == "site"
        self.save_button.setEnabled(not site)
        self.remove_button.setEnabled(not site)
        if site:
            self.status.setText("This node comes from the site configuration file (read-only here).")
        self._update_fields()

    def new_node(self) -> None:
        self.list.clearSelection()
        for edit in (self.name, self.ae_title, self.host, self.our_ae_title, self.url, self.username,
                     self.secret_env):
            edit.clear()
        self.port.setValue(104)
        self.save_button.setEnabled(True)
        self.remove_button.setEnabled(False)
        self.name.setFocus()
        self._update_fields()

    def _update_fields(self) -> None:
        web = self.kind.currentData() == "dicomweb"
        for widget, show in ((self.ae_title, not web), (self.host, not web), (self.port, not web),
                             (self.our_ae_title, not web), (self.url, web), (self.auth, web),
                             (self.username, web), (self.secret_env, web)):
            self.form.setRowVisible(widget, show)

    # -- actions -----------------------------------------------------------------------------------------
    def node_from_form(self):
        """The :class:`~workbench.pacs.nodes.Node` the form describes (``PacsError`` when invalid)."""
        from pydantic import ValidationError

        from ..pacs import PacsError
        from ..pacs.nodes import Node

        fields = {"name": self.name.text().strip(), "kind": self.kind.currentData(), "timeout": self.timeout.value()}
        if fields["kind"] == "dimse":
            fields.update(ae_title=self.ae_title.text().strip() or None, host=self.host.text().strip() or None,
                          port=self.port.value(), our_ae_title=self.our_ae_title.text().strip() or None)
        else:
            fields.update(url=self.url.text().strip().rstrip("/") or None, auth=self.auth.currentData(),
                          username=self.username.text().strip() or None,
                          secret_env=self.secret_env.text().strip() or None)
        try:
            return Node.model_validate(fields)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise PacsError(f"node {fields['name'] or '(no name)'}: {loc + ': ' if loc else ''}{err['msg']}") from exc

    def save(self) -> None:
        from ..core.errors import WorkbenchError
        from ..pacs.nodes import save_user_node

        try:
            node = self.node_from_form()
            save_user_node(node, replace=True)
        except WorkbenchError as exc:
            self.status.setText(str(exc))
            return
        self.status.setText(f"Saved {node.label}")
        self.reload(select=node.name)

    def remove(self) -> None:
        from ..core.errors import WorkbenchError
        from ..pacs.nodes import remove_user_node

        name = self.name.text().strip()
        try:
            remove_user_node(name)
        except WorkbenchError as exc:
            self.status.setText(str(exc))
            return
        self.status.setText(f"Removed {name}")
        self.reload()

    def test(self) -> None:
        """Echo the node of the form (saved or not) in a worker; the outcome lands in ``status``."""
        from ..core.errors import WorkbenchError
        from ..pacs.client import connect
        from ..pacs.nodes import load_config

        try:
            node = self.node_from_form()
            client = connect(node, load_config())
        except WorkbenchError as exc:
            self.status.setText(str(exc))
            return
        self.status.setText(f"Testing {node.label}…")
        self.test_button.setEnabled(False)

        def done(ms: float) -> None:
            self.job = None
            self.test_button.setEnabled(True)
            self.status.setText(f"{node.label}: connection OK ({ms:.0f} ms)")

        def failed(message: str) -> None:
            self.job = None
            self.test_button.setEnabled(True)
            self.status.setText(message)

        self.job = start_job(self, lambda _p, _c: client.echo(), done=done, failed=failed)
