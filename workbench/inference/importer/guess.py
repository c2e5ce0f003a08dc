"""Task and output rules of the importer: from output shapes, names and the values of one run.

Each rule returns an :class:`OutputGuess` (the ``task``, the ``output:`` fields and one
:class:`Decision` per field). The order the rules are tried in: a boxes + scores pair, a dense map with the
input's spatial size (or a fixed ratio of it: segmentation or restoration, told apart by fidelity to the
input), a YOLO-style tensor, a score vector (classification).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..decoders import sigmoid, softmax
from .exporters import Hints
from .graph import Graph, ImportRefused

SEG_NAMES = ("mask", "seg", "prob", "logit", "class", "label", "heatmap")
RESTORE_NAMES = ("sr", "super", "denois", "restor", "enhanc", "upscal", "clean", "hr", "recon")
RATIOS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2, 3, 4, 8)
YOLO_STRIDES = (8, 16, 32)
FIDELITY_DB = 30.0  # PSNR of output vs a clean ramp above which a same-size map is an image, not a class map


@dataclass
class Decision:
    """One guessed field: its value, the reason, and whether the guess is weak."""

    field: str
    value: Any
    why: str
    weak: bool = False

    def line(self) -> str:
        shown = self.value if not isinstance(self.value, list) or len(self.value) <= 8 else \
            f"[{', '.join(map(str, self.value[:5]))}, ... {len(self.value)} items]"
        return f"{'WEAK ' if self.weak else ''}{self.field} = {shown}: {self.why}"


@dataclass
class OutputGuess:
    task: str
    output: dict[str, Any]
    decisions: list[Decision] = field(default_factory=list)
    n_classes: int | None = None
    channels_out: int | None = None  # restoration

    def add(self, field_: str, value: Any, why: str, weak: bool = False, *, write: bool = True) -> None:
        if write:
            key = field_.split(".", 1)[1] if field_.startswith("output.") else None
            if key is not None:
                self.output[key] = value
        self.decisions.append(Decision(field_, value, why, weak))


def _has(name: str, words: tuple[str, ...]) -> bool:
    low = name.lower()
    return any(w in low for w in words)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    peak = max(float(np.abs(b).max()), 1e-6)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


# -- detection ----------------------------------------------------------------------------------------
def _boxes_scores(graph: Graph, outs: dict[str, np.ndarray], hw: tuple[int, int]) -> OutputGuess | None:
    boxes = [n for n, a in outs.items() if a.ndim in (2, 3) and a.shape[-1] == 4 and a.size >= 4]
    for bname in boxes:
        b = outs[bname].reshape(-1, 4)
        for sname, s in outs.items():
            if sname == bname:
                continue
            sq = s[0] if s.ndim == 3 and s.shape[0] == 1 else s
            if sq.ndim == 1:
                sq = sq[:, None]
            if sq.ndim != 2 or b.shape[0] not in sq.shape:
                continue
            rows = sq if sq.shape[0] == b.shape[0] else sq.T
            g = OutputGuess("detection", {}, n_classes=rows.shape[1])
            g.add("task", "detection", f"outputs {bname!r} {list(outs[bname].shape)} (4 coordinates per box) "
                                       f"and {sname!r} {list(s.shape)} (scores of the same boxes)", write=False)
            g.add("output.format", "boxes_scores", "an already-decoded boxes + scores pair")
            g.add("output.boxes", bname, "the output with 4 columns")
            g.add("output.scores", sname, "the output with one row per box")
            normalized = bool(np.abs(b).max() <= 1.5)
            g.add("output.normalized", normalized,
                  f"box coordinates on the run reach {np.abs(b).max():.3g} "
                  f"({'within [0, 1]: fractions of the input' if normalized else 'pixels of the input'})")
            ordered = bool(np.all(b[:, 2] >= b[:, 0]) and np.all(b[:, 3] >= b[:, 1]))
            g.add("output.box_format", "xyxy" if ordered else "cxcywh",
                  "every box has x2 >= x1 and y2 >= y1" if ordered else
                  "some boxes have x2 < x1: centre + size assumed", weak=not ordered)
            if rows.shape[1] > 1:
                sums = rows.sum(axis=1)
                if np.allclose(sums, 1.0, atol=0.02):
                    g.add("output.background_class", 0, "each box's scores sum to one (a softmax over classes "
                                                        "that includes background); column 0 taken as background",
                          weak=True)
            return g
    return None


def _yolo_cells(hw: tuple[int, int]) -> int:
    return sum((hw[0] // s) * (hw[1] // s) for s in YOLO_STRIDES)


def _yolo(graph: Graph, name: str, arr: np.ndarray, hw: tuple[int, int], hints: Hints,
          n_labels: int | None) -> OutputGuess | None:
    a = arr[0] if arr.ndim == 3 and arr.shape[0] == 1 else arr
    if a.ndim != 2 or (arr.ndim == 2 and min(a.shape) < 2):  # [1, K] is a score vector, not K candidates
        return None
    # the box + scores axis has >= 5 entries (4 coordinates + a score); when both axes could be it, the
    # shorter one is (real detectors have thousands of candidates and tens of classes)
    axes = [i for i in (0, 1) if a.shape[i] >= 5]
    if not axes or (len(axes) == 2 and a.shape[0] == a.shape[1]):
        return None
    k_axis = axes[0] if len(axes) == 1 else int(np.argmin(a.shape))
    k, n = a.shape[k_axis], a.shape[1 - k_axis]
    k_first = k_axis == 0
    rows = a.T if k_first else a
    g = OutputGuess("detection", {})
    if hints.family == "ultralytics" and hints.task == "detect":
        fmt, why, weak = "yolov8", f"Ultralytics metadata task 'detect', output {list(arr.shape)}", False
    elif n_labels is not None and k == n_labels + 4:
        fmt, why, weak = "yolov8", f"{k} = 4 box columns + {n_labels} labels (no objectness)", False
    elif n_labels is not None and k == n_labels + 5:
        fmt, why, weak = "yolov5", f"{k} = 4 box columns + objectness + {n_labels} labels", False
    elif k_first:
        fmt, why, weak = "yolov8", f"output {list(arr.shape)} is [1, 4+C, N] (the short axis first)", True
    else:
        fmt, why, weak = "yolov5", f"output {list(arr.shape)} is [1, N, 5+C] (the short axis last)", True
    if fmt == "yolov5":
        cells = _yolo_cells(hw)
        spread = float(np.percentile(np.abs(rows[:, :4]), 99))
        if n == cells and spread < 8.0:
            fmt, why = "yolox", (f"{n} rows = one per cell of strides {list(YOLO_STRIDES)} at {hw[0]}x{hw[1]}, and "
                                 f"the box columns on the run stay within {spread:.2g} (grid offsets, not pixels)")
        else:
            why += (f"; box columns on the run reach {spread:.3g} (decoded pixels, not grid offsets)")
    g.add("task", "detection", f"output {name!r} {list(arr.shape)}: one row of box + scores per candidate",
          write=False)
    g.add("output.format", fmt, why, weak)
    g.add("output.name", name, "the detection tensor" + (" among several outputs" if len(graph.outputs) > 1 else ""))
    if fmt == "yolox":
        g.add("output.strides", list(YOLO_STRIDES), "the YOLOX default strides match the row count")
    g.n_classes = k - (4 if fmt == "yolov8" else 5)
    return g


# -- dense maps ----------------------------------------------------------------------------------------
def _spatial(shape: tuple[int, ...], hw: tuple[int, int]) -> tuple[str, int, float] | None:
    """(layout, channels, ratio) when two consecutive dims are a fixed ratio of the input's (h, w)."""
    s = list(shape)
    if len(s) == 4 and s[0] == 1:
        s = s[1:]
    if len(s) != 3:
        return None
    for ratio in RATIOS:
        th, tw = hw[0] * ratio, hw[1] * ratio
        if ratio < 1:
            # strided heads round odd sizes either way; below 4 pixels it is no map
            ok = lambda a, b: a >= 4 and a in (math.floor(b), math.ceil(b))  # noqa: E731
        else:
            ok = lambda a, b: a == b  # noqa: E731
        if ok(s[1], th) and ok(s[2], tw):
            return "NCHW", s[0], ratio
        if ok(s[0], th) and ok(s[1], tw) and s[2] <= 512:
            return "NHWC", s[2], ratio
    return None


def _seg_activation(g: OutputGuess, chw: np.ndarray) -> None:
    c = chw.shape[0]
    lo, hi = float(chw.min()), float(chw.max())
    in_unit = lo >= -1e-4 and hi <= 1 + 1e-4
    if c == 1:
        if in_unit:
            g.add("output.activation", "none", f"one channel with values in [{lo:.3g}, {hi:.3g}] on the run: "
                                               "already probabilities")
        else:
            g.add("output.activation", "sigmoid", f"one channel with values in [{lo:.3g}, {hi:.3g}]: logits")
        g.add("output.threshold", 0.5, "probability 0.5")
        return
    sums = chw.sum(axis=0)
    if in_unit and np.allclose(sums, 1.0, atol=0.02):
        g.add("output.activation", "none", "per-pixel values in [0, 1] that sum to one: already probabilities")
        g.add("output.multi_label", False, "the channels sum to one: one class per pixel")
    elif in_unit:
        g.add("output.activation", "none", f"values in [{lo:.3g}, {hi:.3g}]: probabilities")
        g.add("output.multi_label", True, f"per-pixel sums range {sums.min():.3g}..{sums.max():.3g}, not one: "
                                          "independent (overlapping) classes")
        g.add("output.threshold", 0.5, "probability 0.5")
    else:
        g.add("output.activation", "softmax", f"values in [{lo:.3g}, {hi:.3g}]: logits; softmax (one class per "
                                              "pixel) assumed, sigmoid if the classes may overlap", weak=True)
        g.add("output.multi_label", False, "softmax logits: argmax over the channels", weak=True)


def _fidelity(chw: np.ndarray, ref: np.ndarray, ratio: float) -> tuple[float, float]:
    """PSNR of the output (averaged down to the input size) and of input - output against the input."""
    small = chw
    if ratio > 1:
        r, c = int(ratio), chw.shape[0]
        h, w = chw.shape[1] // r, chw.shape[2] // r
        small = chw[:, : h * r, : w * r].reshape(c, h, r, w, r).mean(axis=(2, 4))
    ref = ref[:, : small.shape[1], : small.shape[2]]
    return _psnr(small, ref), _psnr(ref - small, ref)


def _ramp_fidelity(graph: Graph, input_name: str | None, name: str, layout: str, in_layout: str,
                   in_tensor: np.ndarray, ratio: float) -> tuple[float, float]:
    """Run a clean horizontal ramp over the probe's value range: an image-to-image model (denoiser,
    enhancer) gives it back (or, predicting the noise, nearly zero); a per-pixel classifier turns it into
    steps. Returns the PSNRs of output and of input - output against the ramp."""
    if input_name is None or in_tensor.dtype.kind != "f":
        return -np.inf, -np.inf
    lo, hi = float(in_tensor.min()), float(in_tensor.max())
    if hi <= lo:
        lo, hi = 0.0, 1.0
    shape = in_tensor.shape
    w_axis = 3 if in_layout == "NCHW" else 2
    ramp = np.broadcast_to(np.linspace(lo, hi, shape[w_axis], dtype=np.float32).reshape(
        [-1 if i == w_axis else 1 for i in range(4)]), shape).astype(in_tensor.dtype)
    out = graph.try_run(input_name, ramp)
    if out is None or name not in out:
        return -np.inf, -np.inf
    arr = out[name]
    sq = arr[0] if arr.ndim == 4 and arr.shape[0] == 1 else arr
    chw = (sq if layout == "NCHW" else np.moveaxis(sq, -1, 0)).astype(np.float32)
    ref = (ramp[0] if in_layout == "NCHW" else np.moveaxis(ramp[0], -1, 0)).astype(np.float32)
    m = 8 if min(ref.shape[1:]) >= 48 else 0  # zero-padded convolutions bend the borders: not the model's job
    if m:
        r = int(ratio)
        ref, chw = ref[:, m:-m, m:-m], chw[:, m * r:chw.shape[1] - m * r, m * r:chw.shape[2] - m * r]
    return _fidelity(chw, ref, ratio)


def _dense(graph: Graph, name: str, arr: np.ndarray, hw: tuple[int, int], in_tensor: np.ndarray,
           in_layout: str, forced: str | None, input_name: str | None = None) -> OutputGuess | None:
    found = _spatial(arr.shape, hw)
    if found is None:
        return None
    layout, c, ratio = found
    squeezed = arr[0] if arr.ndim == 4 and arr.shape[0] == 1 else arr
    if squeezed.ndim == 2:
        squeezed = squeezed[None]
    chw = squeezed if layout == "NCHW" else np.moveaxis(squeezed, -1, 0)
    x = in_tensor[0] if in_layout == "NCHW" else np.moveaxis(in_tensor[0], -1, 0)
    in_c = x.shape[0]
    shape_txt = f"output {name!r} {list(arr.shape)} for a {hw[0]}x{hw[1]} input"
    integer = arr.dtype.kind in "iu"
    can_restore = ratio >= 1 and float(ratio).is_integer() and c in (1, 3) and c == in_c and not integer
    fidelity = residual = ramp_fid = ramp_res = -np.inf
    if can_restore:
        ref = x
        fidelity, residual = _fidelity(chw, ref, ratio)
        ramp_fid, ramp_res = _ramp_fidelity(graph, input_name, name, layout, in_layout, in_tensor, ratio)
    named = _has(name, RESTORE_NAMES)
    best_ramp = max(ramp_fid, ramp_res)
    if forced == "restoration" or (forced is None and can_restore and (
            ratio > 1 or best_ramp >= FIDELITY_DB or named)):
        if not can_restore:
            return None
        g = OutputGuess("restoration", {}, channels_out=c)
        if ratio > 1:
            why = f"{shape_txt}: {int(ratio)}x the input size with {c} channel(s) (super-resolution)"
        else:
            why = (f"{shape_txt}: same size and channels, and a clean ramp comes back as a ramp "
                   f"(PSNR {best_ramp:.1f} dB; {max(fidelity, residual):.1f} dB on the probe image)")
        weak = ratio == 1 and best_ramp < FIDELITY_DB + 10 and not named
        g.add("task", "restoration", why + ("" if not named else f"; name {name!r}"), weak, write=False)
        g.add("output.layout", layout, f"the spatial dims are {'last' if layout == 'NCHW' else 'first'}")
        g.add("output.scale", int(ratio), f"output / input size = {int(ratio)}")
        is_residual = ramp_res > ramp_fid + 3 and ramp_res >= FIDELITY_DB
        g.add("output.residual", bool(is_residual),
              f"on a clean ramp, input - output is {'closer to' if is_residual else 'farther from'} the ramp than "
              f"the output ({ramp_res:.1f} vs {ramp_fid:.1f} dB)", weak=abs(ramp_res - ramp_fid) < 3)
        g.add("output.name", name, "the image-sized output" + (" among several" if len(graph.outputs) > 1 else ""))
        return g
    if forced not in (None, "segmentation"):
        return None
    g = OutputGuess("segmentation", {})
    why = (f"{shape_txt}: a per-pixel map" + (f" at 1/{int(round(1 / ratio))} of the input size" if ratio < 1
                                              else ""))
    weak = can_restore and not _has(name, SEG_NAMES)
    if can_restore:
        why += f"; a clean ramp does not come back (PSNR {best_ramp:.1f} dB < {FIDELITY_DB:g})"
    g.add("task", "segmentation", why, weak, write=False)
    g.add("output.name", name, "the per-pixel output" + (" among several" if len(graph.outputs) > 1 else ""))
    if integer:
        g.add("output.layout", "NHW", f"integer output of type {arr.dtype}: class ids already")
        g.n_classes = int(arr.max()) + 1 if arr.size else 1
        return g
    g.add("output.layout", layout, "channels first" if layout == "NCHW" else "channels last")
    g.n_classes = c
    _seg_activation(g, chw.astype(np.float32))
    return g


# -- classification -------------------------------------------------------------------------------------
def _vector(name: str, arr: np.ndarray) -> np.ndarray | None:
    if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[0] == 1) or (arr.ndim == 4 and arr.shape[0] == 1 and
                                                                   arr.shape[2] == arr.shape[3] == 1):
        return arr.reshape(-1).astype(np.float32)
    return None


def _classification(graph: Graph, name: str, arr: np.ndarray, hints: Hints) -> OutputGuess | None:
    v = _vector(name, arr)
    if v is None or v.size < 1 or arr.dtype.kind not in "f":
        return None
    g = OutputGuess("classification", {}, n_classes=int(v.size))
    src = "Ultralytics metadata task 'classify'; " if hints.task == "classify" else ""
    g.add("task", "classification", f"{src}output {name!r} {list(arr.shape)}: one score per class ({v.size})",
          write=False)
    g.add("output.name", name, "the score vector" + (" among several outputs" if len(graph.outputs) > 1 else ""))
    lo, hi = float(v.min()), float(v.max())
    if lo >= -1e-4 and hi <= 1 + 1e-4 and abs(float(v.sum()) - 1.0) < 0.02 and v.size > 1:
        g.add("output.activation", "none", "scores in [0, 1] summing to one: already probabilities")
    elif lo >= -1e-4 and hi <= 1 + 1e-4:
        g.add("output.activation", "none", f"scores in [{lo:.3g}, {hi:.3g}] not summing to one: independent "
                                           "probabilities (sigmoid inside the graph)", weak=True)
    elif v.size == 1:
        g.add("output.activation", "sigmoid", "one logit: a binary classifier")
    else:
        g.add("output.activation", "softmax", f"scores in [{lo:.3g}, {hi:.3g}]: logits; softmax assumed "
                                              "(sigmoid if the classes are not exclusive)", weak=True)
    return g


# -- entry point ---------------------------------------------------------------------------------------
def guess_output(graph: Graph, outs: dict[str, np.ndarray], hw: tuple[int, int], in_tensor: np.ndarray,
                 in_layout: str, hints: Hints, *, task: str | None = None,
                 n_labels: int | None = None, input_name: str | None = None) -> OutputGuess:
    """Classify the outputs of one run into a task and its ``output:`` fields.

    Raises
    ------
    ImportRefused
        No output fits any task (or the forced ``task``).
    """
    if hints.family == "ultralytics" and hints.task in ("segment", "pose", "obb"):
        raise ImportRefused(f"Ultralytics task {hints.task!r}: instance masks, keypoints and rotated boxes have no "
                            "built-in decoder (export a 'detect' or 'classify' model)", path=graph.path)
    forced = (task or ULTRA.get(hints.task or "")) if hints.family == "ultralytics" else task
    if forced in (None, "detection"):
        g = _boxes_scores(graph, outs, hw)
        if g is not None:
            return g
    if forced in (None, "segmentation", "restoration"):
        for name, arr in outs.items():
            g = _dense(graph, name, arr, hw, in_tensor, in_layout, forced, input_name)
            if g is not None:
                return g
    if forced in (None, "detection"):
        for name, arr in outs.items():
            g = _yolo(graph, name, arr, hw, hints, n_labels)
            if g is not None:
                return g
    if forced in (None, "classification"):
        for name, arr in outs.items():
            g = _classification(graph, name, arr, hints)
            if g is not None:
                return g
    shapes = ", ".join(f"{n!r} {list(a.shape)}" for n, a in outs.items())
    what = f"--task {forced}: no output fits it" if forced else "no output fits a task"
    raise ImportRefused(f"{what} (outputs on a {hw[0]}x{hw[1]} input: {shapes}); expected [1, K] scores, a "
                        "per-pixel map of the input size, [1, 4+C, N] / [1, N, 5+C] detections or a boxes + "
                        "scores pair", path=graph.path)


ULTRA = {"detect": "detection", "classify": "classification"}


def activation_probs(chw: np.ndarray, activation: str) -> np.ndarray:
    """Per-channel probabilities of a ``(C, h, w)`` map (used by the normalisation ranking)."""
    if activation == "softmax" and chw.shape[0] > 1:
        return softmax(chw, axis=0)
    if activation == "sigmoid" or (activation == "softmax" and chw.shape[0] == 1):
        return sigmoid(chw)
    return np.clip(chw.astype(np.float32), 0.0, 1.0)
