"""ONNX export, plugin folder writing and small training utilities shared by the bundled models."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import yaml

from .data import REPO

OPSET = 17
MAX_ONNX_BYTES = 10 * 1024 * 1024


def plugin_dir(plugin_id: str) -> Path:
    d = REPO / "plugins" / plugin_id
    d.mkdir(parents=True, exist_ok=True)
    return d


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_onnx(model, example, path: Path, *, dynamic_hw: bool, output_names=("output",)) -> str:
    """Export ``model`` (eval mode, float32) to ``path`` with opset 17; returns the file's sha256.

    Uses the TorchScript exporter (``dynamo=False``): it needs no onnxscript and gives plain, small graphs.
    The exported graph is checked with onnx.checker and must stay under 10 MB.
    """
    import onnx
    import torch

    model = model.eval().float()
    dyn = None
    if dynamic_hw:
        dyn = {"input": {2: "height", 3: "width"}}
        for n in output_names:
            dyn[n] = {}
    with torch.no_grad():
        torch.onnx.export(
            model, (example,), str(path), opset_version=OPSET, dynamo=False,
            input_names=["input"], output_names=list(output_names), dynamic_axes=dyn,
        )
    onnx.checker.check_model(onnx.load(str(path)))
    size = path.stat().st_size
    if size > MAX_ONNX_BYTES:
        raise RuntimeError(f"{path}: {size} bytes exceeds the 10 MB limit of bundled models")
    return sha256_file(path)


def plugin_spec(plugin_id: str, version: str, sha: str, *, name: str, task: str, description: str,
                input_spec: dict, output_spec: dict, meta: dict, retrain: str, license: str = "MIT") -> dict:
    """A bundled model's plugin.yaml (schema_version 1) in the contract's key order: what every bundled plugin
    shares around the model's own name, task, input, output and ``meta`` entries (training data, metrics,
    latency); ``retrain`` is the training module (``models.<name>.train``)."""
    return {
        "schema_version": 1,
        "id": plugin_id,
        "name": name,
        "version": version,
        "task": task,
        "description": description,
        "model": {"file": "model.onnx", "sha256": sha},
        "input": input_spec,
        "output": output_spec,
        "sample": "sample.png",
        "runtime": {"providers": ["CUDAExecutionProvider", "DmlExecutionProvider", "CPUExecutionProvider"]},
        "meta": {"license": license, "authors": ["Workbench contributors"],
                 "intended_use": "research; not for diagnosis", **meta, "retrain": f"python -m {retrain}"},
    }


def write_plugin_yaml(folder: Path, spec: dict) -> Path:
    """Write ``plugin.yaml`` in the key order given (schema_version first)."""
    path = folder / "plugin.yaml"
    text = yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=110, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return path


def ort_session(path: Path):
    """A one-thread CPU onnxruntime session (the latency the model cards quote)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def time_ms(fn, repeats: int = 5) -> float:
    """Median wall time of ``fn()`` in ms after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000.0)
    return float(np.median(times))


def onnx_latency_ms(path: Path, x: np.ndarray) -> float:
    """Median one-thread CPU latency of ``path`` on the input ``x``, in ms to one decimal (the model cards'
    figure)."""
    sess = ort_session(path)
    return round(time_ms(lambda: sess.run(None, {"input": x})), 1)


class Budget:
    """A wall-clock training budget: ``while budget.left(): ...``."""

    def __init__(self, minutes: float):
        self.start = time.perf_counter()
        self.seconds = minutes * 60.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def fraction(self) -> float:
        return min(1.0, self.elapsed() / self.seconds)

    def left(self) -> bool:
        return self.elapsed() < self.seconds
