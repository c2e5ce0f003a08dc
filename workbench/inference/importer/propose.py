"""From an ONNX file (and optionally a sample image) to a proposed ``plugin.yaml``, one decision per field.

The steps, each recorded as a :class:`~.guess.Decision` with its reason and a weak flag:
graph metadata (exporter) -> the image input (layout, channels, dtype, fixed size or probed
``multiple_of``) -> one run on the sample (or a synthetic pattern) -> task and output decoding ->
geometry (resize policy) by task -> labels -> normalisation (ranked on the sample) -> a validated spec.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...core.errors import WorkbenchError
from ...core.image import ImageVolume
from ..session import _ort_errors
from .exporters import Hints, guess_label_set, read_hints
from .graph import Graph, ImportRefused, open_graph
from .guess import Decision, OutputGuess, guess_output
from .normalise import Ranking, apply_candidate, candidates, rank
from .probe import (
    DYNAMIC_PROBE,
    InputGuess,
    engine_for,
    guess_input,
    pick_input,
    prepare,
    probe_manifest,
    probe_multiple,
    spec_from_manifest,
    synthetic_image,
)

MAX_INLINE_LABELS = 30
PROBE_SIDE = 1024
TASKS = ("classification", "segmentation", "detection", "restoration")


@dataclass
class Proposal:
    """A proposed plugin: the manifest (a plain dict, YAML-ready) and how each field was decided."""

    manifest: dict[str, Any]
    decisions: list[Decision]
    graph: Graph
    input: InputGuess
    image: ImageVolume
    sample: Path | None
    hints: Hints
    ranking: Ranking | None = None
    labels: list[str] = field(default_factory=list)
    probe_image: ImageVolume | None = None  # what the ranking ran on (the middle slice, at most 1024 px)

    @property
    def weak(self) -> list[Decision]:
        return [d for d in self.decisions if d.weak]

    def spec(self):
        """The manifest as a validated in-memory spec (model in its original folder)."""
        m = copy.deepcopy(self.manifest)
        m["model"] = {"file": self.graph.path.name, "sha256": "0" * 64}
        m.pop("sample", None)
        return spec_from_manifest(m, self.graph.path.parent.resolve())

    def engine(self, manifest: dict[str, Any] | None = None):
        """An engine for this (or an edited) manifest that shares the importer's session."""
        m = copy.deepcopy(manifest if manifest is not None else self.manifest)
        m["model"] = {"file": self.graph.path.name, "sha256": "0" * 64}
        m.pop("sample", None)
        return engine_for(spec_from_manifest(m, self.graph.path.parent.resolve()), self.graph)


def slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s or "imported-model"


def read_labels_file(path: str | Path) -> list[str]:
    """One label per non-empty line.

    Raises
    ------
    WorkbenchError
        The file cannot be read or holds no labels.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"--labels: cannot read: {exc}", path=path) from exc
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise WorkbenchError("--labels: the file holds no labels", path=path)
    return labels


def _prior(hints: Hints, task: str | None, n_classes: int | None, dtype: str) -> tuple[list[str], str]:
    """Normalisation keys the exporter implies (tried first) and why."""
    if dtype == "uint8":
        return ["raw"], "uint8 input: raw 0-255 values"
    if hints.family == "ultralytics":
        return ["unit"], "Ultralytics exports take RGB x/255"
    if hints.family == "openvino":
        return ["raw", "bgr"], "OpenVINO-converted graphs take BGR 0-255 (normalisation folded in)"
    if task == "classification" and n_classes == 1000 and hints.family == "pytorch":
        return ["imagenet"], "a PyTorch (torchvision/timm-style) ImageNet-1k classifier: ImageNet mean/std"
    if task == "classification" and n_classes == 1001:
        return ["signed"], "1001 classes (TF-slim): inputs in [-1, 1]"
    return [], "the most common convention, x/255"


def propose(model: str | Path, *, sample: str | Path | ImageVolume | None = None, task: str | None = None,
            labels: list[str] | str | Path | None = None, name: str | None = None,
            max_pixels: int | None = None) -> Proposal:
    """Guess a complete plugin manifest for ``model``.

    Parameters
    ----------
    model : str or Path
        The ONNX file.
    sample : str, Path or ImageVolume, optional
        An image (file, or an image already read) the model is meant for: decides the normalisation (see
        :mod:`.normalise`) and the value-based rules (logits vs probabilities, decoded boxes vs grid offsets, fidelity).
    task : {"classification", "segmentation", "detection", "restoration"}, optional
        Force the task (the output rules are then tried for it only).
    labels : list of str or path, optional
        Class labels, or a file with one per line; the count must match the model's classes.
    name : str, optional
        Display name (the id is derived from it); default: the file's stem.

    Returns
    -------
    Proposal

    Raises
    ------
    ImportRefused
        Not an ONNX file, a graph that cannot load, a custom-op domain, an input that is not an image,
        or outputs that fit no task.
    WorkbenchError
        Unreadable sample or labels file, a label count that does not match.
    """
    if task is not None and task not in TASKS:
        raise WorkbenchError(f"--task {task}: expected one of {', '.join(TASKS)}")
    model = Path(model)
    graph = open_graph(model)
    hints = read_hints(graph)
    decisions: list[Decision] = []
    if hints.family:
        decisions.append(Decision("meta.exporter", hints.family, f"producer {graph.producer!r}"
                                  + (f", metadata keys {sorted(graph.metadata)}" if graph.metadata else "")))
    for rdf in ("bioimageio.yaml", "rdf.yaml"):
        if (model.parent / rdf).is_file():
            decisions.append(Decision("meta.bioimageio", rdf, "the model sits in a bioimage.io package; with an "
                                      "engine that reads those, the package folder is a plugin as it is", True))
            break
    tensor = pick_input(graph)
    label_list = read_labels_file(labels) if isinstance(labels, (str, Path)) else (list(labels) if labels else None)
    if tensor.rank == 5:  # a volumetric model: the 3-D rules (layout, tiles, volume normalisations)
        from .propose3d import propose_volume

        return propose_volume(graph, tensor, hints, decisions, model=model, sample=sample, task=task,
                              label_list=label_list, name=name, max_pixels=max_pixels)
    inp = guess_input(graph, tensor)

    # -- geometry of the probe run --------------------------------------------------------------------
    size_from_meta = None
    if not inp.fixed and hints.imgsz:
        size_from_meta = hints.imgsz
    probe_multiple(graph, inp)
    sample_path: Path | None = None
    if isinstance(sample, ImageVolume):  # the GUI's open image
        image = sample
        src = sample.path
        sample_path = src if src is not None and src.is_file() else None
    elif sample is not None:
        image = _sample_image(sample, max_pixels)
        sample_path = Path(sample)
    else:
        image = None
    if image is None:
        fixed = inp.fixed_size
        if fixed is not None:
            h, w = fixed
        elif size_from_meta:
            h, w = size_from_meta
        else:
            h = w = -(-DYNAMIC_PROBE // inp.multiple_of) * inp.multiple_of
        image = synthetic_image(int(h), int(w), inp.channels)
    probe_image = _probe_image(image)
    prior, prior_why = _prior(hints, task, None, inp.dtype)
    first = candidates(inp.channels, inp.dtype, image, prior)[0]
    probe_inp = _input_fields(inp, "stretch" if inp.fixed or size_from_meta else "none", size_from_meta)
    probe_inp.update(color="gray" if inp.channels == 1 else first.color, intensity=first.intensity)
    outs, tensor_in = _run(graph, inp, probe_image, probe_inp)
    hw = _tensor_hw(tensor_in, inp.layout)
    n_labels = len(label_list) if label_list else (len(hints.labels) if hints.labels else None)
    og = guess_output(graph, outs, hw, tensor_in, inp.layout, hints, task=task, n_labels=n_labels,
                      input_name=tensor.name)

    # -- input fields by task --------------------------------------------------------------------------
    fields, geo_decisions = _geometry(og, inp, hints, size_from_meta, image, sample is not None)
    manifest: dict[str, Any] = {
        "schema_version": 1, "id": slug(name or model.stem), "name": name or model.stem, "version": "1.0.0",
        "task": og.task, "description": f"Imported from {model.name} by workbench models import",
        "model": {"file": "model.onnx", "sha256": "0" * 64}, "input": fields, "output": {}}
    decisions.append(Decision("input.name", tensor.name, f"the graph's image input {tensor.declared}"))
    decisions.append(Decision("input.layout", inp.layout, inp.layout_why, inp.layout_weak))
    decisions.append(Decision("input.dtype", inp.dtype, f"graph input type {tensor.type}"))
    if inp.multiple_of > 1 or not inp.fixed:
        decisions.append(Decision("input.multiple_of", inp.multiple_of, inp.multiple_why))
    decisions += geo_decisions

    # -- normalisation ---------------------------------------------------------------------------------
    prior, prior_why = _prior(hints, og.task, og.n_classes, inp.dtype)
    ranking = None
    manifest["output"] = dict(og.output)
    if og.task == "detection" and og.n_classes:
        # the decoders read the class count from the labels (the final ones are chosen below)
        manifest["output"]["labels"] = label_list or [f"class {i}" for i in range(og.n_classes)]
    if sample is not None and inp.dtype != "uint8":
        ranking = rank(manifest, graph, inp, probe_image, prior)
        chosen = ranking.chosen
        if chosen is None:
            raise ImportRefused("every candidate normalisation failed on the sample: "
                                + "; ".join(c.note for c in ranking.candidates[:2]), path=graph.path)
        tied = [c.label for c in ranking.ties if c is not chosen]
        why = (f"best {ranking.criterion} on the sample: {chosen.score:.4g}"
               + (f"; tied with {', '.join(tied[:4])} (within {ranking_tie(og.task)}), chosen by convention"
                  if tied else f"; next {ranking.candidates[1].label} {ranking.candidates[1].score:.4g}"
                  if len(ranking.candidates) > 1 else ""))
        weak = ranking.weak
    else:
        chosen = candidates(inp.channels, inp.dtype, image, prior)[0]
        why = prior_why + ("" if prior else "; no sample to compare candidates (give --sample)")
        weak = not prior
    manifest = apply_candidate(manifest, chosen)
    decisions.append(Decision("input.intensity", chosen.intensity or "none (raw values)", why, weak))
    if inp.channels == 3:
        bgr_why = ("by the same ranking" if ranking is not None else
                   "OpenVINO convention" if "bgr" in prior else "RGB vs BGR cannot be told without a sample")
        if ranking is not None:
            other = [c for c in ranking.ties if c.color != chosen.color]
            color_weak = bool(other)
            if other:
                bgr_why = f"tied with {other[0].label} on the sample: chosen by convention"
        else:
            color_weak = "bgr" not in prior
        decisions.append(Decision("input.color", chosen.color, bgr_why, color_weak))
    elif fields.get("color") == "gray":
        decisions.append(Decision("input.color", "gray", "1 input channel"))

    # -- outputs with the chosen normalisation (activation from the values the model really sees) -------
    outs, tensor_in = _run(graph, inp, probe_image, apply_candidate(manifest, chosen, for_ranking=True)["input"])
    og = guess_output(graph, outs, hw, tensor_in, inp.layout, hints, task=og.task, n_labels=n_labels,
                      input_name=tensor.name)
    manifest["output"] = dict(og.output)
    if og.task == "restoration" and chosen.range is not None:
        manifest["output"]["range"] = list(chosen.range)
        og.decisions.append(Decision("output.range", chosen.range, "the model-unit range of the chosen "
                                     "normalisation", weak))
    decisions = [d for d in decisions if d.field == "meta.exporter"] + og.decisions + \
        [d for d in decisions if d.field != "meta.exporter"]
    final_labels = _labels(og, manifest, label_list, hints, decisions)
    spec = spec_from_manifest(manifest)
    engine_for(_located(spec, graph), graph)  # the graph check the engine will make
    return Proposal(manifest, decisions, graph, inp, image, sample_path, hints, ranking, final_labels, probe_image)


def ranking_tie(task: str) -> str:
    from .normalise import TIE

    return f"{TIE[task]:g}{' dB' if task == 'restoration' else ''}"


def _located(spec, graph: Graph):
    spec._folder = graph.path.parent.resolve()
    spec.model.file = graph.path.name
    return spec


def _probe_image(image: ImageVolume) -> ImageVolume:
    """The middle slice, at most :data:`PROBE_SIDE` pixels a side: the probe and the ranking run the model
    up to a dozen times on the CPU, and a dynamic graph would otherwise see a whole 4000x3000 photo each time."""
    import cv2

    plane = image.slice(image.n_slices // 2)
    h, w = plane.shape[:2]
    f = PROBE_SIDE / max(h, w)
    if f < 1.0:
        plane = cv2.resize(plane, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    if image.n_slices == 1 and f >= 1.0:
        return image
    return ImageVolume(plane[None] if plane.ndim == 3 else plane, modality=image.modality, window=image.window)


def _sample_image(sample: str | Path, max_pixels: int | None) -> ImageVolume:
    from ...io import read_image

    return read_image(sample, max_pixels=max_pixels)


def _tensor_hw(t: np.ndarray, layout: str) -> tuple[int, int]:
    return (t.shape[2], t.shape[3]) if layout == "NCHW" else (t.shape[1], t.shape[2])


def _input_fields(inp: InputGuess, resize: str, size: list[int] | None) -> dict[str, Any]:
    f: dict[str, Any] = {"name": inp.tensor.name, "layout": inp.layout,
                         "color": "gray" if inp.channels == 1 else "rgb", "dtype": inp.dtype, "resize": resize}
    if inp.fixed:
        f["size"] = [inp.height, inp.width]
    elif size:
        f["size"] = list(size)
    if inp.multiple_of > 1:
        f["multiple_of"] = inp.multiple_of
    return f


def _run(graph: Graph, inp: InputGuess, image: ImageVolume, fields: dict[str, Any]
         ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    spec = spec_from_manifest(probe_manifest(fields))
    plane = prepare(spec, inp, image)
    assert plane.tensor is not None  # the importer's probe specs never tile: one tensor per plane
    try:
        return graph.run(inp.tensor.name, plane.tensor), plane.tensor
    except _ort_errors() as exc:
        raise ImportRefused(f"the model fails on a {list(plane.tensor.shape)} input: {exc}",
                            path=graph.path) from exc


def _geometry(og: OutputGuess, inp: InputGuess, hints: Hints, meta_size: list[int] | None,
              image: ImageVolume, has_sample: bool) -> tuple[dict[str, Any], list[Decision]]:
    """``input.resize`` (+ size, tile, pad_value, luma) by task."""
    d: list[Decision] = []
    size = inp.fixed_size or meta_size
    if inp.fixed:
        d.append(Decision("input.size", size, "fixed in the graph"))
    elif meta_size:
        d.append(Decision("input.size", size, f"Ultralytics metadata imgsz {meta_size}"))
    task = og.task
    if task == "detection":
        if size is None:
            m = inp.multiple_of
            size = [-(-640 // m) * m] * 2
            d.append(Decision("input.size", size, "dynamic detector: the usual 640 input", True))
        fmt = og.output.get("format")
        if fmt == "boxes_scores":
            resize, why, weak = "stretch", "SSD-style boxes + scores models take the image stretched", True
        elif fmt == "yolox":
            resize, why, weak = "letterbox_topleft", "YOLOX pads bottom-right with 114", True
        else:
            resize, why, weak = "letterbox", ("Ultralytics pads a centred letterbox with 114" if hints.family ==
                                              "ultralytics" else "YOLO exporters use a centred 114 letterbox"), \
                hints.family != "ultralytics"
        f = _input_fields(inp, resize, size)
        if resize != "stretch":
            f["pad_value"] = 114
        d.append(Decision("input.resize", resize, why, weak))
        return f, d
    if task == "classification":
        if size is None:
            size = [224, 224]
            d.append(Decision("input.size", size, "dynamic classifier: the usual 224 input", True))
        d.append(Decision("input.resize", "stretch", "a classifier sees the whole image at its input size"))
        return _input_fields(inp, "stretch", size), d
    if task == "segmentation":
        if inp.fixed:
            d.append(Decision("input.resize", "stretch", "fixed graph size: the image is resized to it and the "
                                                         "mask resized back"))
            return _input_fields(inp, "stretch", size), d
        d.append(Decision("input.resize", "none", f"dynamic dims: the whole image, padded to a multiple of "
                                                  f"{inp.multiple_of}"))
        return _input_fields(inp, "none", None), d
    # restoration: tiles at the graph's size keep the pixels 1:1
    scale = og.output.get("scale", 1)
    fixed = inp.fixed_size
    if fixed is not None and min(fixed) < 8:  # too small to tile: the image is resized to it
        f = _input_fields(inp, "stretch", fixed)
        d.append(Decision("input.resize", "stretch", f"fixed graph size {fixed}: too small for tiles", True))
    elif fixed is not None:
        f = _input_fields(inp, "tile", fixed)
        overlap = int(min(32, min(fixed) // 4))
        f["tile"] = {"size": int(fixed[0]) if fixed[0] == fixed[1] else list(fixed), "overlap": overlap}
        d.append(Decision("input.resize", "tile", f"fixed graph size {fixed}: overlapping tiles keep pixels 1:1 "
                                                  f"(overlap {overlap})"))
    else:
        f = _input_fields(inp, "none", None)
        d.append(Decision("input.resize", "none", "dynamic dims: the whole image at its own size"))
    if inp.channels == 1:
        color_sample = image.is_color
        if has_sample and color_sample:
            f["color"] = "luma"
            d.append(Decision("input.color", "luma", "a 1-channel restoration model and a colour sample: the Y of "
                                                     "YCbCr is restored, chroma carried over"))
        elif not has_sample and scale > 1:
            f["color"] = "luma"
            d.append(Decision("input.color", "luma", "a 1-channel super-resolution model: usually trained on Y of "
                                                     "YCbCr (gray images work the same)", True))
    return f, d


def _labels(og: OutputGuess, manifest: dict[str, Any], given: list[str] | None, hints: Hints,
            decisions: list[Decision]) -> list[str]:
    n = og.n_classes
    task = og.task
    if task == "restoration":
        return []
    if task == "segmentation" and manifest["output"].get("layout") == "NHW":
        n = None
    labels, why, weak = None, "", False
    if given is not None:
        if n is not None and len(given) != n:
            raise WorkbenchError(f"--labels: {len(given)} labels, the model outputs {n} classes")
        labels, why = given, "from --labels"
    elif hints.labels is not None and (n is None or len(hints.labels) == n):
        labels, why = hints.labels, f"graph metadata {hints.labels_key!r}"
    elif hints.labels is not None:
        decisions.append(Decision("output.labels", None, f"metadata {hints.labels_key!r} has "
                                  f"{len(hints.labels)} labels, the model {n} classes: ignored", True))
    if labels is None and n is not None:
        known = guess_label_set(task, n)
        if known is not None:
            labels, why, weak = known[1], f"{known[0]}: the class count suggests it", True
    out = manifest["output"]
    if task == "segmentation":
        multi = out.get("multi_label", False) or (n == 1)
        if labels is None:
            count = n or 2
            if multi:
                labels = [f"class {i + 1}" for i in range(count)] if count > 1 else ["foreground"]
            else:
                labels = ["background"] + [f"class {i}" for i in range(1, count)]
            why, weak = "class names cannot be read from the graph; edit output.classes", True
        out["classes"] = [{"name": s} for s in labels]
        decisions.append(Decision("output.classes", labels, why, weak))
        return labels
    if labels is None and task == "detection" and n:
        # the decoder needs the class count when a tensor has fewer candidates than columns
        labels, why, weak = [f"class {i}" for i in range(n)], f"none in the graph: {n} placeholder names", True
    if labels is None:
        decisions.append(Decision("output.labels", None, f"none in the graph ({n} classes shown as 'class N'); "
                                                         "give --labels FILE", True))
        return []
    out["labels"] = list(labels)
    decisions.append(Decision("output.labels", labels, why, weak))
    if task == "detection" and out.get("format") == "boxes_scores" and labels and \
            labels[0].lower() in ("background", "__background__", "bg") and "background_class" not in out:
        out["background_class"] = 0
        decisions.append(Decision("output.background_class", 0, f"label 0 is {labels[0]!r}"))
    return list(labels)
