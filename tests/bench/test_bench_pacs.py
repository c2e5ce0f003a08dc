"""PACS throughput over loopback against a real Orthanc: our C-GET retrieval and C-STORE send of a 300-slice
series vs DCMTK's ``getscu`` / ``storescu`` in the same run (issue 16 target: >= 0.8x their throughput;
see docs/BENCHMARKS.md), and our C-MOVE (pynetdicom's storage SCP) vs ``movescu`` with its own storage
port. Ours includes what a user's retrieval does and getscu does not: the series-level C-FIND that lists
the study (on the C-GET's association), the manifest of the series folder and its completion marker.

Run with ``flock /tmp/workbench-heavy.lock .venv/bin/python -m pytest -m bench -s
tests/bench/test_bench_pacs.py`` (``-k move``: the C-MOVE one alone). DCMTK runs with TCP_NODELAY=1 (its
fastest setting; so does the test Orthanc). Rounds alternate ours / theirs and the best of each is compared
(the machine is shared); the asserts are regression floors, the printed ratios are the measurement.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time

import pytest
from orthanc_server import ORTHANC_AET, OUR_AET, Orthanc, make_series, orthanc_binary

pytestmark = pytest.mark.bench
N_SLICES, SIZE, ROUNDS = 300, 512, 3
# DCMTK's best: without TCP_NODELAY=1 it leaves Nagle on and getscu waits ~40 ms per instance (11x slower)
DCMTK_ENV = dict(os.environ, TCP_NODELAY="1")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    if orthanc_binary() is None or any(shutil.which(t) is None for t in ("getscu", "storescu", "movescu")):
        pytest.skip("needs Debian packages orthanc and dcmtk (scripts/setup.d/20-orthanc.sh)")
    root = tmp_path_factory.mktemp("bench-pacs")
    series = make_series(root / "series", patient_id="BENCH", patient_name="Bench^Mark", modality="CT",
                         n=N_SLICES, size=SIZE)
    server = Orthanc(root / "server").start()
    server.upload(series.files)
    yield server, series, root
    server.stop()


def _client(server):
    from workbench.pacs.client import connect
    from workbench.pacs.nodes import Node, PacsConfig

    node = Node(name="bench", ae_title=ORTHANC_AET, host="127.0.0.1", port=server.dicom_port, timeout=60, retries=0)
    # C-MOVE: our storage SCP where the test Orthanc sends WORKBENCH's instances
    return connect(node, PacsConfig(nodes=[node], storage_port=server.scp_port, storage_bind="127.0.0.1"))


def _ours_get(server, series, out, *, move: bool = False) -> float:
    from workbench.pacs.client import retrieve_study

    t0 = time.perf_counter()
    for _ in retrieve_study(_client(server), series.study_uid, out, move=move):
        pass
    return time.perf_counter() - t0


def _dcmtk_move(server, series, out) -> float:
    """movescu with its own storage SCP on the port Orthanc knows for WORKBENCH (as storescp would be)."""
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    subprocess.run(["movescu", "-S", "-aet", OUR_AET, "-aem", OUR_AET, "-aec", ORTHANC_AET, "+P",
                    str(server.scp_port), "-k", "QueryRetrieveLevel=SERIES",
                    "-k", f"StudyInstanceUID={series.study_uid}", "-k", f"SeriesInstanceUID={series.series_uid}",
                    "-od", str(out), "127.0.0.1", str(server.dicom_port)],
                   check=True, timeout=300, capture_output=True, env=DCMTK_ENV)
    return time.perf_counter() - t0


def _dcmtk_get(server, series, out) -> float:
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    subprocess.run(["getscu", "-S", "-aet", OUR_AET, "-aec", ORTHANC_AET, "-k", "QueryRetrieveLevel=SERIES",
                    "-k", f"StudyInstanceUID={series.study_uid}", "-k", f"SeriesInstanceUID={series.series_uid}",
                    "-od", str(out), "127.0.0.1", str(server.dicom_port)], check=True, timeout=300,
                   capture_output=True, env=DCMTK_ENV)
    return time.perf_counter() - t0


def _delete_series(server, series) -> None:
    for item in server.rest("/tools/lookup", data=series.series_uid.encode(), method="POST"):
        server.rest(item["Path"], method="DELETE")


def _ours_send(server, files) -> float:
    from workbench.pacs.client import collect_files, send

    client = _client(server)
    t0 = time.perf_counter()
    step = send(client, collect_files(files))
    try:
        while True:
            next(step)
    except StopIteration as stop:
        assert stop.value == []
    return time.perf_counter() - t0


def _dcmtk_send(server, files) -> float:
    t0 = time.perf_counter()
    subprocess.run(["storescu", "-aet", OUR_AET, "-aec", ORTHANC_AET, "127.0.0.1", str(server.dicom_port),
                    *map(str, files)], check=True, timeout=300, capture_output=True, env=DCMTK_ENV)
    return time.perf_counter() - t0


def test_bench_retrieve_and_send_vs_dcmtk(loaded):
    server, series, root = loaded
    mb = sum(f.stat().st_size for f in series.files) / 1e6
    ours, theirs = [], []
    for i in range(ROUNDS):
        ours.append(_ours_get(server, series, root / f"ours{i}"))
        theirs.append(_dcmtk_get(server, series, root / f"dcmtk{i}"))
        assert len(list((root / f"ours{i}" / series.series_uid).glob("*.dcm"))) == N_SLICES
        assert len(os.listdir(root / f"dcmtk{i}")) == N_SLICES
    get_ratio = min(theirs) / min(ours)
    s_ours, s_theirs = [], []
    for _ in range(ROUNDS):
        _delete_series(server, series)
        s_ours.append(_ours_send(server, series.files))
        assert len(server.series_instances(series.series_uid)) == N_SLICES
        _delete_series(server, series)
        s_theirs.append(_dcmtk_send(server, series.files))
    send_ratio = min(s_theirs) / min(s_ours)
    load = os.getloadavg()
    print(f"\nPACS bench ({N_SLICES} x {SIZE}x{SIZE} int16 CT, {mb:.1f} MB, loopback Orthanc, "
          f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")
    print(_versus("C-GET", ours, "getscu", theirs, mb))
    print(_versus("C-STORE", s_ours, "storescu", s_theirs, mb))
    # Regression floors well under the 0.8x (C-GET 0.5-1.0x, C-STORE 0.9x on the shared machine): the ratios
    # swing with the load, both transfers being bound by Orthanc and the scheduler, not by our CPU.
    assert get_ratio >= 0.4 and send_ratio >= 0.4


def _versus(what: str, ours: list[float], tool: str, theirs: list[float], mb: float) -> str:
    """One result line: best and median seconds of ours, best of the DCMTK tool, the throughput ratio."""
    return (f"  {what:<7} ours {min(ours):.2f} s ({mb / min(ours):.0f} MB/s, median {statistics.median(ours):.2f})  "
            f"{tool} {min(theirs):.2f} s ({mb / min(theirs):.0f} MB/s)  -> {min(theirs) / min(ours):.2f}x {tool} "
            "throughput")


def test_bench_c_move_vs_movescu(loaded):
    server, series, root = loaded
    mb = sum(f.stat().st_size for f in series.files) / 1e6
    ours, theirs = [], []
    for i in range(ROUNDS):
        ours.append(_ours_get(server, series, root / f"move-ours{i}", move=True))
        theirs.append(_dcmtk_move(server, series, root / f"move-dcmtk{i}"))
        assert len(list((root / f"move-ours{i}" / series.series_uid).glob("*.dcm"))) == N_SLICES
        assert len(os.listdir(root / f"move-dcmtk{i}")) == N_SLICES
    ratio = min(theirs) / min(ours)
    load = os.getloadavg()
    print(f"\nPACS C-MOVE bench ({N_SLICES} x {SIZE}x{SIZE}, {mb:.1f} MB, "
          f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")
    print(_versus("C-MOVE", ours, "movescu", theirs, mb))
    assert ratio >= 0.2  # a regression floor; the printed ratio is the measurement
