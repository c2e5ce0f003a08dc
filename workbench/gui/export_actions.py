"""File > Export actions of the session controller: mask, measurements and report of a snapshot of the
session (:mod:`workbench.export.session_exports`), written in a pool thread.
"""
from __future__ import annotations

from pathlib import Path

from ..core.errors import WorkbenchError
from ..export.session_exports import default_mask_suffix, export_label_map, export_measurements, export_reports
from .qt import QtWidgets

_MASK_FILTERS = {".nii.gz": "NIfTI (*.nii.gz *.nii)", ".tif": "Multi-page TIFF (*.tif *.tiff)",
                 ".png": "PNG (*.png)", ".dcm": "DICOM SEG (*.dcm)"}


class ExportActions:
    """The File > Export dialogs and jobs of :class:`~workbench.gui.session_controller.SessionController`."""

    # -- exports --------------------------------------------------------------------------------------------
    def export_mask_dialog(self) -> None:
        from ..export.dicom_seg import is_dicom_source

        image = self.window.document.image
        if image is None:
            return
        suffix = default_mask_suffix(image)
        order = [suffix] + [s for s in _MASK_FILTERS if s != suffix]
        if image.n_slices > 1:
            order = [s for s in order if s != ".png"]
        if not is_dicom_source(image):
            order = [s for s in order if s != ".dcm"]
        default = self._default_dir() / f"{self._stem()}_{'seg' if suffix == '.dcm' else 'mask'}{suffix}"
        path, chosen = QtWidgets.QFileDialog.getSaveFileName(
            self.window, "Export mask", str(default), ";;".join(_MASK_FILTERS[s] for s in order))
        if not path:
            return
        if not any(path.lower().endswith(s) for s in (".png", ".tif", ".tiff", ".nii", ".nii.gz", ".dcm")):
            picked = next((s for s in order if _MASK_FILTERS[s] == chosen), suffix)
            path += picked
        self.export_mask(path)

    def export_mask(self, path: str | Path) -> bool:
        """Write the whole label map to ``path`` (format by suffix) in a worker."""
        session = self._snapshot()
        if session is None:
            return False
        target = Path(path)
        keep = self.keep_identity_action.isChecked()
        return self._start(lambda _p, _c: export_label_map(session, target, keep_identity=keep),
                           f"Exporting {target.name}",
                           lambda written: self.window.show_status(f"Mask written to {written[0]}"))

    def export_mask_now(self, path: str | Path) -> bool:
        """Write the whole label map to ``path`` synchronously (scripts and small images); errors are shown."""
        session = self._snapshot()
        if session is None:
            return False
        try:
            written = export_label_map(session, path, keep_identity=self.keep_identity_action.isChecked())
        except WorkbenchError as exc:
            self.window.show_error(str(exc))
            return False
        self.window.show_status(f"Mask written to {written[0]}")
        return True

    def export_measurements_dialog(self) -> None:
        if self.window.document.image is None:
            return
        default = self._default_dir() / f"{self._stem()}_measurements.csv"
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self.window, "Export measurements", str(default),
                                                        "CSV (*.csv)")
        if path:
            self.export_measurements(path if path.lower().endswith(".csv") else path + ".csv")

    def export_measurements(self, path: str | Path) -> bool:
        session = self._snapshot()
        if session is None:
            return False
        target = Path(path)
        return self._start(lambda _p, _c: export_measurements(session, target), f"Exporting {target.name}",
                           lambda written: self.window.show_status(f"Measurements written to {written[0]}"))

    def export_report_dialog(self) -> None:
        if self.window.document.image is None:
            return
        folder = QtWidgets.QFileDialog.getExistingDirectory(self.window, "Export report into folder",
                                                            str(self._default_dir()))
        if folder:
            self.export_report(folder)

    def export_report(self, folder: str | Path) -> bool:
        session = self._snapshot()
        if session is None:
            return False
        target = Path(folder)
        return self._start(lambda _p, _c: export_reports(session, target), "Exporting the report",
                           lambda written: self.window.show_status(
                               f"{len(written)} report files written to {target}"))
