"""Reading an ONNX graph for the importer: inputs, outputs and exporter metadata through ONNX Runtime.

Only ``session.get_inputs()/get_outputs()/get_modelmeta()`` are read (DESIGN section 2): ``onnx.load`` of a
whole model would double the memory, and old exporters list their initializers as graph inputs as well.
The same CPU session also runs the probes (small sizes, the sample) the guessing rules need.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...core.errors import PluginError
from ..session import _ORT_TYPES, _fold, _ort, _ort_errors


class ImportRefused(PluginError):
    """The model cannot be imported (not ONNX, cannot load, custom op, no task fits)."""


@dataclass
class TensorInfo:
    """One graph input or output: declared shape (``None`` = dynamic), ORT type and numpy dtype."""

    name: str
    shape: list[int | None]
    declared: list[Any]
    type: str
    dtype: np.dtype | None

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass
class Graph:
    """An opened model: its CPU session, tensors and metadata."""

    path: Path
    session: Any
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    producer: str = ""
    graph_name: str = ""
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def run(self, input_name: str, tensor: np.ndarray) -> dict[str, np.ndarray]:
        """Run on one tensor; outputs by name (errors are left to the caller: probes expect some)."""
        outs = self.session.run(None, {input_name: tensor})
        return {name: np.asarray(a) for name, a in zip(self.output_names, outs)}

    def try_run(self, input_name: str, tensor: np.ndarray) -> dict[str, np.ndarray] | None:
        """:meth:`run`, or ``None`` when the graph refuses the tensor (a shape it cannot take)."""
        ort = _ort()
        opts = ort.RunOptions()
        opts.log_severity_level = 4  # a refused probe is expected: do not log it as an error
        try:
            outs = self.session.run(None, {input_name: tensor}, opts)
        except _ort_errors():
            return None
        return {name: np.asarray(a) for name, a in zip(self.output_names, outs)}


def _dim(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, np.integer)) and value > 0 else None


def _tensor(node: Any) -> TensorInfo:
    shape = list(node.shape) if node.shape is not None else []
    dtype = _ORT_TYPES.get(node.type)
    return TensorInfo(node.name, [_dim(d) for d in shape], shape, node.type,
                      np.dtype(dtype) if dtype is not None else None)


def open_graph(path: str | Path) -> Graph:
    """Open a model on the CPU for importing.

    Raises
    ------
    ImportRefused
        Not a file, not an ONNX file, an operator of a custom domain, or any other load failure; one
        line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ImportRefused("model file not found", path=path)
    ort = _ort()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except _ort_errors() as exc:
        raise ImportRefused(_load_refusal(exc), path=path) from exc
    meta = session.get_modelmeta()
    return Graph(path=path, session=session, inputs=[_tensor(i) for i in session.get_inputs()],
                 outputs=[_tensor(o) for o in session.get_outputs()], producer=meta.producer_name or "",
                 graph_name=meta.graph_name or "", description=meta.description or "",
                 metadata=dict(meta.custom_metadata_map))


def _load_refusal(exc: BaseException) -> str:
    text = _fold(exc)
    if "INVALID_PROTOBUF" in str(exc) or "Protobuf parsing failed" in text:
        return "not an ONNX file (protobuf parsing failed); export the model to ONNX first"
    op = (re.search(r"([\w.]+):(\w+)\(-?\d+\) is not a registered function/op", text)
          or re.search(r"Op type not registered '(\w+)'.*?domain[: ]+'?([\w.]*)'?", text))
    if op is not None:
        domain, name = (op.group(1), op.group(2)) if "registered function/op" in op.group(0) else \
            (op.group(2), op.group(1))
        return (f"uses operator {name!r} of the custom-op domain {domain!r}, which this ONNX Runtime does not "
                "provide; re-export the model with standard ONNX operators")
    return f"cannot load the graph: {text}"
