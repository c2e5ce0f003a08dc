"""A real Orthanc for the PACS tests: started on free loopback ports with a temporary storage folder.

Also the DICOM the tests load into it (tiny CT / MR series of two patients, made here) and helpers to
reach its REST API (urllib on loopback: independent of the code under test).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

ORTHANC_AET = "ORTHANC"
OUR_AET = "WORKBENCH"
DICOMWEB_PLUGIN_CANDIDATES = ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
                              "/usr/lib/orthanc/libOrthancDicomWeb.so")


def orthanc_binary() -> str | None:
    for candidate in (shutil.which("Orthanc"), "/usr/sbin/Orthanc"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def dicomweb_plugin() -> str | None:
    return next((p for p in DICOMWEB_PLUGIN_CANDIDATES if os.path.exists(p)), None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Orthanc:
    """One Orthanc process; :meth:`start` / :meth:`stop` (restartable on the same storage and ports)."""

    folder: Path
    dicom_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    scp_port: int = field(default_factory=free_port)
    users: dict[str, str] | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    @property
    def spec(self) -> str:
        return f"{ORTHANC_AET}@127.0.0.1:{self.dicom_port}"

    def write_config(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        plugin = dicomweb_plugin()
        config = {
            "Name": "workbench-test",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "storage"),
            "DicomAet": ORTHANC_AET,
            "DicomPort": self.dicom_port,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": bool(self.users),
            "RegisteredUsers": self.users or {},
            "DicomCheckCalledAet": True,
            "DicomModalities": {"workbench": {"AET": OUR_AET, "Host": "127.0.0.1", "Port": self.scp_port}},
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": True,
            "DicomAlwaysAllowMove": True,
            "DicomScpTimeout": 30,
            "Plugins": [plugin] if plugin else [],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
            "StorageCompression": False,
            "HttpDescribeErrors": True,
            "ConcurrentJobs": 1,
            "HttpThreadsCount": 4,
            "SaveJobs": False,
            "KeepAlive": True,
        }
        path = self.folder / "orthanc.json"
        path.write_text(json.dumps(config, indent=1))
        return path

    def start(self, timeout: float = 30.0) -> "Orthanc":
        binary = orthanc_binary()
        if binary is None:
            raise RuntimeError("Orthanc is not installed")
        config = self.write_config()
        log = open(self.folder / "orthanc.log", "ab")
        # DCMTK (inside Orthanc, getscu, storescu) leaves Nagle's algorithm on unless TCP_NODELAY=1: with
        # it on, each small DIMSE response waits for a delayed ACK (~40 ms per instance on loopback)
        env = dict(os.environ, TCP_NODELAY="1")
        self.process = subprocess.Popen([binary, str(config)], stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {self.process.returncode}: "
                                   f"{(self.folder / 'orthanc.log').read_text()[-2000:]}")
            try:
                self.rest("/system")
                with socket.create_connection(("127.0.0.1", self.dicom_port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("Orthanc did not answer within the timeout")

    def stop(self, *, kill: bool = False) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.process = None

    def rest(self, path: str, data: bytes | None = None, method: str | None = None):
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if self.users:
            import base64

            user, password = next(iter(self.users.items()))
            request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body[:1] in (b"{", b"[") else body

    def upload(self, paths) -> None:
        for path in paths:
            self.rest("/instances", data=Path(path).read_bytes(), method="POST")

    def series_instances(self, series_uid: str) -> list[str]:
        found = self.rest("/tools/find", data=json.dumps(
            {"Level": "Instance", "Query": {"SeriesInstanceUID": series_uid}, "Expand": True}).encode(),
            method="POST")
        return [item["MainDicomTags"]["SOPInstanceUID"] for item in found]


# -- test data ------------------------------------------------------------------------------------------
@dataclass
class Series:
    patient_id: str
    patient_name: str
    study_uid: str
    series_uid: str
    modality: str
    files: list[Path]


def make_series(folder: Path, *, patient_id: str, patient_name: str, modality: str, n: int, size: int = 16,
                study_uid: str | None = None, accession: str = "", study_date: str = "20240115",
                birth_date: str = "19700101", description: str = "", series_number: int = 1) -> Series:
    """``n`` single-frame slices (``size`` x ``size`` int16) of one series, written to ``folder``."""
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    frame_of_reference = generate_uid()
    sop_class = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4"}[modality]
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for index in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.PatientID, ds.PatientName, ds.PatientBirthDate, ds.PatientSex = patient_id, patient_name, birth_date, "O"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = study_date, "120000", accession, "1"
        ds.StudyDescription = description or f"{modality} study"
        ds.SeriesDescription = f"{modality} series {series_number}"
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, series_number, index + 1
        ds.FrameOfReferenceUID = frame_of_reference
        ds.ImagePositionPatient = [0.0, 0.0, float(index)]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing, ds.SliceThickness = [1.0, 1.0], 1.0
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        if modality == "CT":
            ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        pixels = (np.arange(size * size, dtype=np.int16).reshape(size, size) + index * 10).astype(np.int16)
        ds.PixelData = pixels.tobytes()
        path = folder / f"{modality}_{index:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return Series(patient_id, patient_name, study_uid, series_uid, modality, files)
