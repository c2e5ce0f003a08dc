"""NVIDIA GPU support: where the CUDA/cuDNN libraries are, whether a driver and a device exist, the DLL
preload, the CUDA provider options and the provider policy (TensorRT only on request).

Why this module exists: ``onnxruntime-gpu`` lists ``CUDAExecutionProvider`` as available even when none of
its libraries can load, prints a wall of red C++ lines and "EP Error" banners when they do not, and then
runs on CPU. A clinic workstation has the NVIDIA driver and nothing else; the ``gpu`` extra brings the CUDA
runtime, cuBLAS, cuFFT, cuRAND and cuDNN as NVIDIA's wheels (``site-packages/nvidia/*/lib``), which
``onnxruntime.preload_dlls()`` loads before the first CUDA session. What is still missing is named here,
one library at a time, and :func:`verdict` turns it into the one line ``workbench doctor`` ends with.

Nothing here needs a GPU: the discovery functions take their search roots as arguments so tests can point
them at a fake tree, and the driver probe returns "no driver" on CPU-only machines.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import io
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # never Python's last-resort stderr handler: our log file or nothing

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
DEFAULT_CUDA_MAJOR = 13  # onnxruntime-gpu 1.31 (the `gpu` extra's pin) is built with CUDA 13
CONV_ALGO_SEARCH = ("HEURISTIC", "EXHAUSTIVE", "DEFAULT")
NVIDIA_SMI_TIMEOUT_S = 5.0


# -- libraries ------------------------------------------------------------------------------------------
@dataclass
class Library:
    """One CUDA/cuDNN library the CUDA provider loads: where it was found (``where`` None = missing)."""

    name: str
    soname: str
    path: str | None = None
    where: str | None = None  # "nvidia wheel", "LD_LIBRARY_PATH", "system", "PATH"
    required: bool = True

    @property
    def found(self) -> bool:
        return self.path is not None


def cuda_build_major() -> int | None:
    """The CUDA major version this onnxruntime was built with (None: not a CUDA build or unknown)."""
    try:
        from onnxruntime.capi import build_and_package_info as info
    except ImportError:
        return None
    version = getattr(info, "cuda_version", "") or ""
    head = version.split(".")[0]
    return int(head) if head.isdigit() else None


def expected_libraries(cuda_major: int | None = None, *, windows: bool | None = None) -> list[Library]:
    """The library files the CUDA provider of a build with ``cuda_major`` needs, by their exact names.

    cuFFT's major is one below CUDA's (CUDA 12 ships cuFFT 11, CUDA 13 cuFFT 12); cuRAND has stayed at 10;
    cuDNN 9 is what every onnxruntime-gpu >= 1.19 links. nvrtc is optional (only some kernels use it).
    """
    m = cuda_major or DEFAULT_CUDA_MAJOR
    windows = sys.platform == "win32" if windows is None else windows
    if windows:
        names = [("cudart", f"cudart64_{m}.dll"), ("cublasLt", f"cublasLt64_{m}.dll"),
                 ("cublas", f"cublas64_{m}.dll"), ("cufft", f"cufft64_{m - 1}.dll"),
                 ("curand", "curand64_10.dll"), ("cudnn", "cudnn64_9.dll")]
    else:
        names = [("cudart", f"libcudart.so.{m}"), ("cublasLt", f"libcublasLt.so.{m}"),
                 ("cublas", f"libcublas.so.{m}"), ("cufft", f"libcufft.so.{m - 1}"),
                 ("curand", "libcurand.so.10"), ("cudnn", "libcudnn.so.9")]
    libs = [Library(n, s) for n, s in names]
    libs.append(Library("nvrtc", f"nvrtc64_{m}0_0.dll" if windows else f"libnvrtc.so.{m}", required=False))
    return libs


def site_package_dirs() -> list[Path]:
    """Where pip put the NVIDIA wheels: this interpreter's purelib/platlib (and sys.path entries)."""
    seen: list[Path] = []
    for p in [sysconfig.get_paths().get("purelib"), sysconfig.get_paths().get("platlib"), *sys.path]:
        if p and (Path(p) / "nvidia").is_dir() and Path(p) not in seen:
            seen.append(Path(p))
    return seen


def find_libraries(cuda_major: int | None = None, *, site_dirs: list[Path] | None = None,
                   env: Mapping[str, str] | None = None, system=None, windows: bool | None = None) -> list[Library]:
    """Locate every library of :func:`expected_libraries`, in the order the loader would use them.

    Search order: NVIDIA wheels (``site-packages/nvidia/*/lib``, ``nvidia/*/bin``; what ``preload_dlls``
    loads), then ``LD_LIBRARY_PATH`` (``PATH`` on Windows), then the system loader's cache.

    Parameters
    ----------
    cuda_major : int, optional
        Default: the installed onnxruntime's build, else 13.
    site_dirs, env, system
        Search roots, the environment and the system lookup ``soname -> path or None``; for tests.
    """
    windows = sys.platform == "win32" if windows is None else windows
    site_dirs = site_package_dirs() if site_dirs is None else site_dirs
    env = os.environ if env is None else env
    system = _system_lookup if system is None else system
    var = "PATH" if windows else "LD_LIBRARY_PATH"
    env_dirs = [d for d in env.get(var, "").split(os.pathsep) if d]
    libs = expected_libraries(cuda_major or cuda_build_major(), windows=windows)
    for lib in libs:
        for root in site_dirs:
            hits = sorted(glob.glob(str(Path(root) / "nvidia" / "**" / lib.soname), recursive=True))
            if hits:
                lib.path, lib.where = hits[0], "nvidia wheel"
                break
        if lib.path is None:
            for d in env_dirs:
                candidate = Path(d) / lib.soname
                if candidate.exists():
                    lib.path, lib.where = str(candidate), var
                    break
        if lib.path is None:
            path = system(lib.soname)
            if path:
                lib.path, lib.where = path, "system"
    return libs


def _system_lookup(soname: str) -> str | None:
    """The system loader's copy of ``soname`` (ldconfig cache / standard folders), without loading it."""
    if sys.platform == "win32":
        return shutil.which(soname)
    stem = soname.split(".so")[0][3:]  # libcudart.so.13 -> cudart
    found = ctypes.util.find_library(stem)
    if found == soname:
        for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/cuda/lib64",
                  "/usr/lib/aarch64-linux-gnu"):
            if (Path(d) / soname).exists():
                return str(Path(d) / soname)
        return soname
    return None


# -- driver and device ------------------------------------------------------------------------------------
@dataclass
class Driver:
    """The NVIDIA driver as seen from here: its user-space library, the devices, nvidia-smi's view."""

    library: str | None = None  # libcuda.so.1 / nvcuda.dll when it loads
    version: str | None = None  # e.g. "13.0" (cuDriverGetVersion: the newest CUDA it supports)
    devices: int | None = None  # cuDeviceGetCount after cuInit; None when it could not be asked
    error: str | None = None
    smi: list[str] = field(default_factory=list)  # nvidia-smi lines "name, driver, memory"
    smi_error: str | None = None


def detect_driver(*, loader=None, smi: str | None | bool = True) -> Driver:
    """Load the driver library, ask it for the device count, and run ``nvidia-smi`` (5 s) when present.

    ``loader(name) -> ctypes.CDLL`` and ``smi`` (path, False = skip) are for tests.
    """
    loader = loader or ctypes.CDLL
    name = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
    drv = Driver()
    try:
        cuda = loader(name)
    except OSError:
        drv.error = f"{name} not found"
    else:
        drv.library = name
        try:
            rc = cuda.cuInit(0)
            if rc != 0:
                drv.error = f"the NVIDIA driver is installed but cuInit failed (CUDA error {rc}: no usable device)"
                drv.devices = 0
            else:
                count, ver = ctypes.c_int(0), ctypes.c_int(0)
                cuda.cuDeviceGetCount(ctypes.byref(count))
                drv.devices = count.value
                if cuda.cuDriverGetVersion(ctypes.byref(ver)) == 0 and ver.value:
                    drv.version = f"{ver.value // 1000}.{ver.value % 1000 // 10}"
                if not drv.devices:
                    drv.error = "the NVIDIA driver is installed but sees no device"
        except (AttributeError, OSError) as exc:
            drv.error = f"{name} loaded but is not a CUDA driver ({exc})"
    exe = shutil.which("nvidia-smi") if smi is True else (smi or None)
    if exe:
        try:
            out = subprocess.run([exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S)
            if out.returncode == 0:
                drv.smi = [ln.strip() for ln in out.stdout.splitlines() if ln.strip()]
            else:
                drv.smi_error = " ".join((out.stdout + out.stderr).split())[:200] or f"exit {out.returncode}"
        except subprocess.TimeoutExpired:
            drv.smi_error = f"nvidia-smi did not answer within {NVIDIA_SMI_TIMEOUT_S:.0f} s"
        except OSError as exc:
            drv.smi_error = str(exc)
    return drv


# -- preload and quiet native output ----------------------------------------------------------------------
_PRELOAD_LOCK = threading.Lock()
_preloaded: str | None = None


@contextlib.contextmanager
def native_output_to_log(what: str = "onnxruntime") -> Iterator[list[str]]:
    """Send fd 2 (ONNX Runtime's C++ log lines), ``print`` and :mod:`warnings` into our log while inside.

    Needed around everything that may load the CUDA provider: its loader errors and the Python-side
    "EP Error ... Falling back" banners otherwise land on the terminal before our one line. Yields a list
    that holds the captured lines (ANSI colours removed) once the block has ended."""
    import re

    lines: list[str] = []
    printed = io.StringIO()
    try:
        saved = os.dup(2)
    except OSError:
        saved = None
    with tempfile.TemporaryFile() as tmp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if saved is not None:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(tmp.fileno(), 2)
        try:
            with contextlib.redirect_stdout(printed):
                yield lines
        finally:
            if saved is not None:
                with contextlib.suppress(OSError, ValueError):
                    sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
            tmp.seek(0)
            text = tmp.read(1 << 16).decode("utf-8", "replace") + "\n" + printed.getvalue()
            text += "\n".join(str(w.message) for w in caught)
            lines.extend(re.sub(r"\x1b\[[0-9;]*m", "", ln.strip()) for ln in text.splitlines() if ln.strip())
            for line in lines:
                log.warning("%s: %s", what, line)


def preload_cuda() -> str:
    """``onnxruntime.preload_dlls()`` once per process (its output to our log); returns what happened.

    It loads the NVIDIA wheels' libraries by absolute path, so the CUDA provider finds them without
    ``LD_LIBRARY_PATH``; without the wheels it falls back to the system loader."""
    global _preloaded
    with _PRELOAD_LOCK:
        if _preloaded is not None:
            return _preloaded
        import onnxruntime as ort

        fn = getattr(ort, "preload_dlls", None)
        if fn is None:
            _preloaded = "onnxruntime.preload_dlls not available in this onnxruntime (needs >= 1.21)"
        else:
            try:
                with native_output_to_log("onnxruntime.preload_dlls") as lines:
                    fn()
                failed = [ln.split(":")[0].removeprefix("Failed to load ").strip()
                          for ln in lines if ln.startswith("Failed to load")]
                _preloaded = ("onnxruntime.preload_dlls(): done" if not failed else
                              f"onnxruntime.preload_dlls(): did not load {', '.join(failed)}")
            except (OSError, RuntimeError, ImportError) as exc:
                _preloaded = f"onnxruntime.preload_dlls() failed: {exc}"
        log.info("%s", _preloaded)
        return _preloaded


# -- CUDA provider options ----------------------------------------------------------------------------------
def cuda_provider_options(settings=None) -> dict[str, str]:
    """The CUDA provider options of every session, from the settings (one place, so tests can see them).

    * ``device_id``: ``Settings.cuda_device_id``.
    * ``arena_extend_strategy=kSameAsRequested``: the default (kNextPowerOfTwo) doubles the arena, so a
      4.1 GB request reserves 8 GB and a second model does not fit on an 8 GB card.
    * ``cudnn_conv_algo_search``: ``Settings.cudnn_conv_algo_search``, HEURISTIC by default: EXHAUSTIVE
      benchmarks every algorithm for every new input shape, seconds per shape with whole-image models.
    * ``gpu_mem_limit``: ``Settings.cuda_mem_limit_mb`` (0 = no limit) per session, in bytes.
    """
    device = int(getattr(settings, "cuda_device_id", 0) or 0)
    search = str(getattr(settings, "cudnn_conv_algo_search", "HEURISTIC") or "HEURISTIC").upper()
    if search not in CONV_ALGO_SEARCH:
        search = "HEURISTIC"
    opts = {"device_id": str(device), "arena_extend_strategy": "kSameAsRequested",
            "cudnn_conv_algo_search": search, "do_copy_in_default_stream": "1"}
    limit_mb = int(getattr(settings, "cuda_mem_limit_mb", 0) or 0)
    if limit_mb > 0:
        opts["gpu_mem_limit"] = str(limit_mb * 1024 * 1024)
    return opts


def session_providers(providers: list[str], settings=None) -> list:
    """``providers`` as ONNX Runtime's ``providers=`` argument: CUDA with :func:`cuda_provider_options`.

    Preloads the CUDA libraries first when CUDA (or TensorRT) is in the list: the first CUDA session
    of the process is where the provider library is dlopen()ed."""
    if CUDA in providers or TENSORRT in providers:
        preload_cuda()
    out: list = []
    for name in providers:
        if name == CUDA:
            out.append((CUDA, cuda_provider_options(settings)))
        elif name == TENSORRT:
            dev = str(int(getattr(settings, "cuda_device_id", 0) or 0))
            out.append((TENSORRT, {"device_id": dev}))
        else:
            out.append(name)
    return out


def tensorrt_allowed(choice: str, settings=None) -> bool:
    """TensorRT is tried only when the user asked for it: ``--provider tensorrt``, or a plugin that lists
    it AND ``Settings.allow_tensorrt`` (it compiles an engine per shape, minutes on first use)."""
    return choice == "tensorrt" or bool(getattr(settings, "allow_tensorrt", False))


def apply_provider_policy(providers: list[str], choice: str, settings=None) -> list[str]:
    """Drop TensorRT from an automatic provider list unless :func:`tensorrt_allowed`."""
    if tensorrt_allowed(choice, settings):
        return providers
    dropped = [p for p in providers if p != TENSORRT]
    if len(dropped) != len(providers):
        log.info("TensorRT listed by the plugin but not enabled (settings: allow_tensorrt); using %s", dropped)
    return dropped


# -- sessions and fall-back -----------------------------------------------------------------------------------
_FALLBACK_LOCK = threading.Lock()
_fallback: str | None = None  # why the GPU was not used, once a session fell back (a machine property)


def create_session(model, sess_options, providers: list[str], settings=None):
    """``onnxruntime.InferenceSession`` with the CUDA options, the DLL preload and, when a GPU provider is
    in the list, ONNX Runtime's own output sent to our log. A GPU session that comes back on CPU is
    remembered (:func:`fallback_reason`)."""
    import onnxruntime as ort

    wants_gpu = CUDA in providers or TENSORRT in providers
    if not wants_gpu:
        return ort.InferenceSession(model, sess_options=sess_options, providers=providers)
    with native_output_to_log("onnxruntime"):
        session = ort.InferenceSession(model, sess_options=sess_options,
                                       providers=session_providers(providers, settings))
    used = session.get_providers()[0]
    if used not in (CUDA, TENSORRT):
        note_fallback()
    return session


def note_fallback(reason: str | None = None) -> str:
    """Record (once) and return why a GPU session runs on CPU."""
    global _fallback
    with _FALLBACK_LOCK:
        if _fallback is None:
            _fallback = reason or diagnose_fallback()
            log.warning("GPU not used: %s", _fallback)
        return _fallback


def fallback_reason() -> str | None:
    """Why a GPU session of this process fell back to CPU (None: none did)."""
    return _fallback


def reset_fallback() -> None:
    """Forget the recorded fall-back (tests)."""
    global _fallback
    with _FALLBACK_LOCK:
        _fallback = None


def diagnose_fallback(driver: Driver | None = None, libraries: list[Library] | None = None) -> str:
    """The first thing that stops the CUDA provider here, in a few words (no nvidia-smi: fast)."""
    driver = driver if driver is not None else detect_driver(smi=False)
    if driver.library is None:
        return f"no NVIDIA driver: {driver.error or 'libcuda.so.1 not found'}"
    if not driver.devices:
        return driver.error or "no NVIDIA device"
    libraries = libraries if libraries is not None else find_libraries()
    missing = [lib.soname for lib in libraries if lib.required and not lib.found]
    if missing:
        return f"CUDA libraries missing: {', '.join(missing)}"
    return "the CUDA provider did not load (see the log)"


def check_requested(choice: str, used: str) -> None:
    """An explicit ``--provider cuda|tensorrt`` that came back on CPU is the user's error, not a warning.

    Raises
    ------
    PluginError
        One line: what was asked, what runs, why, and where to look.
    """
    wanted = {"cuda": CUDA, "tensorrt": TENSORRT}.get(choice)
    if wanted is None or used == wanted:
        return
    from ..core.errors import PluginError

    reason = fallback_reason() or note_fallback()
    raise PluginError(f"--provider {choice}: {wanted} cannot run here ({reason}); use --provider auto to "
                      "run on CPU, see `workbench doctor`")


def fallback_warning(choice: str, used: str) -> str | None:
    """The CLI's one warning line when an automatic choice fell back from the GPU to ``used``."""
    reason = fallback_reason()
    if reason is None or used in (CUDA, TENSORRT) or choice not in ("auto", ""):
        return None
    return f"GPU not used, running on {used}: {reason} (see `workbench doctor`)"
