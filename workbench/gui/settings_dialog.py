"""Settings dialog: edits a copy of :class:`workbench.core.settings.Settings`; validation is pydantic's."""
from __future__ import annotations

from pydantic import ValidationError

from ..core.settings import Settings
from .qt import QtWidgets


class SettingsDialog(QtWidgets.QDialog):
    """Theme, pixel limit, inference threads and extra plugin folders.

    ``result_settings`` holds the validated new settings after ``accept``; the caller saves them.
    """

    def __init__(self, settings: Settings, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(520)
        self._original = settings
        self.result_settings: Settings | None = None

        self.theme_combo = QtWidgets.QComboBox()
        self.theme_combo.addItems(["dark", "light"])
        self.theme_combo.setCurrentText(settings.theme)
        self.max_pixels_spin = QtWidgets.QDoubleSpinBox()
        self.max_pixels_spin.setRange(0.001, 100_000)
        self.max_pixels_spin.setDecimals(3)
        self.max_pixels_spin.setSuffix(" Mpx")
        self.max_pixels_spin.setValue(settings.max_pixels / 1e6)
        self.max_pixels_spin.setToolTip("Images with more pixels than this are refused before decoding")
        self.threads_spin = QtWidgets.QSpinBox()
        self.threads_spin.setRange(0, 256)
        self.threads_spin.setValue(settings.intra_op_threads)
        self.threads_spin.setSpecialValueText("runtime default")
        self.threads_spin.setToolTip("ONNX Runtime intra-op threads (0 = let the runtime decide)")
        self.plugin_dirs = QtWidgets.QPlainTextEdit("\n".join(settings.plugin_dirs))
        self.plugin_dirs.setPlaceholderText("one folder per line")
        self.plugin_dirs.setFixedHeight(90)
        add_dir = QtWidgets.QPushButton("Add folder…")
        add_dir.clicked.connect(self._add_dir)
        self.error_label = QtWidgets.QLabel()
        self.error_label.setStyleSheet("color: #e05555;")
        self.error_label.setWordWrap(True)
        self.error_label.hide()

        form = QtWidgets.QFormLayout()
        form.addRow("Theme", self.theme_combo)
        form.addRow("Largest image", self.max_pixels_spin)
        form.addRow("Inference threads", self.threads_spin)
        dirs = QtWidgets.QVBoxLayout()
        dirs.addWidget(self.plugin_dirs)
        dirs.addWidget(add_dir)
        from ..core.site import site_policy

        if site_policy().clinic_mode:  # issue 20: the site file's clinic mode ignores the user's folders
            for w in (self.plugin_dirs, add_dir):
                w.setEnabled(False)
                w.setToolTip("Clinic mode (site configuration): plugin folders are set by IT")
        form.addRow("Plugin folders", dirs)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)

    def _add_dir(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Plugin folder")
        if folder:
            text = self.plugin_dirs.toPlainText().rstrip()
            self.plugin_dirs.setPlainText(f"{text}\n{folder}" if text else folder)

    def edited_settings(self) -> Settings:
        """The settings as edited; raises ``pydantic.ValidationError`` when a value is invalid."""
        data = self._original.model_dump()
        data.update(
            theme=self.theme_combo.currentText(),
            max_pixels=int(round(self.max_pixels_spin.value() * 1e6)),
            intra_op_threads=self.threads_spin.value(),
            plugin_dirs=[line.strip() for line in self.plugin_dirs.toPlainText().splitlines() if line.strip()],
        )
        return Settings.model_validate(data)

    def accept(self) -> None:
        try:
            self.result_settings = self.edited_settings()
        except ValidationError as exc:
            err = exc.errors()[0]
            self.error_label.setText(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}")
            self.error_label.show()
            return
        super().accept()
