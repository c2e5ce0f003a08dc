"""The GPU part of ``workbench doctor``: libraries, driver, a quiet CUDA probe, and the one-line verdict.

:func:`verdict` is a pure function of the collected facts, so every branch (conflicting packages, CPU
build, missing library, no driver, no device, driver too old, working GPU) is unit-tested on a CPU-only
machine with made-up facts.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import gpu

GPU_EXTRA_FIX = ("pip uninstall -y onnxruntime onnxruntime-gpu && pip install 'workbench[gpu]' "
                 "(or ./scripts/run --gpu)")


@dataclass
class GpuFacts:
    """What :func:`verdict` needs to know (all of it printed by the doctor too)."""

    packages: dict[str, str] = field(default_factory=dict)  # installed onnxruntime distributions
    providers: list[str] = field(default_factory=list)  # onnxruntime.get_available_providers()
    cuda_major: int | None = None
    libraries: list[gpu.Library] = field(default_factory=list)
    driver: gpu.Driver = field(default_factory=gpu.Driver)
    probe_used: str | None = None  # provider the CUDA probe session really ran on (None: not probed)
    probe_error: str | None = None
    probe_log: list[str] = field(default_factory=list)  # ORT's own lines captured during the probe
    probe_ms: float = 0.0


def probe(provider: str, settings=None) -> tuple[str | None, str | None, list[str], float]:
    """A session of the embedded smoke model on ``provider`` (CPU fallback), ORT's output captured.

    Returns (provider really used, error message or None, captured ORT lines, milliseconds)."""
    import time

    import numpy as np
    import onnxruntime as ort

    from .selftest import SMOKE_MODEL
    from .session import _fold, _ort_errors, session_options

    opts = session_options(1)
    opts.log_severity_level = 3  # errors only; they are captured below, never printed
    t0 = time.perf_counter()
    with gpu.native_output_to_log("onnxruntime (doctor probe)") as lines:
        try:
            sess = ort.InferenceSession(SMOKE_MODEL, sess_options=opts,
                                        providers=gpu.session_providers([provider, gpu.CPU], settings))
            x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
            (y,) = sess.run(None, {"x": x})
            used = sess.get_providers()[0]
            err = None if np.allclose(y, x + 1) else "wrong result"
        except _ort_errors() as exc:
            used, err = None, _fold(exc)
    return used, err, list(lines), (time.perf_counter() - t0) * 1000.0


def collect(packages: dict[str, str], providers: list[str], settings=None, *, want: str = "cuda") -> GpuFacts:
    """Libraries, driver and (when this onnxruntime has CUDA) the probe run."""
    facts = GpuFacts(packages=dict(packages), providers=list(providers), cuda_major=gpu.cuda_build_major())
    facts.libraries = gpu.find_libraries(facts.cuda_major)
    facts.driver = gpu.detect_driver()
    name = gpu.TENSORRT if want == "tensorrt" else gpu.CUDA
    if name in providers:
        facts.probe_used, facts.probe_error, facts.probe_log, facts.probe_ms = probe(name, settings)
    return facts


def missing_libs(facts: GpuFacts) -> list[gpu.Library]:
    return [lib for lib in facts.libraries if lib.required and not lib.found]


def _driver_reason(text: str) -> bool:
    low = text.lower()
    return "libcuda" in low or "driver" in low or "nvcuda" in low


def verdict(facts: GpuFacts, *, want: str = "cuda") -> tuple[str, str | None]:
    """The provider that will be used and, when it is not the GPU, the single fix.

    Returns
    -------
    (provider, fix) : fix is None when the GPU provider works.
    """
    gpu_name = gpu.TENSORRT if want == "tensorrt" else gpu.CUDA
    if len(facts.packages) > 1:
        return gpu.CPU, (f"several onnxruntime packages are installed ({', '.join(facts.packages)}) and "
                         f"overwrite each other: {GPU_EXTRA_FIX}")
    if not facts.packages:
        return "none", "onnxruntime is not installed: pip install 'workbench[cpu]' (or 'workbench[gpu]')"
    has_gpu_build = gpu_name in facts.providers
    drv = facts.driver
    if facts.probe_used == gpu_name and facts.probe_error is None:
        return gpu_name, None
    if drv.library is None:
        if not has_gpu_build:
            return gpu.CPU, ("none needed on this machine (no NVIDIA driver); on an NVIDIA workstation install "
                             "the driver, then " + GPU_EXTRA_FIX)
        return gpu.CPU, (f"install the NVIDIA driver ({drv.error or 'libcuda.so.1 not found'}; the CUDA and "
                         "cuDNN libraries are " + ("already installed" if not missing_libs(facts) else
                                                   f"missing too: {GPU_EXTRA_FIX}") + ")")
    if not drv.devices:
        return gpu.CPU, (f"{drv.error or 'no NVIDIA device'}: check that the GPU is seated and the driver "
                         "matches it (nvidia-smi)")
    if not has_gpu_build:
        if want == "tensorrt":
            return gpu.CPU, "this onnxruntime has no TensorRT provider: install TensorRT 10 and onnxruntime-gpu"
        return gpu.CPU, f"this onnxruntime is the CPU build: {GPU_EXTRA_FIX}"
    missing = missing_libs(facts)
    if missing:
        names = ", ".join(lib.soname for lib in missing)
        return gpu.CPU, f"CUDA libraries missing ({names}): {GPU_EXTRA_FIX}"
    text = " ".join([facts.probe_error or ""] + facts.probe_log)
    major = facts.cuda_major or gpu.DEFAULT_CUDA_MAJOR
    if drv.version and drv.version.split(".")[0].isdigit() and int(drv.version.split(".")[0]) < major:
        return gpu.CPU, (f"update the NVIDIA driver: it supports CUDA {drv.version}, this onnxruntime needs "
                         f"CUDA {major}")
    if "insufficient" in text.lower() or (_driver_reason(text) and "version" in text.lower()):
        return gpu.CPU, f"update the NVIDIA driver to one that supports CUDA {major} (see `workbench doctor`)"
    detail = facts.probe_error or (facts.probe_log[-1] if facts.probe_log else "the provider did not load")
    return gpu.CPU, f"{gpu_name} fell back to CPU ({detail[:160]}); see the log for ONNX Runtime's messages"


def final_line(facts: GpuFacts, *, want: str = "cuda") -> str:
    """The doctor's last line."""
    provider, fix = verdict(facts, want=want)
    if fix is None:
        where = facts.driver.smi[0] if facts.driver.smi else f"device {gpu.cuda_provider_options().get('device_id')}"
        return f"provider: {provider} (GPU: {where})"
    return f"provider: {provider} - fix: {fix}"
