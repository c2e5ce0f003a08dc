"""Input rules of the importer and the runs it makes on the CPU: layout, colour count, size, the
``multiple_of`` a dynamic graph needs, dtype, and the tensors of the sample through the real preprocessing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from pydantic import ValidationError

from ...core.errors import PluginError
from ...core.image import ImageVolume
from ...core.settings import Settings
from ..decoders import decoder_for
from ..preprocess import PreparedPlane, prepare_plane
from ..run import Engine
from ..session import LoadedModel, check_graph
from ..spec import InputSpec, PluginSpec, _check_task, _format_validation
from .graph import Graph, ImportRefused, TensorInfo

DTYPES = {"float32", "float16", "uint8", "int8", "int32", "int64", "float64"}
PROBE_MULTIPLES = (1, 2, 4, 8, 16, 32, 64, 128)
DYNAMIC_PROBE = 128  # side of the synthetic probe image for a dynamic graph without a sample


def supports_volumes() -> bool:
    """Whether this engine's contract knows the volumetric ``NCDHW`` layout (DESIGN section 2 additions)."""
    args = getattr(InputSpec.model_fields["layout"].annotation, "__args__", ())
    return "NCDHW" in args


def supports_standardize() -> bool:
    """Whether ``input.intensity.standardize`` (per-image z-score) is part of this engine's contract."""
    from ..spec import IntensitySpec

    return "standardize" in IntensitySpec.model_fields


@dataclass
class InputGuess:
    """What the graph says about its image input."""

    tensor: TensorInfo
    layout: str
    channels: int
    height: int | None
    width: int | None
    dtype: str
    layout_why: str
    layout_weak: bool
    multiple_of: int = 1
    multiple_why: str = ""

    @property
    def fixed(self) -> bool:
        return self.height is not None and self.width is not None

    @property
    def fixed_size(self) -> list[int] | None:
        """``[height, width]`` when the graph fixes both, else None."""
        return [self.height, self.width] if self.height is not None and self.width is not None else None

    def shape(self, h: int, w: int) -> list[int]:
        c = self.channels
        return [1, c, h, w] if self.layout == "NCHW" else [1, h, w, c]


def pick_input(graph: Graph) -> TensorInfo:
    """The image input: the only input, or the only 4-D (5-D) one.

    Raises
    ------
    ImportRefused
        No image-like input, or several (extra inputs need values this importer cannot guess).
    """
    images = [t for t in graph.inputs if t.rank in (4, 5)]
    if len(graph.inputs) == 1 and images:
        return images[0]
    names = ", ".join(f"{t.name!r} {t.declared}" for t in graph.inputs)
    if not images:
        raise ImportRefused(f"no image input: inputs are {names}; a 4-D tensor (NCHW or NHWC) is expected",
                            path=graph.path)
    raise ImportRefused(f"{len(graph.inputs)} inputs ({names}); only models with one image input can be "
                        "imported (extra inputs need values that cannot be guessed)", path=graph.path)


def guess_input(graph: Graph, tensor: TensorInfo) -> InputGuess:
    """Layout, channel count, fixed size and dtype from the declared input shape.

    Raises
    ------
    ImportRefused
        A 5-D input (3-D models: :func:`~.volume3d.guess_volume_input`), a channel count other than 1
        or 3, or a dtype no image maps to.
    """
    shape = tensor.shape
    if tensor.rank == 5:  # propose() sends volumetric graphs to .propose3d
        raise ImportRefused(f"input {tensor.name!r} {tensor.declared} is volumetric (5-D): see "
                            "importer.volume3d.guess_volume_input", path=graph.path)
    dtype = tensor.dtype.name if tensor.dtype is not None else None
    if dtype not in DTYPES:
        raise ImportRefused(f"input {tensor.name!r} has type {tensor.type}, not an image tensor", path=graph.path)
    d1, d3 = shape[1], shape[3]
    if d1 in (1, 3) and d3 not in (1, 3):
        layout, c, why, weak = "NCHW", d1, f"dim 1 is {d1} (channels first)", False
    elif d3 in (1, 3) and d1 not in (1, 3):
        layout, c, why, weak = "NHWC", d3, f"dim 3 is {d3} (channels last)", False
    elif d1 in (1, 3) and d3 in (1, 3):
        layout, c, why, weak = "NCHW", d1, f"dims 1 and 3 are both {d1}/{d3}; channels first assumed", True
    elif d1 is None and d3 is None:
        layout, c, why, weak = "NCHW", 3, "channel dim is dynamic; NCHW with 3 channels assumed", True
    else:
        found = d1 if d1 is not None and (d3 is None or d1 < d3) else d3
        raise ImportRefused(f"input {tensor.name!r} {tensor.declared}: {found} channels; images give 1 (gray) or "
                            "3 (RGB/BGR) channels", path=graph.path)
    h, w = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
    return InputGuess(tensor, layout, int(c), h, w, dtype, why, weak)


def _probe_side(m: int, minimum: int = 40) -> int:
    """A side that is a multiple of ``m`` but not of ``2 m``, at least ``minimum`` pixels (small: a CPU probe;
    the 3-D importer asks 16 voxels, a 3-D net's probe stays small)."""
    k = 1
    while m * k < minimum:
        k += 2
    return m * k


def probe_multiple(graph: Graph, inp: InputGuess) -> None:
    """Find the smallest ``multiple_of`` a dynamic graph runs with; sets ``inp.multiple_of``.

    Each candidate ``m`` is tried at a height and a width that are multiples of ``m`` but not of ``2 m``
    (a U-Net with k poolings fails below ``m = 2**k``; a graph reshaping into blocks fails likewise).

    Raises
    ------
    ImportRefused
        No probed size runs.
    """
    if inp.fixed:
        return
    first_running_multiple(graph, inp, PROBE_MULTIPLES, "size",
                           lambda m: [inp.height or _probe_side(m), inp.width or _probe_side(m) + 2 * m])


def first_running_multiple(graph: Graph, inp: Any, multiples: tuple[int, ...], what: str,
                           probe_dims: Callable[[int], list[int]]) -> None:
    """Set ``inp.multiple_of`` (and ``inp.multiple_why``) to the first of ``multiples`` whose probe
    (``inp.shape(*probe_dims(m))``, zeros of the input's dtype) the graph runs; shared by the 2-D and the 3-D
    importer, whose probe sizes differ.

    Raises
    ------
    ImportRefused
        No probed size runs (``what`` names the kind of size in the message).
    """
    dtype = np.dtype(inp.dtype)
    for m in multiples:
        dims = probe_dims(m)
        if graph.try_run(inp.tensor.name, np.zeros(inp.shape(*dims), dtype=dtype)) is not None:
            inp.multiple_of = m
            inp.multiple_why = (f"dynamic dims; runs at {'x'.join(map(str, dims))}"
                                + (f", fails at sizes not a multiple of {m}" if m > 1 else ""))
            return
    raise ImportRefused(f"input {inp.tensor.name!r} {inp.tensor.declared}: the graph runs at no probed {what} "
                        f"(multiples of {', '.join(map(str, multiples))})", path=graph.path)


def synthetic_image(h: int, w: int, channels: int) -> ImageVolume:
    """A smooth uint8 test pattern with structure (and different channels) when no sample is given."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = (np.sin(xx / 7.0) + np.cos(yy / 5.0) + 2.0) * 63.0
    if channels == 1:
        return ImageVolume(base.astype(np.uint8))
    planes = [base, np.roll(base, w // 3, axis=1), 255.0 - base]
    return ImageVolume(np.stack(planes, axis=2).astype(np.uint8)[None])


def spec_from_manifest(manifest: dict[str, Any], folder: Any = None) -> PluginSpec:
    """A validated in-memory :class:`PluginSpec` (no file checks: the model may not be copied yet)."""
    try:
        spec = PluginSpec.model_validate(manifest)
    except ValidationError as exc:
        raise PluginError(_format_validation(exc), path="plugin.yaml") from exc
    if folder is not None:
        spec._folder = folder
    _check_task(spec)
    return spec


def probe_manifest(inp_fields: dict[str, Any], task: str = "restoration", output: dict | None = None
                   ) -> dict[str, Any]:
    return {"schema_version": 1, "id": "import-probe", "name": "import probe", "version": "0", "task": task,
            "model": {"file": "model.onnx", "sha256": "0" * 64}, "input": inp_fields,
            "output": output or ({"format": "yolov8"} if task == "detection" else {})}


def prepare(spec: PluginSpec, inp: InputGuess, image: ImageVolume) -> PreparedPlane:
    """The middle slice of ``image`` through the engine's own preprocessing for ``spec``."""
    return prepare_plane(spec, image, image.n_slices // 2, graph_hw=(inp.height, inp.width),
                         dtype=np.dtype(inp.dtype))


def engine_for(spec: PluginSpec, graph: Graph, settings: Settings | None = None) -> Engine:
    """An :class:`Engine` for an in-memory spec that reuses the importer's session.

    The GUI preview and the candidate ranking run many specs of one model; creating a session per
    candidate (what ``Engine(spec)`` does, keyed by the input fields) would reload the model each time.
    """
    settings = settings if settings is not None else Settings()
    info, names, shapes = check_graph(spec, graph.session)
    engine = Engine.__new__(Engine)
    engine.settings = settings
    engine.spec = spec
    engine.decoder = decoder_for(spec, settings)
    engine.model = LoadedModel(spec=spec, session=graph.session, provider="CPUExecutionProvider",
                               providers=["CPUExecutionProvider"], input=info, output_names=names,
                               output_shapes=shapes, metadata=dict(graph.metadata))
    return engine
