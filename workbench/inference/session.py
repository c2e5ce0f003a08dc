"""ONNX Runtime sessions: checksum first, providers filtered, graph checked against the manifest, cached.

Sessions are created lazily (first run), verified (sha256 *before* the session exists), compared with the
manifest (input rank/channels/size/dtype, output names), warmed up once and kept in a small LRU cache.
The provider really used is read back from ``session.get_providers()[0]``: onnxruntime-gpu lists CUDA as
available even when its libraries cannot load and then silently runs on CPU.

Only ``session.get_inputs()/get_outputs()/get_modelmeta()`` are used to read the graph: ``onnx.load`` of a
whole model would double the memory, and old exporters list initializers as graph inputs too.
"""
from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.errors import InferenceError, PluginError
from ..core.settings import Settings, load_settings
from . import gpu
from .checksum import verify_sha256
from .guards import allowed_providers, check_array, check_output_types, ort_log_captured, run_with_limit
from .iobinding import bind_on_device
from .spec import PluginSpec

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
MAX_CACHED_SESSIONS = 4

_ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(uint16)": np.uint16,
    "tensor(int16)": np.int16, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
}


def _ort():
    import onnxruntime

    return onnxruntime


def _ort_errors() -> tuple[type[BaseException], ...]:
    from onnxruntime.capi import onnxruntime_pybind11_state as st

    names = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoModel", "NoSuchFile",
             "NotFound", "NotImplemented", "RuntimeException", "EPFail", "ModelLoaded")
    return tuple(getattr(st, n) for n in names if hasattr(st, n)) + (RuntimeError, ValueError, MemoryError)


def _fold(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def resolve_providers(requested: list[str], choice: str = "auto", extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The providers to ask ONNX Runtime for, CPU always last.

    Parameters
    ----------
    requested : list of str
        The plugin's ``runtime.providers``.
    choice : {"auto", "cpu", "cuda", "tensorrt"}
        ``auto``: the plugin's list filtered by ``onnxruntime.get_available_providers()``; ``cpu``: CPU
        only; ``cuda``: CUDA then CPU (an error when this onnxruntime has no CUDA provider).
    extra : list of str
        Providers allowed besides the local ones (``Settings.extra_providers``); others are dropped.
    """
    available = _ort().get_available_providers()
    if choice == "cpu":
        return [CPU]
    if choice == "tensorrt":  # only on request (gpu.tensorrt_allowed); CUDA and CPU behind it
        return [p for p in (gpu.TENSORRT, CUDA) if p in available] + [CPU]
    if choice == "cuda":
        if CUDA not in available:
            raise PluginError(f"--provider cuda: CUDAExecutionProvider is not available in this onnxruntime "
                              f"(available: {', '.join(available)}); install onnxruntime-gpu, "
                              "see `workbench doctor`")
        return [CUDA, CPU]
    if choice != "auto":
        raise PluginError(f"--provider {choice}: expected auto, cpu, cuda or tensorrt")
    chosen = [p for p in allowed_providers(requested, extra) if p in available and p != CPU]
    return list(dict.fromkeys(chosen)) + [CPU]


@dataclass
class InputInfo:
    """The model input as the graph declares it (``None`` = dynamic dimension)."""

    name: str
    shape: list[int | None]
    dtype: np.dtype
    layout: str
    batch: int | None
    channels: int | None
    height: int | None
    width: int | None
    depth: int | None = None  # 3-D models (NCDHW / NDHWC)

    @property
    def batch_dynamic(self) -> bool:
        """The graph takes any batch size: several tiles or slices can go into one ``session.run``."""
        return self.batch is None


@dataclass
class LoadedModel:
    """A ready session of one plugin: run it with :meth:`run`."""

    spec: PluginSpec
    session: object
    provider: str
    providers: list[str]
    input: InputInfo
    output_names: list[str]
    output_shapes: dict[str, list[int | None]]
    metadata: dict[str, str] = field(default_factory=dict)
    load_ms: float = 0.0
    constants: dict[str, np.ndarray] = field(default_factory=dict)  # input.constants, as graph tensors
    time_limit_s: float = 0.0  # Settings.inference_time_limit_s: one run is cancelled after this (0: none)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def run(self, tensor: np.ndarray, names: list[str] | None = None, *, check_finite: bool = True
            ) -> dict[str, np.ndarray]:
        """Run the model on one input tensor; outputs by name, checked for NaN/Inf.

        ``check_finite=False`` leaves the NaN/Inf check to the caller (:meth:`check_finite`), e.g. on
        another thread.

        Raises
        ------
        InferenceError
            The model failed at run time or produced NaN/Inf.
        """
        names = names or self.output_names
        feed = {self.input.name: tensor, **self.constants} if self.constants else {self.input.name: tensor}
        try:
            outs = run_with_limit(self.session, names, feed, limit_s=self.time_limit_s,
                                  what=str(self.spec.manifest_path))
        except _ort_errors() as exc:
            raise InferenceError(f"model failed at run time on input {list(tensor.shape)}: {_fold(exc)}",
                                 path=self.spec.id) from exc
        result = {}
        for name, arr in zip(names, outs):
            arr = np.asarray(arr)
            check_array(name, arr, self.spec.id)
            if arr.dtype == np.float16:
                arr = arr.astype(np.float32)  # fp16 graphs: decoders and blending work in float32
            if check_finite:
                self.check_finite(name, arr)
            result[name] = arr
        return result

    def check_finite(self, name: str, arr: np.ndarray) -> None:
        """Raise :class:`InferenceError` when a float output ``name`` holds NaN or Inf."""
        # one summing pass (NaN and Inf propagate into the sum) instead of a boolean copy per output;
        # the exact check only when the sum is not finite (it may also just have overflowed)
        if arr.dtype.kind == "f" and not np.isfinite(np.add.reduce(arr, axis=None)) \
                and not np.isfinite(arr).all():
            raise InferenceError(f"output {name!r} contains NaN or Inf (model diverged or input out of "
                                 "the range it was trained on)", path=self.spec.id)


def _dim(value) -> int | None:
    return int(value) if isinstance(value, (int, np.integer)) and value > 0 else None


def _pick_input(spec: PluginSpec, inputs: list) -> Any:
    constants = spec.input.constants or {}
    names = [i.name for i in inputs]
    for key in constants:
        if key not in names:
            raise spec.error(f"input.constants.{key}", f"graph has no input {key!r} "
                                                        f"(inputs: {', '.join(repr(n) for n in names)})")
    if spec.input.name is not None:
        if spec.input.name in constants:
            raise spec.error("input.constants", f"{spec.input.name!r} is the image input (input.name)")
        for node in inputs:
            if node.name == spec.input.name:
                missing = [n for n in names if n != node.name and n not in constants]
                if missing:
                    raise spec.error("input.constants", f"graph input(s) {', '.join(repr(n) for n in missing)} "
                                                        "are not the image; give their values in input.constants")
                return node
        raise spec.error("input.name", f"graph has no input {spec.input.name!r} "
                                       f"(inputs: {', '.join(repr(i.name) for i in inputs)})")
    real = [node for node in inputs if node.name not in constants]
    if len(real) != 1:
        raise spec.error("input.name" if len(real) else "input.constants",
                         f"graph has {len(inputs)} inputs ({', '.join(repr(i.name) for i in inputs)}); name the "
                         "image input (input.name) and give values for the others in input.constants"
                         if real else "every graph input has a constant; one of them must be the image")
    return real[0]


def constant_tensors(spec: PluginSpec, inputs: list) -> dict[str, np.ndarray]:
    """``input.constants`` as tensors of the graph inputs' types and shapes (dynamic dims = 1).

    Raises
    ------
    PluginError
        ``input.constants.sr: 3 values do not fit the graph input shape [1]``.
    """
    out: dict[str, np.ndarray] = {}
    by_name = {i.name: i for i in inputs}
    for key, value in (spec.input.constants or {}).items():
        node = by_name[key]
        if node.type not in _ORT_TYPES:
            raise spec.error(f"input.constants.{key}", f"graph input {key!r} has type {node.type}; only numeric "
                                                        "constants are supported")
        dtype = np.dtype(_ORT_TYPES[node.type])
        shape = [_dim(d) or 1 for d in node.shape]
        arr = np.asarray(value, dtype=np.float64)
        if arr.size == 1:
            tensor = np.full(shape, arr.reshape(-1)[0])
        elif arr.size == int(np.prod(shape)):
            tensor = arr.reshape(shape)
        else:
            raise spec.error(f"input.constants.{key}", f"{arr.size} values do not fit the graph input shape "
                                                        f"{list(node.shape)}")
        out[key] = tensor.astype(dtype)
    return out


def check_graph(spec: PluginSpec, session) -> tuple[InputInfo, list[str], dict[str, list[int | None]]]:
    """Compare the manifest with the graph's inputs and outputs.

    Returns
    -------
    (InputInfo, output names, output shapes)

    Raises
    ------
    PluginError
        ``input.size: graph expects [240, 320]`` and the like.
    """
    inputs = session.get_inputs()
    node = _pick_input(spec, inputs)
    shape = [_dim(d) for d in node.shape]
    if spec.input.is_volumetric:
        return _check_graph_3d(spec, session, node, shape)
    if len(shape) == 5:
        raise spec.error("input.name", f"graph input {node.name!r} has shape {list(node.shape)}; a 4-D image "
                                       "tensor (NCHW or NHWC) is expected, or input.layout: NCDHW / NDHWC for a "
                                       "3-D model")
    if len(shape) != 4:
        raise spec.error("input.name", f"graph input {node.name!r} has shape {list(node.shape)}; a 4-D image "
                                       "tensor (NCHW or NHWC) is expected")
    if node.type not in _ORT_TYPES:
        raise spec.error("input.dtype", f"graph input {node.name!r} has type {node.type}, not an image tensor")
    dtype = _input_dtype(spec, node)
    layout = spec.input.layout
    c_ax, h_ax, w_ax = (1, 2, 3) if layout == "NCHW" else (3, 1, 2)
    channels = _check_channels(spec, node, shape[c_ax], shape[3] if layout == "NCHW" else shape[1],
                               "NHWC" if layout == "NCHW" else "NCHW")
    height, width = shape[h_ax], shape[w_ax]
    if height is not None and width is not None:
        _check_fixed_size(spec, height, width)
    names, shapes = _check_outputs(spec, session)
    info = InputInfo(node.name, shape, dtype, layout, shape[0], channels, height, width)
    return info, names, shapes


def _check_fixed_size(spec: PluginSpec, height: int, width: int) -> None:
    """A graph of fixed height and width against the manifest's ``input.size``, ``tile`` and ``multiple_of``;
    an undeclared tile size is taken from the graph."""
    if spec.input.size is not None and list(spec.input.size) != [height, width]:
        raise spec.error("input.size", f"graph expects [{height}, {width}]")
    if spec.input.resize == "tile" and spec.input.tile is not None:
        if spec.input.tile.hw != (height, width):
            if "size" in spec.input.tile.model_fields_set:
                raise spec.error("input.tile.size", f"graph expects [{height}, {width}]")
            spec.input.tile.size = [height, width]
    if spec.input.multiple_of > 1 and (height % spec.input.multiple_of or width % spec.input.multiple_of):
        raise spec.error("input.multiple_of", f"graph size [{height}, {width}] is not a multiple of "
                                              f"{spec.input.multiple_of}")


def _check_channels(spec: PluginSpec, node, channels: int | None, other_end: int | None,
                    other_layout: str) -> int | None:
    """The graph's channel count, checked against the manifest's colour; a count that matches only at the
    other end of the shape is reported as a layout mix-up (``other_layout``), not a colour one."""
    want_c = spec.input.channels
    if channels is not None and channels != want_c:
        if other_end == want_c:
            raise spec.error("input.layout", f"graph input shape {list(node.shape)} looks {other_layout}, the "
                                             f"manifest says {spec.input.layout}")
        raise spec.error("input.color", f"{spec.input.color} gives {want_c} channel(s), graph expects {channels} "
                                        f"(input shape {list(node.shape)})")
    return channels


def _check_outputs(spec: PluginSpec, session) -> tuple[list[str], dict[str, list[int | None]]]:
    outputs = session.get_outputs()
    names = [o.name for o in outputs]
    shapes = {o.name: [_dim(d) for d in o.shape] for o in outputs}
    out = spec.output
    for fld in ("name", "boxes", "scores"):
        value = getattr(out, fld)
        if value is not None and value not in names:
            raise spec.error(f"output.{fld}", f"graph has no output {value!r} (outputs: "
                                              f"{', '.join(repr(n) for n in names)})")
    return names, shapes


def _input_dtype(spec: PluginSpec, node) -> np.dtype:
    """The graph input's element type; ``input.dtype``, when given, must agree (wave 2: optional)."""
    dtype = np.dtype(_ORT_TYPES[node.type])
    if spec.input.dtype is not None and np.dtype(spec.input.dtype) != dtype:
        raise spec.error("input.dtype", f"graph expects {dtype.name}, the manifest says {spec.input.dtype}")
    return dtype


def _check_graph_3d(spec: PluginSpec, session, node, shape: list[int | None]
                    ) -> tuple[InputInfo, list[str], dict[str, list[int | None]]]:
    """:func:`check_graph` for ``NCDHW`` / ``NDHWC`` models (a 5-D input)."""
    layout = spec.input.layout
    if len(shape) != 5:
        raise spec.error("input.layout", f"{layout} needs a 5-D graph input; {node.name!r} has shape "
                                         f"{list(node.shape)}")
    if node.type not in _ORT_TYPES:
        raise spec.error("input.dtype", f"graph input {node.name!r} has type {node.type}, not an image tensor")
    dtype = _input_dtype(spec, node)
    c_ax, d_ax, h_ax, w_ax = (1, 2, 3, 4) if layout == "NCDHW" else (4, 1, 2, 3)
    channels = _check_channels(spec, node, shape[c_ax], shape[4] if layout == "NCDHW" else shape[1],
                               "NDHWC" if layout == "NCDHW" else "NCDHW")
    dims = (shape[d_ax], shape[h_ax], shape[w_ax])
    fixed = all(d is not None for d in dims)
    if fixed and spec.input.size is not None and tuple(spec.input.size) != dims:
        raise spec.error("input.size", f"graph expects {list(dims)}")
    tile = spec.input.tile
    if spec.input.resize == "tile" and tile is not None:
        for want, have in zip(dims, tile.dhw):
            if want is not None and want != have:
                if "size" in tile.model_fields_set:
                    raise spec.error("input.tile.size", f"graph expects {['?' if d is None else d for d in dims]}"
                                                        f" (z y x), the manifest says {list(tile.dhw)}")
                tile.size = [d if d is not None else t for d, t in zip(dims, tile.dhw)]
                break
    m = spec.input.multiple_of
    if m > 1 and any(d is not None and d % m for d in dims):
        raise spec.error("input.multiple_of", f"graph size {list(dims)} is not a multiple of {m}")
    names, shapes = _check_outputs(spec, session)
    info = InputInfo(node.name, shape, dtype, layout, shape[0], channels, dims[1], dims[2], depth=dims[0])
    return info, names, shapes


# -- the cache ------------------------------------------------------------------------------------
_CACHE: OrderedDict[tuple, LoadedModel] = OrderedDict()
_CACHE_LOCK = threading.RLock()


def clear_session_cache() -> None:
    """Drop every cached session (tests, or after the user changed threads/providers)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def cached_sessions() -> list[LoadedModel]:
    with _CACHE_LOCK:
        return list(_CACHE.values())


def session_options(threads: int):
    """Session options shared by every plugin: full graph optimisation, explicit threads, no spinning."""
    ort = _ort()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spinning worker threads burn a core waiting for work and stole 2-3x from the GUI and the prefetch
    # thread on a 2-core machine; latency is unchanged without it at intra_op_threads=1.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 2  # warnings and up, captured into our log (guards.ort_log_captured)
    return opts


def warmup_shape(spec: PluginSpec, info: InputInfo) -> list[int]:
    """A representative input shape: fixed dims as declared, dynamic ones from the manifest or 64."""
    m = spec.input.multiple_of
    if spec.input.is_volumetric:
        if spec.input.resize == "tile" and spec.input.tile is not None:
            d, h, w = spec.input.tile.dhw
        elif spec.input.size is not None:
            d, h, w = spec.input.size
        else:
            d = h = w = max(16, m)
        d, h, w = (fix or -(-v // m) * m for fix, v in zip((info.depth, info.height, info.width), (d, h, w)))
        c = info.channels or spec.input.channels
        return [1, c, d, h, w] if info.layout == "NCDHW" else [1, d, h, w, c]
    if spec.input.resize == "tile" and spec.input.tile is not None:
        h, w = spec.input.tile.hw
    elif spec.input.size is not None:
        h, w = spec.input.size
    else:
        h = w = max(64, m)
    h, w = info.height or -(-h // m) * m, info.width or -(-w // m) * m
    c = info.channels or spec.input.channels
    return [1, c, h, w] if info.layout == "NCHW" else [1, h, w, c]


def get_session(spec: PluginSpec, provider: str = "auto", settings: Settings | None = None, *,
                warmup: bool = True) -> LoadedModel:
    """The (cached) session of a plugin, created on first use.

    Order: sha256 verified, providers resolved, session created, graph compared with the manifest,
    one warm-up run.

    Parameters
    ----------
    spec : PluginSpec
    provider : {"auto", "cpu", "cuda"}
    settings : Settings, optional
        ``intra_op_threads`` comes from here (default: the saved settings).
    warmup : bool
        Run once on zeros so the first real image does not pay for allocation and kernel selection.

    Raises
    ------
    PluginError
        Checksum mismatch, model cannot be loaded (custom op, corrupt file), graph/manifest mismatch.
    InferenceError
        The warm-up run failed.
    """
    settings = settings if settings is not None else load_settings()
    threads = settings.intra_op_threads
    providers = gpu.apply_provider_policy(
        resolve_providers(spec.runtime.providers, provider, tuple(settings.extra_providers)), provider, settings)
    key = (str(spec.model_path), spec.model.sha256, tuple(providers), threads, spec.input.model_dump_json(),
           spec.output.name, spec.output.boxes, spec.output.scores, settings.inference_time_limit_s)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
        verify_sha256(spec)  # before any session exists: a tampered file never gets loaded
        t0 = time.perf_counter()
        try:
            with ort_log_captured():  # ORT's own (coloured) lines into our log, not before our message
                session = gpu.create_session(str(spec.model_path), session_options(threads), providers, settings)
        except _ort_errors() as exc:
            raise spec.error("model.file", _load_message(spec, exc)) from exc
        if hasattr(session, "disable_fallback"):
            session.disable_fallback()  # a failing run raises; no silent provider switch printed to stdout
        gpu.check_requested(provider, session.get_providers()[0])
        session = bind_on_device(session)  # CUDA: tiles/slices reuse device buffers (inference/iobinding.py)
        try:
            check_output_types(spec, session)
            info, names, shapes = check_graph(spec, session)
            meta = session.get_modelmeta()
            metadata = {"producer": meta.producer_name, "graph": meta.graph_name, "version": str(meta.version),
                        **dict(meta.custom_metadata_map)}
        except UnicodeDecodeError as exc:  # names or metadata that are not UTF-8 (a corrupt or forged file)
            raise spec.error("model.file", f"{spec.model.file} holds names or metadata that are not UTF-8 "
                                           f"({exc.reason} at byte {exc.start})") from exc
        model = LoadedModel(spec=spec, session=session, provider=session.get_providers()[0],
                            providers=list(session.get_providers()), input=info, output_names=names,
                            output_shapes=shapes, metadata=metadata,
                            constants=constant_tensors(spec, session.get_inputs()),
                            time_limit_s=float(settings.inference_time_limit_s))
        if warmup:
            model.run(np.zeros(warmup_shape(spec, info), dtype=info.dtype))
        model.load_ms = (time.perf_counter() - t0) * 1000.0
        _CACHE[key] = model
        while len(_CACHE) > MAX_CACHED_SESSIONS:
            _CACHE.popitem(last=False)
        return model


def _load_message(spec: PluginSpec, exc: BaseException) -> str:
    text = _fold(exc)
    op = re.search(r"Op type not registered '([^']+)'.*?domain[: ]+'?([\w.]+)'?", text)
    if op is None:
        op = re.search(r"\(\s*\"[^\"]*\",\s*(\w+),\s*\"([\w.]+)\"", text)
    if op is not None or "domain" in text.lower() and "not" in text.lower():
        what = f"operator {op.group(1)!r} of domain {op.group(2)!r}" if op else "an operator domain"
        return (f"{spec.model.file} uses {what} that this ONNX Runtime does not provide (a custom op); "
                f"re-export the model with standard ONNX operators ({text})")
    return f"cannot load {spec.model.file}: {text}"
