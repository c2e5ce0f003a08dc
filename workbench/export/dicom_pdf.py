"""Encapsulated PDF (DICOM): a PDF report wrapped so a PACS files it in the study of its source image.

The patient and study attributes come from the source image's header (so the PACS shows the document
next to the images); the PDF bytes are kept as they are (a Workbench report is de-identified inside, the
DICOM wrapper is not: it must name the patient to be filed). New series, new instance, modality DOC.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.errors import ExportError
from ..io.atomic import atomic_path

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
           "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber", "StudyDescription")


def encapsulated_pdf(pdf: bytes, source: Any, *, title: str = "Workbench report", series_number: int = 9901):
    """A pydicom Dataset of the Encapsulated PDF IOD holding ``pdf``, in ``source``'s patient and study.

    Raises
    ------
    ExportError
        ``pdf`` is not a PDF, or ``source`` has no StudyInstanceUID.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    if not pdf.startswith(b"%PDF"):
        raise ExportError("encapsulated PDF: the data is not a PDF (no %PDF header)")
    if not source.get("StudyInstanceUID"):
        raise ExportError("encapsulated PDF: the source image has no StudyInstanceUID")
    now = _dt.datetime.now()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(ENCAPSULATED_PDF)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    for keyword in _COPIED:
        setattr(ds, keyword, source.get(keyword, ""))
    ds.SOPClassUID = ENCAPSULATED_PDF
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "DOC"
    ds.SeriesNumber = series_number
    ds.InstanceNumber = 1
    ds.SeriesDescription = title
    ds.Manufacturer = "Workbench"
    ds.SoftwareVersions = __version__
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.ConversionType = "WSD"  # workstation
    ds.BurnedInAnnotation = "YES"  # a report names what it shows
    ds.DocumentTitle = title[:64]
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocumentLength = len(pdf)
    ds.EncapsulatedDocument = pdf + (b"\x00" if len(pdf) % 2 else b"")
    if source.get("FrameOfReferenceUID"):
        ds.FrameOfReferenceUID = source.FrameOfReferenceUID
    return ds


def write_encapsulated_pdf(path: str | Path, pdf: bytes, source: Any, *, title: str = "Workbench report") -> Path:
    """Write :func:`encapsulated_pdf` to ``path`` atomically."""
    path = Path(path)
    ds = encapsulated_pdf(pdf, source, title=title)
    try:
        with atomic_path(path, suffix=".dcm") as tmp:
            ds.save_as(tmp, enforce_file_format=True)
    except OSError as exc:
        raise ExportError(f"cannot write ({exc.strerror or exc})", path=path) from exc
    return path
