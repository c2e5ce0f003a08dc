"""The query keys of ``workbench pacs find`` and the GUI search, for C-FIND and QIDO-RS alike.

Matches are plain dicts keyed by standard DICOM keywords (``PatientID``, ``StudyInstanceUID``...), values as
strings or ints, so the CLI prints them as JSON and the GUI shows them in a table.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydicom.dataset import Dataset

from .errors import PacsError

Level = Literal["patient", "study", "series"]
LEVELS: tuple[str, ...] = ("patient", "study", "series")

#: the keys asked for (returned) at each level, besides the ones the query matches on
RETURN_KEYS: dict[str, tuple[str, ...]] = {
    "patient": ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                "NumberOfPatientRelatedStudies"),
    "study": ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "StudyDate", "StudyTime",
              "AccessionNumber", "StudyDescription", "ModalitiesInStudy", "StudyID",
              "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"),
    "series": ("PatientName", "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
               "SeriesNumber", "SeriesDescription", "SeriesDate", "BodyPartExamined",
               "NumberOfSeriesRelatedInstances"),
}
_DATE = re.compile(r"^(\d{8})?(-)?(\d{8})?$")
_INT_KEYS = {"NumberOfPatientRelatedStudies", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
             "NumberOfSeriesRelatedInstances", "SeriesNumber"}


def normalise_date_range(text: str | None) -> str | None:
    """``YYYYMMDD``, ``FROM-TO``, ``FROM-`` or ``-TO`` as DICOM range matching wants it; ISO dates
    (``2024-01-31``) are accepted too."""
    if not text:
        return None
    value = re.sub(r"(\d{4})-(\d{2})-(\d{2})", r"\1\2\3", text.strip()).replace(" ", "")
    match = _DATE.match(value)
    if not match or not (match[1] or match[3]) or (match[1] and match[3] and match[1] > match[3]):
        raise PacsError(f"--study-date: {text!r} is not YYYYMMDD or FROM-TO (e.g. 20240101-20240131)")
    return value


@dataclass(frozen=True)
class Query:
    """What to look for; empty fields match everything. ``patient_name`` takes ``*`` and ``?`` wildcards."""

    level: Level = "study"
    patient_id: str | None = None
    patient_name: str | None = None
    birth_date: str | None = None
    accession: str | None = None
    modality: str | None = None
    study_date: str | None = None
    description: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise PacsError(f"--level: {self.level!r} is not one of {', '.join(LEVELS)}")
        object.__setattr__(self, "study_date", normalise_date_range(self.study_date))

    def matching(self) -> dict[str, str]:
        """The keys with values the peer must match, by DICOM keyword."""
        keys = {
            "PatientID": self.patient_id,
            "PatientName": self.patient_name,
            "PatientBirthDate": self.birth_date,
            "AccessionNumber": self.accession,
            "StudyDate": self.study_date,
            "StudyInstanceUID": self.study_uid,
            "SeriesInstanceUID": self.series_uid,
        }
        if self.level == "series":
            keys["Modality"] = self.modality
            keys["SeriesDescription"] = self.description
        elif self.level == "study":
            keys["ModalitiesInStudy"] = self.modality
            keys["StudyDescription"] = self.description
        if self.level == "patient":
            # patient-level C-FIND knows patient attributes only
            keys = {k: v for k, v in keys.items() if k.startswith("Patient")}
        return {k: v for k, v in keys.items() if v}

    def identifier(self) -> Dataset:
        """The C-FIND identifier (matching keys with values, return keys empty)."""
        ds = Dataset()
        ds.QueryRetrieveLevel = self.level.upper()
        for key in RETURN_KEYS[self.level]:
            setattr(ds, key, "")
        for key, value in self.matching().items():
            setattr(ds, key, value)
        return ds


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if hasattr(value, "original_string") and not isinstance(value, (str, bytes)):  # PersonName
        return str(value)
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def match_from_dataset(ds: Dataset, level: str) -> dict[str, Any]:
    """A C-FIND / QIDO-RS response as a dict of keyword -> str/int (empty values left out)."""
    out: dict[str, Any] = {"QueryRetrieveLevel": level.upper()}
    for key in RETURN_KEYS[level]:
        value = _plain(ds.get(key))
        if value in (None, ""):
            continue
        if key in _INT_KEYS:
            try:
                value = int(value)
            except ValueError:
                pass
        out[key] = value
    return out
