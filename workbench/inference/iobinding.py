"""Runs through ONNX Runtime's IO binding, so tiles and slices of one image reuse device buffers.

``session.run(names, feeds)`` on CUDA copies the input to the GPU, allocates every output on the GPU,
copies it back and frees it, per call. A tiled restoration of a 4k image is hundreds of calls with the
same shapes: :class:`BoundSession` keeps the input buffers and the output buffers on the device, writes
each tile into the input buffer in place (``OrtValue.update_inplace``) and binds the previous outputs
again, so the only traffic left is the tile in and its result out.

It is a drop-in for the session (``run(names, feeds, run_options)``, every other attribute delegated), so
:class:`~workbench.inference.session.LoadedModel` and everything above it are unchanged:
:func:`bind_on_device` wraps CUDA sessions only. On CPU it binds CPU memory -- same results, no gain --
which is how the tests check it against plain ``session.run``.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np

from . import gpu


def _device_of(session) -> tuple[str, int]:
    """ORT's memory location of the session's first provider: ("cuda", id) or ("cpu", 0)."""
    provider = session.get_providers()[0]
    if provider not in (gpu.CUDA, gpu.TENSORRT):
        return "cpu", 0
    try:
        opts = session.get_provider_options().get(provider, {})
        return "cuda", int(opts.get("device_id", 0))
    except (AttributeError, ValueError, TypeError):
        return "cuda", 0


class BoundSession:
    """An ``InferenceSession`` whose ``run`` goes through one reused IO binding.

    Parameters
    ----------
    session : onnxruntime.InferenceSession
    device : ("cpu" | "cuda", int), optional
        Where the buffers live; default: the session's first provider's device.
    """

    def __init__(self, session, device: tuple[str, int] | None = None) -> None:
        self._session = session
        self.device, self.device_id = device or _device_of(session)
        self._binding = session.io_binding()
        self._inputs: dict[str, tuple[tuple, Any]] = {}  # name -> ((shape, dtype), device OrtValue)
        self._outputs: tuple[tuple, list] | None = None  # (names, inputs' key) -> device OrtValues to reuse
        self._lock = threading.Lock()  # one binding: runs of this session are serialised
        self.runs = 0
        self.reused = 0  # runs whose input and output buffers were all reused (tests, benchmarks)

    def __getattr__(self, name):
        return getattr(self._session, name)

    def _bind_inputs(self, feeds: dict[str, np.ndarray]) -> tuple[tuple, bool]:
        import onnxruntime as ort

        reused = True
        for name, value in feeds.items():
            arr = np.ascontiguousarray(value)
            key = (arr.shape, arr.dtype.str)
            held = self._inputs.get(name)
            if held is not None and held[0] == key:
                held[1].update_inplace(arr)
                continue
            reused = False
            ortvalue = ort.OrtValue.ortvalue_from_numpy(arr, self.device, self.device_id)
            self._inputs[name] = (key, ortvalue)
            self._binding.bind_ortvalue_input(name, ortvalue)
        return tuple(sorted((n, k) for n, (k, _) in self._inputs.items() if n in feeds)), reused

    def run(self, output_names, input_feed, run_options=None) -> list[np.ndarray]:
        """``InferenceSession.run`` through the binding: host copies of the outputs, in ``output_names``
        order (all outputs when None)."""
        names = list(output_names) if output_names else [o.name for o in self._session.get_outputs()]
        with self._lock:
            key, reused = self._bind_inputs(input_feed)
            state = (tuple(names), key)
            if self._outputs is not None and self._outputs[0] == state:
                for name, value in zip(names, self._outputs[1]):
                    self._binding.bind_ortvalue_output(name, value)
            else:
                reused = False
                self._binding.clear_binding_outputs()
                for name in names:
                    self._binding.bind_output(name, self.device, self.device_id)
            self._binding.synchronize_inputs()
            if run_options is None:
                self._session.run_with_iobinding(self._binding)
            else:
                self._session.run_with_iobinding(self._binding, run_options)
            self._binding.synchronize_outputs()
            values = self._binding.get_outputs()
            # same shapes next time (the next tile): ORT writes into these device buffers again
            self._outputs = (state, list(values))
            self.runs += 1
            self.reused += int(reused)
            # on CPU numpy() is a view of the buffer the next run overwrites: copy
            return [v.numpy().copy() if self.device == "cpu" else v.numpy() for v in values]


def bind_on_device(session):
    """``session`` wrapped in a :class:`BoundSession` when it runs on a GPU; unchanged otherwise."""
    if session.get_providers()[0] in (gpu.CUDA, gpu.TENSORRT):
        return BoundSession(session)
    return session
