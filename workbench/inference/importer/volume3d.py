"""Importing a volumetric (3-D) model: a graph whose image input is 5-D, ``[N, C, D, H, W]`` or
``[N, D, H, W, C]``.

The same decisions as for 2-D models (:mod:`.propose`), with the 3-D engine's fields (docs/PLUGINS.md):

* **layout** ``NCDHW`` / ``NDHWC`` from the dim of size 1 or 3 (channels first or last);
* **tiles**: ``resize: tile`` always -- fixed graph dims are the tile size (voxels stay 1:1), dynamic dims
  get :data:`DEFAULT_TILE` rounded up to the ``multiple_of`` the graph needs (probed on small zero
  volumes), overlap a quarter of the tile per axis (MONAI's sliding-window default); on a volume smaller
  than a dynamic tile the engine shrinks the tile, so the whole volume is one tile;
* **task**: segmentation only (the 3-D engine's one task): a 5-D output with the input's spatial size
  (channels first or last; logits or probabilities from the values on the run) or 4-D integer class ids;
* **normalisation**: the volume candidates (CT windows for CT samples, per-volume z-score, percentiles,
  min-max, raw, the type's full range) run on a centred crop of the sample (one tile) with the statistics
  of the whole volume, as the engine computes them, and ranked by the fraction of voxels classified with
  probability >= 0.9 (one class everywhere and saturated logits rank last, as in 2-D);
* ``input.spacing`` and ``input.orientation`` are not in an ONNX graph: left out / ``display``, said so.

The crop is what the preview, the candidate pictures and the smoke run of the written plugin run on:
a 3-D network on a whole CT on the CPU takes minutes, one tile a second.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...core.errors import WorkbenchError
from ...core.image import ImageVolume
from ..session import _ort_errors
from .graph import Graph, ImportRefused, TensorInfo
from .guess import Decision, OutputGuess, _seg_activation, activation_probs
from .normalise import SATURATED, TIE, Candidate, Ranking, finish_ranking
from .probe import DTYPES, _probe_side, first_running_multiple, spec_from_manifest

DEFAULT_TILE = 96  # the usual sliding-window patch of 3-D U-Nets (MONAI examples, nnU-Net 3d_lowres)
PROBE_MULTIPLES = (1, 2, 4, 8, 16, 32, 64)
SYNTHETIC_SHAPE = (32, 64, 64)
CRITERION = "fraction of voxels classified with probability >= 0.9"


@dataclass
class VolumeInput:
    """What the graph says about its 5-D input (the attribute names of the 2-D :class:`~.probe.InputGuess`)."""

    tensor: TensorInfo
    layout: str
    channels: int
    dims: tuple[int | None, int | None, int | None]  # (d, h, w); None: dynamic
    dtype: str
    layout_why: str
    layout_weak: bool
    multiple_of: int = 1
    multiple_why: str = ""

    @property
    def fixed(self) -> bool:
        return all(d is not None for d in self.dims)

    @property
    def height(self) -> int | None:
        return self.dims[1]

    @property
    def width(self) -> int | None:
        return self.dims[2]

    def shape(self, d: int, h: int, w: int) -> list[int]:
        c = self.channels
        return [1, c, d, h, w] if self.layout == "NCDHW" else [1, d, h, w, c]


def guess_volume_input(graph: Graph, tensor: TensorInfo) -> VolumeInput:
    """Layout, channels, fixed dims and dtype of a 5-D input.

    Raises
    ------
    ImportRefused
        A channel count other than 1 or 3 (multi-modal models need one volume per channel), or a dtype no
        volume maps to.
    """
    dtype = tensor.dtype.name if tensor.dtype is not None else None
    if dtype not in DTYPES:
        raise ImportRefused(f"input {tensor.name!r} has type {tensor.type}, not an image tensor", path=graph.path)
    s = tensor.shape
    d1, d4 = s[1], s[4]
    if d1 in (1, 3) and d4 not in (1, 3):
        layout, c, why, weak = "NCDHW", d1, f"5-D input, dim 1 is {d1} (channels first)", False
    elif d4 in (1, 3) and d1 not in (1, 3):
        layout, c, why, weak = "NDHWC", d4, f"5-D input, dim 4 is {d4} (channels last)", False
    elif d1 in (1, 3) and d4 in (1, 3):
        layout, c, why, weak = "NCDHW", d1, f"5-D input, dims 1 and 4 are both {d1}/{d4}; channels first assumed", \
            True
    elif d1 is None and d4 is None:
        layout, c, why, weak = "NCDHW", 1, "5-D input with a dynamic channel dim; NCDHW with 1 channel assumed", True
    else:
        found = d1 if d1 is not None and (d4 is None or d1 < d4) else d4
        raise ImportRefused(f"input {tensor.name!r} {tensor.declared}: {found} channels; a volume gives 1 (gray) or 3 "
                            "channels (multi-modal models, e.g. 4 MR sequences, need one volume per channel and "
                            "cannot be imported)", path=graph.path)
    dims = (s[2], s[3], s[4]) if layout == "NCDHW" else (s[1], s[2], s[3])
    return VolumeInput(tensor, layout, int(c), dims, dtype, why, weak)


def probe_multiple(graph: Graph, inp: VolumeInput) -> None:
    """The smallest ``multiple_of`` the dynamic dims run with (sets ``inp.multiple_of``).

    Raises
    ------
    ImportRefused
        No probed size runs.
    """
    if inp.fixed:
        return
    first_running_multiple(graph, inp, PROBE_MULTIPLES, "volume size",
                           lambda m: [d if d is not None else _probe_side(m, 16) + (2 * m if i == 2 else 0)
                                      for i, d in enumerate(inp.dims)])


def synthetic_volume(shape: tuple[int, int, int] = SYNTHETIC_SHAPE) -> ImageVolume:
    """A smooth uint8 phantom (two overlapping ellipsoids on a ramp) when no sample volume is given."""
    z, y, x = np.meshgrid(*(np.linspace(-1, 1, n, dtype=np.float32) for n in shape), indexing="ij")
    body = (z / 0.8) ** 2 + (y / 0.7) ** 2 + (x / 0.6) ** 2 < 1
    organ = (z / 0.4) ** 2 + ((y - 0.2) / 0.3) ** 2 + ((x + 0.1) / 0.3) ** 2 < 1
    vol = 20 + 30 * (x + 1) + 100 * body + 80 * organ
    return ImageVolume(np.clip(vol, 0, 255).astype(np.uint8), spacing=(2.0, 1.0, 1.0))


# -- geometry -------------------------------------------------------------------------------------
def tile_geometry(inp: VolumeInput, image: ImageVolume) -> tuple[dict[str, Any], list[Decision]]:
    """``input.resize`` / ``tile`` (or ``stretch`` when a fixed tile does not fit the sample)."""
    m = inp.multiple_of
    size = [d if d is not None else -(-max(DEFAULT_TILE, m) // m) * m for d in inp.dims]
    overlap = [s // 4 for s in size]
    shown = "x".join(map(str, size))
    d: list[Decision] = []
    vol = image.data.shape[:3]
    if inp.fixed and any(v < s for v, s in zip(vol, size)):
        d.append(Decision("input.resize", "stretch", f"the graph fixes {shown} (z y x) and the sample "
                          f"({'x'.join(map(str, vol))}) is smaller along an axis: resampled to it (order 1) "
                          "and the labels back; use tile for volumes larger than the graph", True))
        return {"resize": "stretch", "size": size}, d
    if inp.fixed:
        why = f"fixed graph size {shown} (z y x): overlapping tiles keep the voxels 1:1"
    else:
        why = (f"dynamic dims: tiles of {shown} (the usual 3-D patch, a multiple of {m}) bound the memory; a "
               "smaller volume is one tile")
    d.append(Decision("input.resize", "tile", why, weak=not inp.fixed))
    d.append(Decision("input.tile.size", size, "the graph's fixed dims" if inp.fixed else
                      f"{DEFAULT_TILE} rounded up to multiple_of {m} on the dynamic dims", weak=not inp.fixed))
    d.append(Decision("input.tile.overlap", overlap, "a quarter of the tile per axis (blended)"))
    return {"resize": "tile", "tile": {"size": size, "overlap": overlap}}, d


def centre_crop(image: ImageVolume, size: list[int]) -> ImageVolume:
    """The centred ``size`` (z, y, x) part of ``image`` (the whole axis where it is shorter)."""
    box = tuple(slice(max(0, (n - s) // 2), max(0, (n - s) // 2) + min(n, s)) for n, s in zip(image.data.shape, size))
    if all(b.stop - b.start == n for b, n in zip(box, image.data.shape)):
        return image
    data = np.ascontiguousarray(image.data[box])
    return ImageVolume(data, spacing=image.spacing, window=image.window, modality=image.modality,
                       spacing_known=image.spacing_known, path=image.path)


# -- candidates -----------------------------------------------------------------------------------
def _looks_ct(image: ImageVolume) -> bool:
    return image.is_ct or (image.data.dtype.kind in "if" and float(np.min(image.data)) <= -500)


def volume_candidates(channels: int, image: ImageVolume | None) -> tuple[list[Candidate], str]:
    """Candidate normalisations for a volume in the conventional order, and why that order."""
    color = "gray" if channels == 1 else "rgb"
    kind = np.dtype(image.data.dtype) if image is not None else np.dtype(np.uint8)
    base: dict[str, tuple[str, dict[str, Any]]] = {
        "ct_wide": ("CT window -1000..1000", {"window": [-1000.0, 1000.0]}),
        "ct_soft": ("CT soft tissue -160..240", {"window": [-160.0, 240.0]}),
        "zscore": ("per-volume z-score", {"standardize": True}),
        "robust": ("percentile 0.5-99.5", {"percentile": [0.5, 99.5]}),
        "minmax": ("min-max [0,1]", {"percentile": [0.0, 100.0]}),
        "unit": ("[0,1] of the type" + (" (16-bit)" if kind == np.uint16 else ""),
                 {"scale": 1 / (65535.0 if kind == np.uint16 else 255.0)}),
        "raw": ("raw values", {}),
    }
    if image is not None and _looks_ct(image):
        order, why = ["ct_wide", "ct_soft", "zscore", "robust", "minmax", "raw"], \
            "a CT volume: a fixed HU window to [0, 1] is the MONAI convention"
    else:
        order, why = ["zscore", "robust", "minmax", "raw"], "per-volume z-score, the nnU-Net convention for MR and " \
                                                           "microscopy"
        if kind.kind == "u":
            order.insert(3, "unit")
    return [Candidate(k, color, base[k][0], dict(base[k][1])) for k in order], why


# -- runs on the crop -----------------------------------------------------------------------------
def _manifest_input(inp: VolumeInput, geometry: dict[str, Any], cand: Candidate) -> dict[str, Any]:
    f: dict[str, Any] = {"name": inp.tensor.name, "layout": inp.layout, "color": cand.color, "dtype": inp.dtype,
                         **geometry}
    if inp.multiple_of > 1:
        f["multiple_of"] = inp.multiple_of
    f["intensity"] = dict(cand.intensity)
    return f


def crop_tensor(spec, inp: VolumeInput, image: ImageVolume, crop: ImageVolume) -> np.ndarray:
    """The crop through the engine's own 3-D preprocessing (statistics of the whole ``image``)."""
    from ..preprocess import intensity_map
    from ..volume import _to_model_colour, fill_tile

    stats = _to_model_colour(image.data, spec.input.color)
    imap = intensity_map(spec, image, stats, colour=stats.ndim == 4)
    data = _to_model_colour(crop.data, spec.input.color)
    m = inp.multiple_of
    if spec.input.resize == "stretch":
        from ..volume import resample_linear

        dhw = [int(d) for d in inp.dims]  # type: ignore[arg-type]
        data = resample_linear(data, tuple(dhw))  # type: ignore[arg-type]
    else:
        dhw = [d if d is not None else -(-n // m) * m for d, n in zip(inp.dims, data.shape[:3])]
    tensor = np.empty(inp.shape(*dhw), dtype=np.dtype(inp.dtype))
    fill = [imap.apply_scalar(spec.input.pad_value, c) for c in range(imap.a.shape[0])]
    fill_tile(tensor[0], data, (0, 0, 0), imap, fill, inp.layout)
    return tensor


def guess_volume_output(graph: Graph, outs: dict[str, np.ndarray], tensor: np.ndarray, inp: VolumeInput
                        ) -> tuple[OutputGuess, np.ndarray]:
    """The per-voxel output of a run on ``tensor`` (segmentation), and its ``(C, d, h, w)`` scores.

    Raises
    ------
    ImportRefused
        No output has the input's spatial size (a 3-D classifier or detector: the 3-D engine segments).
    """
    dhw = tuple(tensor.shape[2:]) if inp.layout == "NCDHW" else tuple(tensor.shape[1:4])
    for name, arr in outs.items():
        a = arr[0] if arr.ndim in (4, 5) and arr.shape[0] == 1 else arr
        if a.ndim == 3 and arr.dtype.kind in "iu" and a.shape == dhw:
            g = OutputGuess("segmentation", {}, n_classes=int(a.max()) + 1 if a.size else 1)
            g.add("task", "segmentation", f"output {name!r} {list(arr.shape)}: integer class ids per voxel",
                  write=False)
            g.add("output.name", name, "the per-voxel output" + (" among several" if len(outs) > 1 else ""))
            g.add("output.layout", "NDHW", f"integer output of type {arr.dtype}: class ids already")
            return g, a
        if a.ndim != 4 or arr.dtype.kind != "f":
            continue
        first, last = a.shape[1:] == dhw, a.shape[:3] == dhw
        if first and (not last or inp.layout == "NCDHW"):  # both: a cube with as many channels; as the input
            layout, chw = "NCDHW", a
        elif last:
            layout, chw = "NDHWC", np.moveaxis(a, -1, 0)
        else:
            continue
        g = OutputGuess("segmentation", {}, n_classes=int(chw.shape[0]))
        g.add("task", "segmentation", f"output {name!r} {list(arr.shape)} for a {'x'.join(map(str, dhw))} input: "
                                      "a per-voxel map (3-D models import as segmentation)", write=False)
        g.add("output.name", name, "the per-voxel output" + (" among several" if len(outs) > 1 else ""))
        g.add("output.layout", layout, "channels first" if layout == "NCDHW" else "channels last")
        _seg_activation(g, chw.astype(np.float32))
        return g, chw
    shapes = ", ".join(f"{n!r} {list(a.shape)}" for n, a in outs.items())
    raise ImportRefused(f"no output is a per-voxel map of the input size (outputs on a {'x'.join(map(str, dhw))} "
                        f"input: {shapes}); 3-D models are imported for segmentation only", path=graph.path)


def _score(g: OutputGuess, chw: np.ndarray) -> tuple[float, str, np.ndarray]:
    """The segmentation criterion of :mod:`.normalise` on a 3-D map: ``(score, note, class ids)``."""
    out = g.output
    if out.get("layout") == "NDHW":
        ids = chw.astype(np.uint16)
        return (1.0 if np.unique(ids).size > 1 else -1.0), "", ids
    act = out.get("activation", "none")
    probs = activation_probs(chw.astype(np.float32), act)
    if probs.shape[0] == 1 or out.get("multi_label"):
        conf = np.maximum(probs, 1 - probs).min(axis=0)
        ids = (probs > float(out.get("threshold", 0.5))).astype(np.uint16)
        ids = ids[0] if ids.shape[0] == 1 else np.argmax(probs, axis=0).astype(np.uint16) + 1
    else:
        conf = probs.max(axis=0)
        ids = np.argmax(probs, axis=0).astype(np.uint16)
    score = float(np.mean(conf >= 0.9))
    if np.unique(ids).size < 2:
        return score - 2.0, "one class everywhere", ids
    peak = float(np.abs(chw).max())
    if act != "none" and peak > SATURATED:
        return score - 1.0, f"saturated (|logit| up to {peak:.3g})", ids
    return score, "", ids


@dataclass
class VolumeRun:
    """One candidate's run on the crop."""

    guess: OutputGuess
    chw: np.ndarray
    tensor: np.ndarray


def run_candidate(graph: Graph, inp: VolumeInput, geometry: dict[str, Any], cand: Candidate, image: ImageVolume,
                  crop: ImageVolume) -> VolumeRun:
    """Run the graph on the crop normalised by ``cand``; the output rules applied to what it gives.

    Raises
    ------
    ImportRefused
        The graph fails on the tensor, or no output is a per-voxel map.
    """
    manifest = {"schema_version": 1, "id": "import-probe", "name": "import probe", "version": "0",
                "task": "segmentation", "model": {"file": "model.onnx", "sha256": "0" * 64},
                "input": _manifest_input(inp, geometry, cand), "output": {"classes": [{"name": "a"}, {"name": "b"}]}}
    spec = spec_from_manifest(manifest)
    tensor = crop_tensor(spec, inp, image, crop)
    try:
        outs = graph.run(inp.tensor.name, tensor)
    except _ort_errors() as exc:
        raise ImportRefused(f"the model fails on a {list(tensor.shape)} input: {exc}", path=graph.path) from exc
    g, chw = guess_volume_output(graph, outs, tensor, inp)
    d, h, w = crop.data.shape[:3] if spec.input.resize != "stretch" else inp.dims
    chw = chw[..., :d, :h, :w] if chw.ndim == 4 else chw[:d, :h, :w]
    return VolumeRun(g, chw, tensor)


def rank_volume(graph: Graph, inp: VolumeInput, geometry: dict[str, Any], cands: list[Candidate],
                image: ImageVolume, crop: ImageVolume) -> Ranking:
    """Every candidate on the crop, best first (ties go to the conventional order, as in 2-D)."""
    ranking = Ranking(CRITERION)
    for cand in cands:
        try:
            run = run_candidate(graph, inp, geometry, cand, image, crop)
            cand.score, cand.note, ids = _score(run.guess, run.chw)
            if ids.shape != crop.data.shape[:3]:  # resize: stretch ran on the model grid
                from ..volume import resample_nearest

                ids = resample_nearest(ids, crop.data.shape[:3])
            cand.result = ids[ids.shape[0] // 2]  # the middle slice: what the dialog pictures
        except WorkbenchError as exc:
            cand.note = f"failed: {exc}"
        ranking.candidates.append(cand)
    return finish_ranking(ranking, TIE["segmentation"])


def read_sample(sample: str | Path | ImageVolume | None, max_pixels: int | None
                ) -> tuple[ImageVolume | None, Path | None]:
    """The sample volume (a NIfTI, a DICOM series folder or file, a stack) and its path."""
    if sample is None:
        return None, None
    if isinstance(sample, ImageVolume):
        src = sample.path
        return sample, (src if src is not None and src.is_file() else None)
    from ...io import read_image

    return read_image(sample, max_pixels=max_pixels), Path(sample)


def spacing_decisions(image: ImageVolume, has_sample: bool) -> list[Decision]:
    """``input.spacing`` / ``input.orientation``: not in the graph, said so."""
    sp = f" (the sample's voxels are {' x '.join(f'{s:g}' for s in image.spacing)} mm)" \
        if has_sample and image.spacing_known else ""
    return [Decision("input.spacing", None, "the model's voxel size is not in an ONNX graph: left out, the model "
                     f"sees the volume at its own voxel size{sp}; set [dz, dy, dx] if it was trained on "
                     "resampled data", True),
            Decision("input.orientation", "display", "the reader's display orientation (set stored if the model "
                     "was trained on the file's voxel order, e.g. nnU-Net on NIfTI)", True)]
