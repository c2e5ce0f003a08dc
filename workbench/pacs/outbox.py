"""What "Send to PACS" sends: DICOM objects made from the open document, written to a temporary folder.

- the label map as a DICOM SEG referencing the source series (:mod:`workbench.export.dicom_seg`);
- each report PDF (the de-identified report of :func:`workbench.export.session_exports.export_reports`) wrapped as
  an Encapsulated PDF in the source's patient and study (:mod:`workbench.export.dicom_pdf`).

Both are identified DICOM objects (they carry the source's patient and study attributes) so that the PACS
files them with the images: that is what leaves the machine, and only to the node the user picked.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import ExportError

#: shown before sending (GUI) and in docs/PACS.md
WHAT_LEAVES = (
    "The selected objects are sent to {node} and to no other computer: a DICOM SEG of the label map and/or "
    "the report as an encapsulated PDF. They are identified DICOM objects: they carry the patient's name, "
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


def build_outbox(session: Any, folder: str | Path, *, seg: bool = True, report: bool = True) -> list[Path]:
    """Write the objects to send into ``folder``; returns the DICOM files (nothing else is sent).

    Raises
    ------
    ExportError
        Not a DICOM image, nothing selected, an empty label map for the SEG, or nothing to report.
    """
    from ..export.dicom_pdf import write_encapsulated_pdf
    from ..export.dicom_seg import is_dicom_source
    from ..export.session_exports import export_label_map, export_reports

    if not is_dicom_source(session.image):
        raise ExportError("Send to PACS needs an image read from DICOM (a SEG and a report refer to its series)")
    if not (seg or report):
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
    return out
