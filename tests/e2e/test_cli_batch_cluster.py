"""`workbench batch --workers N | --scheduler ADDRESS | --resume`, driven as a user would: real processes.

What "byte-identical" means here (and in docs/SCALING.md): every mask, overlay and restored file is
byte-identical between the serial run and a cluster run; every JSON is identical except its
``timing_ms`` values; summary.csv is identical except its three ``*_ms`` timing columns.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

import onnx_factory as F  # noqa: E402

from workbench.batch.plan import TIMING_FIELDS  # noqa: E402
from workbench.cli import main  # noqa: E402

SEG = {"id": "blobs", "task": "segmentation",
       "input": {"color": "gray", "resize": "stretch", "size": [64, 64], "intensity": {"scale": 1 / 255}},
       "output": {"classes": [{"name": "background"}, {"name": "blob", "color": "#ff0000"}]}}
# ~30-60 ms of convolutions per image whatever the image size: long enough to kill something mid-run.
SLOW = {"id": "slow-seg", "task": "segmentation",
        "input": {"color": "gray", "resize": "stretch", "size": [256, 256], "intensity": {"scale": 1 / 255}},
        "output": {"classes": [{"name": "background"}, {"name": "fg", "color": "#00ff00"}]}}
TIMEOUT = 120  # seconds, for every process a test starts


def _images(folder: Path, n: int, *, bad: bool = True, seed: int = 0) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    stems = []
    for i in range(n):
        img = np.zeros((40 + i % 3, 56), np.uint8)
        y, x = rng.integers(0, 20, 2)
        img[y:y + 18, x:x + 30] = 200
        img = cv2.add(img, (rng.random(img.shape) * 40).astype(np.uint8))
        cv2.imwrite(str(folder / f"img{i:03d}.png"), img)
        stems.append(f"img{i:03d}")
    if bad:
        (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    return stems


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "workbench.cli", "batch", *args]


def _run(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run(_cli(*args), capture_output=True, text=True, timeout=timeout)


def _digest(out: Path) -> dict[str, str]:
    """Every output file -> its sha256, with the timing fields taken out of the JSON and CSV files."""
    found = {}
    for path in sorted(out.iterdir()):
        data = path.read_bytes()
        if path.suffix == ".json" and path.name != ".workbench-batch.json":
            doc = json.loads(data)
            assert set(doc.pop("timing_ms")) == {"preprocess", "inference", "postprocess"}
            data = json.dumps(doc, sort_keys=True).encode()
        elif path.name == "summary.csv":
            rows = list(csv.DictReader(data.decode().splitlines()))
            for row in rows:
                for key in TIMING_FIELDS:
                    row[key] = ""
            data = json.dumps(rows).encode()
        found[path.name] = hashlib.sha256(data).hexdigest()
    return found


def _summary(out: Path) -> list[dict]:
    with open(out / "summary.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def seg_plugin(tmp_path):
    return F.write_plugin(tmp_path / "plugins" / "blobs", F.threshold_segmenter(1), SEG)


@pytest.fixture
def slow_plugin(tmp_path):
    return F.write_plugin(tmp_path / "plugins" / "slow", F.conv_net(1, [32, 32, 32, 32], 2, size=[256, 256]), SLOW)


def _wait_for(predicate, timeout: float, proc: subprocess.Popen | None = None, what: str = "") -> None:
    t0 = time.monotonic()
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended (rc {proc.returncode}) before {what}: {proc.stderr.read()}")
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


def test_serial_and_two_workers_give_identical_outputs_and_a_bad_file_fails_alone(tmp_path, seg_plugin):
    folder = tmp_path / "in"
    stems = _images(folder, 6)
    cv2.imwrite(str(folder / "color.png"), np.dstack([np.full((30, 30), v, np.uint8) for v in (250, 10, 90)]))
    serial = _run("-m", str(seg_plugin), str(folder), "-o", str(tmp_path / "serial"))
    cluster = _run("-m", str(seg_plugin), str(folder), "-o", str(tmp_path / "cluster"), "--workers", "2")
    for proc in (serial, cluster):
        assert proc.returncode == 2, proc.stderr  # the bad file fails its own item; the exit says so
        assert "7/8 images done" in proc.stdout
        assert re.search(r"error: broken\.png: .*broken\.png: ", proc.stderr)
    assert "local cluster: 2 worker processes x 1 thread x 1 ONNX Runtime intra-op thread" in cluster.stderr
    a, b = _digest(tmp_path / "serial"), _digest(tmp_path / "cluster")
    expected = {f"{s}{k}" for s in [*stems, "color"] for k in (".json", "_mask.png", "_overlay.png")}
    assert set(a) == expected | {"summary.csv", ".workbench-batch.json"}
    assert a == b
    rows = {r["image"]: r for r in _summary(tmp_path / "cluster")}
    assert rows["broken.png"]["status"] == "error" and "truncated PNG" in rows["broken.png"]["error"]
    assert all(r["status"] == "ok" and r["mask"] == f"{Path(n).stem}_mask.png" for n, r in rows.items()
               if n != "broken.png")


def test_resume_after_a_kill_finishes_the_rest_without_duplicates(tmp_path, slow_plugin):
    folder, out = tmp_path / "in", tmp_path / "out"
    stems = _images(folder, 30, bad=False)
    proc = subprocess.Popen(_cli("-m", str(slow_plugin), str(folder), "-o", str(out)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: len(list(out.glob("img*.json"))) >= 4, 60, proc, "4 outputs")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        _stop(proc)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("img*.json")}
    assert 4 <= len(before) < len(stems) and not (out / "summary.csv").exists()
    resumed = _run("-m", str(slow_plugin), str(folder), "-o", str(out), "--resume", "--workers", "2")
    assert resumed.returncode == 0, resumed.stderr
    done = int(re.search(r"resume: (\d+) of 30 inputs already done", resumed.stderr).group(1))
    assert done == len(before)  # a JSON exists only once its mask and overlay do
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([".workbench-batch.json", "summary.csv"] +
                           [f"{s}{k}" for s in stems for k in (".json", "_mask.png", "_overlay.png")])
    kept = [n for n, t in before.items() if (out / n).stat().st_mtime_ns == t]
    assert len(kept) == len(before)  # finished inputs were skipped, not redone
    rows = _summary(out)
    assert [r["image"] for r in rows] == [f"{s}.png" for s in stems] and {r["status"] for r in rows} == {"ok"}
    # the resumed run's outputs match a fresh serial run's, byte for byte (timings aside)
    fresh = _run("-m", str(slow_plugin), str(folder), "-o", str(tmp_path / "fresh"))
    assert fresh.returncode == 0, fresh.stderr
    assert _digest(out) == _digest(tmp_path / "fresh")


def _worker_processes(parent: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(parent).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def test_a_worker_killed_mid_run_has_its_tasks_retried(tmp_path, slow_plugin):
    folder, out = tmp_path / "in", tmp_path / "out"
    stems = _images(folder, 40, bad=False)
    proc = subprocess.Popen(_cli("-m", str(slow_plugin), str(folder), "-o", str(out), "--workers", "2"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: len(list(out.glob("img*.json"))) >= 3, 60, proc, "3 outputs")
        workers = _worker_processes(proc.pid)
        assert len(workers) == 2, [w.cmdline() for w in workers]
        assert len(list(out.glob("img*.json"))) < len(stems)
        workers[0].send_signal(signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        _stop(proc)
    assert proc.returncode == 0, stderr
    assert "40/40 images done" in stdout
    rows = _summary(out)
    assert len(rows) == 40 and {r["status"] for r in rows} == {"ok"}
    assert sorted(p.name for p in out.glob("img*")) == sorted(
        f"{s}{k}" for s in stems for k in (".json", "_mask.png", "_overlay.png"))
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != ".workbench-batch.json"]


def test_ctrl_c_cancels_cleanly_and_resume_finishes(tmp_path, slow_plugin):
    folder, out = tmp_path / "in", tmp_path / "out"
    stems = _images(folder, 40, bad=False)
    # A terminal's Ctrl+C: the command must not inherit an ignored SIGINT from a test run started in the
    # background (a non-interactive shell starts background jobs with SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler: the run finished 40/40 with exit 0 in such suite runs)
    proc = subprocess.Popen(_cli("-m", str(slow_plugin), str(folder), "-o", str(out), "--workers", "2"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for(lambda: len(list(out.glob("img*.json"))) >= 2, 60, proc, "2 outputs")
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl+C in a terminal: the whole group, workers included
        _, stderr = proc.communicate(timeout=60)
    finally:
        _stop(proc)
    assert proc.returncode == 130, stderr
    assert "run again with --resume" in stderr and "Traceback" not in stderr
    for path in out.glob("img*_mask.png"):  # whatever exists under a final name is complete
        assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None, path
    for path in out.glob("img*.json"):
        json.loads(path.read_text())
    assert len(list(out.glob("img*.json"))) < len(stems)
    resumed = _run("-m", str(slow_plugin), str(folder), "-o", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert len(_summary(out)) == 40 and len(list(out.glob("img*_mask.png"))) == 40


def test_existing_scheduler_on_loopback(tmp_path, seg_plugin):
    folder = tmp_path / "in"
    _images(folder, 5)
    dask = str(Path(sys.executable).with_name("dask"))
    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        _wait_for(lambda: sched_file.exists() and sched_file.stat().st_size > 0, 60, what="the scheduler file")
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        procs.append(subprocess.Popen([dask, "worker", address, "--nworkers", "1", "--nthreads", "2",
                                       "--host", "127.0.0.1", "--no-dashboard"], cwd=tmp_path,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(1, timeout=60)
        proc = _run("-m", str(seg_plugin), str(folder), "-o", str(tmp_path / "remote"), "--scheduler", address)
        assert proc.returncode == 2, proc.stderr  # broken.png
        assert f"cluster {address}: 1 worker, 2 threads" in proc.stderr
        assert "5/6 images done" in proc.stdout
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
    assert main(["batch", "-m", str(seg_plugin), str(folder), "-o", str(tmp_path / "serial")]) == 2
    assert _digest(tmp_path / "remote") == _digest(tmp_path / "serial")


def test_local_cluster_listens_on_loopback_only_and_refills_its_window(tmp_path, seg_plugin):
    from workbench.batch.cluster import local_layout, run_distributed, start_local
    from workbench.batch.plan import OutputOptions, list_images, plan_items
    from workbench.core.settings import Settings
    from workbench.inference.registry import find_plugin

    _images(tmp_path / "in", 5)
    plans = plan_items(list_images(tmp_path / "in"), tmp_path / "in")
    cluster, client = start_local(local_layout(1, intra_op=1, threads=1))
    try:
        seen = []
        outcomes = run_distributed(client, plans, model=str(seg_plugin), provider="cpu", settings=Settings(),
                                   sha256=find_plugin(str(seg_plugin), Settings()).sha256, options=OutputOptions(),
                                   out_dir=tmp_path / "out", on_done=lambda n, plan, o: seen.append(n), window=2)
        assert seen == [1, 2, 3, 4, 5, 6] and sorted(outcomes) == [p.number for p in plans]
        assert [outcomes[p.number].failed for p in plans] == [True] + [False] * 5  # broken.png sorts first
        pids = [os.getpid(), *(c.pid for c in psutil.Process().children(recursive=True))]
        listening = []
        for pid in pids:
            try:
                conns = psutil.Process(pid).net_connections(kind="inet")
            except psutil.Error:
                continue
            listening += [c.laddr for c in conns if c.status == psutil.CONN_LISTEN]
        assert len(listening) >= 3  # scheduler, nanny, worker (+ the HTTP listeners Dask always opens)
        assert {addr.ip for addr in listening} == {"127.0.0.1"}, listening
        port = cluster.scheduler.http_server.port
        assert port != 8787
        for route in ("/status", "/health", "/metrics"):  # no dashboard, no routes
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(f"http://127.0.0.1:{port}{route}", timeout=5)
    finally:
        client.close()
        cluster.close()


def test_without_the_cluster_extra_one_line_exit_2(tmp_path, seg_plugin, monkeypatch, capsys):
    _images(tmp_path / "in", 1, bad=False)
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    for flag in (["--workers", "2"], ["--scheduler", "tcp://127.0.0.1:1"]):
        assert main(["batch", "-m", str(seg_plugin), str(tmp_path / "in"), "-o", str(tmp_path / "o"), *flag]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "pip install 'workbench[cluster]'" in err[0], err
    assert not (tmp_path / "o").exists()


def test_resume_refuses_other_options_and_skips_done_inputs(tmp_path, seg_plugin, capsys):
    folder, out = tmp_path / "in", tmp_path / "out"
    _images(folder, 3, bad=False)
    args = ["batch", "-m", str(seg_plugin), str(folder), "-o", str(out)]
    assert main(args) == 0
    (out / "img001_overlay.png").unlink()  # an incomplete input is redone
    (out / ".img002_mask.ab12cd34.png").write_bytes(b"half")  # what a killed write leaves
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert "resume: 2 of 3 inputs already done, 1 to run" in capsys.readouterr().err
    assert (out / "img001_overlay.png").exists() and not (out / ".img002_mask.ab12cd34.png").exists()
    assert main([*args, "--resume", "--no-overlay"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--no-overlay=False, this one --no-overlay=True" in err[0]


def test_chunks_of_inputs_per_task_and_a_failing_chunk_split_per_input(tmp_path, seg_plugin):
    """Three inputs per task give the serial run's files; a task that raises (here: an input plan whose
    source is no path) is split into one task per input, and only that input fails."""
    from workbench.batch.cluster import chunk_size, local_layout, run_distributed, start_local
    from workbench.batch.plan import ItemPlan, OutputOptions, list_images, plan_items
    from workbench.batch.serial import run_serial
    from workbench.core.settings import Settings
    from workbench.inference.registry import find_plugin
    from workbench.inference.run import Engine

    assert chunk_size(6, 1) == 1 and chunk_size(32, 2) == 4 and chunk_size(10 ** 5, 8) == 8
    _images(tmp_path / "in", 6, bad=False)
    plans = plan_items(list_images(tmp_path / "in"), tmp_path / "in")
    serial = tmp_path / "serial"
    serial.mkdir()
    run_serial(Engine(str(seg_plugin), settings=Settings()), plans, OutputOptions(), serial)
    broken = ItemPlan(None, "nowhere.png", "nowhere", len(plans) + 1)  # type: ignore[arg-type]
    cluster, client = start_local(local_layout(1, intra_op=1, threads=1))
    try:
        seen = []
        outcomes = run_distributed(client, [*plans[:2], broken, *plans[2:]], model=str(seg_plugin), provider="cpu",
                                   settings=Settings(), sha256=find_plugin(str(seg_plugin), Settings()).sha256,
                                   options=OutputOptions(), out_dir=tmp_path / "out",
                                   on_done=lambda n, plan, o: seen.append(plan.number), chunk=3)
    finally:
        client.close()
        cluster.close()
    assert sorted(seen) == [p.number for p in plans] + [broken.number] and len(seen) == 7
    assert [outcomes[p.number].failed for p in plans] == [False] * 6
    assert outcomes[broken.number].failed and "AttributeError" in outcomes[broken.number].row["error"]
    assert _digest(tmp_path / "out") == _digest(serial)


def test_a_cancelled_chunk_stops_before_its_next_input(tmp_path, slow_plugin):
    """Ctrl+C cancels the pending tasks; a chunk already running stops after the input it is on instead of
    writing the rest of its inputs while the cluster closes."""
    from workbench.batch.cluster import local_layout, start_local
    from workbench.batch.plan import OutputOptions, list_images, plan_items
    from workbench.batch.worker import EnginePlugin, run_chunk
    from workbench.core.settings import Settings
    from workbench.inference.registry import find_plugin

    n = 30
    _images(tmp_path / "in", n, bad=False)
    plans = plan_items(list_images(tmp_path / "in"), tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    settings = Settings(intra_op_threads=1)
    plugin = EnginePlugin(str(slow_plugin), "cpu", settings, find_plugin(str(slow_plugin), settings).sha256)
    cluster, client = start_local(local_layout(1, intra_op=1, threads=1))
    try:
        client.register_plugin(plugin, name=plugin.name)
        fut = client.submit(run_chunk, plugin.name, plans, OutputOptions(), str(out), os.getcwd(), pure=False)
        _wait_for(lambda: len(list(out.glob("img*.json"))) >= 2, 60, what="2 outputs")
        client.cancel([fut], force=True)
        at_cancel = len(list(out.glob("img*.json")))
        time.sleep(2.0)  # 30-60 ms per input: the uncancelled chunk would have written ~40 more by now
        written = len(list(out.glob("img*.json")))
        time.sleep(1.0)
        assert len(list(out.glob("img*.json"))) == written  # stopped, not just slow
    finally:
        client.close()
        cluster.close()
    assert written <= at_cancel + 2 and written < n
