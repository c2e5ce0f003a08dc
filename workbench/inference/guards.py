"""Bounds around ONNX Runtime: a time limit per run, local providers only, numeric outputs only, ORT's own
log into ours, and the files a graph loads (external data) listed without loading the model.

Why each:

* A graph may loop for ever (a ``Loop`` node with a trip count of 1e15): every ``session.run`` gets a
  :class:`onnxruntime.RunOptions` whose ``terminate`` flag one watchdog thread sets after
  ``Settings.inference_time_limit_s``; ORT checks it between nodes (also inside Loop bodies) and the run
  ends with one clear :class:`~workbench.core.errors.InferenceError`.
* ``runtime.providers`` is the plugin author's wish list; some onnxruntime builds ship remote providers
  (``AzureExecutionProvider`` sends the tensors to a web service). Only the local ones in
  :data:`LOCAL_PROVIDERS`, plus what the user allows in ``Settings.extra_providers``, are ever asked for.
* String, sequence and map outputs cannot be decoded into masks or scores; refused when the session is
  made, naming the plugin file.
* ORT prints its load errors and warnings (in colour) straight to file descriptor 2, before our one-line
  message; during session creation fd 2 is pointed at a temporary file whose text goes to our log.
"""
from __future__ import annotations

import logging
import mmap
import os
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..core.errors import InferenceError

log = logging.getLogger("workbench.inference")

#: execution providers that run on this machine (ONNX Runtime's names)
LOCAL_PROVIDERS = ("CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider",
                   "DmlExecutionProvider", "CoreMLExecutionProvider", "OpenVINOExecutionProvider",
                   "ROCMExecutionProvider", "MIGraphXExecutionProvider")


def allowed_providers(requested: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
    """``requested`` without the providers that are neither local nor allowed by the user (logged)."""
    allowed = set(LOCAL_PROVIDERS) | set(extra)
    kept = []
    for name in requested:
        if name in allowed:
            kept.append(name)
        else:
            log.warning("provider %s is not a local execution provider; not used (settings: extra_providers)",
                        name)
    return kept


def tensor_budget() -> int:
    """Bytes one model tensor may take: half the physical memory (8 GiB where it cannot be read)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = 16 << 30
    return int(total // 2)


# -- time limit ---------------------------------------------------------------------------------------
class _Watchdog:
    """One daemon thread that sets ``RunOptions.terminate`` on runs past their deadline.

    A :class:`threading.Timer` per run costs a thread start each ``session.run`` (0.05-4 ms on a busy
    machine: the caller waits until the new thread is scheduled), which 3-D tiling pays per tile. Arming
    and disarming here is a dict update under a lock; the thread only wakes up when a deadline falls
    due (or an earlier one is armed).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._runs: dict[int, tuple[float, object, threading.Event]] = {}
        self._next = 0
        self._wake = float("inf")  # the deadline the thread sleeps towards
        self._thread: threading.Thread | None = None

    def arm(self, options, limit_s: float) -> tuple[int, threading.Event]:
        expired = threading.Event()
        deadline = time.monotonic() + float(limit_s)
        with self._cond:
            self._next += 1
            self._runs[self._next] = (deadline, options, expired)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="ort-time-limit", daemon=True)
                self._thread.start()
            elif deadline < self._wake:
                self._cond.notify()
            return self._next, expired

    def disarm(self, token: int) -> None:
        with self._cond:
            self._runs.pop(token, None)

    def _loop(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for token, (deadline, options, expired) in list(self._runs.items()):
                    if deadline <= now:
                        expired.set()
                        options.terminate = True  # type: ignore[attr-defined]
                        del self._runs[token]
                self._wake = min((r[0] for r in self._runs.values()), default=now + 3600.0)
                self._cond.wait(max(0.0, self._wake - now))


_WATCHDOG = _Watchdog()


def _takes_run_options(session: Any) -> bool:
    """Whether ``session`` is ONNX Runtime's own or our GPU wrapper (which take ``RunOptions``), not a
    wrapper or a test double."""
    import onnxruntime as ort

    from .iobinding import BoundSession

    real = getattr(ort, "InferenceSession", None)
    return (isinstance(real, type) and isinstance(session, real)) or isinstance(session, BoundSession)


def run_with_limit(session: Any, names: list[str] | None, feeds: dict, *, limit_s: float, what: str):
    """``session.run(names, feeds)`` cancelled after ``limit_s`` seconds (0: no limit).

    Raises
    ------
    InferenceError
        The limit expired (the run was terminated). Other ORT errors pass through unchanged.
    """
    import onnxruntime as ort

    if not _takes_run_options(session):
        return session.run(names, feeds)  # a wrapper or a test double: run as it is
    options = ort.RunOptions()
    options.log_severity_level = 4  # our own message says what failed; ORT's line would precede it
    if not limit_s or limit_s <= 0:
        return session.run(names, feeds, options)
    token, expired = _WATCHDOG.arm(options, limit_s)
    try:
        return session.run(names, feeds, options)
    except Exception as exc:
        if expired.is_set():
            raise InferenceError(f"the model run exceeded the time limit of {limit_s:g} s and was cancelled "
                                 "(settings: inference_time_limit_s)", path=what) from exc
        raise
    finally:
        _WATCHDOG.disarm(token)


# -- outputs ---------------------------------------------------------------------------------------
def check_output_types(spec, session) -> None:
    """Refuse graphs with string / sequence / map outputs (no decoder can make a mask or scores of them).

    Raises
    ------
    PluginError
    """
    for node in session.get_outputs():
        kind = str(node.type)
        if not kind.startswith("tensor("):
            raise spec.error("model.file", f"graph output {node.name!r} is a {kind}, not a numeric tensor")
        if kind == "tensor(string)":
            raise spec.error("model.file", f"graph output {node.name!r} is a tensor of strings, not numbers")


def check_array(name: str, arr, what: str) -> None:
    """Refuse an output array of strings or objects (a graph whose declared type lied)."""
    if getattr(arr, "dtype", None) is None or arr.dtype.kind in "OUSV":
        kind = getattr(arr, "dtype", type(arr).__name__)
        raise InferenceError(f"output {name!r} is of type {kind}, not a numeric tensor", path=what)


# -- ORT's own log ---------------------------------------------------------------------------------
@contextmanager
def ort_log_captured() -> Iterator[None]:
    """Point fd 2 at a temporary file while ONNX Runtime creates a session; its text goes to our log.

    Only the file descriptor is redirected (Python's ``sys.stderr`` object is untouched), only for the
    duration of session creation, and only when fd 2 exists."""
    import contextlib
    import io

    printed = io.StringIO()  # onnxruntime's Python side print()s "EP Error ... Falling back" to stdout
    try:
        saved = os.dup(2)
    except OSError:
        with contextlib.redirect_stdout(printed):
            yield
        _log_text(printed.getvalue())
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            with contextlib.redirect_stdout(printed):
                yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            _log_text(tmp.read(1 << 16).decode("utf-8", "replace") + "\n" + printed.getvalue())


def _log_text(text: str) -> None:
    for line in text.splitlines():
        if line.strip():
            log.warning("onnxruntime: %s", _strip_ansi(line))


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


# -- external data ---------------------------------------------------------------------------------
# Protocol-buffer field numbers (onnx.proto3) on the path to a TensorProto's external_data entries.
_MODEL_GRAPH, _MODEL_FUNCTIONS = 7, 25
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE = 1, 5, 15
_NODE_ATTRIBUTE = 5
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_EXTERNAL, _TENSOR_LOCATION = 13, 14
_FUNCTION_NODE = 7


class _Wire:
    """Just enough of the protobuf wire format to walk length-delimited fields without decoding them."""

    def __init__(self, buf) -> None:
        self.buf = buf

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        value = shift = 0
        while pos < end:
            byte = self.buf[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value, pos
            shift += 7
            if shift > 63:
                break
        raise ValueError("bad varint")

    def fields(self, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
        """(field number, wire type, value start, value end or varint value) of a message's fields."""
        pos = start
        while pos < end:
            key, pos = self.varint(pos, end)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, pos = self.varint(pos, end)
                yield number, wire, value, value
            elif wire == 1:
                pos += 8
            elif wire == 2:
                length, pos = self.varint(pos, end)
                if pos + length > end:
                    raise ValueError("truncated field")
                yield number, wire, pos, pos + length
                pos += length
            elif wire == 5:
                pos += 4
            else:
                raise ValueError(f"unsupported wire type {wire}")


def external_data_files(model_path: str | Path) -> list[str]:
    """The external-data file names a model's tensors refer to (``location`` entries), in order of first
    use, read from the protobuf without loading the tensors (the file is memory-mapped and walked).

    Raises
    ------
    ValueError
        The file is not a readable ONNX protobuf.
    """
    path = Path(model_path)
    if path.stat().st_size == 0:
        return []
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        if mm.find(b"location") < 0:  # the key of every external-data entry: absent, nothing to walk
            return []
        wire = _Wire(mm)
        found: dict[str, None] = {}

        def tensor(start: int, end: int) -> None:
            for number, wt, a, b in wire.fields(start, end):
                if number == _TENSOR_EXTERNAL and wt == 2:
                    key = value = None
                    for n2, w2, c, d in wire.fields(a, b):
                        if n2 == 1 and w2 == 2:
                            key = bytes(mm[c:d]).decode("utf-8", "replace")
                        elif n2 == 2 and w2 == 2:
                            value = bytes(mm[c:d]).decode("utf-8", "replace")
                    if key == "location" and value:
                        found.setdefault(value, None)

        def sparse(start: int, end: int) -> None:
            for number, wt, a, b in wire.fields(start, end):
                if number in (_SPARSE_VALUES, _SPARSE_INDICES) and wt == 2:
                    tensor(a, b)

        def node(start: int, end: int, depth: int) -> None:
            for number, wt, a, b in wire.fields(start, end):
                if number != _NODE_ATTRIBUTE or wt != 2:
                    continue
                for n2, w2, c, d in wire.fields(a, b):
                    if w2 != 2:
                        continue
                    if n2 in (_ATTR_T, _ATTR_TENSORS):
                        tensor(c, d)
                    elif n2 in (_ATTR_G, _ATTR_GRAPHS):
                        graph(c, d, depth + 1)
                    elif n2 in (_ATTR_SPARSE, _ATTR_SPARSES):
                        sparse(c, d)

        def graph(start: int, end: int, depth: int) -> None:
            if depth > 64:
                raise ValueError("subgraphs nested deeper than 64")
            for number, wt, a, b in wire.fields(start, end):
                if wt != 2:
                    continue
                if number == _GRAPH_INITIALIZER:
                    tensor(a, b)
                elif number == _GRAPH_SPARSE:
                    sparse(a, b)
                elif number == _GRAPH_NODE:
                    node(a, b, depth)

        for number, wt, a, b in wire.fields(0, len(mm)):
            if number == _MODEL_GRAPH and wt == 2:
                graph(a, b, 0)
            elif number == _MODEL_FUNCTIONS and wt == 2:
                for n2, w2, c, d in wire.fields(a, b):
                    if n2 == _FUNCTION_NODE and w2 == 2:
                        node(c, d, 0)
        return list(found)
