"""NVIDIA GPU support on a CPU-only machine: library discovery, driver probe, verdict, CUDA options,
provider policy, quiet fall-back (one line in the CLI, exit 2 for an explicit --provider cuda)."""
from __future__ import annotations

import os
import stat
import sys

import numpy as np
import onnx_factory as F
import pytest

from workbench.core.errors import PluginError
from workbench.core.settings import Settings
from workbench.inference import gpu, gpu_check, session as S
from workbench.inference.spec import load_plugin

SEG = {"id": "seg", "task": "segmentation", "input": {"color": "gray", "resize": "none"},
       "output": {"classes": [{"name": "bg"}, {"name": "fg"}]},
       "runtime": {"providers": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]}}


@pytest.fixture(autouse=True)
def _fresh():
    S.clear_session_cache()
    gpu.reset_fallback()
    yield
    S.clear_session_cache()
    gpu.reset_fallback()


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x7fELF")
    return path


# -- discovery -------------------------------------------------------------------------------------------
def test_find_libraries_in_wheels_env_and_system(tmp_path):
    site = tmp_path / "site"
    for name in ("libcudart.so.13", "libcublasLt.so.13", "libcublas.so.13"):
        _touch(site / "nvidia" / "cu13" / "lib" / name)
    _touch(site / "nvidia" / "cu13" / "lib" / "libcufft.so.11")  # the CUDA 12 cuFFT: not what CUDA 13 needs
    envdir = tmp_path / "cudnn"
    _touch(envdir / "libcudnn.so.9")
    libs = gpu.find_libraries(13, site_dirs=[site], env={"LD_LIBRARY_PATH": f"/nonexistent:{envdir}"},
                              system=lambda so: f"/usr/lib/{so}" if so == "libcurand.so.10" else None,
                              windows=False)
    by = {lib.name: lib for lib in libs}
    assert by["cudart"].where == "nvidia wheel" and by["cudart"].path.endswith("nvidia/cu13/lib/libcudart.so.13")
    assert by["cublasLt"].found and by["cublas"].found
    assert by["cudnn"].where == "LD_LIBRARY_PATH" and by["cudnn"].path == str(envdir / "libcudnn.so.9")
    assert by["curand"].where == "system"
    assert not by["cufft"].found and by["cufft"].soname == "libcufft.so.12"
    assert not by["nvrtc"].found and not by["nvrtc"].required


def test_expected_library_names_follow_the_cuda_major():
    linux12 = {lib.name: lib.soname for lib in gpu.expected_libraries(12, windows=False)}
    assert linux12["cudart"] == "libcudart.so.12" and linux12["cufft"] == "libcufft.so.11"
    win13 = {lib.name: lib.soname for lib in gpu.expected_libraries(13, windows=True)}
    assert win13["cublas"] == "cublas64_13.dll" and win13["cudnn"] == "cudnn64_9.dll"


# -- driver ----------------------------------------------------------------------------------------------
class _FakeCuda:
    def __init__(self, devices, version=13000, init=0):
        self.devices, self.version, self.init = devices, version, init

    def cuInit(self, flags):  # noqa: N802 - the driver API names
        return self.init

    def cuDeviceGetCount(self, ref):  # noqa: N802
        ref._obj.value = self.devices
        return 0

    def cuDriverGetVersion(self, ref):  # noqa: N802
        ref._obj.value = self.version
        return 0


def _smi(tmp_path, body):
    exe = tmp_path / "nvidia-smi"
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return str(exe)


def _no_driver(name):
    raise OSError(f"{name}: cannot open shared object file")


@pytest.mark.skipif(sys.platform == "win32", reason="shell-script nvidia-smi")
def test_detect_driver_device_and_nvidia_smi(tmp_path, monkeypatch):
    drv = gpu.detect_driver(loader=_no_driver, smi=False)
    assert drv.library is None and "not found" in drv.error and drv.devices is None
    drv = gpu.detect_driver(loader=lambda n: _FakeCuda(2, 12080),
                            smi=_smi(tmp_path, 'echo "NVIDIA RTX A4000, 580.65, 16376 MiB"'))
    assert drv.devices == 2 and drv.version == "12.8" and drv.error is None
    assert drv.smi == ["NVIDIA RTX A4000, 580.65, 16376 MiB"]
    drv = gpu.detect_driver(loader=lambda n: _FakeCuda(0, init=100), smi=False)
    assert drv.devices == 0 and "cuInit failed" in drv.error
    monkeypatch.setattr(gpu, "NVIDIA_SMI_TIMEOUT_S", 0.3)
    drv = gpu.detect_driver(loader=_no_driver, smi=_smi(tmp_path, "sleep 5"))
    assert "did not answer" in drv.smi_error


# -- verdict ---------------------------------------------------------------------------------------------
def _facts(**kw):
    libs = gpu.expected_libraries(13, windows=False)
    for lib in libs:
        lib.path, lib.where = f"/site/nvidia/{lib.soname}", "nvidia wheel"
    base = dict(packages={"onnxruntime-gpu": "1.31.1"}, cuda_major=13, libraries=libs,
                providers=["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
                driver=gpu.Driver(library="libcuda.so.1", version="13.0", devices=1, smi=["RTX, 580, 8 GiB"]),
                probe_used="CUDAExecutionProvider")
    base.update(kw)
    return gpu_check.GpuFacts(**base)


def test_verdict_names_the_single_fix():
    assert gpu_check.verdict(_facts()) == ("CUDAExecutionProvider", None)
    assert gpu_check.final_line(_facts()) == "provider: CUDAExecutionProvider (GPU: RTX, 580, 8 GiB)"
    fell = dict(probe_used="CPUExecutionProvider")
    p, fix = gpu_check.verdict(_facts(packages={"onnxruntime": "1.32", "onnxruntime-gpu": "1.31.1"}, **fell))
    assert p == "CPUExecutionProvider" and "several onnxruntime packages" in fix
    _, fix = gpu_check.verdict(_facts(driver=gpu.Driver(error="libcuda.so.1 not found"), **fell))
    assert fix.startswith("install the NVIDIA driver") and "already installed" in fix
    _, fix = gpu_check.verdict(_facts(driver=gpu.Driver(error="libcuda.so.1 not found"), probe_used=None,
                                      providers=["CPUExecutionProvider"], packages={"onnxruntime": "1.32"}))
    assert fix.startswith("none needed on this machine")
    _, fix = gpu_check.verdict(_facts(driver=gpu.Driver(library="libcuda.so.1", devices=0, error="sees no device"),
                                      **fell))
    assert fix.startswith("sees no device")
    _, fix = gpu_check.verdict(_facts(providers=["CPUExecutionProvider"], packages={"onnxruntime": "1.32"},
                                      probe_used=None))
    assert "CPU build" in fix and "workbench[gpu]" in fix
    libs = gpu.expected_libraries(13, windows=False)
    _, fix = gpu_check.verdict(_facts(libraries=libs, **fell))
    assert fix.startswith("CUDA libraries missing (libcudart.so.13, libcublasLt.so.13")
    _, fix = gpu_check.verdict(_facts(driver=gpu.Driver(library="libcuda.so.1", version="12.4", devices=1), **fell))
    assert fix.startswith("update the NVIDIA driver: it supports CUDA 12.4")


# -- options and policy ----------------------------------------------------------------------------------
def test_cuda_provider_options_from_settings(monkeypatch):
    calls = []
    monkeypatch.setattr(gpu, "preload_cuda", lambda: calls.append(1) or "done")
    assert gpu.cuda_provider_options(Settings()) == {
        "device_id": "0", "arena_extend_strategy": "kSameAsRequested", "cudnn_conv_algo_search": "HEURISTIC",
        "do_copy_in_default_stream": "1"}
    s = Settings(cuda_device_id=1, cuda_mem_limit_mb=2048, cudnn_conv_algo_search="EXHAUSTIVE")
    opts = gpu.cuda_provider_options(s)
    assert opts["device_id"] == "1" and opts["gpu_mem_limit"] == str(2048 << 20)
    assert opts["cudnn_conv_algo_search"] == "EXHAUSTIVE"
    built = gpu.session_providers(["CUDAExecutionProvider", "CPUExecutionProvider"], s)
    assert built == [("CUDAExecutionProvider", opts), "CPUExecutionProvider"] and calls == [1]
    assert gpu.session_providers(["CPUExecutionProvider"], s) == ["CPUExecutionProvider"] and calls == [1]


def test_tensorrt_only_on_request(monkeypatch):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    auto = S.resolve_providers(SEG["runtime"]["providers"], "auto")
    assert gpu.apply_provider_policy(auto, "auto", Settings()) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert gpu.apply_provider_policy(auto, "auto", Settings(allow_tensorrt=True))[0] == "TensorrtExecutionProvider"
    trt = S.resolve_providers(["CPUExecutionProvider"], "tensorrt")
    assert gpu.apply_provider_policy(trt, "tensorrt", Settings()) == [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


# -- sessions: CUDA asked for on a CPU-only onnxruntime ----------------------------------------------------
@pytest.fixture
def cuda_listed(monkeypatch):
    """This onnxruntime claims CUDA (as onnxruntime-gpu does without a driver); the session falls back."""
    import onnxruntime

    real = onnxruntime.get_available_providers
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", *real()])
    monkeypatch.setattr(gpu, "preload_cuda", lambda: "skipped in tests")
    monkeypatch.setattr(gpu, "detect_driver", lambda **kw: gpu.Driver(error="libcuda.so.1 not found"))


def test_auto_falls_back_to_cpu_with_a_reason(tmp_path, cuda_listed, capfd):
    spec = load_plugin(F.write_plugin(tmp_path / "seg", F.threshold_segmenter(1), SEG))
    model = S.get_session(spec, "auto", Settings(cuda_mem_limit_mb=512))
    assert model.provider == "CPUExecutionProvider"
    assert gpu.fallback_reason() == "no NVIDIA driver: libcuda.so.1 not found"
    out = model.run(np.zeros((1, 1, 8, 8), np.float32))
    assert out[model.output_names[0]].shape[1] == 2
    msg = gpu.fallback_warning("auto", model.provider)
    assert msg.startswith("GPU not used, running on CPUExecutionProvider: no NVIDIA driver") and "\n" not in msg
    assert gpu.fallback_warning("cpu", model.provider) is None
    captured = capfd.readouterr()
    assert "onnxruntime" not in captured.err.lower() and "EP Error" not in captured.out


def test_explicit_cuda_that_falls_back_is_one_line_error(tmp_path, cuda_listed):
    spec = load_plugin(F.write_plugin(tmp_path / "seg", F.threshold_segmenter(1), SEG))
    with pytest.raises(PluginError) as err:
        S.get_session(spec, "cuda", Settings())
    text = str(err.value)
    assert "--provider cuda: CUDAExecutionProvider cannot run here (no NVIDIA driver" in text and "\n" not in text


def test_cli_predict_one_warning_line_and_exit_2(tmp_path, cuda_listed, capfd):
    import cv2

    from workbench.cli import main

    folder = F.write_plugin(tmp_path / "seg", F.threshold_segmenter(1), SEG)
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.full((16, 16), 200, np.uint8))
    assert main(["predict", "-m", str(folder), "-o", str(tmp_path / "out"), "--provider", "auto", str(img)]) == 0
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("workbench: warning: GPU not used, running on CPUExecutionProvider")
    S.clear_session_cache()
    assert main(["predict", "-m", str(folder), "-o", str(tmp_path / "out"), "--provider", "cuda", str(img)]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--provider cuda: CUDAExecutionProvider cannot run here" in err[0]


# -- doctor ----------------------------------------------------------------------------------------------
def test_native_output_goes_to_the_log(capfd, caplog):
    with gpu.native_output_to_log("probe") as lines:
        os.write(2, b"\x1b[1;31m[E:onnxruntime] Failed to load library\x1b[m\n")
        print("EP Error: falling back")
    assert lines == ["[E:onnxruntime] Failed to load library", "EP Error: falling back"]
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    assert "probe: [E:onnxruntime] Failed to load library" in caplog.text


def test_doctor_ends_with_one_provider_line(capfd, monkeypatch):
    from workbench.cli import main

    monkeypatch.setattr(gpu, "detect_driver", lambda **kw: gpu.Driver(error="libcuda.so.1 not found"))
    rc = main(["doctor"])
    out = capfd.readouterr()
    lines = out.out.strip().splitlines()
    assert rc == 0 and lines[-1].startswith("provider: CPUExecutionProvider - fix: ")
    assert sum(ln.startswith("provider:") for ln in lines) == 1
    assert any(ln.strip().startswith("cudnn") for ln in lines) and "NVIDIA driver        : none" in out.out
    assert "TensorrtExecutionProvider: " not in out.out and "onnxruntime:" not in out.err



def test_preload_runs_once_and_its_prints_go_to_the_log(monkeypatch, capfd, caplog):
    import onnxruntime

    calls = []

    def fake_preload():
        calls.append(1)
        print("Failed to load libcudnn.so.9: cannot open shared object file")

    monkeypatch.setattr(onnxruntime, "preload_dlls", fake_preload, raising=False)
    monkeypatch.setattr(gpu, "_preloaded", None)
    assert gpu.preload_cuda() == "onnxruntime.preload_dlls(): did not load libcudnn.so.9"
    assert gpu.preload_cuda() == "onnxruntime.preload_dlls(): did not load libcudnn.so.9" and calls == [1]
    assert capfd.readouterr().out == "" and "Failed to load libcudnn.so.9" in caplog.text
    monkeypatch.setattr(gpu, "_preloaded", None)
