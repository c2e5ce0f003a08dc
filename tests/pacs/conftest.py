"""Fixtures of the PACS tests: one real Orthanc per session, loaded with two patients (CT + MR)."""
from __future__ import annotations

import pytest
from orthanc_server import Orthanc, dicomweb_plugin, make_series, orthanc_binary


def _need_orthanc() -> None:
    if orthanc_binary() is None:
        pytest.skip("Orthanc is not installed (Debian package 'orthanc'; scripts/setup.d/20-orthanc.sh installs "
                    "it when run as root)")


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory):
    """A running Orthanc with ``.ct`` (patient PAT1, 6 slices) and ``.mr`` (patient PAT2, 4 slices)."""
    _need_orthanc()
    root = tmp_path_factory.mktemp("orthanc")
    data = root / "data"
    ct = make_series(data / "ct", patient_id="PAT1", patient_name="Doe^Jane", modality="CT", n=6,
                     accession="ACC001", study_date="20240115", birth_date="19700101")
    mr = make_series(data / "mr", patient_id="PAT2", patient_name="Roe^Richard", modality="MR", n=4,
                     accession="ACC002", study_date="20240320", birth_date="19800202")
    server = Orthanc(root / "server").start()
    try:
        server.upload(ct.files + mr.files)
        server.ct, server.mr = ct, mr
        yield server
    finally:
        server.stop()


@pytest.fixture
def dicomweb(orthanc):
    if dicomweb_plugin() is None:
        pytest.skip("the Orthanc DICOMweb plugin is not installed (Debian package 'orthanc-dicomweb')")
    return orthanc


@pytest.fixture
def pacs_env(orthanc, tmp_path, monkeypatch):
    """A site file naming the test Orthanc as node 'test' (and loopback for our C-MOVE SCP)."""
    site = tmp_path / "pacs.yaml"
    site.write_text(
        "storage_bind: 127.0.0.1\n"
        f"storage_port: {orthanc.scp_port}\n"
        "nodes:\n"
        f"  - {{name: test, ae_title: ORTHANC, host: 127.0.0.1, port: {orthanc.dicom_port}, timeout: 10,"
        " retries: 0}\n"
        f"  - {{name: web, kind: dicomweb, url: '{orthanc.dicomweb_url}', timeout: 10, retries: 0}}\n")
    monkeypatch.setenv("WORKBENCH_PACS_SITE_FILE", str(site))
    monkeypatch.setenv("WORKBENCH_PACS_CACHE_DIR", str(tmp_path / "cache"))
    return site
