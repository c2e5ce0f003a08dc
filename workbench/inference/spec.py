"""The plugin contract (``plugin.yaml``, schema_version 1) as pydantic models, and its loader.

Field names are a public interface (docs/PLUGINS.md, DESIGN.md section 2): fields may be added, never
renamed. Unknown keys are refused (a typo such as ``mutiple_of`` would otherwise be silently ignored, the
classic source of "my model gives garbage" reports), except inside the free-form ``meta`` and
``output.params`` blocks.

Every error is a :class:`~workbench.core.errors.PluginError` whose one-line message names the YAML file
and the dotted field: ``plugins/x/plugin.yaml: input.size: graph expects [240, 320]``.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from ..core.errors import PluginError
from ..io.folders import require_regular
from ..io.safe_yaml import safe_load
from .expects import expects_of
from .promptable.contract import PromptSpec, check_prompt_spec

SCHEMA_VERSION = 1
MANIFEST_NAME = "plugin.yaml"
TASKS = ("classification", "segmentation", "detection", "restoration", "promptable", "embedding")
DETECTION_FORMATS = ("yolov8", "yolov5", "yolox", "boxes_scores")
SAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".nii", ".nii.gz", ".npy")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ModelFile(_Strict):
    """``model:`` the ONNX file and its checksum."""

    file: str = Field(min_length=1)
    sha256: str
    # ONNX external-data files the graph loads (relative name -> sha256); required when the graph has any
    external_data: dict[str, str] = Field(default_factory=dict)

    @field_validator("external_data")
    @classmethod
    def _hex64_each(cls, value: dict[str, str]) -> dict[str, str]:
        out = {}
        for name, digest in value.items():
            digest = str(digest).strip().lower()
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ValueError(f"{name}: must be the 64 hex digits of the file's SHA-256")
            out[name] = digest
        return out

    @field_validator("sha256")
    @classmethod
    def _hex64(cls, value: str) -> str:
        value = value.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{64}", value):
            raise ValueError("must be the 64 hex digits of the model file's SHA-256")
        return value


class TileSpec(_Strict):
    """``input.tile:`` tile size and overlap (pixels of the model input).

    2-D models: ``size`` is one int or ``[height, width]``, ``overlap`` one int. 3-D models (wave 2):
    ``size`` is one int or ``[depth, height, width]``, ``overlap`` one int or three.
    """

    size: int | list[int] = 256
    overlap: int | list[int] = 32

    @property
    def hw(self) -> tuple[int, int]:
        if isinstance(self.size, int):
            return (self.size, self.size)
        return (int(self.size[-2]), int(self.size[-1]))

    @field_validator("size")
    @classmethod
    def _size(cls, value):
        vals = [value] if isinstance(value, int) else list(value)
        if len(vals) not in (1, 2, 3) or any(v < 8 for v in vals):
            raise ValueError("must be an integer >= 8, [height, width] or [depth, height, width]")
        return value

    @field_validator("overlap")
    @classmethod
    def _overlap(cls, value):
        vals = [value] if isinstance(value, int) else list(value)
        if len(vals) not in (1, 3) or any(v < 0 for v in vals):
            raise ValueError("must be an integer >= 0 (or three, [depth, height, width], for 3-D tiles)")
        return value

    @property
    def overlap2(self) -> int:
        """The 2-D overlap: one int (``_check_task`` refuses three values on a 2-D layout; of a list, the
        in-plane value, so the type is exact)."""
        return self.overlap if isinstance(self.overlap, int) else int(self.overlap[-1])

    # -- wave 2: 3-D tiles ---------------------------------------------------------------------------
    @property
    def dhw(self) -> tuple[int, int, int]:
        """The 3-D tile size ``(d, h, w)``."""
        if isinstance(self.size, int):
            return (self.size,) * 3
        vals = [int(v) for v in self.size]
        return (vals[0],) * 3 if len(vals) == 1 else tuple(vals)  # type: ignore[return-value]

    @property
    def overlap3(self) -> tuple[int, int, int]:
        """The 3-D overlap ``(d, h, w)``."""
        if isinstance(self.overlap, int):
            return (self.overlap,) * 3
        return tuple(int(v) for v in self.overlap)  # type: ignore[return-value]


class IntensitySpec(_Strict):
    """``input.intensity:`` raw values -> model values; applied in the order clip, window/percentile,
    scale, offset, standardize, mean/std."""

    window: list[float] | Literal["dicom"] | None = None
    percentile: list[float] | None = None
    scale: float | None = None
    offset: float | None = None
    mean: list[float] | float | None = None
    std: list[float] | float | None = None
    # -- wave 2: per-image normalisation (see the order of operations in docs/PLUGINS.md) --------------
    clip: list[float] | None = None  # [lo, hi] in raw units, applied first
    standardize: bool = False  # (x - mean(x)) / (std(x) + eps) over the image, per channel
    eps: float = Field(1e-6, gt=0)

    @field_validator("clip")
    @classmethod
    def _clip(cls, value):
        if value is not None and (len(value) != 2 or value[1] <= value[0]):
            raise ValueError("must be [low, high] with low < high")
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value):
        if isinstance(value, list) and (len(value) != 2 or value[1] <= value[0]):
            raise ValueError("must be [low, high] with low < high, or \"dicom\"")
        return value

    @field_validator("percentile")
    @classmethod
    def _percentile(cls, value):
        if value is not None and (len(value) != 2 or not 0 <= value[0] < value[1] <= 100):
            raise ValueError("must be [low, high] with 0 <= low < high <= 100")
        return value

    @field_validator("std")
    @classmethod
    def _std(cls, value):
        vals = [value] if isinstance(value, (int, float)) else (value or [])
        if any(v == 0 for v in vals):
            raise ValueError("must not contain 0")
        return value


class InputSpec(_Strict):
    """``input:`` how an image becomes the model's input tensor."""

    name: str | None = None
    layout: Literal["NCHW", "NHWC", "NCDHW", "NDHWC"] = "NCHW"
    color: Literal["gray", "rgb", "bgr", "luma"] = "rgb"
    size: list[int] | None = None
    multiple_of: int = Field(1, ge=1)
    resize: Literal["stretch", "letterbox", "letterbox_topleft", "tile", "none"] = "stretch"
    pad_value: float = 0.0
    tile: TileSpec | None = None
    intensity: IntensitySpec = Field(default_factory=IntensitySpec)
    # None (wave 2): read from the graph; a value given must match the graph
    dtype: Literal["float32", "float16", "uint8", "int8", "int32", "int64", "float64"] | None = None
    # -- wave 2: volumetric models and extra graph inputs --------------------------------------------
    spacing: list[float] | None = None  # the model's voxel size in mm (z, y, x): resample to it and back
    orientation: Literal["stored", "display"] = "display"
    constants: dict[str, float | int | list[float] | list[int]] | None = None

    @field_validator("size")
    @classmethod
    def _size(cls, value):
        if value is not None and (len(value) not in (2, 3) or any(v < 1 for v in value)):
            raise ValueError("must be [height, width] (or [depth, height, width] for 3-D) of positive integers")
        return value

    @field_validator("spacing")
    @classmethod
    def _spacing(cls, value):
        if value is not None and (len(value) != 3 or any(not v > 0 for v in value)):
            raise ValueError("must be [dz, dy, dx] in mm, all > 0")
        return value

    @property
    def is_volumetric(self) -> bool:
        """A 3-D model (``NCDHW`` / ``NDHWC``): the volume is one tensor (or 3-D tiles)."""
        return self.layout in ("NCDHW", "NDHWC")

    @property
    def channels(self) -> int:
        return 3 if self.color in ("rgb", "bgr") else 1


class SegClass(_Strict):
    """One entry of ``output.classes``."""

    name: str
    color: str | None = None
    value: int | None = Field(None, ge=0, le=65535)

    @field_validator("color")
    @classmethod
    def _color(cls, value):
        if value is not None and not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise ValueError("must be \"#rrggbb\"")
        return value


class OutputSpec(_Strict):
    """``output:`` fields by task (see docs/PLUGINS.md); fields of other tasks are ignored."""

    name: str | None = None  # output tensor to decode; default: the graph's first output
    # classification
    activation: Literal["softmax", "sigmoid", "none"] = "softmax"
    labels: list[str] | None = None
    labels_file: str | None = None
    top_k: int = Field(5, ge=1)
    # segmentation (+ restoration layout)
    layout: Literal["NCHW", "NHWC", "NHW", "NCDHW", "NDHWC", "NDHW"] = "NCHW"
    multi_label: bool = False
    threshold: float = 0.5
    classes: list[SegClass] | None = None
    # detection
    format: Literal["yolov8", "yolov5", "yolox", "boxes_scores"] | None = None
    boxes: str | None = None
    scores: str | None = None
    box_format: Literal["xyxy", "xywh", "cxcywh"] = "xyxy"
    normalized: bool = False
    background_class: int | None = Field(None, ge=0)
    strides: list[int] = Field(default_factory=lambda: [8, 16, 32])
    score_threshold: float = Field(0.25, ge=0, le=1)
    iou_threshold: float = Field(0.45, ge=0, le=1)
    max_detections: int = Field(300, ge=1)
    # restoration
    scale: int = Field(1, ge=1)
    range: list[float] | None = None
    residual: bool = False
    # -- custom decoder (issue 21) ------------------------------------------------------------------
    # ``decoder`` names a trusted plugin's own ``module:function``; ``params`` is free-form and reaches it
    # as ``ctx.params``. With a decoder, detection needs no built-in ``format``.
    decoder: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name", "boxes", "scores", mode="before")
    @classmethod
    def _output_name(cls, value):
        # exporters name outputs by node number (``name: 845``); YAML reads an unquoted 845 as an int
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value
    # -- end custom decoder -------------------------------------------------------------------------

    @field_validator("range")
    @classmethod
    def _range(cls, value):
        if value is not None and (len(value) != 2 or value[1] <= value[0]):
            raise ValueError("must be [low, high] with low < high")
        return value

    @field_validator("decoder")
    @classmethod
    def _decoder(cls, value):
        if value is not None and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", value):
            raise ValueError("must be \"module:function\" (a .py file of the plugin folder)")
        return value


class ExplainSpec(_Strict):
    """``explain:`` (optional; classification): what Grad-CAM needs -- a graph output holding the last
    feature map before global average pooling, and the class weights of the linear layer after it."""

    feature_map: str = Field(min_length=1)  # graph output name, (1, K, h, w) NCHW or (1, h, w, K) NHWC
    class_weights: str = Field(min_length=1)  # .npy file of the plugin folder, (n_classes, K)
    layout: Literal["NCHW", "NHWC"] = "NCHW"


# -- embedding (issue 18) ---------------------------------------------------------------------------
class EmbeddingSpec(_Strict):
    """``embedding:`` (optional; task ``embedding``): how a graph output becomes one vector per image.

    The output named by ``output.name`` (default: the graph's first output) is either a vector
    ``(1, D)`` (``pool: none``) or a feature map ``(1, C, h, w)`` / ``(1, h, w, C)`` averaged over its
    spatial axes (``pool: avg``, ``layout`` says which axis holds the channels).
    """

    pool: Literal["none", "avg"] = "none"
    layout: Literal["NCHW", "NHWC"] = "NCHW"  # of the feature map, for pool: avg
    l2_normalize: bool = True  # unit length: the index's cosine score is then a dot product
# -- end embedding ----------------------------------------------------------------------------------


class RuntimeSpec(_Strict):
    providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"])


class PluginSpec(_Strict):
    """A validated ``plugin.yaml``. ``folder`` and ``manifest_path`` are set by :func:`load_plugin`."""

    schema_version: Literal[1]
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    task: Literal["classification", "segmentation", "detection", "restoration", "promptable", "embedding"]
    description: str = ""
    model: ModelFile
    input: InputSpec = Field(default_factory=InputSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)
    explain: ExplainSpec | None = None  # issue 17: Grad-CAM inputs, see docs/PLUGINS.md
    meta: dict[str, Any] = Field(default_factory=dict)
    sample: str | None = None  # an image for `models check` smoke runs; default: sample.* in the folder
    # -- promptable segmentation (task: promptable; issue 14): see inference/promptable/contract.py
    prompt: PromptSpec | None = None
    # -- embedding (task: embedding; issue 18): see inference/embedding.py and docs/SEARCH.md
    embedding: EmbeddingSpec | None = None

    _folder: Path = PrivateAttr(default=Path("."))
    _manifest: Path = PrivateAttr(default=Path(MANIFEST_NAME))
    _source: str = PrivateAttr(default="path")
    _package: Any = PrivateAttr(default=None)  # wave 2: a bioimage.io package (inference/bioimageio.py)

    # -- locations -------------------------------------------------------------------------------
    @property
    def folder(self) -> Path:
        return self._folder

    @property
    def manifest_path(self) -> Path:
        return self._manifest

    @property
    def source(self) -> str:
        """Where discovery found it: ``bundled``, ``user``, ``settings``, ``entry-point`` or ``path``."""
        return self._source

    @property
    def model_path(self) -> Path:
        return (self._folder / self.model.file).resolve()

    @property
    def sha256(self) -> str:
        return self.model.sha256

    def error(self, field: str, message: str) -> PluginError:
        """A :class:`PluginError` naming this manifest and ``field``."""
        return PluginError(f"{field}: {message}", path=_display(self._manifest))

    # -- derived ---------------------------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        """Class labels (classification, detection), read from ``labels_file`` when given."""
        return list(self.output.labels or [])

    @property
    def sample_path(self) -> Path | None:
        """The sample image: ``sample:`` or the first ``sample.*`` file in the folder."""
        if self.sample:
            return (self._folder / self.sample).resolve()
        for suffix in SAMPLE_SUFFIXES:
            candidate = self._folder / f"sample{suffix}"
            if candidate.is_file():
                return candidate
        return None


def _display(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _inside(folder: Path, target: Path) -> bool:
    try:
        target.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _format_validation(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling against docs/PLUGINS.md)"
    elif err["type"] == "missing":
        msg = "required field is missing"
    elif err["type"] == "literal_error":
        msg = f"{msg}, got {err.get('input')!r}"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return f"{loc}: {msg}" if loc else msg


def load_plugin(folder: str | Path, *, source: str = "path") -> PluginSpec:
    """Read and validate a plugin folder (or its ``plugin.yaml``) without touching the model.

    Checks the schema, that ``model.file`` (and ``labels_file``, ``sample``) resolve inside the folder
    and exist, and the task-specific rules. The checksum is verified later, right before a session is
    created (:func:`workbench.inference.checksum.verify_sha256`), so that discovery stays fast.

    Parameters
    ----------
    folder : str or Path
        The plugin folder, or the path of its ``plugin.yaml``.
    source : str, optional
        Recorded as :attr:`PluginSpec.source` (discovery sets it).

    Returns
    -------
    PluginSpec

    Raises
    ------
    PluginError
        One line naming the manifest file and the offending field.
    """
    folder = Path(folder)
    from .bioimageio import is_package, load_package  # wave 2: bioimage.io packages are plugins as they are

    if is_package(folder):
        return load_package(folder, source=source)
    manifest = folder if folder.is_file() or folder.suffix in (".yaml", ".yml") else folder / MANIFEST_NAME
    folder = manifest.parent
    shown = _display(manifest)
    if not manifest.is_file():
        raise PluginError("no plugin.yaml in this folder" if folder.is_dir() else "plugin folder not found",
                          path=_display(manifest if folder.is_dir() else folder))
    try:
        require_regular(manifest, error=PluginError, what="plugin.yaml")
        raw = safe_load(manifest.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise PluginError(f"malformed YAML: {where}{problem}", path=shown) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PluginError(f"cannot read: {exc}", path=shown) from exc
    if not isinstance(raw, dict):
        raise PluginError("malformed YAML: expected a mapping of fields at the top level", path=shown)
    try:
        spec = PluginSpec.model_validate(raw)
    except ValidationError as exc:
        raise PluginError(_format_validation(exc), path=shown) from exc
    spec._folder = folder.resolve()
    spec._manifest = manifest
    spec._source = source
    _check_files(spec)
    _check_task(spec)
    expects_of(spec)  # issue 20: meta.expects is validated (file: field errors), though meta is free-form
    return spec


def _check_files(spec: PluginSpec) -> None:
    folder = spec.folder
    model = folder / spec.model.file
    if Path(spec.model.file).is_absolute() or not _inside(folder, model):
        raise spec.error("model.file", f"{spec.model.file!r} resolves outside the plugin folder")
    if not model.is_file():
        raise spec.error("model.file", f"{spec.model.file!r} not found in the plugin folder")
    out = spec.output
    if out.labels_file is not None:
        lf = folder / out.labels_file
        if not _inside(folder, lf):
            raise spec.error("output.labels_file", f"{out.labels_file!r} resolves outside the plugin folder")
        if not lf.is_file():
            raise spec.error("output.labels_file", f"{out.labels_file!r} not found in the plugin folder")
        if out.labels:
            raise spec.error("output.labels_file", "give either labels or labels_file, not both")
        try:
            text = lf.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise spec.error("output.labels_file", f"cannot read {out.labels_file!r}: {exc}") from exc
        out.labels = [line.strip() for line in text.splitlines() if line.strip()]
        if not out.labels:
            raise spec.error("output.labels_file", f"{out.labels_file!r} holds no labels")
    if spec.sample is not None:
        sp = folder / spec.sample
        if not _inside(folder, sp):
            raise spec.error("sample", f"{spec.sample!r} resolves outside the plugin folder")
        if not sp.exists():
            raise spec.error("sample", f"{spec.sample!r} not found in the plugin folder")
    if out.decoder is not None:
        module = out.decoder.split(":")[0]
        if not (folder / (module.replace(".", "/") + ".py")).is_file():
            raise spec.error("output.decoder", f"module file {module.replace('.', '/')}.py not found in the "
                                               "plugin folder")


def _check_task(spec: PluginSpec) -> None:
    inp, out, task = spec.input, spec.output, spec.task
    check_prompt_spec(spec)  # promptable segmentation (inference/promptable/contract.py)
    _check_embedding(spec)  # issue 18
    _check_wave2(spec)
    if inp.resize == "tile" and not inp.is_volumetric:
        if task not in ("segmentation", "restoration"):
            raise spec.error("input.resize", f"tile is only for segmentation and restoration, not {task}")
        if inp.tile is None:
            inp.tile = TileSpec()
        if not isinstance(inp.tile.size, int) and len(inp.tile.size) == 3:
            raise spec.error("input.tile.size", "[depth, height, width] is for 3-D layouts (NCDHW, NDHWC); "
                                                f"input.layout is {inp.layout}")
        if not isinstance(inp.tile.overlap, int):
            raise spec.error("input.tile.overlap", "three values are for 3-D layouts (NCDHW, NDHWC); "
                                                   f"input.layout is {inp.layout}")
        th, tw = inp.tile.hw
        if inp.tile.overlap * 2 >= min(th, tw):
            raise spec.error("input.tile.overlap", f"{inp.tile.overlap} must be less than half the tile size")
    if inp.intensity.mean is not None or inp.intensity.std is not None:
        for key in ("mean", "std"):
            val = getattr(inp.intensity, key)
            if isinstance(val, list) and len(val) not in (1, inp.channels):
                raise spec.error(f"input.intensity.{key}",
                                 f"has {len(val)} values, color {inp.color} has {inp.channels} channel(s)")
    if inp.intensity.window is not None and inp.intensity.percentile is not None:
        raise spec.error("input.intensity.percentile", "give either window or percentile, not both")
    if task == "detection":
        if out.format is None and out.decoder is None:
            raise spec.error("output.format", f"required for detection without output.decoder: one of "
                                              f"{', '.join(DETECTION_FORMATS)}")
        if out.format == "boxes_scores" and (not out.boxes or not out.scores):
            raise spec.error("output.boxes" if not out.boxes else "output.scores",
                             "boxes_scores needs the names of the boxes and scores outputs")
        if out.labels and out.background_class is not None and out.background_class >= len(out.labels):
            raise spec.error("output.background_class",
                             f"{out.background_class} is not a label index (0..{len(out.labels) - 1})")
    if task == "segmentation" and out.classes:
        values = [c.value if c.value is not None else (i + 1 if out.multi_label else i)
                  for i, c in enumerate(out.classes)]
        if len(set(values)) != len(values):
            raise spec.error("output.classes", f"class values must be unique, got {values}")
    if task == "restoration" and out.layout in ("NHW", "NDHW"):
        raise spec.error("output.layout", "restoration outputs are NCHW or NHWC")
    if task == "restoration" and inp.color == "luma" and inp.resize not in ("tile", "none", "stretch"):
        pass  # luma works with every geometry; nothing to refuse
    _check_sizes(spec)
    if not any(p == "CPUExecutionProvider" for p in spec.runtime.providers):
        spec.runtime.providers = [*spec.runtime.providers, "CPUExecutionProvider"]


def _check_embedding(spec: PluginSpec) -> None:
    """Issue 18: an ``embedding:`` block belongs to ``task: embedding``, which gets the defaults when absent."""
    if spec.embedding is not None and spec.task != "embedding":
        raise spec.error("embedding", f"is for task: embedding, not {spec.task}")
    if spec.task == "embedding":
        if spec.embedding is None:
            spec.embedding = EmbeddingSpec()
        if spec.input.resize == "tile" or spec.input.is_volumetric:
            raise spec.error("input.resize" if spec.input.resize == "tile" else "input.layout",
                             "an embedding model sees the whole 2-D image (no tiles, no 3-D layouts)")


# -- wave 2: volumetric layouts, per-image normalisation, constants ---------------------------------
VOLUME_RESIZE = ("none", "stretch", "tile")


def _check_wave2(spec: PluginSpec) -> None:
    """Rules of the wave-2 fields (3-D layouts, tiles, spacing, standardize/clip, constants)."""
    inp, out, task = spec.input, spec.output, spec.task
    out3 = out.layout in ("NCDHW", "NDHWC", "NDHW")
    if not inp.is_volumetric:
        if out3:
            raise spec.error("output.layout", f"{out.layout} is a 3-D layout; input.layout {inp.layout} is 2-D")
        if inp.spacing is not None:
            raise spec.error("input.spacing", "is for 3-D layouts (NCDHW, NDHWC); 2-D models run on each slice")
        if inp.size is not None and len(inp.size) == 3:
            raise spec.error("input.size", f"[depth, height, width] is for 3-D layouts; input.layout is {inp.layout}")
        return
    if task != "segmentation":
        raise spec.error("input.layout", f"{inp.layout} (3-D) models are supported for segmentation, not {task}")
    if not out3:
        if "layout" in out.model_fields_set:
            raise spec.error("output.layout", f"a 3-D model's output is NCDHW, NDHWC or NDHW, got {out.layout}")
        out.layout = "NCDHW"
    if inp.resize not in VOLUME_RESIZE:
        raise spec.error("input.resize", f"{inp.resize} is not available for 3-D models (use none, stretch or "
                                         "tile)")
    if inp.color not in ("gray", "rgb"):
        raise spec.error("input.color", f"{inp.color} is not available for 3-D models (gray or rgb)")
    if inp.size is not None and len(inp.size) != 3:
        raise spec.error("input.size", "a 3-D model's size is [depth, height, width]")
    if out.decoder is not None:
        raise spec.error("output.decoder", "custom decoders are not available for 3-D layouts")
    if inp.resize == "tile":
        if inp.tile is None:
            inp.tile = TileSpec.model_construct(_fields_set=set(), size=64, overlap=8)  # the graph may fix it
        if not isinstance(inp.tile.size, int) and len(inp.tile.size) == 2:
            raise spec.error("input.tile.size", "a 3-D tile is one int or [depth, height, width]")
        for size, ov in zip(inp.tile.dhw, inp.tile.overlap3):
            if ov * 2 >= size:
                raise spec.error("input.tile.overlap", f"{list(inp.tile.overlap3)} must be less than half the "
                                                       f"tile size {list(inp.tile.dhw)}")


def _check_sizes(spec: PluginSpec) -> None:
    """Refuse sizes whose tensors could not be allocated (``input.size: [100000, 100000]`` is 40 GB of
    float32; ``multiple_of: 1000000000`` pads every image to at least that square) before anything is."""
    from .guards import tensor_budget

    inp = spec.input
    itemsize = 8 if inp.dtype in ("float64", "int64") else 4
    budget = tensor_budget()
    side = [inp.multiple_of] * (3 if inp.is_volumetric else 2)
    checks = [("input.size", inp.size), ("input.multiple_of", side)]
    if inp.tile is not None:
        checks.append(("input.tile.size", list(inp.tile.dhw if inp.is_volumetric else inp.tile.hw)))
    for fld, dims in checks:
        if not dims:
            continue
        # the input tensor plus a float32 output of a few channels (segmentation/restoration maps)
        voxels = math.prod(int(d) for d in dims)
        need = voxels * (inp.channels * itemsize + 4 * max(2, len(spec.output.classes or [])))
        if need > budget:
            shown = " x ".join(str(d) for d in dims)
            raise spec.error(fld, f"{shown} needs about {need / 2**30:.3g} GiB per tensor, more than "
                                  f"this machine can give ({budget / 2**30:.3g} GiB)")
