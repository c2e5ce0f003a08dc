"""GPU benchmarks: the engine on CUDA against bare ``session.run`` (plain and through IO binding), measured
in the same run. Prints the rows of the GPU table of docs/BENCHMARKS.md, ready to paste:

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest -m bench -s tests/bench/test_bench_gpu.py

Needs onnxruntime-gpu (``./scripts/run --gpu``) and an NVIDIA device; without one every test is skipped
and the reason printed. ``WORKBENCH_BENCH_GPU_ON_CPU=1`` runs the same code on CPU (IO binding to CPU
memory) to check the benchmark itself on a machine without a GPU; those figures are not GPU figures.
"""
from __future__ import annotations

import os
import statistics
import time

import cv2
import numpy as np
import onnx_factory as F
import pytest

from workbench.core.image import ImageVolume
from workbench.core.settings import Settings
from workbench.inference import gpu
from workbench.inference.iobinding import BoundSession
from workbench.inference.preprocess import tile_tensor
from workbench.inference.run import Engine, predict
from workbench.inference.session import clear_session_cache

pytestmark = pytest.mark.bench
ROWS: list[str] = []


def _target() -> str:
    """"cuda", or "cpu" for the dry run; skips (printing why) when there is no usable GPU."""
    if os.environ.get("WORKBENCH_BENCH_GPU_ON_CPU") == "1":
        return "cpu"
    import onnxruntime as ort

    if gpu.CUDA not in ort.get_available_providers():
        reason = f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (install the gpu extra)"
    else:
        reason = gpu.diagnose_fallback()
        drv = gpu.detect_driver(smi=False)
        if drv.library is not None and drv.devices:
            return "cuda"
    print(f"\n[bench gpu] skipped: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def target():
    t = _target()
    yield t
    if ROWS:
        import onnxruntime as ort

        drv = gpu.detect_driver()
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"\n[bench gpu] {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, device: "
              f"{drv.smi[0] if drv.smi else t}, onnxruntime {ort.__version__}, load average {load:.2f}")
        print("| what | engine | bare session.run (IO binding) | ratio | bare session.run (plain) |")
        print("| --- | --- | --- | --- | --- |")
        for row in ROWS:
            print(row)


@pytest.fixture(autouse=True)
def _fresh():
    clear_session_cache()
    yield
    clear_session_cache()


def _engine(folder, target: str) -> Engine:
    engine = Engine(folder, provider="cuda" if target == "cuda" else "cpu", settings=Settings())
    if target == "cpu":  # dry run: the binding on CPU memory, the code path of the GPU run
        engine.model.session = BoundSession(engine.model.session, ("cpu", 0))
    assert isinstance(engine.model.session, BoundSession)
    return engine


def _ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _image(h, w, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (np.sin(xx / 17.0) * np.cos(yy / 23.0) * 100 + 128).astype(np.float32)
    if channels == 1:
        return np.clip(base + rng.normal(0, 5, base.shape), 0, 255).astype(np.uint8)
    return np.clip(base[..., None] + rng.normal(0, 5, (h, w, 3)), 0, 255).astype(np.uint8)


def test_bench_gpu_segmentation_512_overhead(tmp_path, target):
    proto = F.conv_net(3, [16, 32, 16], 4, size=[512, 512])
    manifest = {"id": "unet", "task": "segmentation",
                "input": {"color": "rgb", "resize": "stretch", "intensity": {"scale": 1 / 255}},
                "output": {"classes": [{"name": "bg"}, {"name": "a"}, {"name": "b"}, {"name": "c"}]}}
    engine = _engine(F.write_plugin(tmp_path / "unet", proto, manifest), target)
    image = ImageVolume(_image(512, 512)[None])
    tensor = engine.prepare_plane(image, 0).tensor
    bound, name = engine.model.session, engine.model.input.name
    plain = bound._session
    bare_bound = _ms(lambda: bound.run(None, {name: tensor}), 9)
    bare_plain = _ms(lambda: plain.run(None, {name: tensor}), 9)
    overs = []
    for _ in range(9):
        r = predict(engine, image)
        overs.append(r.info.timing_ms["preprocess"] + r.info.timing_ms["postprocess"])
    over = statistics.median(overs)
    ROWS.append(f"| segmentation 512x512, pre+post vs run | {over:.2f} ms | {bare_bound:.2f} ms | "
                f"{over / bare_bound:.1%} | {bare_plain:.2f} ms |")
    print(f"\n[bench gpu] segmentation 512: pre+post {over:.2f} ms, bound run {bare_bound:.2f} ms, "
          f"plain run {bare_plain:.2f} ms")
    assert bound.reused > 0


def test_bench_gpu_tiled_restoration_2048(tmp_path, target):
    manifest = {"id": "den", "task": "restoration",
                "input": {"color": "gray", "resize": "tile", "tile": {"size": 256, "overlap": 32},
                          "intensity": {"scale": 1 / 255}}, "output": {"range": [0, 1]}}
    engine = _engine(F.write_plugin(tmp_path / "den", F.conv_net(1, [16, 16], 1), manifest), target)
    image = ImageVolume(_image(2048, 2048, channels=1))
    prepared = engine.prepare_plane(image, 0)
    tiles = [tile_tensor(prepared, o, (256, 256), "NCHW", np.dtype(np.float32)) for o in prepared.tiles]
    bound, name = engine.model.session, engine.model.input.name
    plain = bound._session
    rounds = {"bound": [], "plain": [], "engine": []}
    for _ in range(3):  # interleaved: all three see the same load
        rounds["bound"].append(_ms(lambda: [bound.run(None, {name: t}) for t in tiles], 1))
        rounds["plain"].append(_ms(lambda: [plain.run(None, {name: t}) for t in tiles], 1))
        rounds["engine"].append(_ms(lambda: predict(engine, image), 1))
    b, p, e = (statistics.median(rounds[k]) for k in ("bound", "plain", "engine"))
    ROWS.append(f"| tiled restoration 2048x2048 ({len(tiles)} tiles of 256) | {e:.0f} ms | {b:.0f} ms | "
                f"{b / e:.2f}x throughput | {p:.0f} ms |")
    print(f"\n[bench gpu] tiled 2048: engine {e:.0f} ms, bound {b:.0f} ms, plain {p:.0f} ms")


def test_bench_gpu_stack_slices(tmp_path, target):
    """A slice-wise model over a 48-slice 256x256 stack (the 3-D case of slice-by-slice plugins)."""
    manifest = {"id": "seg3", "task": "segmentation",
                "input": {"color": "gray", "resize": "none", "intensity": {"scale": 1 / 255}},
                "output": {"classes": [{"name": "bg"}, {"name": "fg"}]}}
    engine = _engine(F.write_plugin(tmp_path / "seg3", F.conv_net(1, [32, 32], 2), manifest), target)
    stack = np.stack([_image(256, 256, channels=1, seed=i) for i in range(48)])
    image = ImageVolume(stack)
    tensors = [engine.prepare_plane(image, i).tensor for i in range(48)]
    bound, name = engine.model.session, engine.model.input.name
    plain = bound._session
    e = _ms(lambda: predict(engine, image), 3)
    b = _ms(lambda: [bound.run(None, {name: t}) for t in tensors], 3)
    p = _ms(lambda: [plain.run(None, {name: t}) for t in tensors], 3)
    ROWS.append(f"| stack 48x256x256, slices/s | {48e3 / e:.0f} | {48e3 / b:.0f} | {b / e:.2f}x | {48e3 / p:.0f} |")
    print(f"\n[bench gpu] stack: engine {48e3 / e:.0f} slices/s, bound {48e3 / b:.0f}, plain {48e3 / p:.0f}")


def test_bench_gpu_batch_pngs(tmp_path, target):
    from workbench.cli import main

    manifest = {"id": "seg", "task": "segmentation",
                "input": {"color": "gray", "resize": "none", "intensity": {"scale": 1 / 255}},
                "output": {"classes": [{"name": "bg"}, {"name": "fg"}]}}
    folder = F.write_plugin(tmp_path / "seg", F.conv_net(1, [32, 32], 2), manifest)
    src = tmp_path / "in"
    src.mkdir()
    images = [_image(256, 256, channels=1, seed=i) for i in range(50)]
    for i, img in enumerate(images):
        cv2.imwrite(str(src / f"im{i:03d}.png"), img)
    engine = _engine(folder, target)
    tensors = [engine.prepare_plane(ImageVolume(img), 0).tensor for img in images]
    bound, name = engine.model.session, engine.model.input.name
    plain = bound._session
    provider = "cuda" if target == "cuda" else "cpu"
    best = {"bare": 0.0, "plain": 0.0, "batch": 0.0}

    def batch(k):
        out = tmp_path / f"o{k}"
        assert main(["batch", "-m", str(folder), str(src), "-o", str(out), "--provider", provider,
                     "--no-overlay"]) == 0

    for k in range(2):
        for key, fn in (("bare", lambda: [bound.run(None, {name: t}) for t in tensors]),
                        ("plain", lambda: [plain.run(None, {name: t}) for t in tensors]),
                        ("batch", lambda k=k: batch(k))):
            t0 = time.perf_counter()
            fn()
            best[key] = max(best[key], 50 / (time.perf_counter() - t0))
    ROWS.append(f"| batch 50 PNGs 256x256 (--no-overlay), images/s | {best['batch']:.1f} | {best['bare']:.1f} | "
                f"{best['batch'] / best['bare']:.2f}x | {best['plain']:.1f} |")
    print(f"\n[bench gpu] batch: {best['batch']:.1f} img/s, bound loop {best['bare']:.1f}, plain {best['plain']:.1f}")
