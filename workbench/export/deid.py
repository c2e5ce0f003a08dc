"""De-identification of what exports show and write.

Two levels, both documented field by field in docs/REPORTS.md:

* :func:`deidentify_metadata` turns ``ImageVolume.metadata`` into the short list of header fields a report
  may show. It is an **allow-list**: acquisition facts (modality, body part, manufacturer, spacing...) pass,
  everything else (names, IDs, dates, institution, free text, UIDs, file paths) is dropped, and the patient
  is shown only as a salted pseudonym.
* :func:`deidentify_dataset` returns a de-identified copy of a pydicom ``Dataset`` (``metadata
  ["dicom_header"]``), for exports that write DICOM. It applies the actions of DICOM PS3.15 Annex E, Basic
  Application Level Confidentiality Profile (Table E.1-1) for the attributes listed in :data:`BASIC_PROFILE`,
  and three catch-all rules for what the list misses: every person name (VR PN) is blanked, every date/time
  (VR DA/DT/TM) is removed or shifted, every instance UID is replaced. Private tags are removed.

Pseudonyms, date shifts and replacement UIDs are HMAC-SHA256 of the original value keyed with a salt, so
they are stable (the same patient gets the same pseudonym in every report, UIDs keep their references
consistent) but cannot be reversed or recomputed without the salt. The default salt is random per
installation (:func:`installation_salt`); set ``WORKBENCH_DEID_SALT`` to share one between machines.
"""
from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import hmac
import os
import secrets
import threading
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from ..core.errors import ExportError
from ..core.settings import config_dir

DateMode = Literal["remove", "shift"]
DATE_MODES: tuple[str, ...] = ("remove", "shift")

SALT_ENV = "WORKBENCH_DEID_SALT"
SALT_FILE = "deid_salt"
MAX_SHIFT_DAYS = 3650  # dates move back by 1..3650 days, one fixed offset per patient

# -- what a report may show -------------------------------------------------------------------------
# Acquisition facts only. Each is outside PS3.15 Table E.1-1 (retained by the Basic Profile) and none
# names a person, place, time or instance.
REPORT_FIELDS: dict[str, str] = {
    "Modality": "Modality",
    "BodyPartExamined": "Body part",
    "Laterality": "Laterality",
    "ImageLaterality": "Image laterality",
    "ViewPosition": "View position",
    "PatientPosition": "Patient position",
    "Manufacturer": "Manufacturer",
    "ManufacturerModelName": "Model",
    "ImageType": "Image type",
    "PixelSpacing": "Pixel spacing (mm)",
    "SliceThickness": "Slice thickness (mm)",
    "KVP": "kVp",
    "ConvolutionKernel": "Convolution kernel",
    "MagneticFieldStrength": "Field strength (T)",
    "SequenceName": "Sequence",
}
# Labels of the fields deidentify_metadata adds itself.
DERIVED_LABELS: dict[str, str] = {
    "format": "File format",
    "Pseudonym": "Patient pseudonym",
    "StudyDate": "Study date (shifted)",
    "Dates": "Dates",
    "BurnedInAnnotation": "Burned-in annotation",
}

# -- PS3.15 Table E.1-1, Basic Profile column, for the attributes handled ----------------------------
# X: remove; Z: zero-length value (PatientName/PatientID: the pseudonym, a dummy value the profile
# allows); U: replace the UID. Keywords rather than tags for readability; a unit test checks that each
# one is a known DICOM keyword.
_X = (
    # patient
    "IssuerOfPatientID", "IssuerOfPatientIDQualifiersSequence", "PatientBirthTime", "OtherPatientIDs",
    "OtherPatientNames", "OtherPatientIDsSequence", "PatientBirthName", "PatientAge", "PatientSize",
    "PatientWeight", "PatientAddress", "InsurancePlanIdentification", "PatientMotherBirthName",
    "MilitaryRank", "BranchOfService", "MedicalRecordLocator", "MedicalAlerts", "Allergies",
    "CountryOfResidence", "RegionOfResidence", "PatientTelephoneNumbers", "EthnicGroup", "Occupation",
    "SmokingStatus", "AdditionalPatientHistory", "PregnancyStatus", "LastMenstrualDate",
    "PatientReligiousPreference", "PatientSexNeutered", "ResponsiblePerson", "ResponsiblePersonRole",
    "ResponsibleOrganization", "PatientComments", "PatientState", "SpecialNeeds",
    "PatientTransportArrangements", "PatientInstitutionResidence", "PatientInsurancePlanCodeSequence",
    "PatientPrimaryLanguageCodeSequence", "PatientPrimaryLanguageModifierCodeSequence",
    "ConfidentialityConstraintOnPatientDataDescription", "ReferencedPatientSequence",
    "ReferencedPatientPhotoSequence",
    # study / visit / request
    "IssuerOfAccessionNumberSequence", "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers",
    "ReferringPhysicianIdentificationSequence", "ConsultingPhysicianName",
    "ConsultingPhysicianIdentificationSequence", "StudyDescription", "PhysiciansOfRecord",
    "PhysiciansOfRecordIdentificationSequence", "NameOfPhysiciansReadingStudy",
    "PhysiciansReadingStudyIdentificationSequence", "AdmittingDiagnosesDescription",
    "AdmittingDiagnosesCodeSequence", "AdmissionID", "IssuerOfAdmissionIDSequence", "AdmittingDate",
    "AdmittingTime", "ReasonForStudy", "RequestingPhysician", "RequestingService",
    "RequestedProcedureDescription", "RequestedProcedureID", "RequestAttributesSequence",
    "ReasonForTheRequestedProcedure", "StudyComments", "InterpretationRecorder", "InterpretationTranscriber",
    "InterpretationText", "InterpretationAuthor", "InterpretationDiagnosisDescription", "ResultsIDIssuer",
    "ResultsID", "ReferencedStudySequence", "ReferencedPerformedProcedureStepSequence", "ServiceEpisodeID",
    "ServiceEpisodeDescription", "VisitComments", "CurrentPatientLocation",
    "ScheduledPatientInstitutionResidence", "OrderEnteredBy", "OrderEntererLocation",
    "OrderCallbackPhoneNumber", "PlacerOrderNumberImagingServiceRequest",
    "FillerOrderNumberImagingServiceRequest", "DischargeDiagnosisDescription",
    # series / procedure step / equipment
    "SeriesDate", "SeriesTime", "SeriesDescription", "ProtocolName", "OperatorsName",
    "OperatorIdentificationSequence", "PerformingPhysicianName", "PerformingPhysicianIdentificationSequence",
    "PerformedProcedureStepID", "PerformedProcedureStepDescription", "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime", "PerformedProcedureStepEndDate", "PerformedProcedureStepEndTime",
    "PerformedLocation", "PerformedStationName", "PerformedStationAETitle",
    "PerformedProcedureTypeDescription", "ScheduledProcedureStepDescription", "ScheduledProcedureStepID",
    "ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime", "ScheduledProcedureStepEndDate",
    "ScheduledProcedureStepEndTime", "ScheduledPerformingPhysicianName", "InstitutionName",
    "InstitutionAddress", "InstitutionalDepartmentName", "InstitutionCodeSequence", "StationName",
    "DeviceSerialNumber", "DetectorID", "GantryID", "PlateID", "CassetteID", "DateOfLastCalibration",
    "TimeOfLastCalibration", "ContrastBolusStartTime", "ContrastBolusStopTime",
    # instance
    "AcquisitionDate", "AcquisitionTime", "AcquisitionDateTime", "InstanceCreationDate",
    "InstanceCreationTime", "ImageComments", "FrameComments", "AcquisitionComments", "DerivationDescription",
    "TimezoneOffsetFromUTC", "TextValue", "VerifyingOrganization", "ContentCreatorIdentificationCodeSequence",
    "AuthorObserverSequence", "ParticipantSequence", "CustodialOrganizationSequence",
    "HumanPerformerOrganization", "DataSetTrailingPadding", "DigitalSignaturesSequence",
    "MACParametersSequence", "EncryptedAttributesSequence", "OriginalAttributesSequence",
    "ModifiedAttributesSequence",
    # file meta: the sending station's AE title
    "SourceApplicationEntityTitle",
)
_Z = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID",
    "AccessionNumber", "ReferringPhysicianName", "ContentDate", "ContentTime",
)
_U = (
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "MediaStorageSOPInstanceUID",
    "FrameOfReferenceUID", "SynchronizationFrameOfReferenceUID", "ReferencedSOPInstanceUID",
    "ReferencedFrameOfReferenceUID", "RelatedFrameOfReferenceUID", "InstanceCreatorUID", "ConcatenationUID",
    "DimensionOrganizationUID", "IrradiationEventUID", "StorageMediaFileSetUID", "TransactionUID",
    "FiducialUID", "DeviceUID", "UID", "ReferencedSOPInstanceUIDInFile", "SpecimenUID",
)
BASIC_PROFILE: dict[str, str] = {**{k: "X" for k in _X}, **{k: "Z" for k in _Z}, **{k: "U" for k in _U}}
"""Keyword -> PS3.15 Basic Profile action (X remove, Z empty/dummy, U new UID) for the handled attributes."""

# UI attributes that name a class, syntax or scheme, not an instance: never replaced.
_UID_KEEP_SUFFIXES = ("ClassUID",)
_UID_KEEP = {"TransferSyntaxUID", "CodingSchemeUID", "MappingResourceUID", "ContextGroupExtensionCreatorUID",
             "TemplateExtensionCreatorUID", "ImplementationClassUID"}
_DICOM_ROOT = "1.2.840.10008."  # UIDs the standard defines (SOP classes, syntaxes): not identifying

_salt_lock = threading.Lock()
_salt_cache: dict[str, bytes] = {}


# -- salt and keyed hashes ---------------------------------------------------------------------------
def installation_salt() -> bytes:
    """The de-identification salt: ``$WORKBENCH_DEID_SALT`` if set, else a random 32-byte secret kept in
    the config folder (created on first use, atomically; readable by the user only).

    Raises
    ------
    ExportError
        If the salt file cannot be read or created.
    """
    env = os.environ.get(SALT_ENV)
    if env:
        return env.encode("utf-8")
    path = config_dir() / SALT_FILE
    key = str(path)
    with _salt_lock:
        if key in _salt_cache:
            return _salt_cache[key]
        try:
            if not path.is_file():
                from ..io.atomic import atomic_write_text

                atomic_write_text(path, secrets.token_hex(32) + "\n")
                try:
                    os.chmod(path, 0o600)
                except OSError:
                    pass  # not supported on every file system (e.g. FAT, some Windows shares): not fatal
            salt = path.read_text(encoding="utf-8").strip().encode("utf-8")
        except OSError as exc:
            raise ExportError(f"cannot read or create the de-identification salt ({exc.strerror or exc})",
                              path=path) from exc
        if not salt:
            raise ExportError("the de-identification salt file is empty; delete it to get a new one", path=path)
        _salt_cache[key] = salt
        return salt


def _salt_bytes(salt: str | bytes | None) -> bytes:
    if salt is None:
        return installation_salt()
    return salt.encode("utf-8") if isinstance(salt, str) else bytes(salt)


def _digest(salt: bytes, purpose: str, value: str) -> bytes:
    # The purpose prefix keeps the pseudonym, the date shift and the UIDs of one value unrelated.
    return hmac.new(salt, f"{purpose}\x00{value}".encode("utf-8"), hashlib.sha256).digest()


def pseudonym(patient_key: str, *, salt: str | bytes | None = None) -> str:
    """A stable, non-reversible pseudonym such as ``ANON-3F2A9C1B7E`` for a patient ID (or name).

    Parameters
    ----------
    patient_key : str
        The identifier to replace (PatientID; PatientName when there is no ID).
    salt : str or bytes, optional
        Key of the HMAC; default :func:`installation_salt`.
    """
    return "ANON-" + _digest(_salt_bytes(salt), "pseudonym", patient_key).hex()[:10].upper()


def date_shift_days(patient_key: str, *, salt: str | bytes | None = None) -> int:
    """Days (1..3650) by which every date of this patient moves back: one offset per patient keeps the
    intervals between their studies (PS3.15 "Retain Longitudinal Temporal Information with Modified Dates")."""
    d = _digest(_salt_bytes(salt), "date-shift", patient_key)
    return 1 + int.from_bytes(d[:8], "big") % MAX_SHIFT_DAYS


def replacement_uid(uid: str, *, salt: str | bytes | None = None) -> str:
    """A new UID for ``uid``: ``2.25.<decimal>`` of a UUID built from HMAC-SHA256 (PS3.5 B.2), the same
    for the same input and salt so that references between de-identified objects still match."""
    d = _digest(_salt_bytes(salt), "uid", str(uid).strip())
    return f"2.25.{uuid.UUID(bytes=d[:16], version=5).int}"


def shift_date(value: str, days: int) -> str:
    """``YYYYMMDD`` (DICOM DA) or the date part of a DT value moved back ``days`` days; ``""`` if unparsable.

    Examples
    --------
    >>> shift_date("20040119", 10)
    '20040109'
    """
    text = str(value).strip()
    if len(text) < 8 or not text[:8].isdigit():
        return ""
    try:
        day = _dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return ""
    try:
        shifted = day - _dt.timedelta(days=days)
    except OverflowError:
        return ""
    return shifted.strftime("%Y%m%d") + text[8:]


def _patient_key(fields: Mapping[str, Any]) -> str | None:
    for keyword in ("PatientID", "PatientName"):
        value = str(fields.get(keyword) or "").strip()
        if value:
            return value
    return None


def _check_dates(dates: str) -> None:
    if dates not in DATE_MODES:
        raise ValueError(f"dates must be one of {DATE_MODES}, got {dates!r}")


# -- metadata -> report fields -----------------------------------------------------------------------
def deidentify_metadata(metadata: Mapping[str, Any], *, salt: str | bytes | None = None,
                        dates: DateMode = "remove") -> dict[str, Any]:
    """The header fields a report may show, from ``ImageVolume.metadata``.

    Parameters
    ----------
    metadata : mapping
        ``ImageVolume.metadata`` of any reader. DICOM fields are read from ``metadata["dicom"]`` (and
        ``PixelSpacing`` / ``BurnedInAnnotation`` from ``metadata["dicom_header"]`` when present).
    salt : str or bytes, optional
        Key for the pseudonym and the date shift; default :func:`installation_salt`.
    dates : {"remove", "shift"}
        ``remove`` (default): no date at all. ``shift``: the study date moved back by the patient's
        :func:`date_shift_days`, labelled as shifted.

    Returns
    -------
    dict
        Keyword -> value, in display order: ``format``; ``Pseudonym`` (when the file names a patient);
        the :data:`REPORT_FIELDS` present; ``StudyDate`` (``YYYY-MM-DD``, shift mode only); ``Dates``
        (how dates were treated, DICOM only); ``BurnedInAnnotation`` (only when the file says ``YES``:
        the pixels may show identifying text that no header rule can remove). Labels for display are in
        :data:`REPORT_FIELDS` and :data:`DERIVED_LABELS`. Nothing else of ``metadata`` is passed on.
    """
    _check_dates(dates)
    out: dict[str, Any] = {}
    fmt = metadata.get("format")
    if isinstance(fmt, str) and fmt:
        out["format"] = fmt
    fields = metadata.get("dicom")
    if not isinstance(fields, Mapping):
        fields = {}
    header = metadata.get("dicom_header")
    key = _patient_key(fields)
    if key is None and header is not None:
        key = _patient_key({k: getattr(header, k, None) for k in ("PatientID", "PatientName")})
    if key is not None:
        out["Pseudonym"] = pseudonym(key, salt=salt)
    for keyword in REPORT_FIELDS:
        value = fields.get(keyword)
        if value is None and header is not None:
            value = _header_value(header, keyword)
        value = _display_value(value)
        if value:
            out[keyword] = value
    is_dicom = bool(fields) or header is not None
    if is_dicom:
        study_date = str(fields.get("StudyDate") or (_header_value(header, "StudyDate") if header is not None
                                                     else "") or "")
        if dates == "shift" and study_date:
            shifted = shift_date(study_date, date_shift_days(key or "", salt=salt))
            if shifted:
                out["StudyDate"] = f"{shifted[:4]}-{shifted[4:6]}-{shifted[6:8]}"
        out["Dates"] = "shifted by a per-patient offset" if dates == "shift" else "removed"
        burned = fields.get("BurnedInAnnotation") or (_header_value(header, "BurnedInAnnotation")
                                                      if header is not None else None)
        if str(burned or "").strip().upper() == "YES":
            out["BurnedInAnnotation"] = "YES: the image may show identifying text"
    return out


def _header_value(header: Any, keyword: str) -> Any:
    try:
        return header.get(keyword)
    except (ValueError, TypeError, OverflowError):
        return None  # a malformed optional element: the report just leaves the field out


def _display_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return " \\ ".join(_display_value(v) for v in value if _display_value(v))
    if isinstance(value, float):
        return f"{value:g}"
    text = " ".join(str(value).split())
    try:
        number = float(text)
    except ValueError:
        return text
    return f"{number:g}" if any(c in text for c in ".eE") else text


def field_label(keyword: str) -> str:
    """Display label of a key returned by :func:`deidentify_metadata`."""
    return REPORT_FIELDS.get(keyword) or DERIVED_LABELS.get(keyword) or keyword


# -- pydicom Dataset -> de-identified copy --------------------------------------------------------------
def deidentify_dataset(ds: Any, *, salt: str | bytes | None = None, dates: DateMode = "remove",
                       keep_private: bool = False) -> Any:
    """A de-identified deep copy of a pydicom ``Dataset`` (the input is not modified).

    Applied at every nesting level (sequence items too), in this order:

    1. private elements removed (unless ``keep_private``);
    2. :data:`BASIC_PROFILE` actions: X removed, Z emptied, U replaced by :func:`replacement_uid`;
       PatientName and PatientID get the patient's :func:`pseudonym` (a dummy value, allowed for Z);
    3. catch-all rules for attributes the table above misses: every other person name (PN) is emptied;
       every other UID that is not a class/syntax UID and not defined by the standard (root
       ``1.2.840.10008.``) is replaced; dates and times (DA, DT, TM) follow ``dates``: ``remove`` empties
       the Z attributes and removes all others, ``shift`` moves every DA and the date of every DT back by
       the patient's :func:`date_shift_days` (times kept; PatientBirthDate is emptied in both modes);
    4. PatientIdentityRemoved = ``YES``, DeidentificationMethod describes what was done and
       LongitudinalTemporalInformationModified = ``REMOVED`` or ``MODIFIED``; the file meta's
       ImplementationClassUID / ImplementationVersionName name pydicom / Workbench (the new writer).

    Pixel data are copied unchanged: text burned into the pixels (BurnedInAnnotation ``YES``) is not
    removed.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A dataset, e.g. ``ImageVolume.metadata["dicom_header"]``. Its file meta, if any, is treated too.
    salt : str or bytes, optional
        Key of pseudonym, date shift and UIDs; default :func:`installation_salt`.
    dates : {"remove", "shift"}
    keep_private : bool
        Keep private elements (for a site that vetted its vendors' private tags). Default False.

    Returns
    -------
    pydicom.dataset.Dataset
    """
    from pydicom.dataset import Dataset

    _check_dates(dates)
    if not isinstance(ds, Dataset):
        raise TypeError(f"deidentify_dataset needs a pydicom Dataset, got {type(ds).__name__}")
    salt_b = _salt_bytes(salt)
    out = copy.deepcopy(ds)
    key = _patient_key({k: out.get(k) for k in ("PatientID", "PatientName")}) or ""
    ctx = _Context(salt_b, dates, date_shift_days(key, salt=salt_b), pseudonym(key, salt=salt_b) if key else "")
    meta = getattr(out, "file_meta", None)
    if not keep_private:
        out.remove_private_tags()
    _apply(out, ctx)
    if meta is not None:
        _apply(meta, ctx)
        # the file meta names the software that writes the file: that is now us, not the source's vendor
        from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

        from .. import __version__

        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = f"WORKBENCH_{__version__}"[:16]
    out.PatientIdentityRemoved = "YES"
    # LO holds at most 64 characters; docs/REPORTS.md spells out what this short text stands for
    out.DeidentificationMethod = (f"Workbench PS3.15 basic subset; dates {'shifted' if dates == 'shift' else 'removed'}"
                                  f"; private {'kept' if keep_private else 'removed'}")
    out.LongitudinalTemporalInformationModified = "MODIFIED" if dates == "shift" else "REMOVED"
    return out


class _Context:
    def __init__(self, salt: bytes, dates: str, shift: int, alias: str) -> None:
        self.salt = salt
        self.dates = dates
        self.shift = shift
        self.alias = alias


def _apply(ds: Any, ctx: _Context) -> None:
    from pydicom.datadict import keyword_for_tag

    for tag in list(ds.keys()):
        elem = ds[tag]
        keyword = elem.keyword or keyword_for_tag(tag) or ""
        vr = elem.VR
        action = BASIC_PROFILE.get(keyword)
        if action is None and _is_overlay_or_curve(tag):
            action = "X"  # 60xx overlay data/comments and retired 50xx curves may carry text
        if action == "X":
            del ds[tag]
            continue
        if vr == "SQ":
            for item in elem.value or ():
                _apply(item, ctx)
            continue
        if action == "Z":
            if keyword in ("PatientName", "PatientID") and ctx.alias:
                elem.value = ctx.alias
            elif vr in ("DA", "DT") and ctx.dates == "shift" and keyword != "PatientBirthDate":
                elem.value = _shift_value(elem.value, ctx.shift)
            elif vr == "TM" and ctx.dates == "shift":
                pass  # times of day stay with shifted dates (PS3.15 Modified Dates option)
            else:
                elem.value = ""
            continue
        if action == "U" or (vr == "UI" and _replace_uid(keyword, elem.value)):
            elem.value = _map_uids(elem.value, ctx.salt)
            continue
        if vr == "PN":
            elem.value = ""
        elif vr in ("DA", "DT"):
            if ctx.dates == "shift":
                elem.value = _shift_value(elem.value, ctx.shift)
            else:
                del ds[tag]
        elif vr == "TM" and ctx.dates == "remove":
            del ds[tag]


def _is_overlay_or_curve(tag: Any) -> bool:
    group, element = tag >> 16, tag & 0xFFFF
    if 0x6000 <= group <= 0x60FF and group % 2 == 0:
        return element in (0x3000, 0x4000)  # Overlay Data, Overlay Comments
    return 0x5000 <= group <= 0x50FF and group % 2 == 0


def _replace_uid(keyword: str, value: Any) -> bool:
    if keyword in _UID_KEEP or keyword.endswith(_UID_KEEP_SUFFIXES):
        return False
    values = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
    return any(str(v).strip() and not str(v).startswith(_DICOM_ROOT) for v in values)


def _map_uids(value: Any, salt: bytes) -> Any:
    def one(v: Any) -> str:
        text = str(v).strip()
        if not text or text.startswith(_DICOM_ROOT):
            return text
        return replacement_uid(text, salt=salt)

    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [one(v) for v in value]
    return one(value)


def _shift_value(value: Any, days: int) -> Any:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [shift_date(str(v), days) for v in value]
    return shift_date(str(value), days) if value not in (None, "") else value
