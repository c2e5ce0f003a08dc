"""bioimage.io model packages as published: a folder or ``.zip`` with ``rdf.yaml`` / ``bioimageio.yaml``.

A package becomes a :class:`~workbench.inference.spec.PluginSpec` without a plugin.yaml: its ``onnx``
weights (sha256 checked before the session exists), its axes (``bcyx``, ``byxc``, ``bczyx``, ``bzyxc``;
fixed sizes, parameterised ``min + k * step`` sizes, output halo), its pre- and postprocessing, its test
tensors (``workbench models check`` reproduces the test output and says by how much it differs) and its
metadata (name, description, authors, license, cite, covers). Formats 0.4 and 0.5 are read.

Why not the official parser: ``bioimageio.spec`` 0.5.14 installs from PyPI with 36 dependencies
(httpx, rich, loguru, ruyaml, imageio, pydantic-settings...) and imports in 1.6-3.1 s on the 2-core
machine (measured 2026-12-01) -- more than the rest of the engine. The subset read here is validated
with pydantic; whatever else a package asks for (per-dataset statistics, a reference tensor, a
processing step not listed below) is refused with one line naming the file and the field.

Preprocessing (``zero_mean_unit_variance`` per sample or fixed, ``fixed_zero_mean_unit_variance``,
``scale_range`` with percentiles, ``scale_linear``, ``clip``, ``ensure_dtype``) is folded exactly into
the engine's one-clip-one-affine :class:`~workbench.inference.preprocess.IntensityMap`: every step is
affine or a clip of the previous values, a clip after an affine moves in front of it by inverting the
affine, and statistics of the intermediate values are the affine image of the raw image's clipped
statistics. No float copy of the image is made. Postprocessing ``sigmoid`` / ``binarize`` makes the
package a segmentation (each channel a class, thresholded); otherwise it is a restoration.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.errors import PluginError

PACKAGE_NAMES = ("bioimageio.yaml", "rdf.yaml")
PRE_OPS = ("zero_mean_unit_variance", "fixed_zero_mean_unit_variance", "scale_range", "scale_linear", "clip",
           "ensure_dtype")
POST_OPS = ("sigmoid", "binarize", "ensure_dtype", "clip", "scale_linear")
LAYOUTS = {"bcyx": "NCHW", "byxc": "NHWC", "bczyx": "NCDHW", "bzyxc": "NDHWC"}
TEST_RTOL, TEST_ATOL = 1e-3, 1e-4  # the tolerances bioimageio.core's test_model uses by default


# -- locating a package ---------------------------------------------------------------------------
def package_yaml(path: Path) -> Path | None:
    """The package description in a folder (``bioimageio.yaml`` first, then ``rdf.yaml``), or ``None``."""
    if path.is_file() and path.name.endswith(PACKAGE_NAMES):
        return path
    if path.is_dir():
        for name in PACKAGE_NAMES:
            if (path / name).is_file():
                return path / name
        found = sorted(path.glob("*.bioimageio.yaml"))
        if found:
            return found[0]
    return None


def is_package(path: str | Path) -> bool:
    """A folder/file discovery and ``load_plugin`` should read as a bioimage.io package."""
    p = Path(path)
    if p.suffix.lower() == ".zip" and p.is_file():
        return True
    return not (p / "plugin.yaml").is_file() and package_yaml(p) is not None


def _cache_root() -> Path:
    override = os.environ.get("WORKBENCH_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("workbench", appauthor=False))


def _extract(zip_path: Path, shown: str) -> Path:
    """Unpack a package .zip once into the cache (keyed by its sha256); refuses members leaving it."""
    digest = hashlib.sha256()
    with open(zip_path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    target = _cache_root() / "bioimageio" / digest.hexdigest()[:32]
    if (target / ".complete").is_file():
        return target
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for member in zf.infolist():
                dest = (tmp / member.filename).resolve()
                if not str(dest).startswith(str(tmp.resolve()) + os.sep) and dest != tmp.resolve():
                    raise PluginError(f"member {member.filename!r} would be written outside the package", path=shown)
            zf.extractall(tmp)
    except (zipfile.BadZipFile, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise PluginError(f"cannot read the package .zip: {exc}", path=shown) from exc
    # a zip may hold the package in one top-level folder
    if package_yaml(tmp) is None:
        subs = [p for p in tmp.iterdir() if p.is_dir()]
        if len(subs) == 1 and package_yaml(subs[0]) is not None:
            inner = subs[0]
            for child in inner.iterdir():
                child.rename(tmp / child.name)
            inner.rmdir()
    (tmp / ".complete").write_text("ok", encoding="utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, target)
    except OSError:  # another process unpacked it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# -- the subset of the format, validated ----------------------------------------------------------
class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None  # 0.4
    id: str | None = None  # 0.5
    kwargs: dict[str, Any] = Field(default_factory=dict)


class _File(_Loose):
    source: str
    sha256: str | None = None


class _Author(_Loose):
    name: str | None = None


class _Cite(_Loose):
    text: str | None = None
    doi: str | None = None
    url: str | None = None


class _Tensor(_Loose):
    name: str | None = None  # 0.4
    id: str | None = None  # 0.5
    axes: str | list[dict[str, Any]]
    data_type: str | None = None
    shape: Any = None  # 0.4
    halo: list[int] | None = None  # 0.4
    preprocessing: list[_Op] = Field(default_factory=list)
    postprocessing: list[_Op] = Field(default_factory=list)
    test_tensor: _File | None = None  # 0.5


class _Package(_Loose):
    format_version: str
    type: str = "model"
    name: str
    id: str | None = None
    version: str | int | float | None = None
    description: str = ""
    authors: list[_Author] = Field(default_factory=list)
    license: str | None = None
    cite: list[_Cite] = Field(default_factory=list)
    covers: list[str] = Field(default_factory=list)
    documentation: str | None = None
    tags: list[str] = Field(default_factory=list)
    inputs: list[_Tensor]
    outputs: list[_Tensor]
    weights: dict[str, Any]
    test_inputs: list[str] = Field(default_factory=list)  # 0.4
    test_outputs: list[str] = Field(default_factory=list)


@dataclass
class Step:
    """One processing step: its name, arguments and where it is written (for error messages)."""

    op: str
    kwargs: dict[str, Any]
    field: str


@dataclass
class Package:
    """What the engine keeps of a package (``PluginSpec._package``)."""

    yaml_path: Path
    shown: str
    format_version: str
    axes_in: str
    axes_out: str
    pre: list[Step]
    post: list[Step]
    test_inputs: list[Path] = field(default_factory=list)
    test_outputs: list[Path] = field(default_factory=list)
    channel_names: list[str] = field(default_factory=list)

    def error(self, fld: str, message: str) -> PluginError:
        return PluginError(f"{fld}: {message}", path=self.shown)


def _display(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _err(shown: str, fld: str, message: str) -> PluginError:
    return PluginError(f"{fld}: {message}", path=shown)


def _axes(t: _Tensor, where: str, shown: str) -> tuple[str, list[Any], list[int], list[str]]:
    """(axes letters, size per axis, halo per axis, channel names) of a 0.4 or 0.5 tensor."""
    if isinstance(t.axes, str):
        letters = t.axes.lower()
        shape = t.shape
        if isinstance(shape, list):
            sizes: list[Any] = [int(v) for v in shape]
        elif isinstance(shape, dict) and "min" in shape:
            sizes = [("param", int(m), int(s)) for m, s in zip(shape["min"], shape.get("step", [0] * len(letters)))]
        elif isinstance(shape, dict) and "reference_tensor" in shape:
            sizes = [("ref",)] * len(letters)
        else:
            raise _err(shown, f"{where}.shape", "expected a list of sizes, {min, step} or {reference_tensor, ...}")
        halo = [int(h) for h in (t.halo or [0] * len(letters))]
        return letters, sizes, halo, []
    letters, sizes, halo, names = "", [], [], []
    for i, ax in enumerate(t.axes):
        kind = ax.get("type")
        if kind == "batch":
            letters += "b"
            sizes.append(ax.get("size") or 1)
        elif kind == "channel":
            letters += "c"
            names = [str(n) for n in ax.get("channel_names", [])]
            sizes.append(len(names) or 1)
        elif kind == "space":
            letters += str(ax.get("id", "?"))
            size = ax.get("size")
            if isinstance(size, int):
                sizes.append(size)
            elif isinstance(size, dict) and "min" in size:
                sizes.append(("param", int(size["min"]), int(size.get("step", 0))))
            elif isinstance(size, dict) and ("tensor_id" in size or "axis_id" in size):
                sizes.append(("ref",))
            else:
                raise _err(shown, f"{where}.axes[{i}].size", f"unsupported size {size!r}")
        else:
            raise _err(shown, f"{where}.axes[{i}].type", f"{kind!r} axes are not supported (batch, channel, space)")
        halo.append(int(ax.get("halo", 0) or 0))
    return letters, sizes, halo, names


def _steps(ops: list[_Op], where: str, allowed: tuple[str, ...], shown: str) -> list[Step]:
    steps = []
    for i, op in enumerate(ops):
        name = op.id or op.name
        key = "id" if op.id else "name"
        if name not in allowed:
            raise _err(shown, f"{where}[{i}].{key}", f"unknown or unsupported operation {name!r} "
                                                     f"(supported: {', '.join(allowed)})")
        steps.append(Step(str(name), dict(op.kwargs), f"{where}[{i}]"))
    return steps


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "bioimageio-model"


def _inside(folder: Path, rel: str, shown: str, fld: str) -> Path:
    if "://" in rel:
        raise _err(shown, fld, f"{rel!r} is a URL; Workbench reads packages offline (download the file into "
                               "the package)")
    path = (folder / rel).resolve()
    try:
        path.relative_to(folder.resolve())
    except ValueError as exc:
        raise _err(shown, fld, f"{rel!r} resolves outside the package") from exc
    if not path.is_file():
        raise _err(shown, fld, f"{rel!r} not found in the package")
    return path


def load_package(path: str | Path, *, source: str = "path"):
    """Read a bioimage.io package (folder, its yaml, or a ``.zip``) as a plugin.

    Returns
    -------
    PluginSpec
        With ``_package`` (a :class:`Package`) set: the engine folds its preprocessing per image.

    Raises
    ------
    PluginError
        One line naming the package file and the field: no ONNX weights, unsupported axes or
        processing, missing files, sha256 mismatch.
    """
    from . import spec as S
    from .checksum import file_sha256

    path = Path(path)
    zip_shown = None
    if path.suffix.lower() == ".zip":
        zip_shown = _display(path)
        folder = _extract(path, zip_shown)
    else:
        folder = path if path.is_dir() else path.parent
    yml = package_yaml(folder)
    if yml is None:
        raise PluginError("no bioimageio.yaml or rdf.yaml in this package", path=zip_shown or _display(folder))
    shown = f"{zip_shown}!{yml.name}" if zip_shown else _display(yml)
    try:
        raw = yaml.safe_load(yml.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise PluginError(f"malformed YAML: {'line %d: ' % (mark.line + 1) if mark else ''}"
                          f"{getattr(exc, 'problem', None) or type(exc).__name__}", path=shown) from exc
    if not isinstance(raw, dict):
        raise PluginError("malformed YAML: expected a mapping of fields at the top level", path=shown)
    try:
        pkg = _Package.model_validate(raw)
    except ValidationError as exc:
        raise PluginError(S._format_validation(exc), path=shown) from exc
    fmt = str(pkg.format_version)
    if not fmt.startswith(("0.4", "0.5")):
        raise _err(shown, "format_version", f"{fmt} is not supported (0.4.x or 0.5.x)")
    if pkg.type != "model":
        raise _err(shown, "type", f"{pkg.type!r} is not a model")
    onnx = pkg.weights.get("onnx")
    if not onnx:
        others = ", ".join(k for k, v in pkg.weights.items() if v) or "none"
        raise _err(shown, "weights", f"no onnx weights (this package has: {others}); Workbench runs ONNX "
                                     "weights only: convert the model to ONNX (bioimageio.core can) or ask its "
                                     "authors for an onnx entry")
    try:
        onnx_file = _File.model_validate(onnx)
    except ValidationError as exc:
        raise PluginError("weights.onnx." + S._format_validation(exc), path=shown) from exc
    model_path = _inside(folder, onnx_file.source, shown, "weights.onnx.source")
    if len(pkg.inputs) != 1:
        raise _err(shown, "inputs", f"{len(pkg.inputs)} input tensors; Workbench feeds one image")
    if not pkg.outputs:
        raise _err(shown, "outputs", "no output tensor")
    t_in, t_out = pkg.inputs[0], pkg.outputs[0]
    ax_in, size_in, _, _ = _axes(t_in, "inputs[0]", shown)
    ax_out, size_out, halo_out, names_out = _axes(t_out, "outputs[0]", shown)
    if ax_in not in LAYOUTS:
        raise _err(shown, "inputs[0].axes", f"{ax_in!r} is not supported ({', '.join(LAYOUTS)})")
    if ax_out not in LAYOUTS:
        raise _err(shown, "outputs[0].axes", f"{ax_out!r} is not supported ({', '.join(LAYOUTS)})")
    pre = _steps(t_in.preprocessing, "inputs[0].preprocessing", PRE_OPS, shown)
    post = _steps(t_out.postprocessing, "outputs[0].postprocessing", POST_OPS, shown)
    layout = LAYOUTS[ax_in]
    c_idx = ax_in.index("c")
    channels = size_in[c_idx] if isinstance(size_in[c_idx], int) else 1
    if channels not in (1, 3):
        raise _err(shown, "inputs[0].axes", f"{channels} input channels; Workbench feeds gray (1) or RGB (3)")
    spatial = [i for i, a in enumerate(ax_in) if a in "zyx"]
    sizes = [size_in[i] for i in spatial]
    inp: dict[str, Any] = {"name": t_in.name or t_in.id, "layout": layout,
                           "color": "gray" if channels == 1 else "rgb", "resize": "none"}
    if all(isinstance(s, int) for s in sizes):
        inp["resize"] = "tile"  # a fixed input: large images run as tiles overlapping by twice the halo
        halo = max([h for a, h in zip(ax_out, halo_out) if a in "zyx"] or [0])
        overlap = max(2 * halo, min(sizes) // 8)
        inp["tile"] = {"size": sizes, "overlap": min(overlap, min(sizes) // 2 - 1)}
    else:
        steps = [s[2] for s in sizes if isinstance(s, tuple) and s[0] == "param" and s[2] > 0]
        if steps:
            inp["multiple_of"] = int(np.lcm.reduce(steps))
    segment = any(s.op in ("sigmoid", "binarize") for s in post)
    task = "segmentation" if segment else "restoration"
    out: dict[str, Any] = {"name": t_out.name or t_out.id, "layout": LAYOUTS[ax_out]}
    if segment:
        threshold = next((float(s.kwargs.get("threshold", 0.5)) for s in post if s.op == "binarize"), 0.5)
        out.update(activation="sigmoid" if any(s.op == "sigmoid" for s in post) else "none", multi_label=True,
                   threshold=threshold)
        n_out = size_out[ax_out.index("c")] if isinstance(size_out[ax_out.index("c")], int) else len(names_out)
        if names_out or n_out:
            names = names_out or [f"channel {i}" for i in range(max(1, n_out or 1))]
            out["classes"] = [{"name": n} for n in names]
    if task == "restoration" and layout in ("NCDHW", "NDHWC"):
        raise _err(shown, "outputs[0].postprocessing", "a volumetric package without sigmoid/binarize "
                                                       "(an image output) is not supported yet")
    tests_in = [t_in.test_tensor.source] if t_in.test_tensor else list(pkg.test_inputs)
    tests_out = [t_out.test_tensor.source] if t_out.test_tensor else list(pkg.test_outputs)
    test_in = [_inside(folder, p, shown, "test_inputs" if not t_in.test_tensor else "inputs[0].test_tensor.source")
               for p in tests_in[:1]]
    test_out = [_inside(folder, p, shown, "test_outputs" if not t_out.test_tensor
                        else "outputs[0].test_tensor.source") for p in tests_out[:1]]
    sha = (onnx_file.sha256 or "").lower()
    if not sha:  # the format allows leaving it out: pin the file as found (any later change is refused)
        sha = file_sha256(model_path)
    meta = {"license": pkg.license, "authors": [a.name for a in pkg.authors if a.name],
            "cite": [{k: v for k, v in (("text", c.text), ("doi", c.doi), ("url", c.url)) if v} for c in pkg.cite],
            "covers": list(pkg.covers), "documentation": pkg.documentation, "tags": list(pkg.tags),
            "bioimageio": {"format_version": fmt, "id": pkg.id}}
    manifest = {"schema_version": 1, "id": _slug(str(pkg.id or pkg.name).split("/")[-1]), "name": pkg.name,
                "version": str(pkg.version if pkg.version is not None else "1"), "task": task,
                "description": " ".join(pkg.description.split())[:500],
                "model": {"file": str(model_path.relative_to(folder.resolve())), "sha256": sha},
                "input": inp, "output": out, "meta": meta}
    try:
        spec = S.PluginSpec.model_validate(manifest)
    except ValidationError as exc:
        raise PluginError(f"cannot map the package: {S._format_validation(exc)}", path=shown) from exc
    spec._folder = folder.resolve()
    spec._manifest = Path(shown)
    spec._source = source
    spec._package = Package(yml, shown, fmt, ax_in, ax_out, pre, post, test_in, test_out, names_out)
    for step in pre:
        _check_step(spec._package, step, ax_in)
    S._check_task(spec)
    return spec


def _check_step(pkg: Package, step: Step, axes: str) -> None:
    kw = step.kwargs
    mode = kw.get("mode", "per_sample")
    if step.op in ("zero_mean_unit_variance", "scale_range") and mode == "per_dataset":
        raise pkg.error(f"{step.field}.kwargs.mode", "per_dataset needs the training data's statistics, which a "
                                                     "package does not ship; not supported")
    if step.op == "scale_range" and kw.get("reference_tensor") not in (None, ""):
        raise pkg.error(f"{step.field}.kwargs.reference_tensor", "ranges of another tensor are not supported")
    if step.op == "zero_mean_unit_variance" and mode == "fixed" and ("mean" not in kw or "std" not in kw):
        raise pkg.error(f"{step.field}.kwargs", "mode fixed needs mean and std")
    if step.op == "fixed_zero_mean_unit_variance" and ("mean" not in kw or "std" not in kw):
        raise pkg.error(f"{step.field}.kwargs", "needs mean and std")
    if step.op == "clip" and ("min" not in kw and "max" not in kw):
        raise pkg.error(f"{step.field}.kwargs", "clip needs min and/or max")


# -- folding the preprocessing into the engine's intensity map ------------------------------------
def _per_channel(value: Any, channels: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    return np.broadcast_to(arr if arr.size > 1 else arr[:1], (channels,)).astype(np.float64)


def _joint(kw: dict[str, Any]) -> bool:
    """Statistics over all channels together (``axes`` includes ``c``) or per channel."""
    axes = kw.get("axes")
    if axes is None:
        return False
    letters = axes if isinstance(axes, str) else "".join(str(a)[0] for a in axes)
    return "c" in letters.lower()


def fold_preprocessing(spec, plane: np.ndarray, *, colour: bool):
    """The package's preprocessing for one image as an :class:`IntensityMap` (exact, see the notes).

    Parameters
    ----------
    spec : PluginSpec
        A package spec (``spec._package`` set).
    plane : ndarray
        The image the model sees (``(h, w[, c])`` or a volume), raw values.
    colour : bool
        The last axis of ``plane`` holds channels.
    """
    from .normalize import channel_stats
    from .preprocess import IntensityMap

    pkg: Package = spec._package
    channels = spec.input.channels
    a = np.ones(channels)
    b = np.zeros(channels)
    lo = np.full(channels, -np.inf)
    hi = np.full(channels, np.inf)

    def clip_tuple():
        if np.all(np.isinf(lo)) and np.all(np.isinf(hi)):
            return None
        return (lo.copy(), hi.copy())

    for step in pkg.pre:
        kw = step.kwargs
        op = step.op
        if op == "ensure_dtype":
            continue
        if op == "scale_linear":
            gain = _per_channel(kw.get("gain", 1.0), channels)
            off = _per_channel(kw.get("offset", 0.0), channels)
            a, b = a * gain, b * gain + off
        elif op == "clip":
            cmin = float(kw.get("min", -np.inf))
            cmax = float(kw.get("max", np.inf))
            for c in range(channels):  # clip(a x + b, m, M) == a clip(x, (m - b) / a, (M - b) / a) + b
                if a[c] == 0:
                    continue
                r_lo, r_hi = sorted(((cmin - b[c]) / a[c], (cmax - b[c]) / a[c]))
                lo[c], hi[c] = max(lo[c], r_lo), min(hi[c], r_hi)
                hi[c] = max(hi[c], lo[c])
        elif op in ("fixed_zero_mean_unit_variance",) or (op == "zero_mean_unit_variance"
                                                          and kw.get("mode") == "fixed"):
            mean = _per_channel(kw["mean"], channels)
            std = _per_channel(kw["std"], channels)
            eps = float(kw.get("eps", 1e-6))
            a, b = a / (std + eps), (b - mean) / (std + eps)
        elif op == "zero_mean_unit_variance":
            eps = float(kw.get("eps", 1e-6))
            ct = clip_tuple()
            joint = _joint(kw)
            m, s = _stats(plane, channels, colour and not joint, ct, channel_stats)
            if joint and channels > 1:  # one mean/std over all channels of the intermediate values
                mi, si = a * m + b, np.abs(a) * s
                mean_all = mi.mean()
                std_all = float(np.sqrt(np.mean(si ** 2 + (mi - mean_all) ** 2)))
                a, b = a / (std_all + eps), (b - mean_all) / (std_all + eps)
            else:
                mi, si = a * m + b, np.abs(a) * s
                a, b = a / (si + eps), (b - mi) / (si + eps)
        elif op == "scale_range":
            eps = float(kw.get("eps", 1e-6))
            p_lo = float(kw.get("min_percentile", 0.0))
            p_hi = float(kw.get("max_percentile", 100.0))
            per = colour and not _joint(kw)
            q_lo, q_hi = _percentiles(plane, channels, per, lo, hi, (p_lo, p_hi))
            m_lo, m_hi = _percentiles(plane, channels, per, lo, hi, (100.0 - p_lo, 100.0 - p_hi))
            # percentile p of a x + b: a P_p(x) + b for a >= 0, a P_(100-p)(x) + b for a < 0
            v_lo = np.where(a >= 0, a * q_lo + b, a * m_lo + b)
            v_hi = np.where(a >= 0, a * q_hi + b, a * m_hi + b)
            scale = 1.0 / (v_hi - v_lo + eps)
            a, b = a * scale, (b - v_lo) * scale
    clip = clip_tuple()
    if clip is not None and np.allclose(clip[0], clip[0][0]) and np.allclose(clip[1], clip[1][0]):
        clip = (float(clip[0][0]), float(clip[1][0]))
    a0 = float(a[0]) if channels == 1 else a.copy()
    b0 = float(b[0]) if channels == 1 else b.copy()
    return IntensityMap(a=a.astype(np.float32), b=b.astype(np.float32), a0=a0, b0=b0, clip=clip)


def _stats(plane, channels, per_channel, clip, channel_stats):
    c = None
    if clip is not None:
        lo, hi = clip
        c = (lo if per_channel else float(np.max(lo)), hi if per_channel else float(np.min(hi)))
        if not per_channel or channels == 1:
            c = (float(np.max(lo)), float(np.min(hi)))
    if per_channel:
        return channel_stats(plane, channels=channels, colour=True, clip=c)
    if plane.ndim >= 3 and channels > 1:
        return channel_stats(plane, channels=channels, colour=True, clip=c)  # joint handled by the caller
    m, s = channel_stats(plane, channels=1, colour=False, clip=c)
    return np.broadcast_to(m, (channels,)), np.broadcast_to(s, (channels,))


def _percentiles(plane, channels, per_channel, lo, hi, ps):
    flat = plane.reshape(-1, plane.shape[-1]) if (plane.ndim >= 3 and channels > 1) else plane.reshape(-1, 1)
    if flat.shape[0] > 1_000_000:
        flat = flat[:: flat.shape[0] // 1_000_000]
    flat = flat.astype(np.float64)
    n = flat.shape[1]
    q_lo, q_hi = np.zeros(channels), np.zeros(channels)
    cols = []
    for c in range(channels):
        col = flat[:, min(c, n - 1)]
        col = np.clip(col[np.isfinite(col)], lo[c], hi[c])
        cols.append(col)
        if per_channel and col.size:
            q_lo[c], q_hi[c] = np.percentile(col, ps)
    if not per_channel:  # one range over every channel's values together
        joint = np.concatenate(cols)
        if joint.size:
            q_lo[:], q_hi[:] = np.percentile(joint, ps)
    return q_lo, q_hi


# -- postprocessing and the test tensors ----------------------------------------------------------
def postprocess(pkg: Package, out: np.ndarray) -> np.ndarray:
    """The package's postprocessing on a raw output tensor (for the test-tensor comparison)."""
    y = out.astype(np.float64)
    for step in pkg.post:
        kw = step.kwargs
        if step.op == "sigmoid":
            y = 1.0 / (1.0 + np.exp(-y))
        elif step.op == "binarize":
            y = (y > float(kw.get("threshold", 0.5))).astype(np.float64)
        elif step.op == "clip":
            y = np.clip(y, kw.get("min", -np.inf), kw.get("max", np.inf))
        elif step.op == "scale_linear":
            y = y * float(np.asarray(kw.get("gain", 1.0)).reshape(-1)[0]) + float(
                np.asarray(kw.get("offset", 0.0)).reshape(-1)[0])
    return y


@dataclass
class TestReport:
    """How closely the engine reproduces a package's test output."""

    max_abs: float
    max_rel: float
    ok: bool
    shape: tuple[int, ...]

    def line(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return (f"test tensor {verdict}  output {list(self.shape)} reproduced within max |diff| {self.max_abs:.3g} "
                f"(max relative {self.max_rel:.3g}; tolerance {TEST_ATOL:g} + {TEST_RTOL:g} x |expected|)")


def check_test_tensors(engine) -> TestReport | None:
    """Run the package's test input through the engine's preprocessing and the session; compare the
    postprocessed output with the package's test output. ``None`` when the package has no test tensors.

    Raises
    ------
    PluginError
        Unreadable test tensors, or shapes that do not fit the model.
    """
    from ..core.image import ImageVolume
    from .preprocess import intensity_map

    spec = engine.spec
    pkg: Package | None = getattr(spec, "_package", None)
    if pkg is None or not pkg.test_inputs or not pkg.test_outputs:
        return None
    try:
        x = np.load(pkg.test_inputs[0], allow_pickle=False)
        expected = np.load(pkg.test_outputs[0], allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise pkg.error("test_inputs", f"cannot read the test tensors: {exc}") from exc
    if x.ndim != len(pkg.axes_in):
        raise pkg.error("test_inputs", f"test input has shape {list(x.shape)}, axes are {pkg.axes_in!r}")
    # the test input in (b, c, [z,] y, x) -> the image the engine would see: (..., c) raw values
    order = [pkg.axes_in.index(a) for a in "b" + "zyx"[3 - (len(pkg.axes_in) - 2):] + "c" if a in pkg.axes_in]
    img = np.transpose(x, order)[0]  # ([z,] y, x, c)
    colour = spec.input.channels > 1
    plane = img if colour else img[..., 0]
    imap = intensity_map(spec, ImageVolume(np.zeros((1, 1, 1), np.float32)), plane, colour=colour)
    vals = plane.astype(np.float64)
    if imap.clip is not None:
        vals = np.clip(vals, imap.clip[0], imap.clip[1])
    vals = vals * (imap.a if colour else imap.a[0]) + (imap.b if colour else imap.b[0])
    vals = vals if colour else vals[..., np.newaxis]
    tensor = np.transpose(vals[np.newaxis], np.argsort(order)).astype(engine.model.input.dtype)
    outputs = engine.model.run(tensor)
    name = spec.output.name
    got = postprocess(pkg, outputs[name] if name else next(iter(outputs.values())))
    if got.shape != expected.shape:
        raise pkg.error("test_outputs", f"model output {list(got.shape)} does not match the test output "
                                        f"{list(expected.shape)}")
    diff = np.abs(got - expected.astype(np.float64))
    rel = diff / np.maximum(np.abs(expected), 1e-12)
    ok = bool(np.all(diff <= TEST_ATOL + TEST_RTOL * np.abs(expected)))
    return TestReport(float(diff.max(initial=0.0)), float(rel.max(initial=0.0)), ok, tuple(got.shape))
