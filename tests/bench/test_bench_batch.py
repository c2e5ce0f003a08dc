"""Scale-out batch (issue 19): images/s of the serial batch, ``--workers 1`` and ``--workers 2``.

Run under the machine-wide lock: ``flock /tmp/workbench-heavy.lock .venv/bin/python -m pytest -m bench -s
tests/bench/test_bench_batch.py``. The model is compute-bound on purpose: five 3x3 conv layers of 48
channels at 256x256, ~100 ms per image with 1 ONNX Runtime intra-op thread; the inputs are 128x128 PNGs,
so reading, preprocessing, decoding and writing cost ~7 ms. The serial run uses one core for inference
(its prefetch and writer threads the other); two workers can use two. ``--workers 1`` runs as the CLI
lays it out (threads per worker = cores = 2 here) and with 1 thread (the bare cost of the distributed
path). Every configuration runs the same 32 images through the same per-item code the CLI uses
(``run_serial`` / ``run_distributed``), interleaved over rounds; the clusters are started before the
clock runs (their start-up is printed separately). Targets: ``--workers 2`` / serial >= 1.6x (needs both
cores free), ``--workers 1`` overhead vs serial <= 15%. A same-run baseline tells what the load left:
bare ``session.run`` loops in one process vs in both workers at once. The asserts keep a wide margin
(the machine is shared); the printed figures are the measurement.
"""
from __future__ import annotations

import os
import shutil
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import onnx_factory as F
import pytest

pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")
pytestmark = pytest.mark.bench

SLOW = {"id": "conv-bench", "task": "segmentation",
        "input": {"color": "gray", "resize": "stretch", "size": [256, 256], "intensity": {"scale": 1 / 255}},
        "output": {"classes": [{"name": "background"}, {"name": "fg", "color": "#00ff00"}]}}
# 96 inputs (~4 s a serial run): with 32 the last task's tail (a worker idle while the other finishes) and
# each run's first-image warm-up were ~10% of a 1.6 s run, a fixed cost that an archive-sized batch does
# not pay per image; the cluster's start-up is timed and printed apart. WORKBENCH_BENCH_BATCH_N overrides.
N_IMAGES = int(os.environ.get("WORKBENCH_BENCH_BATCH_N", "96"))
ROUNDS = 3


def _inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(N_IMAGES):
        img = (rng.random((128, 128)) * 60).astype(np.uint8)
        img[20:60, 30 + i % 25:80] = 210
        cv2.imwrite(str(folder / f"img{i:03d}.png"), img)
    return folder


def test_bench_batch_workers_vs_serial(tmp_path):
    from workbench.batch.cluster import local_layout, run_distributed, start_local
    from workbench.batch.plan import OutputOptions, list_images, plan_items
    from workbench.batch.serial import run_serial
    from workbench.batch.worker import EnginePlugin
    from workbench.core.settings import Settings
    from workbench.inference.run import Engine
    from workbench.io import read_image

    plugin = F.write_plugin(tmp_path / "plugin", F.conv_net(1, [48] * 5, 2, size=[256, 256]), SLOW)
    folder = _inputs(tmp_path)
    plans = plan_items(list_images(folder), folder)
    options = OutputOptions()
    settings = Settings(intra_op_threads=1)
    engine = Engine(str(plugin), provider="cpu", settings=settings)
    spec = engine.spec

    def out(name: str) -> Path:
        path = tmp_path / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir()
        return path

    cpu: dict[str, list[float]] = {}

    def cpu_seconds() -> float:
        """CPU time of this process (client, scheduler, nannies) and every child (the workers)."""
        me = psutil.Process()
        total = sum(me.cpu_times()[:2])
        for child in me.children(recursive=True):
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.Error:
                pass
        return total

    def serial() -> float:
        t0, c0 = time.perf_counter(), cpu_seconds()
        outcomes = run_serial(engine, plans, options, out("serial"))
        assert sum(o.failed for o in outcomes.values()) == 0
        cpu.setdefault("serial", []).append((cpu_seconds() - c0) * 1000 / N_IMAGES)
        return N_IMAGES / (time.perf_counter() - t0)

    clusters = {}
    startup = {}
    # "workers1" as the CLI lays it out (threads = cores / 1), "workers1x1" one task at a time (the bare
    # cost of the distributed path), "workers2" as the CLI lays it out (1 thread each on 2 cores)
    for label, workers, threads in (("workers1", 1, None), ("workers1x1", 1, 1), ("workers2", 2, None)):
        t0 = time.perf_counter()
        clusters[label] = start_local(local_layout(workers, intra_op=1, threads=threads))
        clusters[label][1].wait_for_workers(workers, timeout=60)
        startup[label] = time.perf_counter() - t0

    def distributed(label: str, chunk: int | None = None) -> float:
        client = clusters[label][1]
        t0, c0 = time.perf_counter(), cpu_seconds()
        outcomes = run_distributed(client, plans, model=str(plugin), provider="cpu", settings=settings,
                                   sha256=spec.sha256, options=options, out_dir=out(label),
                                   on_done=lambda *a: None, chunk=chunk)
        assert sum(o.failed for o in outcomes.values()) == 0
        cpu.setdefault(label if chunk is None else f"{label} {chunk}/task", []).append(
            (cpu_seconds() - c0) * 1000 / N_IMAGES)
        return N_IMAGES / (time.perf_counter() - t0)

    # The same-run baseline of what the load left us: bare session.run loops, one in this process vs one
    # in each of the two workers at once (sum of their rates). Its ratio is the best --workers 2 can do now.
    tensor = engine.prepare_plane(read_image(plans[0].source), 0).tensor
    plugin_on_workers = EnginePlugin(str(plugin), "cpu", settings, spec.sha256)

    def bare_loop(model, x, n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            model.run(x)
        return n / (time.perf_counter() - t0)

    def bare_on_worker(name: str, x, n: int, dask_worker=None) -> float:
        return bare_loop(dask_worker.plugins[name].engine.model, x, n)

    def bare_serial() -> float:
        return bare_loop(engine.model, tensor, N_IMAGES)

    def bare_two() -> float:
        return sum(clusters["workers2"][1].run(bare_on_worker, plugin_on_workers.name, tensor, N_IMAGES).values())

    rates: dict[str, list[float]] = {"serial": [], "workers1": [], "workers1x1": [], "workers2": [],
                                     "w2 1/task": [], "bare1": [], "bare2": []}
    load_before = os.getloadavg()
    try:
        for label in clusters:  # warm every path once
            distributed(label)
        serial()
        for _ in range(ROUNDS):
            rates["bare1"].append(bare_serial())
            clusters["workers2"][1].register_plugin(plugin_on_workers, name=plugin_on_workers.name)
            rates["bare2"].append(bare_two())
            rates["serial"].append(serial())
            for label in clusters:
                rates[label].append(distributed(label))
            rates["w2 1/task"].append(distributed("workers2", chunk=1))  # the pre-chunking default, same run
    finally:
        for cluster, client in clusters.values():
            client.close()
            cluster.close()
    load_after = os.getloadavg()
    med = {k: statistics.median(v) for k, v in rates.items()}
    speedup = med["workers2"] / med["serial"]
    overhead = med["serial"] / med["workers1"] - 1.0
    bare_overhead = med["serial"] / med["workers1x1"] - 1.0
    ideal = med["bare2"] / med["bare1"]
    print(f"\nbatch of {N_IMAGES} 128x128 PNGs -> conv 5x48ch @256x256, 1 intra-op thread, {os.cpu_count()} cores; "
          f"load average before {load_before[0]:.2f} after {load_after[0]:.2f}")
    for k, v in rates.items():
        print(f"  {k:10s} median {med[k]:6.2f} img/s  (rounds: {', '.join(f'{r:.2f}' for r in v)})")
    print(f"  --workers 2 / serial = {speedup:.2f}x (target >= 1.6x; one input per task, as before the chunked "
          f"default: {med['w2 1/task'] / med['serial']:.2f}x); --workers 1 overhead vs serial = "
          f"{overhead * 100:+.1f}% (target <= 15%), with 1 thread {bare_overhead * 100:+.1f}%; "
          f"cluster start {startup['workers1']:.1f} s (1 worker), "
          f"{startup['workers2']:.1f} s (2 workers)")
    print(f"  bare session.run: 1 process {med['bare1']:.2f}/s, 2 worker processes at once {med['bare2']:.2f}/s "
          f"= {ideal:.2f}x: the most two processes could get under this load; --workers 2 reached "
          f"{speedup / ideal * 100:.0f}% of it")
    print("  CPU per image, all processes (load-independent): " + ", ".join(
        f"{k} {statistics.median(v):.1f} ms" for k, v in cpu.items()))
    for a, b in zip(sorted((tmp_path / "serial").iterdir()), sorted((tmp_path / "workers2").iterdir())):
        if a.suffix == ".png":
            assert a.name == b.name and a.read_bytes() == b.read_bytes()
    # Shared machine: only gross regressions fail (the printed figures are the measurement); on this
    # machine --workers 2 reached 61-110% of what two bare processes got in the same run.
    assert speedup >= 0.5 * ideal
    assert overhead <= 0.35
