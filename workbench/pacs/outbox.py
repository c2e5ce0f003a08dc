"""What "Send to PACS" sends: DICOM objects made from the open document, written to a temporary folder.

- the label map as a DICOM SEG referencing the source series (:mod:`workbench.export.dicom_seg`);
- each report PDF (the de-identified report of :func:`workbench.export.session_exports.export_reports`) wrapped as
  an Encapsulated PDF in the source's patient and study (:mod:`workbench.export.dicom_pdf`);
- the latest restored image (a denoising / super-resolution result) as a derived DICOM series of the source
  series, each instance referencing its source instance (:mod:`workbench.export.dicom_derived`).

All are identified DICOM objects (they carry the source's patient and study attributes) so that the PACS
files them with the images: that is what leaves the machine, and only to the node the user picked.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import ExportError

#: shown before sending (GUI) and in docs/PACS.md
WHAT_LEAVES = (
    "The selected objects are sent to {node} and to no other computer: a DICOM SEG of the label map, "
    "the report as an encapsulated PDF and/or the restored image as a derived DICOM series. They are identified "
    "DICOM objects: they carry the patient's name, "
    "ID, birth date and sex and the study of the source images, so that the PACS files them next to the "
    "images. Nothing else leaves this computer; file exports keep their de-identification rules.")


def source_header(image: Any):
    """The DICOM header of the source image's first instance (for the patient/study attributes)."""
    import pydicom

    meta = image.metadata
    files = list(meta.get("files") or [])
    if files and Path(files[0]).is_file():
        return pydicom.dcmread(files[0], stop_before_pixels=True)
    if meta.get("dicom_header") is not None:
        return meta["dicom_header"]
    raise ExportError("Send to PACS needs an image read from DICOM (its source files are not available)")


def latest_restoration(session: Any):
    """The most recent restoration result of the session (what "the restored image" means), or None."""
    from ..core.results import RestorationResult

    return next((r for r in reversed(list(session.results)) if isinstance(r, RestorationResult)), None)


def build_outbox(session: Any, folder: str | Path, *, seg: bool = True, report: bool = True,
                 restored: bool = False) -> list[Path]:
    """Write the objects to send into ``folder``; returns the DICOM files (nothing else is sent).

    Raises
    ------
    ExportError
        Not a DICOM image, nothing selected, an empty label map for the SEG, nothing to report, or no
        restored image for the derived series.
    """
    from ..export.dicom_pdf import write_encapsulated_pdf
    from ..export.dicom_seg import is_dicom_source
    from ..export.session_exports import export_label_map, export_reports

    if not is_dicom_source(session.image):
        raise ExportError("Send to PACS needs an image read from DICOM (a SEG and a report refer to its series)")
    if not (seg or report or restored):
        raise ExportError("Send to PACS: nothing selected")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    if seg:
        if session.label_data is None or not session.label_data.any():
            raise ExportError("Send to PACS: the label map is empty (nothing for a DICOM SEG)")
        # identified on purpose: the SEG must join the source study on the PACS the user chose (the
        # de-identification default of file exports does not apply to sending back; docs/PACS.md)
        written = export_label_map(session, folder / "segmentation.dcm", keep_identity=True)
        out += [p for p in written if p.suffix == ".dcm"]
    if report:
        header = source_header(session.image)
        pdfs = [p for p in export_reports(session, folder / "reports", formats=("pdf",)) if p.suffix == ".pdf"]
        for index, pdf in enumerate(pdfs, start=1):
            out.append(write_encapsulated_pdf(folder / f"report_{index}.dcm", pdf.read_bytes(), header,
                                              title=f"Workbench report {index}"))
    if restored:
        from ..export.dicom_derived import write_derived_series

        result = latest_restoration(session)
        if result is None:
            raise ExportError("Send to PACS: no restored image (run a restoration model first)")
        algorithm = f"{result.info.plugin_name} {result.info.plugin_version}".strip()
        out += write_derived_series(folder / "derived", result.image, session.image,
                                    slices=result.extra.get("slices"), scale=result.scale,
                                    description=f"Restored: {result.info.plugin_name}"[:64], algorithm=algorithm)
    return out
