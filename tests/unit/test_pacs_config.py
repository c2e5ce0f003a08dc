"""workbench.pacs without a network: node configuration (settings + site file, no plain-text secrets),
NODE arguments, credentials from the environment, query keys, the LRU study cache, atomic series folders."""
from __future__ import annotations

import os
import time

import pytest

from workbench.pacs import PacsError
from workbench.pacs.cache import StudyCache
from workbench.pacs.nodes import load_config, parse_spec, remove_user_node, resolve_node, save_user_node
from workbench.pacs.query import Query, normalise_date_range
from workbench.pacs.secrets import node_secret


@pytest.fixture
def site(tmp_path, monkeypatch):
    path = tmp_path / "pacs.yaml"
    monkeypatch.setenv("WORKBENCH_PACS_SITE_FILE", str(path))
    return path


def test_site_file_and_user_nodes(site):
    site.write_text("ae_title: CLINICWS\nstorage_port: 11200\nnodes:\n"
                    "  - {name: main, ae_title: PACS, host: pacs.example, port: 104}\n")
    config = load_config()
    assert config.ae_title == "CLINICWS" and config.storage_port == 11200
    assert [(n.name, n.source, n.address) for n in config.nodes] == [("main", "site", "PACS@pacs.example:104")]
    save_user_node(parse_spec("MINE@127.0.0.1:4242").model_copy(update={"name": "mine"}))
    assert [n.name for n in load_config().nodes] == ["main", "mine"]
    with pytest.raises(PacsError, match="already exists"):
        save_user_node(parse_spec("MINE@127.0.0.1:4242").model_copy(update={"name": "mine"}))
    with pytest.raises(PacsError, match="site file"):
        remove_user_node("main")
    remove_user_node("mine")
    assert [n.name for n in load_config().nodes] == ["main"]


def test_plain_text_secrets_are_refused(site):
    site.write_text("nodes:\n  - {name: web, kind: dicomweb, url: 'https://pacs/dicom-web', auth: basic,"
                    " username: u, password: hunter2}\n")
    with pytest.raises(PacsError, match="plain-text 'password'") as info:
        load_config()
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("raw, message", [
    ("{name: a, ae_title: 'WAY_TOO_LONG_AE_TITLE', host: h, port: 104}", "invalid AE title"),
    ("{name: a, ae_title: X, host: h}", "needs port"),
    ("{name: a, kind: dicomweb, url: 'ftp://x'}", "http"),
    ("{name: a, ae_title: X, host: h, port: 99999}", "port"),
])
def test_bad_nodes_are_one_line_errors(site, raw, message):
    site.write_text(f"nodes:\n  - {raw}\n")
    with pytest.raises(PacsError, match=message) as info:
        load_config()
    assert "\n" not in str(info.value) and str(site) in str(info.value)


def test_node_arguments(site):
    node = resolve_node("ORTHANC@127.0.0.1:4242")
    assert (node.ae_title, node.host, node.port, node.kind) == ("ORTHANC", "127.0.0.1", 4242, "dimse")
    assert resolve_node("http://127.0.0.1:8042/dicom-web/").url == "http://127.0.0.1:8042/dicom-web"
    with pytest.raises(PacsError, match="unknown PACS node 'nowhere'"):
        resolve_node("nowhere")


def test_secret_from_environment_or_keyring(monkeypatch):
    from workbench.pacs.nodes import Node

    node = Node(name="w", kind="dicomweb", url="http://x", auth="bearer", secret_env="WB_UNIT_TOKEN")
    monkeypatch.delenv("WB_UNIT_TOKEN", raising=False)
    monkeypatch.setattr("workbench.pacs.secrets._from_keyring", lambda name: None)
    with pytest.raises(PacsError, match="WB_UNIT_TOKEN"):
        node_secret(node)
    monkeypatch.setattr("workbench.pacs.secrets._from_keyring", lambda name: "from-keyring")
    assert node_secret(node) == "from-keyring"
    monkeypatch.setenv("WB_UNIT_TOKEN", "from-env")
    assert node_secret(node) == "from-env"
    assert "from-env" not in node.model_dump_json()


def test_query_keys_and_dates():
    assert normalise_date_range("2024-01-01..2024-01-31".replace("..", "-")) == "20240101-20240131"
    assert normalise_date_range("20240101-") == "20240101-"
    for bad in ("yesterday", "20240131-20240101", "-"):
        with pytest.raises(PacsError, match="--study-date"):
            Query(study_date=bad)
    ds = Query(level="series", study_uid="1.2.3", modality="CT").identifier()
    assert ds.QueryRetrieveLevel == "SERIES" and ds.Modality == "CT" and ds.StudyInstanceUID == "1.2.3"
    assert ds.SeriesInstanceUID == "" and "NumberOfSeriesRelatedInstances" in ds
    patient = Query(level="patient", patient_name="Doe*", modality="CT").identifier()
    assert "Modality" not in patient and patient.PatientName == "Doe*"
    with pytest.raises(PacsError, match="--level"):
        Query(level="image")


def test_cache_evicts_least_recently_used(tmp_path):
    cache = StudyCache(tmp_path / "cache", cap_mb=1)
    for index, uid in enumerate(("1.1", "1.2", "1.3")):
        folder = cache.study_dir(uid) / "9.9"
        folder.mkdir()
        (folder / "a.dcm").write_bytes(b"x" * 400_000)
        stamp = cache.root / uid / ".last_used"
        os.utime(stamp, (time.time() - 100 + index, time.time() - 100 + index))
    cache.touch("1.1")  # used again: now the newest
    removed = cache.evict(keep={"1.3"})
    assert [p.name for p in removed] == ["1.2"]
    assert cache.size() <= cache.cap_bytes
    assert sorted(p.name for p, _u, _s in cache.studies()) == ["1.1", "1.3"]


def test_series_folder_writes_atomically_and_drops_strays(tmp_path):
    from pydicom.dataset import FileMetaDataset

    from workbench.pacs.storage import SeriesFolder

    (tmp_path / "s").mkdir()
    (tmp_path / "s" / ".1.2.3.abcd.dcm").write_bytes(b"half")  # left by a killed process
    folder = SeriesFolder(tmp_path / "s", study_uid="1", series_uid="2")
    assert not list((tmp_path / "s").glob(".*"))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = "1.2.3"
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    folder.write_encoded("1.2.3", meta, b"")
    assert folder.have() == {"1.2.3"} and folder.written == 1
    with pytest.raises(PacsError, match="invalid SOPInstanceUID"):
        folder.write_encoded("../evil", meta, b"")


@pytest.mark.parametrize("missing", ["requests", "dicomweb_client"])
def test_a_dicomweb_node_without_the_pacs_extra_says_how_to_install_it(monkeypatch, missing):
    """Without the optional 'pacs' extra (dicomweb-client and its transport, requests), opening a
    DICOMweb node is one line naming the extra, never an ImportError traceback."""
    import sys

    from workbench.pacs.nodes import Node
    from workbench.pacs.web import WebClient

    monkeypatch.setitem(sys.modules, missing, None)  # makes `import <missing>` raise ImportError
    if missing == "dicomweb_client":
        monkeypatch.setitem(sys.modules, "dicomweb_client.api", None)
    with pytest.raises(PacsError, match=r"pip install 'workbench\[pacs\]'"):
        WebClient(Node(name="w", kind="dicomweb", url="http://x"))
