"""The click plugin's files: plugin.yaml (the prompt-channel contract), the sample and the model card."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..common.export import plugin_spec, write_plugin_yaml
from .common import (
    CONTEXT,
    ENCODING,
    EXTRA,
    FIRST_SIZE,
    ITERATIONS,
    MIN_SIZE,
    PERCENTILE,
    RADIUS,
    SIZE,
    SOFT_TOLERANCES,
)
from .data import heldout_scenes

PLUGIN_ID = "click"
VERSION = "1.2.0"  # v3 (warm-started from v2, MNI-heavier mix); 1.1.0 was v2, 1.0.0 v1
METHODS = (("model", "click model"), ("region_grow", "region grow"), ("grabcut", "GrabCut"))
GROUPS = ("all", "camera+moon (synthetic objects)", "MNI held-out slab")


def prompt_block() -> dict:
    return {"kind": "channels", "size": SIZE, "pad": "bottom_right", "isotropic": True, "mask_threshold": 0.0,
            "encoding": ENCODING, "radius": RADIUS, "previous_mask": True, "context": CONTEXT,
            "min_size": MIN_SIZE, "first_size": FIRST_SIZE}


def manifest(sha: str, metrics: dict) -> dict:
    """plugin.yaml's content; ``metrics`` may be empty (the evaluation's temporary plugin)."""
    meta = {"training_data": "synthetic textured shapes inserted into scikit-image samples (camera, moon held "
                             "out), coins of coins.png, MNI152 tissue components outside the held-out slab"}
    if metrics:
        res = metrics["results"]["model"]["all"]
        meta["metrics"] = {k: res[k] for k in ("iou@1", "iou@3", "iou@5", "noc@85", "noc@90")}
        meta["latency_ms_128x128_1thread"] = metrics["latency_ms_cpu_1thread"]
    spec = plugin_spec(
        PLUGIN_ID, VERSION, sha, name="Click to segment (any object)", task="promptable",
        description="Segments the object under the clicks (include / exclude, corrections) in grayscale, "
                    "8/16-bit, CT or RGB (luma) images: a small prompt-channel U-Net.",
        input_spec={"name": "input", "layout": "NCHW", "color": "gray",
                    "intensity": {"percentile": list(PERCENTILE)}, "dtype": "float32"},
        output_spec={}, meta=meta, retrain="models.click.train")
    spec.pop("output")
    spec.pop("sample")
    spec["prompt"] = prompt_block()
    return spec


def write_plugin(folder: Path, sha: str, metrics: dict) -> None:
    spec = manifest(sha, metrics)
    spec["sample"] = "sample.png"
    write_plugin_yaml(folder, spec)
    name, img, _ = next(s for s in heldout_scenes() if s[0].startswith("mni") and s[1].dtype == np.uint8)
    cv2.imwrite(str(folder / "sample.png"), img)


def _row(label: str, s: dict) -> str:
    return (f"| {label} | {s['iou@1']:.3f} | {s['iou@3']:.3f} | {s['iou@5']:.3f} | {s['noc@85']:.2f} | "
            f"{s['noc@90']:.2f} |")


def _margins(results: dict, group: str) -> tuple[bool, str]:
    m = results["model"][group]
    parts, ok = [], True
    for k in ("iou@1", "iou@3"):
        for b, label in METHODS[1:]:
            d = m[k] - results[b][group][k]
            ok &= d > 0
            parts.append(f"{k} {'+' if d >= 0 else ''}{d:.3f} vs {label}")
    return ok, "; ".join(parts)


def verdict(results: dict, paired: dict | None = None) -> str:
    """Whether the model beats both baselines at 1 and 3 clicks on the whole held-out set, and by how much:
    by the mean, and (``paired``: metrics.json's intervals) whether each lead is clear of noise."""
    ok, parts = _margins(results, "all")
    clear = paired is not None and all(d["ci95"][0] > 0 for d in paired["all"].values())
    if not ok:
        head = "The model does NOT beat both baselines at 1 and 3 clicks"
    elif clear:
        head = "The model beats both baselines at 1 and 3 clicks, every lead clear of noise (paired 95 % interval > 0)"
    elif paired is not None:
        head = ("The model's mean IoU is above both baselines' at 1 and 3 clicks, but NOT every lead is clear of "
                "noise (paired 95 % intervals below)")
    else:
        head = "The model beats both baselines at 1 and 3 clicks"
    return f"{head} (all held-out objects, mean IoU difference: {parts})."


def group_verdicts(results: dict) -> str:
    """One line per held-out subset: beats both at 1 and 3 clicks or not, and the margins."""
    lines = []
    for g in GROUPS[1:]:
        if g in results["model"]:
            ok, parts = _margins(results, g)
            lines.append(f"- {g}: {'beats both' if ok else 'does not beat both'} ({parts})")
    return "\n".join(lines)


def paired_text(metrics: dict) -> str:
    """The model card's "by how much": per group, the model's mean per-object IoU lead over each baseline
    after 1 and 3 clicks with its paired bootstrap 95 % interval, and whether the interval excludes 0."""
    paired = metrics.get("paired")
    if not paired:
        return ""
    rows = []
    for g in (g for g in GROUPS if g in paired):
        for key, d in paired[g].items():
            k, b = key.split(" vs ")
            label = dict(METHODS)[b]
            lo, hi = d["ci95"]
            word = "ahead" if lo > 0 else "behind" if hi < 0 else "not distinguishable (interval spans 0)"
            rows.append(f"| {g} | {k} | {label} | {d['mean']:+.3f} | [{lo:+.3f}, {hi:+.3f}] | "
                        f"{d['wins']} / {d['losses']} | {word} |")
    return ("Paired per-object comparison (model minus baseline, same objects and clicks; "
            f"{paired['method'].split('(', 1)[1].rstrip(')')}):\n\n"
            "| objects | after | vs | mean IoU difference | 95 % interval | model wins / losses | verdict |\n"
            "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


def validation_text(metrics: dict) -> str:
    """The training-side validation table (models/click/validate.py) the model was chosen on, when recorded:
    IoU after 1 / 3 clicks per object kind for each candidate and both baselines."""
    val = metrics.get("validation")
    if not val:
        return ""
    names = list(val["models"])
    first = val["models"][names[-1]]
    head = "| objects | n | " + " | ".join(names) + " | region grow | GrabCut | " + \
        f"{names[-1]} - region grow after 1 click [95 %] |"
    rows = []
    for g, row in first.items():
        cells = [f"{val['models'][n][g]['model iou@1']:.3f} / {val['models'][n][g]['model iou@3']:.3f}"
                 for n in names]
        d = row["paired"]["iou@1 vs region_grow"]
        rows.append(f"| {g} | {row['objects']} | " + " | ".join(cells) +
                    f" | {row['region_grow iou@1']:.3f} / {row['region_grow iou@3']:.3f}"
                    f" | {row['grabcut iou@1']:.3f} / {row['grabcut iou@3']:.3f}"
                    f" | {d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] |")
    return (f"## Validation (training side: where this model was chosen)\n{val['about']}\n\n{head}\n|" +
            "---|" * (len(names) + 5) + "\n" + "\n".join(rows) + f"\n\n{val.get('decision', '')}\n")


def write_card(folder: Path, metrics: dict) -> None:
    res = metrics["results"]
    base = metrics["baselines"]
    held = metrics["heldout"]
    tables = []
    for g in (g for g in GROUPS if g in res["model"]):
        n = res["model"][g]["objects"]
        rows = "\n".join(_row(label, res[m][g]) for m, label in METHODS)
        for label, prev in metrics.get("previous_models", {}).items():  # the models this one replaced
            if g in prev:
                rows += "\n" + _row(f"{label} (replaced)", prev[g])
        tables.append(f"**{g}** ({n} objects)\n\n| method | IoU@1 | IoU@3 | IoU@5 | NoC@85 | NoC@90 |\n"
                      f"|---|---|---|---|---|---|\n{rows}\n")
    kinds = [g for g in res["model"] if g.startswith("MNI: ")]
    if kinds:
        rows = "\n".join(f"| {g[5:]} | {res['model'][g]['objects']} | " + " | ".join(
            f"{res[m][g]['iou@1']:.3f} / {res[m][g]['iou@3']:.3f}" for m, _ in METHODS) + " |" for g in kinds)
        tables.append("**MNI held-out slab by tissue kind** (IoU after 1 / 3 clicks; a handful of objects "
                      "each: a report, not a basis for claims)\n\n| kind | objects | " +
                      " | ".join(label for _, label in METHODS) + " |\n|---|---|---|---|---|\n" + rows + "\n")
    tr = metrics["train"]
    params = tr.get("parameters")
    size = f", {params / 1e6:.2f} M parameters" if params else ""
    weak = "" if _margins(res, "all")[0] else (
        f"- **Not better than both classical baselines at 1 and 3 clicks on this held-out set** (tables above): "
        f"this run trained {tr['steps']} steps (batch 8) in {tr['seconds'] // 60} min on a shared 2-core "
        "machine; a longer budget (`--minutes`, `--resume`) is the first thing to try.\n")
    paired = metrics.get("paired", {}).get("all", {})
    close = [f"{key.replace('_', ' ')}: {d['mean']:+.3f}, 95 % interval [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"
             for key, d in paired.items() if d["ci95"][0] <= 0]
    if close:
        weak += (f"- **Not a clear win over a baseline** on the {held['objects']} held-out objects "
                 f"({'; '.join(close)}): the paired interval reaches 0 or below, so read it as a tie (or a "
                 "loss), not a win. Per image kind see the tables above: region grow's intensity classes are "
                 "the MNI tissue objects' very definition.\n")
    runs = metrics.get("train_runs", [tr])
    history = "; then ".join(
        f"{r['steps']} steps in {r['seconds']} s" + (" (warm-started from the previous model's ONNX: "
                                                     "models/click/train.py `--warm-start`)"
                                                     if r.get("warm_start") else " from scratch")
        for r in runs)
    exact = f" ({round(100 * tr['exact_first_click'])} % of first clicks exactly at that point)" \
        if "exact_first_click" in tr else ""
    mix = tr.get("mix")
    mix_text = (f" Draws: {round(100 * mix['synthetic'])} % synthetic, {round(100 * mix['coins'])} % coins, "
                f"{round(100 * mix['mni'])} % MNI (of those, {round(100 * mix['mni_brain'])} % the whole brain, "
                f"then {round(100 * mix['mni_large'])} % a component of >= 300 px"
                + (f"; {round(100 * mix['mni_axial'])} % axial slices, {round(100 * mix['mni_native_scale'])} % "
                   f"at the template's scale, {round(100 * mix['mni_clean'])} % without added noise"
                   if "mni_axial" in mix else "") + ").") if mix else ""
    text = f"""# Click to segment — model card

Segments the object under the user's clicks: the first click inside the object, then include (left click,
`:+`) or exclude (right click, `:-`) corrections. A `task: promptable` plugin of the prompt-channel shape
(docs/PLUGINS.md, "Promptable segmentation"): the GUI's AI click tool (A) and `workbench segment -m click
--click X,Y` run it. Research use, not for diagnosis.

## Method
A prompt-channel graph on a {SIZE} x {SIZE} letterboxed crop with four input channels: the image (0.5-99.5
percentile of the slice to [0, 1]), the include clicks' and the exclude clicks' distance cones
(`max(0, 1 - d / {RADIUS:g})`, d in model px) and the previous mask. A first click sees the whole image (up
to {FIRST_SIZE} px); later clicks see the previous mask's and the include clicks' box widened by {CONTEXT} of
its size (at least {MIN_SIZE} px). Inside the graph (models/click/net.py) a parameter-free stage adds
{EXTRA} channels: each pixel's intensity distance to the clicked pixels (include, exclude: cone-weighted
means), Gaussian soft thresholds of it (tolerances {", ".join(f"{t:g}" for t in SOFT_TOLERANCES)}) and the
fuzzy connectedness of three of them to their clicks (max over 8-connected paths of the weakest similarity
along the path, {ITERATIONS} propagation steps at half resolution): a soft region grow, the geodesic click
maps of DeepIGeoS in the graph. A small U-Net (widths 16-64, 3 poolings{size}) maps the 4 + {EXTRA} channels
to mask logits (> 0 is the object). Trained with simulated clicks (first click at the interior point
farthest from the border, or jittered in the interior; next clicks at the centre of the largest error
region, include or exclude) against a perturbed previous mask or the network's own previous prediction
(iterative training); {round(100 * tr.get('first_click_only', 0.4))} % of the samples are a first click
alone{exact}; loss BCE + soft Dice; AdamW, cosine schedule, one CPU thread, fixed seeds: {history}.

## Data
Training: synthetic shapes (Fourier blobs, polygons, the horse silhouette) with texture, intensity
gradients and soft edges (Gaussian alpha, sigma 0.4-2.5 px), 0-3 distractors, inserted into scikit-image
samples except camera and moon; the coins of coins.png (scikit-image's watershed recipe); connected tissue
components (brain, CSF, grey and white matter) of MNI152 slices outside the held-out slab (all
orientations); 8-bit or 16-bit (random gain and offset).{mix_text} Held out: **{held['objects']} objects**:
{10} synthetic objects on each of camera.png and moon.png (the training generator, never-trained
backgrounds) and the tissue components (>= 300 px) of axial slices z = 76, 84, 92 of the held-out MNI slab,
alternately 8- and 16-bit.

## Held-out evaluation (standard interactive protocol; baselines: same code, same objects, baselines.json)
Simulated user: first click at the object's interior point farthest from its border, each next click at
the centre (deepest point) of the largest error region, up to {held['max_clicks']} clicks; mean IoU after 1,
3 and 5 clicks, mean number of clicks to reach 85 % / 90 % IoU (NoC, {held['max_clicks']} when never reached).
Baselines from the same clicks: the project's region grow (`workbench.processing.region_grow`, include
clicks as seeds +- tolerance {base['region_grow_tolerance']} of the normalised range, minus the region grown
from the exclude clicks) and OpenCV GrabCut (box of the include clicks + {base['grabcut_margin']} px, clicks as
hard seeds, 3 iterations); tolerance and margin chosen by IoU@1 on {base['tuned_on']}.

{chr(10).join(tables)}
{verdict(res, metrics.get("paired"))}

{group_verdicts(res)}

{paired_text(metrics)}
{validation_text(metrics)}
Latency: {metrics['latency_ms_cpu_1thread']} ms per click on one CPU thread ({SIZE} x {SIZE} input, any image
size: the crop is resized). `tests/unit/test_click_model.py` reproduces the model's rows from the shipped
ONNX through the app's engine and region grow's IoU@1/IoU@3; `python -m models.click.evaluate
--fresh-baselines` re-measures everything, baselines included.

## Limits
{weak}- One object per prompt; a first click on a thin or tiny structure (a few pixels wide) is ambiguous at the
  whole-image scale: add a second click or a box.
- Trained on grayscale: colour images are segmented on their luma.
- Objects are assumed to be contiguous in the slice; no 3-D context.
"""
    (folder / "README.md").write_text(text, encoding="utf-8")
