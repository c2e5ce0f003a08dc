"""Environment checks of ONNX Runtime (``workbench doctor``): packages, providers, CUDA libraries, smoke runs.

The smoke model is embedded (129 bytes: ``y = x + 1`` on a [1, 1, 4, 4] float tensor, IR 7 / opset 13,
built by ``tests/onnx_factory.tiny_add_model`` — a test checks the bytes match) so the check needs
neither the ``onnx`` package nor any file.
"""
from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from importlib import metadata

import numpy as np

SMOKE_MODEL = base64.b64decode(
    "CAcSD3dvcmtiZW5jaC10ZXN0czpmChAKAXgKA29uZRIBeSIDQWRkEgFnKhUIAQgBCAEIARABQgNvbmVKBAAAgD9aGwoBeBIWChQIARIQCgII"
    "AQoCCAEKAggECgIIBGIbCgF5EhYKFAgBEhAKAggBCgIIAQoCCAQKAggEQgQKABAN")

# Distributions that all install the same ``onnxruntime`` module: two at once silently shadow each other.
ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino",
                     "onnxruntime-qnn", "onnxruntime-silicon", "onnxruntime-training", "ort-nightly",
                     "ort-nightly-gpu", "onnxruntime-rocm", "onnxruntime-cann")
CUDA_LIBRARIES = ("cudart", "cublas", "cublasLt", "cufft", "curand", "cudnn")
# Providers that are not a compute device worth a smoke run; TensorRT only on request (doctor --provider
# tensorrt): it is never tried by default.
_SKIP_SMOKE = {"AzureExecutionProvider", "TensorrtExecutionProvider"}


@dataclass
class SmokeRun:
    requested: str
    used: str | None
    ok: bool
    ms: float = 0.0
    message: str = ""


@dataclass
class DoctorReport:
    packages: dict[str, str] = field(default_factory=dict)
    ort_version: str | None = None
    ort_path: str | None = None
    device: str | None = None
    providers: list[str] = field(default_factory=list)
    preload: str | None = None
    cuda_libraries: dict[str, str | None] = field(default_factory=dict)
    nvidia_packages: dict[str, str] = field(default_factory=dict)
    smoke: list[SmokeRun] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    libraries: list[dict] = field(default_factory=list)  # gpu.Library per CUDA/cuDNN library
    driver: dict = field(default_factory=dict)  # gpu.Driver
    provider: str = "none"  # the provider that will be used
    fix: str | None = None  # the single fix when it is not the GPU
    final: str = ""  # the doctor's last line

    @property
    def conflict(self) -> bool:
        return len(self.packages) > 1


def installed_ort_packages() -> dict[str, str]:
    """Installed distributions that provide the ``onnxruntime`` module, with their versions."""
    found = {}
    for name in ORT_DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def nvidia_wheels() -> dict[str, str]:
    """pip-installed NVIDIA runtime wheels (nvidia-cudnn-cu12, nvidia-cuda-runtime-cu12, ...)."""
    out = {}
    for dist in metadata.distributions():
        name = (dist.name or "").lower()
        if name.startswith("nvidia-"):
            out[name] = dist.version
    return dict(sorted(out.items()))


def smoke_run(provider: str) -> SmokeRun:
    """Create a session of the embedded model on ``provider`` (CPU fallback) and check ``y == x + 1``.

    ``used`` is ``session.get_providers()[0]``: when it is not ``provider``, ONNX Runtime fell back.
    """
    import onnxruntime as ort

    from .session import CPU, _fold, _ort_errors, session_options

    t0 = time.perf_counter()
    try:
        providers = [provider] if provider == CPU else [provider, CPU]
        sess = ort.InferenceSession(SMOKE_MODEL, sess_options=session_options(1), providers=providers)
        used = sess.get_providers()[0]
        x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
        (y,) = sess.run(None, {"x": x})
    except _ort_errors() as exc:
        return SmokeRun(provider, None, False, (time.perf_counter() - t0) * 1000, _fold(exc))
    ms = (time.perf_counter() - t0) * 1000
    if not np.allclose(y, x + 1):
        return SmokeRun(provider, used, False, ms, "wrong result")
    if used != provider:
        return SmokeRun(provider, used, False, ms, f"fell back to {used} (provider libraries did not load)")
    return SmokeRun(provider, used, True, ms, "ok")


def diagnose(want: str = "cuda", settings=None) -> DoctorReport:
    """Everything ``workbench doctor`` prints; ``problems`` lists what needs the user's attention.

    ``want``: the GPU provider to check (``cuda``, or ``tensorrt`` when the user asks for it). ONNX
    Runtime's own output of the GPU probe goes to our log, never to the terminal."""
    from dataclasses import asdict

    from . import gpu, gpu_check

    report = DoctorReport(packages=installed_ort_packages())
    if report.conflict:
        report.problems.append(f"several onnxruntime packages installed ({', '.join(report.packages)}); they "
                               "overwrite each other's files: uninstall all of them, then install exactly one")
    try:
        with gpu.native_output_to_log("onnxruntime (import)"):
            import onnxruntime as ort
    except ImportError as exc:
        report.problems.append(f"onnxruntime cannot be imported ({exc}); install onnxruntime (CPU) or "
                               "onnxruntime-gpu (NVIDIA)")
        report.final = f"provider: none - fix: pip install 'workbench[cpu]' (onnxruntime cannot be imported: {exc})"
        return report
    report.ort_version = ort.__version__
    report.ort_path = getattr(ort, "__file__", None)
    report.device = ort.get_device()
    report.providers = list(ort.get_available_providers())
    report.nvidia_packages = nvidia_wheels()
    if gpu.CUDA in report.providers:
        report.preload = gpu.preload_cuda()
    facts = gpu_check.collect(report.packages, report.providers, settings, want=want)
    report.libraries = [asdict(lib) for lib in facts.libraries]
    report.driver = asdict(facts.driver)
    for lib in facts.libraries:
        report.cuda_libraries[lib.name] = lib.path
    for provider in report.providers:
        if provider in _SKIP_SMOKE and not (want == "tensorrt" and provider == gpu.TENSORRT):
            continue
        if provider in (gpu.CUDA, gpu.TENSORRT):
            if (provider == gpu.TENSORRT) != (want == "tensorrt"):
                continue
            ok = facts.probe_used == provider and facts.probe_error is None
            msg = "ok" if ok else (facts.probe_error or f"fell back to {facts.probe_used}")
            report.smoke.append(SmokeRun(provider, facts.probe_used, ok, facts.probe_ms, msg))
            continue
        run = smoke_run(provider)
        report.smoke.append(run)
        if not run.ok:
            report.problems.append(f"{provider}: {run.message}")
    report.provider, report.fix = gpu_check.verdict(facts, want=want)
    report.final = gpu_check.final_line(facts, want=want)
    return report
