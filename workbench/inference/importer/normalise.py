"""Choosing the input normalisation (and RGB vs BGR) by running the candidates on a sample.

Candidates: ``[0,1]`` (x/255, or x/65535 for a 16-bit sample), ImageNet mean/std, ``[-1,1]``, raw values,
per-image z-score, min-max and 1-99 percentile to [0,1] (scans); each in RGB and BGR for colour models.
Every candidate goes through the engine's own preprocessing and decoder; the criterion depends on the task:

* classification: confidence, the largest of the normalised class probabilities;
* segmentation: the fraction of pixels classified with probability >= 0.9; a candidate that gives one
  class on every pixel ranks last (a sample shows some structure);
* for both, confidence rewards saturation (an input 255x too large drives every logit far out and the
  probabilities to exactly 0/1): a candidate whose logits exceed :data:`SATURATED` ranks after the
  unsaturated ones (1 is subtracted from its score), as training rarely produces logits that large;
* detection: score mass, the sum of the scores of the detections kept after NMS;
* restoration: fidelity, the PSNR of the restored image against the input (super-resolution: the
  result averaged back down to the input size).

Scores within :data:`TIE` of the best are a tie; ties go to the conventional order (exporter metadata
first, then the order above, RGB before BGR), and a tie between different normalisations makes the
choice a weak guess.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ...core.errors import WorkbenchError
from ...core.image import ImageVolume
from ..decoders import DecodeContext, decoder_for
from .graph import Graph
from .guess import activation_probs
from .probe import InputGuess, prepare, spec_from_manifest, supports_standardize

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
TIE = {"classification": 0.02, "segmentation": 0.02, "detection": 0.02, "restoration": 0.5}
CRITERIA = {"classification": "confidence (largest class probability)",
            "segmentation": "fraction of pixels classified with probability >= 0.9",
            "detection": "score mass (sum of the kept detections' scores)",
            "restoration": "fidelity (PSNR of the result against the input, dB)"}
SATURATED = 50.0
ORDER = ("unit", "imagenet", "signed", "raw", "zscore", "minmax", "robust")


@dataclass
class Candidate:
    """One normalisation candidate and its score on the sample."""

    key: str
    color: str
    label: str
    intensity: dict[str, Any]
    range: list[float] | None = None
    score: float = float("nan")
    note: str = ""
    result: Any = None  # the decoded result on the sample (the GUI shows it)

    def line(self) -> str:
        score = "failed" if math.isnan(self.score) else f"{self.score:.4g}"
        return f"{self.label:<22} {score}{'  ' + self.note if self.note else ''}"


@dataclass
class Ranking:
    criterion: str
    candidates: list[Candidate] = field(default_factory=list)  # best first
    chosen: Candidate | None = None
    ties: list[Candidate] = field(default_factory=list)

    @property
    def weak(self) -> bool:
        return any(c.key != self.chosen.key for c in self.ties) if self.chosen else True


def candidates(channels: int, dtype: str, image: ImageVolume | None, prior: list[str]) -> list[Candidate]:
    """The candidate list in the conventional order (``prior`` keys first)."""
    if dtype == "uint8":
        return [Candidate("raw", "rgb" if channels == 3 else "gray", "raw 0-255 (uint8 input)", {}, [0, 255])]
    gray = channels == 1
    mean = [float(np.mean(IMAGENET_MEAN))] if gray else IMAGENET_MEAN
    std = [float(np.mean(IMAGENET_STD))] if gray else IMAGENET_STD
    # the full scale of the sample's type: 8-bit photos and 16-bit scans both map to [0, 1]
    kind = np.dtype(image.data.dtype) if image is not None else np.dtype(np.uint8)
    top = 65535.0 if kind == np.uint16 else 255.0
    bits = "" if top == 255.0 else " (16-bit)"
    Entry = tuple[str, dict[str, Any], list[float] | None]  # label, intensity fields, output range
    base: dict[str, Entry] = {
            "unit": (f"[0,1]{bits}", {"scale": 1 / top}, [0.0, 1.0]),
            "imagenet": ("ImageNet mean/std", {"scale": 1 / top, "mean": mean, "std": std}, None),
            "signed": (f"[-1,1]{bits}", {"scale": 2 / top, "offset": -1.0}, [-1.0, 1.0]),
            "raw": ("raw 0-255" if top == 255.0 else "raw values", {}, [0.0, top]),
            "minmax": ("min-max [0,1]", {"percentile": [0.0, 100.0]}, [0.0, 1.0]),
            "robust": ("percentile 1-99", {"percentile": [1.0, 99.0]}, [0.0, 1.0])}
    if supports_standardize():
        base["zscore"] = ("per-image z-score", {"standardize": True}, None)
    elif image is not None:
        plane = image.slice(image.n_slices // 2).astype(np.float64)
        if plane.ndim == 3 and not gray:
            m = [float(v) for v in plane[..., :3].reshape(-1, 3).mean(axis=0)]
            s = [max(float(v), 1e-6) for v in plane[..., :3].reshape(-1, 3).std(axis=0)]
        else:
            m, s = [float(plane.mean())], [max(float(plane.std()), 1e-6)]
        base["zscore"] = ("z-score (this sample)", {"mean": [round(v, 4) for v in m],
                                                    "std": [round(v, 4) for v in s]}, None)
    keys = [k for k in prior if k in base] + [k for k in ORDER if k in base and k not in prior]
    colors = ["gray"] if gray else (["bgr", "rgb"] if "bgr" in prior else ["rgb", "bgr"])
    out = []
    for k in keys:
        for color in colors:
            label, intensity, rng = base[k]
            out.append(Candidate(k, color, f"{label} {color.upper()}" if not gray else label, dict(intensity),
                                 list(rng) if rng is not None else None))
    return out


def _score(task: str, spec, graph: Graph, inp: InputGuess, image: ImageVolume) -> tuple[float, str, Any]:
    plane = prepare(spec, inp, image)
    assert plane.tensor is not None  # the importer's specs never tile: one tensor per plane
    outputs = graph.run(inp.tensor.name, plane.tensor)
    ctx = DecodeContext(spec, image, plane, plane.tensor)
    decoder = decoder_for(spec)
    out = spec.output
    if task == "classification":
        scores = decoder.decode(outputs, ctx)
        p = np.clip(scores, 0, None)
        p = p / p.sum() if p.sum() > 0 else p
        score = float(p.max()) if p.size else 0.0
        raw = next(iter(outputs.values())) if out.name is None else outputs[out.name]
        if out.activation != "none" and float(np.abs(raw).max()) > SATURATED:
            return score - 1.0, f"saturated (|logit| up to {float(np.abs(raw).max()):.3g})", scores
        return score, "", scores
    if task == "segmentation":
        mask = decoder.decode(outputs, ctx)
        if out.layout == "NHW":
            return 1.0, "", mask
        chw = decoder._chw(outputs[out.name] if out.name else next(iter(outputs.values())), ctx)
        probs = activation_probs(chw, out.activation)
        if probs.shape[0] == 1 or out.multi_label:
            conf = np.maximum(probs, 1 - probs).min(axis=0)
        else:
            conf = probs.max(axis=0)
        score = float(np.mean(conf >= 0.9))
        plane_values = image.slice(image.n_slices // 2)
        if np.unique(mask).size < 2 and float(np.ptp(plane_values)) > 0:
            return score - 2.0, "one class everywhere", mask
        if out.activation != "none" and float(np.abs(chw).max()) > SATURATED:
            return score - 1.0, f"saturated (|logit| up to {float(np.abs(chw).max()):.3g})", mask
        return score, "", mask
    if task == "detection":
        dets = decoder.decode(outputs, ctx)
        return float(sum(d.score for d in dets)), f"{len(dets)} detections", dets
    restored = decoder.decode(outputs, ctx)
    src = image.slice(image.n_slices // 2).astype(np.float32)
    got = restored.astype(np.float32)
    if got.shape[:2] != src.shape[:2]:
        got = cv2.resize(got, (src.shape[1], src.shape[0]), interpolation=cv2.INTER_AREA)
    if got.ndim != src.ndim:
        got = got.mean(axis=2) if got.ndim == 3 else got
        src = src.mean(axis=2) if src.ndim == 3 else src
    peak = max(float(np.abs(src).max()), 1e-6)
    mse = float(np.mean((got - src) ** 2))
    return (99.0 if mse < 1e-12 else min(99.0, 10 * math.log10(peak * peak / mse))), "", restored


def rank(manifest: dict[str, Any], graph: Graph, inp: InputGuess, image: ImageVolume,
         prior: list[str]) -> Ranking:
    """Run every candidate on ``image`` and rank them by the task's criterion (see the module doc)."""
    task = manifest["task"]
    ranking = Ranking(CRITERIA[task])
    for cand in candidates(inp.channels, inp.dtype, image, prior):
        m = apply_candidate(manifest, cand, for_ranking=True)
        try:
            spec = spec_from_manifest(m)
            cand.score, cand.note, cand.result = _score(task, spec, graph, inp, image)
        except WorkbenchError as exc:
            cand.note = f"failed: {exc}"
        ranking.candidates.append(cand)
    return finish_ranking(ranking, TIE[task])


def finish_ranking(ranking: Ranking, tie: float) -> Ranking:
    """Sort the scored candidates best first (failed ones last, ties in proposal order), mark the near ties
    (within ``tie`` of the best) and choose the first proposed of them. Shared by the 2-D and 3-D importers."""
    order = {id(c): i for i, c in enumerate(ranking.candidates)}
    valid = [c for c in ranking.candidates if not math.isnan(c.score)]
    ranking.candidates.sort(key=lambda c: (math.isnan(c.score), -(c.score if not math.isnan(c.score) else 0),
                                           order[id(c)]))
    if valid:
        best = max(c.score for c in valid)
        ranking.ties = [c for c in valid if c.score >= best - tie]
        ranking.chosen = min(ranking.ties, key=lambda c: order[id(c)])
    return ranking


def apply_candidate(manifest: dict[str, Any], cand: Candidate, *, for_ranking: bool = False) -> dict[str, Any]:
    """A copy of ``manifest`` with the candidate's colour, intensity (and restoration range)."""
    import copy

    m = copy.deepcopy(manifest)
    inp = m["input"]
    if inp.get("color") != "luma":
        inp["color"] = cand.color
    inp["intensity"] = dict(cand.intensity)
    if m["task"] == "restoration":
        if cand.range is not None:
            m["output"]["range"] = list(cand.range)
        else:
            m["output"].pop("range", None)
    if for_ranking and inp.get("resize") == "tile":
        # one whole-image run per candidate is enough to rank them: the tile's graph size, stretched
        inp["resize"] = "stretch"
        inp.pop("tile", None)
    return m
